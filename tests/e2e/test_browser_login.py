"""A real browser (Debian's Chromium, driven by Playwright) against the proxy, the strict Cognito
double (real SRP verification) and Redis.

Browsers send what HTTP clients do not (Origin, Sec-Fetch-*, referrer policy effects) and users
meet the pages with a keyboard, a phone, a language and sometimes no JavaScript, so each of those
is a test here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page

from tests.e2e.helpers import PASSWORD, USER, Site, shot, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _login_url(page: Page, site: Site) -> None:
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/login"))))


async def test_srp_sign_in_returns_to_the_url_first_asked_for(new_context: Any, site: Site) -> None:
    # The size of the README screenshot (docs/images/login.png is a copy of artifacts/login.png).
    context = await new_context(viewport={"width": 560, "height": 720})
    page = await context.new_page()
    await page.goto(site.url("/reports/2026?view=full"))
    await _login_url(page, site)
    assert await page.locator("#username").evaluate("e => e === document.activeElement")
    await shot(page, "login")

    await sign_in(page)
    await page.wait_for_url(site.url("/reports/2026?view=full"))
    assert await page.inner_text("body") == "upstream saw GET /reports/2026?view=full"
    seen = [r for r in site.upstream.seen if r["path"] == "/reports/2026?view=full"]
    assert seen[-1]["headers"]["X-Forwarded-User"] == USER
    await shot(page, "signed-in")


async def test_wrong_password_shows_an_alert_tied_to_both_fields(page: Page, site: Site) -> None:
    await page.goto(site.url("/_auth/login"))
    await sign_in(page, password="wrong-password")
    alert = page.get_by_role("alert")
    assert await alert.inner_text() == "Incorrect username or password."
    for field in ("#username", "#password"):
        assert await page.get_attribute(field, "aria-describedby") == "login-error"
        assert await page.get_attribute(field, "aria-invalid") == "true"
    # The username stays; the password does not, and the cursor waits there.
    assert await page.input_value("#username") == USER
    assert await page.input_value("#password") == ""
    assert await page.locator("#password").evaluate("e => e === document.activeElement")
    await shot(page, "login-wrong-password")

    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(site.url("/"))


async def test_sign_out_asks_first_then_ends_the_session(page: Page, site: Site) -> None:
    await page.goto(site.url("/_auth/login?rd=/home"))
    await sign_in(page)
    await page.wait_for_url(site.url("/home"))

    await page.goto(site.url("/_auth/logout"))
    assert "erin@example.com" in await page.inner_text("main")
    await shot(page, "logout")
    await page.click("button[type=submit]")
    await page.wait_for_url(site.url("/_auth/login?notice=signed_out"))
    assert await page.get_by_role("status").inner_text() == "You have been signed out."
    await page.goto(site.url("/home"))
    await _login_url(page, site)
    assert not await page.get_by_role("status").count()  # signed out, not "expired"


async def test_japanese_pages_follow_accept_language(new_context: Any, site: Site) -> None:
    context = await new_context(locale="ja-JP")  # Accept-Language: ja-JP
    page = await context.new_page()
    await page.goto(site.url("/docs"))
    await _login_url(page, site)
    assert await page.get_attribute("html", "lang") == "ja"
    assert await page.inner_text("h1") == "サインイン"
    assert await page.inner_text("label[for=username]") == "ユーザー名"
    assert await page.inner_text("label[for=password]") == "パスワード"
    await shot(page, "login-ja")

    await sign_in(page, password="wrong-password")
    alert = await page.get_by_role("alert").inner_text()
    assert alert == "ユーザー名またはパスワードが正しくありません。"
    await shot(page, "login-ja-wrong-password")
    await sign_in(page)
    await page.wait_for_url(site.url("/docs"))


async def test_visible_language_switch_keeps_the_return_path(page: Page, site: Site) -> None:
    await page.goto(site.url("/inbox?folder=2"))
    await _login_url(page, site)
    nav = page.get_by_role("navigation", name="Language")
    assert await nav.get_by_role("link", name="English").get_attribute("aria-current") == "true"

    await nav.get_by_role("link", name="日本語").click()
    await page.wait_for_url(re.compile(r"lang=ja"))
    assert await page.get_attribute("html", "lang") == "ja"
    assert await page.inner_text("h1") == "サインイン"
    switch = page.get_by_role("navigation", name="言語")
    assert await switch.get_by_role("link", name="日本語").get_attribute("aria-current") == "true"

    await sign_in(page, password="wrong-password")  # the choice survives the form post
    assert "正しくありません" in await page.get_by_role("alert").inner_text()
    await sign_in(page)
    await page.wait_for_url(site.url("/inbox?folder=2"))


async def test_expired_session_says_so_and_returns_to_the_page_asked_for(
    page: Page, site: Site
) -> None:
    await page.goto(site.url("/_auth/login?rd=/projects"))
    await sign_in(page)
    await page.wait_for_url(site.url("/projects"))
    assert await site.expire_sessions() >= 1

    await page.goto(site.url("/projects/7/board?filter=mine"))
    await _login_url(page, site)
    assert "notice=expired" in page.url
    notice = page.get_by_role("status")
    assert await notice.inner_text() == "Your session has expired. Please sign in again."
    await shot(page, "login-session-expired")

    await sign_in(page)
    await page.wait_for_url(site.url("/projects/7/board?filter=mine"))
    assert await page.inner_text("body") == "upstream saw GET /projects/7/board?filter=mine"


async def test_form_posted_after_expiry_is_reported_not_lost_silently(
    page: Page, site: Site
) -> None:
    await page.goto(site.url("/_auth/login?rd=/orders/new"))
    await sign_in(page)
    await page.wait_for_url(site.url("/orders/new"))
    await site.expire_sessions()

    await page.fill("#item", "forty-two")
    await page.click("text=Place order")
    await _login_url(page, site)
    notice = await page.get_by_role("status").inner_text()
    assert notice == (
        "Your session expired, so the form you submitted was not sent. "
        "Sign in, then submit it again."
    )
    await shot(page, "login-form-not-sent")
    assert not [r for r in site.upstream.seen if r["method"] == "POST"]

    await sign_in(page)
    await page.wait_for_url(site.url("/orders/new"))  # back at the form, to send it again


async def test_websocket_page_works_through_the_proxy_after_sign_in(page: Page, site: Site) -> None:
    await page.goto(site.url("/ws-page"))
    await _login_url(page, site)
    await sign_in(page)
    await page.wait_for_url(site.url("/ws-page"))
    out = page.locator("#out")
    await out.filter(has_text="echo:").wait_for(timeout=5000)
    # The echo names the user from the identity header on the upgrade request.
    assert await out.inner_text() == f"echo: ping ({USER})"
    await shot(page, "websocket")


async def test_keyboard_only_sign_in_in_a_sensible_tab_order(page: Page, site: Site) -> None:
    await page.goto(site.url("/_auth/login?rd=/kb"))

    async def focused() -> str:
        return str(
            await page.evaluate(
                "() => { const e = document.activeElement;"
                " return e.id || e.getAttribute('aria-label') || e.textContent.trim(); }"
            )
        )

    assert await focused() == "username"  # autofocus: type straight away
    await page.keyboard.type(USER)
    await page.keyboard.press("Tab")
    assert await focused() == "password"
    await page.keyboard.type(PASSWORD)
    order = []
    for _ in range(4):
        await page.keyboard.press("Tab")
        order.append(await focused())
        if order[-1] == "Sign in":
            outline = "() => getComputedStyle(document.activeElement).outlineStyle"
            assert await page.evaluate(outline) == "solid"  # keyboard focus is visible
    # The reveal toggle, "keep me signed in", the button, and only then the way out to
    # "forgot password".
    assert order == ["Show password", "remember", "Sign in", "Forgot your password?"]
    for _ in range(3):
        await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Enter")  # on the toggle: shows the password...
    assert await page.get_attribute("#password", "type") == "text"
    assert await focused() == "password"  # ...and puts the cursor back in it
    await shot(page, "login-keyboard")
    await page.keyboard.press("Enter")  # Enter in a field submits the form
    await page.wait_for_url(site.url("/kb"))


async def test_login_fits_a_375px_phone_without_horizontal_scrolling(
    new_context: Any, site: Site
) -> None:
    context = await new_context(
        viewport={"width": 375, "height": 667}, device_scale_factor=2, is_mobile=True
    )
    page = await context.new_page()
    overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
    await page.goto(site.url("/_auth/login?notice=expired"))
    await sign_in(page, password="wrong-password")  # with the alert: the longest version
    assert await page.evaluate(overflow) <= 0
    await shot(page, "login-mobile")
    await page.goto(site.url("/_auth/login?lang=ja&notice=expired"))
    assert await page.evaluate(overflow) <= 0
    await sign_in(page)
    await page.wait_for_url(site.url("/"))
    await page.goto(site.url("/_auth/logout"))
    assert await page.evaluate(overflow) <= 0
    await shot(page, "logout-mobile")


async def test_sign_in_and_out_work_without_javascript(new_context: Any, site: Site) -> None:
    context = await new_context(java_script_enabled=False)
    page = await context.new_page()
    await page.goto(site.url("/nojs?x=1"))
    await _login_url(page, site)
    assert not await page.locator("button.reveal").count()  # enhancement absent, form intact
    await sign_in(page, password="wrong-password")
    assert await page.get_by_role("alert").inner_text() == "Incorrect username or password."
    await sign_in(page)
    await page.wait_for_url(site.url("/nojs?x=1"))
    await shot(page, "signed-in-no-js")
    await page.goto(site.url("/_auth/logout"))
    await page.click("button[type=submit]")
    await page.wait_for_url(site.url("/_auth/login?notice=signed_out"))
