"""Step-up in a real browser (issue 16.7): a sensitive account change after the max age asks for
the password first, then goes through; a ``require_mfa`` path sends a session whose sign-in was
password only (its device spared the code) through the authenticator code and back."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page

from tests.e2e.helpers import Site, assert_accessible_as_seen, shot, sign_in
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import proxy_settings, running_proxy
from tests.support.stepup import age_sign_in
from tests.support.totp import previous_step, totp

pytestmark = pytest.mark.asyncio(loop_scope="session")

SAM, SAM_PASSWORD, SAM_NEW = "sam", "Sam-step-up-1!", "Sam-step-up-new-2?"
TESS, TESS_PASSWORD = "tess", "Tess-step-up-3!"
MAX_AGE = 30


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stepup_site(double: CognitoDouble, site: Site) -> AsyncIterator[Site]:
    pool_id = double.create_pool()
    double.set_pool_mfa(pool_id, "OPTIONAL", factors=("SOFTWARE_TOKEN_MFA",))
    double.set_device_tracking(pool_id, challenge_required_on_new_device=True, remembered="always")
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, SAM, SAM_PASSWORD, attributes={"email": "sam@example.com"})
    double.add_user(
        pool_id,
        TESS,
        TESS_PASSWORD,
        attributes={"email": "tess@example.com"},
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
        session={"store_url": site.redis_url, "cache_ttl": 0},
        upstream={"url": site.upstream.url, "rules": [{"path": "/vault", "require_mfa": True}]},
        account={"reauth_max_age": MAX_AGE},
    )
    async with running_proxy(settings) as base:
        yield Site(base, site.upstream, double, pool_id, site.redis_url)


async def session_cookie(context: BrowserContext) -> str:
    found = [c["value"] for c in await context.cookies() if c["name"] == "gate"]
    assert found, "not signed in"
    return found[0]


async def fill_password_change(page: Page) -> None:
    await page.fill("input[name=current_password]", SAM_PASSWORD)
    await page.fill("input[name=new_password]", SAM_NEW)
    await page.fill("input[name=confirm_password]", SAM_NEW)
    await page.click("form[action*='account/password'] button[type=submit]")


async def test_a_sensitive_action_after_the_max_age_asks_for_the_password_first(
    new_context: Any, stepup_site: Site
) -> None:
    site = stepup_site
    context = await new_context()
    page = await context.new_page()
    await page.goto(site.url("/_auth/account"))
    await sign_in(page, SAM, SAM_PASSWORD)
    await page.wait_for_url(site.url("/_auth/account"))
    assert await page.locator("#account-reauth").count() == 0  # a fresh sign-in: no detour

    # The sign-in grows older than GATE_ACCOUNT_REAUTH_MAX_AGE.
    await age_sign_in(site.redis_url, await session_cookie(context), MAX_AGE + 1)
    await page.reload()
    assert "asks for your password again first" in await page.inner_text("#account-reauth")

    await fill_password_change(page)
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/reauth"))))
    main = await page.inner_text("main")
    assert "Confirm it's you" in main and "What you sent was not sent" in main
    assert "sam@example.com" in main
    assert await page.locator("input[name=username]").count() == 0
    await shot(page, "reauth")
    await assert_accessible_as_seen(new_context, page, "reauth")

    await page.fill("#password", SAM_PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(site.url("/_auth/account"))
    assert await page.locator("#account-reauth").count() == 0  # confirmed just now

    await fill_password_change(page)
    await page.wait_for_url(re.compile(r"done=password_changed"))
    assert "Your password is changed." in await page.inner_text("main")


async def test_a_require_mfa_path_sends_a_password_only_session_through_mfa(
    new_context: Any, stepup_site: Site
) -> None:
    site = stepup_site
    secret = site.double.totp_secret(site.pool_id, TESS)
    assert secret
    context = await new_context()
    page = await context.new_page()
    # First sign-in: password and code; the device is remembered (the pool says "always").
    await page.goto(site.url("/"))
    await sign_in(page, TESS, TESS_PASSWORD)
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/challenge"))))
    await page.fill("input[name=code]", totp(secret, at=await previous_step()))
    await page.keyboard.press("Enter")
    await page.wait_for_url(site.url("/"))

    # The browser restarts: its session cookie is gone, the (persistent) device cookie stays.
    # The next sign-in is password only: the remembered device spares the code.
    device = [c for c in await context.cookies() if c["name"] == "gate-device"]
    assert device
    context = await new_context()
    await context.add_cookies(device)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(site.url("/"))
    await sign_in(page, TESS, TESS_PASSWORD)
    await page.wait_for_url(site.url("/"))

    await page.goto(site.url("/vault/keys?show=1"))
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/reauth"))))
    assert "second step" in await page.inner_text("main")
    await page.fill("#password", TESS_PASSWORD)
    await page.keyboard.press("Enter")
    # No remembered device at a re-authentication: the code is asked for.
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/challenge"))))
    assert "authenticator app" in await page.inner_text("main")
    await page.fill("input[name=code]", totp(secret))
    await page.keyboard.press("Enter")
    await page.wait_for_url(site.url("/vault/keys?show=1"))
    assert await page.inner_text("body") == "upstream saw GET /vault/keys?show=1"
