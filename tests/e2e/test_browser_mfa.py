"""The account page's two-step verification in a real browser (Chromium through the proxy
against the strict double): enrol an authenticator app from the QR code's key, then sign out and
sign in with a code from it; turn it off again."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.async_api import Page

from tests.e2e.helpers import USER, Site, assert_accessible_as_seen, shot, sign_in
from tests.support.totp import totp

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_enrol_an_authenticator_app_then_sign_in_with_a_code(
    new_context: Any, page: Page, site: Site
) -> None:
    await page.goto(site.url("/_auth/account"))
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/login"))))
    await sign_in(page)
    await page.wait_for_url(site.url("/_auth/account"))
    methods = page.locator("#methods")
    assert "No second step is turned on" in await methods.inner_text()

    await methods.get_by_role("button", name="Set up an authenticator app").click()
    await page.wait_for_url(site.url("/_auth/account#methods"))
    qr = methods.locator("figure.qr img")
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0")
    assert await qr.get_attribute("alt") == "QR code to add this account to an authenticator app"
    secret = (await page.inner_text("#totp-secret")).replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    assert secret not in "".join(
        await page.eval_on_selector_all("input", "els => els.map(e => e.value)")
    )
    # A phone's width: the QR code and the key fit without scrolling sideways.
    await page.set_viewport_size({"width": 375, "height": 800})
    overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
    assert await page.evaluate(overflow) <= 0
    await shot(page, "account-mfa-setup")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await assert_accessible_as_seen(new_context, page, "account-mfa-setup")

    # A wrong code: the alert tied to the field, the same key still shown.
    code = page.locator("#methods-code")
    await code.fill(f"{(int(totp(secret)) + 1) % 1_000_000:06d}")
    await code.press("Enter")
    await methods.get_by_role("alert").wait_for()
    assert "That code is incorrect." in await methods.get_by_role("alert").inner_text()
    assert await code.get_attribute("aria-invalid") == "true"
    assert "methods-error" in (await code.get_attribute("aria-describedby") or "").split()
    assert (await page.inner_text("#totp-secret")).replace(" ", "") == secret

    await code.fill(totp(secret))
    await code.press("Enter")
    await page.wait_for_url(re.compile(r"done=totp_added"))
    assert "Your authenticator app is set up." in await page.locator("#account-notice").inner_text()
    text = await methods.inner_text()
    assert "Preferred" in text and "Remove" in text
    content = await page.content()
    assert secret not in content and not await page.locator("#totp-secret").count()
    info = site.double.user_info(site.pool_id, USER)
    assert info["mfa"] == ["SOFTWARE_TOKEN_MFA"]
    await shot(page, "account-mfa-on")

    # Sign out; signing in now asks for a code from the app (the next one: Cognito accepts a
    # code once).
    await page.goto(site.url("/_auth/logout"))
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"notice=signed_out"))
    await page.goto(site.url("/reports"))
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/login"))))
    await sign_in(page)
    await page.wait_for_url(site.url("/_auth/challenge"))
    assert "authenticator app" in await page.inner_text("main")
    await page.fill("input[name=code]", totp(secret, at=time.time() + 30))
    await page.keyboard.press("Enter")
    await page.wait_for_url(site.url("/reports"))
    assert await page.inner_text("body") == "upstream saw GET /reports"

    # And off again from the account page: the next sign-in is the password alone.
    await page.goto(site.url("/_auth/account"))
    await methods.get_by_role("button", name="Remove").click()
    await page.wait_for_url(re.compile(r"done=totp_removed"))
    assert "No second step is turned on" in await methods.inner_text()
    assert site.double.user_info(site.pool_id, USER)["mfa"] == []


async def test_the_setup_in_japanese(new_context: Any, page: Page, site: Site) -> None:
    await page.goto(site.url("/_auth/account?lang=ja"))
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/login"))))
    await sign_in(page)
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/account"))))
    await page.goto(site.url("/_auth/account?lang=ja"))  # the forms keep ?lang=ja
    methods = page.locator("#methods")
    assert "2 段階認証" in await methods.inner_text()
    await methods.get_by_role("button", name="認証アプリを設定").click()
    await page.wait_for_url(site.url("/_auth/account?lang=ja#methods"))
    await assert_accessible_as_seen(new_context, page, "account-mfa-setup-ja")  # light, dark
    await page.locator("#methods-code").fill("000000")
    await page.locator("#methods-code").press("Enter")
    await methods.get_by_role("alert").wait_for()
    assert "コードが正しくありません" in await methods.get_by_role("alert").inner_text()
    await methods.get_by_role("button", name="設定をやめる").click()
    await page.wait_for_url(re.compile(r"done=totp_cancelled"))
    assert "認証アプリの設定をやめました。" in await page.locator("#account-notice").inner_text()
