"""The account page in a real browser (issue 16): change the password and sign in with the new
one; forget this browser's remembered device and be asked for the code again, and without that
a remembered device outlives signing out. (Ending another
browser's session: tests/e2e/test_browser_sessions.py.)
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from tests.e2e.helpers import Site, shot, sign_in
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import proxy_settings, running_proxy
from tests.support.totp import previous_step, totp

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAT, PAT_OLD, PAT_NEW = "pat", "Old-password-1!", "Fresh-password-2026!"
MIRA, MIRA_PASSWORD = "mira", "Forget-my-device-4!"
RENA, RENA_PASSWORD = "rena", "Remember-me-pass-7!"


async def _signed_out(page: Page, site: Site) -> None:
    await page.goto(site.url("/_auth/logout"))
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"notice=signed_out"))


async def test_change_the_password_then_sign_in_with_the_new_one(
    new_context: Any, site: Site
) -> None:
    site.double.add_user(site.pool_id, PAT, PAT_OLD, attributes={"email": "pat@example.com"})
    page = await (await new_context()).new_page()
    await page.goto(site.url("/_auth/account"))
    await sign_in(page, PAT, PAT_OLD)
    await page.wait_for_url(site.url("/_auth/account"))

    section = page.locator("#password")
    await section.locator("input[name=current_password]").fill(PAT_OLD)
    await section.locator("input[name=new_password]").fill(PAT_NEW)
    await section.locator("input[name=confirm_password]").fill(PAT_NEW)
    await section.locator("button[type=submit]").click()
    await page.wait_for_url(re.compile(r"/_auth/account\?done=password_changed"))
    assert "Your password is changed." in await page.inner_text("main")
    await shot(page, "account-password-changed")

    await _signed_out(page, site)
    await page.goto(site.url("/notes"))
    await sign_in(page, PAT, PAT_OLD)  # the old one no longer works
    await page.get_by_role("alert").wait_for()
    assert "/_auth/login" in page.url
    await sign_in(page, PAT, PAT_NEW)
    await page.wait_for_url(site.url("/notes"))
    assert await page.inner_text("body") == "upstream saw GET /notes"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def device_site(double: CognitoDouble, site: Site) -> AsyncIterator[Site]:
    """MFA for everyone, devices remembered once confirmed: a remembered browser skips the code."""
    pool_id = double.create_pool()
    double.set_pool_mfa(pool_id, "ON", factors=("SOFTWARE_TOKEN_MFA",))
    double.set_device_tracking(pool_id, challenge_required_on_new_device=True, remembered="always")
    client_id, secret = double.create_client(pool_id, secret=True)
    for username, password in ((MIRA, MIRA_PASSWORD), (RENA, RENA_PASSWORD)):
        double.add_user(
            pool_id,
            username,
            password,
            attributes={"email": f"{username}@example.com"},
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


async def _sign_in_with_code(
    page: Page, site: Site, at: float, username: str = MIRA, password: str = MIRA_PASSWORD
) -> None:
    await sign_in(page, username, password)
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/challenge"))))
    secret = site.double.totp_secret(site.pool_id, username)
    assert secret
    await page.fill("input[name=code]", totp(secret, at=at))
    await page.keyboard.press("Enter")


async def test_forget_this_device_and_the_code_is_asked_again(
    new_context: Any, device_site: Site
) -> None:
    site = device_site
    page = await (await new_context()).new_page()
    await page.goto(site.url("/_auth/account"))
    await _sign_in_with_code(page, site, at=await previous_step())
    await page.wait_for_url(site.url("/_auth/account"))

    devices = page.locator("#devices li")
    assert await devices.count() == 1
    assert "This browser" in await devices.inner_text()
    await devices.get_by_role("button", name="Forget this device").click()
    await page.wait_for_url(re.compile(r"done=device_forgotten"))
    assert "That device is forgotten." in await page.inner_text("main")
    assert await page.locator("#devices li").count() == 0

    await _signed_out(page, site)
    await page.goto(site.url("/notes"))
    # Forgotten: the same browser and password are asked for the code again.
    await _sign_in_with_code(page, site, at=time.time())
    await page.wait_for_url(site.url("/notes"))


async def test_a_remembered_device_still_spares_the_code_after_signing_out(
    new_context: Any, device_site: Site
) -> None:
    """Chromium applies every header the sign-out answer sends (Clear-Site-Data included): the
    remembered device and the app's own cookies outlive signing out."""
    site = device_site
    context = await new_context()
    # A cookie of the app's own (a preference): signing out of the gate is not the app's reset.
    await context.add_cookies([{"name": "theme", "value": "dark", "url": site.url("/")}])
    page = await context.new_page()
    await page.goto(site.url("/notes"))
    await _sign_in_with_code(page, site, time.time(), RENA, RENA_PASSWORD)
    await page.wait_for_url(site.url("/notes"))

    await _signed_out(page, site)
    assert {c["name"]: c["value"] for c in await context.cookies()}.get("theme") == "dark"
    # Signed out for real: the app is behind the login page again.
    await page.goto(site.url("/notes"))
    assert "/_auth/login" in page.url

    # The same browser, the same password: straight back to the app, no code asked.
    await sign_in(page, RENA, RENA_PASSWORD)
    await page.wait_for_url(site.url("/notes"))
    assert await page.inner_text("body") == "upstream saw GET /notes"
