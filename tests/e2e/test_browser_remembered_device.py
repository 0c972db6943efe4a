"""A remembered device in a real browser: it outlives signing out (Chromium applies every header
the sign-out answer sends, Clear-Site-Data included), so the next sign-in on it asks for no code;
the app's own cookies outlive it too.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.helpers import Site, sign_in
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import proxy_settings, running_proxy
from tests.support.totp import totp

pytestmark = pytest.mark.asyncio(loop_scope="session")

USER, PASSWORD = "rena", "Remember-me-pass-7!"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def device_site(double: CognitoDouble, site: Site) -> AsyncIterator[Site]:
    pool_id = double.create_pool()
    double.set_pool_mfa(pool_id, "ON", factors=("SOFTWARE_TOKEN_MFA",))
    double.set_device_tracking(pool_id, challenge_required_on_new_device=True, remembered="always")
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(
        pool_id,
        USER,
        PASSWORD,
        attributes={"email": "rena@example.com"},
        mfa=("SOFTWARE_TOKEN_MFA",),
    )
    settings = proxy_settings(
        upstream_url=site.upstream.url,
        pool_id=pool_id,
        client_id=client_id,
        client_secret=secret,
        endpoint_url=double.url,
        jwks_url=double.jwks_url(pool_id),
        issuer=double.issuer(pool_id),
        store_url=site.redis_url,
    )
    async with running_proxy(settings) as base:
        yield Site(base, site.upstream, double, pool_id, site.redis_url)


async def test_a_remembered_device_still_spares_the_code_after_signing_out(
    new_context: Any, device_site: Site
) -> None:
    site = device_site
    context = await new_context()
    # A cookie of the app's own (a preference): signing out of the gate is not the app's reset.
    await context.add_cookies([{"name": "theme", "value": "dark", "url": site.url("/")}])
    page = await context.new_page()
    await page.goto(site.url("/notes"))
    await sign_in(page, USER, PASSWORD)
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/challenge"))))
    secret = site.double.totp_secret(site.pool_id, USER)
    assert secret
    await page.fill("input[name=code]", totp(secret, at=time.time() - 30))
    await page.keyboard.press("Enter")
    await page.wait_for_url(site.url("/notes"))

    await page.goto(site.url("/_auth/logout"))
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"notice=signed_out"))
    assert {c["name"]: c["value"] for c in await context.cookies()}.get("theme") == "dark"
    # Signed out for real: the app is behind the login page again.
    await page.goto(site.url("/notes"))
    assert "/_auth/login" in page.url

    # The same browser, the same password: straight back to the app, no code asked.
    await sign_in(page, USER, PASSWORD)
    await page.wait_for_url(site.url("/notes"))
    assert await page.inner_text("body") == "upstream saw GET /notes"
