"""Challenge pages in a real browser: TOTP enrolment (the test reads the secret off the page and
computes the code like an authenticator app), sign-in with TOTP, the new-password challenge.

The flows run under the pages' real CSP (the QR code is a data: image: a CSP slip would blank
it); axe checks each page in a twin context that bypasses CSP, with the same cookies.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from tests.e2e.helpers import Site, assert_accessible_as_seen, shot, sign_in
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import proxy_settings, running_proxy
from tests.support.totp import totp

pytestmark = pytest.mark.asyncio(loop_scope="session")

MFA_USER, MFA_PASSWORD = "tomoko", "Totp-user-pass-5!"
NEW_USER, TEMPORARY, NEW_PASSWORD = "nina", "Temporary-pass-1!", "Brand-new-pass-2026!"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mfa_site(double: CognitoDouble, site: Site) -> AsyncIterator[Site]:
    """A pool that requires MFA: a user without it is asked to enrol at sign-in (MFA_SETUP)."""
    pool_id = double.create_pool()
    double.set_pool_mfa(pool_id, "ON", factors=("SOFTWARE_TOKEN_MFA",))
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, MFA_USER, MFA_PASSWORD, attributes={"email": "tomoko@example.com"})
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


async def _on_challenge(page: Page, site: Site) -> None:
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/challenge"))))


async def test_totp_enrolment_then_sign_in_with_a_fresh_code(
    new_context: Any, mfa_site: Site
) -> None:
    site = mfa_site
    # The size of the README screenshot (docs/images/mfa-setup.png).
    context = await new_context(viewport={"width": 560, "height": 900})
    page = await context.new_page()
    await page.goto(site.url("/team/calendar"))
    await sign_in(page, MFA_USER, MFA_PASSWORD)
    await _on_challenge(page, site)

    # What an authenticator app gets: the QR image (rendered, not blocked) and the key as text.
    qr = page.locator("figure.qr img")
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0")
    assert await qr.get_attribute("alt")
    secret = (await page.inner_text("#totp-secret")).replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}=*", secret), secret
    code = page.locator("input[name=code]")
    assert await code.get_attribute("autocomplete") == "one-time-code"
    assert await code.get_attribute("inputmode") == "numeric"
    assert await code.evaluate("e => e === document.activeElement")
    await shot(page, "mfa-setup")
    await assert_accessible_as_seen(new_context, page, "mfa-setup")

    # A wrong code: an alert tied to the field, the same secret still shown.
    wrong = f"{(int(totp(secret)) + 1) % 1_000_000:06d}"
    await code.fill(wrong)
    await page.keyboard.press("Enter")
    await page.get_by_role("alert").wait_for()
    assert await page.get_attribute("input[name=code]", "aria-invalid") == "true"
    described = await page.get_attribute("input[name=code]", "aria-describedby") or ""
    assert "challenge-error" in described.split()
    assert (await page.inner_text("#totp-secret")).replace(" ", "") == secret
    await shot(page, "mfa-setup-wrong-code")
    await assert_accessible_as_seen(new_context, page, "mfa-setup-error")

    await page.fill("input[name=code]", totp(secret))
    await page.keyboard.press("Enter")
    await page.wait_for_url(site.url("/team/calendar"))
    assert await page.inner_text("body") == "upstream saw GET /team/calendar"

    # Sign out, sign in again: now the TOTP step, answered with the next code (a code already
    # used for enrolment may not be used again).
    await page.goto(site.url("/_auth/logout"))
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"notice=signed_out"))
    await page.goto(site.url("/team/calendar?week=49"))
    await sign_in(page, MFA_USER, MFA_PASSWORD)
    await _on_challenge(page, site)
    assert "authenticator app" in await page.inner_text("main")
    await shot(page, "mfa-code")
    await assert_accessible_as_seen(new_context, page, "mfa-code")
    await page.fill("input[name=code]", totp(secret, at=time.time() + 30))
    await page.keyboard.press("Enter")
    await page.wait_for_url(site.url("/team/calendar?week=49"))


async def test_totp_code_page_in_japanese_on_a_phone(new_context: Any, mfa_site: Site) -> None:
    site = mfa_site
    site.double.add_user(
        site.pool_id, "kenji", MFA_PASSWORD, mfa=["SOFTWARE_TOKEN_MFA"], preferred_mfa=None
    )
    secret = site.double.totp_secret(site.pool_id, "kenji")
    assert secret
    context = await new_context(locale="ja-JP", viewport={"width": 375, "height": 667})
    page = await context.new_page()
    await page.goto(site.url("/ja-page"))
    await sign_in(page, "kenji", MFA_PASSWORD)
    await _on_challenge(page, site)
    assert await page.get_attribute("html", "lang") == "ja"
    assert await page.inner_text("h1") == "2 段階認証"
    assert "認証アプリ" in await page.inner_text("main")
    overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
    assert await page.evaluate(overflow) <= 0
    await shot(page, "mfa-code-ja")
    await page.fill("input[name=code]", totp(secret))
    await page.keyboard.press("Enter")
    await page.wait_for_url(site.url("/ja-page"))


async def test_new_password_challenge_without_javascript(new_context: Any, site: Site) -> None:
    site.double.add_user(
        site.pool_id,
        NEW_USER,
        TEMPORARY,
        attributes={"email": "nina@example.com"},
        status="FORCE_CHANGE_PASSWORD",
    )
    context = await new_context(java_script_enabled=False)  # challenge pages need none
    page = await context.new_page()
    await page.goto(site.url("/welcome"))
    await sign_in(page, NEW_USER, TEMPORARY)
    await _on_challenge(page, site)
    assert await page.inner_text("h1") == "Choose a new password"
    for name in ("new_password", "confirm_password"):
        field = page.locator(f"input[name={name}]")
        assert await field.get_attribute("type") == "password"
        assert await field.get_attribute("autocomplete") == "new-password"
    await shot(page, "new-password")
    await assert_accessible_as_seen(new_context, page, "new-password")

    await page.fill("input[name=new_password]", NEW_PASSWORD)
    await page.fill("input[name=confirm_password]", NEW_PASSWORD + "x")
    await page.keyboard.press("Enter")
    alert = page.get_by_role("alert")
    assert await alert.inner_text() == "The passwords do not match."
    await shot(page, "new-password-mismatch")

    await page.fill("input[name=new_password]", NEW_PASSWORD)
    await page.fill("input[name=confirm_password]", NEW_PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(site.url("/welcome"))

    # The new password is the password now.
    again = await (await new_context()).new_page()
    await again.goto(site.url("/_auth/login?rd=/again"))
    await sign_in(again, NEW_USER, NEW_PASSWORD)
    await again.wait_for_url(site.url("/again"))
