"""Every page the proxy can show, looked at as a person would (issue 19): at 375 px and
1280 px, in English and Japanese, light and dark, with JavaScript on and off. Screenshots go to
``artifacts/gallery/`` (git-ignored) as ``<page>-<lang>-<js|nojs>-<width>-<scheme>.jpeg``.

Each page is first reached for real through the proxy (a cookie-keeping HTTP client walks the
flow: wrong passwords, each Cognito challenge against the strict double, upstream failures),
and its answer (status, CSP and HTML) is kept. Chromium then loads that answer at the proxy's
own origin, so its stylesheet, scripts and CSP are the real ones, once per language and
JavaScript setting, and looks at it at both widths in both colour schemes. On every view:
no sideways scrolling, nothing sticking out of the card, no visible element that is empty, no
``hidden`` element shown, one visible ``h1``, no positive tabindex, images loaded.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, Route

from tests.e2e.helpers import ARTIFACTS
from tests.e2e.walk import FLOWS, LANGS, Client, Shown, Sites, account_states, password_of
from tests.support.stack import CSRF_FIELD

pytestmark = pytest.mark.asyncio(loop_scope="session")

SHOTS = ARTIFACTS / "gallery"
WIDTHS = (375, 1280)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shown(sites: Sites) -> list[Shown]:
    found = await asyncio.gather(*(flow(sites, lang) for flow in FLOWS for lang in LANGS))
    return [page for pages in found for page in pages]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def account_shown(sites: Sites) -> list[Shown]:
    return await account_states(sites)


# -- looking at each page ------------------------------------------------------------------

# What is checked on every view (a function returning a list of problems).
LOOK = "\n".join(
    line
    for line in (Path(__file__).parent / "gallery_look.js").read_text().splitlines()
    if not line.startswith("//")
).strip()


async def _look(page: Page, label: str, problems: list[str]) -> None:
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 800})
        for scheme in ("light", "dark"):
            await page.emulate_media(color_scheme=scheme)
            found = await page.evaluate(LOOK)
            problems += [f"{label}-{width}-{scheme}: {p}" for p in found]
            shot = SHOTS / f"{label}-{width}-{scheme}.jpeg"
            for _ in range(3):
                image = await page.screenshot(type="jpeg", quality=75, full_page=True)
                # Under load, a full-page capture right after a resize is now and then only
                # the background (a card is never under 12 kB): take it again.
                if len(image) > 12_000:
                    break
            shot.write_bytes(image)


async def _view(context: BrowserContext, base: str, queue: list[Shown], js: bool) -> list[str]:
    """Take pages off ``queue`` and look at each; the problems found."""
    problems: list[str] = []
    page = await context.new_page()
    while queue:
        item = queue.pop()
        await page.goto(f"{base}/_gallery/{item.name}/{item.lang}")
        assert await page.get_attribute("html", "lang") == item.lang, item.name
        await _look(page, f"{item.name}-{item.lang}-{'js' if js else 'nojs'}", problems)
    await page.close()
    return problems


# Hundreds of views: on a loaded 2-core machine more than the suite's 120 s.
@pytest.mark.timeout(300)
async def test_every_page_at_both_widths_languages_schemes_with_and_without_javascript(
    chromium: Browser, sites: Sites, shown: list[Shown]
) -> None:
    names = {s.name for s in shown}
    assert len(names) >= 29, sorted(names)
    await _look_at_all(chromium, sites, shown)


# Hundreds of views: on a loaded 2-core machine more than the suite's 120 s.
@pytest.mark.timeout(300)
async def test_every_account_page_state_likewise(
    chromium: Browser, sites: Sites, account_shown: list[Shown]
) -> None:
    """The account page (issue 16): everything set up (a pending email, an authenticator app,
    a remembered device, three sessions, recent activity), nothing yet, each section's error,
    Cognito not answering, the authenticator app's enrolment, step-up, a passkey user."""
    names = {s.name for s in account_shown}
    assert {
        "account-everything",
        "account-new",
        "account-profile-wrong-code",
        "account-password-wrong",
        "account-unavailable",
        "account-passwordless",
    } <= names, sorted(names)
    await _look_at_all(chromium, sites, account_shown)


async def _look_at_all(chromium: Browser, sites: Sites, shown: list[Shown]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    answers = {f"/_gallery/{s.name}/{s.lang}": s for s in shown}

    async def answer(route: Route) -> None:
        # The proxy's own answer (status, CSP, HTML) at the proxy's origin: its stylesheet and
        # scripts load from the proxy as they did for the person who saw it.
        item = answers[urlsplit(route.request.url).path]
        await route.fulfill(status=item.status, headers=item.headers, body=item.html)

    problems: list[str] = []
    for js in (True, False):
        context = await chromium.new_context(java_script_enabled=js)
        try:
            await context.route(f"{sites.main}/_gallery/**", answer)
            queue = list(shown)
            found = await asyncio.gather(*(_view(context, sites.main, queue, js) for _ in range(2)))
            problems += [p for f in found for p in f]
        finally:
            await context.close()
    assert problems == [], "\n".join(sorted(problems))


# -- one test per thing the gallery found wrong ------------------------------------------------


async def _get(base: str, path: str, lang: str = "en", **headers: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        http.get(
            base + path,
            headers={"Accept": "text/html", "Accept-Language": lang, **headers},
            allow_redirects=False,
        ) as resp,
    ):
        return resp.status, await resp.text()


async def test_an_unknown_auth_page_is_the_error_page_for_a_browser(sites: Sites) -> None:
    # It was raw JSON ({"error": "not found"}) in the browser.
    status, html = await _get(sites.main, "/_auth/nothing-here", "ja")
    assert status == 404 and 'lang="ja"' in html and "ページが見つかりません" in html
    assert "Try again" not in html and "もう一度試す" not in html  # it would not help
    status, body = await _get(sites.main, "/_auth/nothing-here", Accept="application/json")
    assert status == 404 and body == '{"error": "not found"}'


@pytest.mark.parametrize(
    ("lang", "heading"), [("en", "Bad gateway"), ("ja", "不正なゲートウェイ応答")]
)
async def test_upstream_error_pages_speak_the_browsers_language_and_offer_a_retry(
    sites: Sites, lang: str, heading: str
) -> None:
    # They were always English, and said "try again" without a way to.
    c = Client(sites.down, lang)
    try:
        await c.walk("/_auth/login")
        await c.walk(
            "/_auth/login", {"username": "alice", "password": password_of("main", "alice")}
        )
        assert await c.walk("/reports?week=49") == 502
        assert f'lang="{lang}"' in c.last and heading in c.last
        assert 'href="/reports?week=49"' in c.last  # "Try again" asks for the same page
        # The message no longer claims the app answered: here it could not be reached.
        assert "could not be reached" in c.last or "接続できない" in c.last
    finally:
        await c.close()


async def test_store_outage_and_expired_form_pages_offer_a_retry(sites: Sites) -> None:
    c = Client(sites.no_store, "en")
    try:
        await c.walk("/_auth/login")
        assert await c.walk("/_auth/login", {"username": "alice", "password": "x"}) == 503
        assert 'href="/_auth/login?lang=en"' in c.last and "Try again" in c.last
    finally:
        await c.close()
    c = Client(sites.main, "ja")
    try:
        await c.walk("/_auth/login")
        c.last = CSRF_FIELD.sub('name="csrf" value="tampered"', c.last)
        assert await c.walk("/_auth/login", {"username": "alice", "password": "x"}) == 403
        # The form's own page, fresh, in the same language.
        assert 'href="/_auth/login?lang=ja"' in c.last and "もう一度試す" in c.last
        # Headed by what happened, not "Forbidden" (the user may do this; the form was old).
        assert "<h1>このページの有効期限が切れました</h1>" in c.last
        assert "アクセスが拒否されました" not in c.last
    finally:
        await c.close()


async def test_username_only_first_page_does_not_ask_for_a_password(sites: Sites) -> None:
    # USER_AUTH: the lede said "Enter your username and password" above a username field only.
    status, html = await _get(sites.passwordless, "/_auth/login?lang=en")
    assert status == 200 and 'name="password"' not in html
    assert "Enter your username to continue." in html and "password to continue" not in html
    assert ">Continue</button>" in html
    status, html = await _get(sites.main, "/_auth/login?lang=en")
    assert "Enter your username and password to continue." in html


# -- the account page: one check per thing its gallery found wrong ---------------------------


async def _open(
    chromium: Browser, sites: Sites, item: Shown, width: int = 375, **options: Any
) -> Page:
    """``item`` as served, at the proxy's origin, in a fresh page ``width`` px wide."""
    context = await chromium.new_context(viewport={"width": width, "height": 800}, **options)
    page = await context.new_page()

    async def answer(route: Route) -> None:
        await route.fulfill(status=item.status, headers=item.headers, body=item.html)

    await page.route(f"{sites.main}/_gallery/**", answer)
    await page.goto(f"{sites.main}/_gallery/{item.name}/{item.lang}")
    return page


def _state(shown: list[Shown], name: str, lang: str = "en") -> Shown:
    return next(s for s in shown if s.name == name and s.lang == lang)


async def test_the_account_page_opens_at_its_top_with_no_field_taking_the_cursor(
    chromium: Browser, sites: Sites, account_shown: list[Shown]
) -> None:
    # The password section's first field had autofocus: the page opened scrolled down to it.
    page = await _open(chromium, sites, _state(account_shown, "account-everything"))
    try:
        assert await page.evaluate("document.activeElement === document.body && !scrollY")
    finally:
        await page.context.close()
    # A section's error still takes the cursor, and only that one (there were two autofocus).
    page = await _open(chromium, sites, _state(account_shown, "account-profile-wrong-code", "ja"))
    try:
        assert await page.evaluate("document.activeElement.id") == "profile-email-code"
    finally:
        await page.context.close()


@pytest.mark.parametrize("lang", LANGS)
async def test_remembered_devices_are_named_and_facts_sit_beside_their_labels(
    chromium: Browser, sites: Sites, account_shown: list[Shown], lang: str
) -> None:
    page = await _open(chromium, sites, _state(account_shown, "account-everything", lang))
    try:
        # Three devices signed in, one remembered: the two the user said "no" to were listed
        # under "Devices that can sign in without the second step", each titled by its raw
        # 110-character User-Agent.
        devices = page.locator("#devices .account-item")
        assert await devices.count() == 1
        title = await devices.locator(".account-item-title").inner_text()
        assert title.startswith("Chrome · Windows") and "Mozilla" not in title
        # At 375 px a date dropped below its label while the IP sat beside its own.
        rows = await page.evaluate(
            """[...document.querySelectorAll('.account-facts dd')].map(dd =>
                 dd.getBoundingClientRect().top - dd.previousElementSibling
                   .getBoundingClientRect().top)"""
        )
        assert rows and all(abs(r) < 1 for r in rows), rows
    finally:
        await page.context.close()


async def test_the_sign_out_page_links_to_the_account_page(
    chromium: Browser, sites: Sites, shown: list[Shown]
) -> None:
    # Issue 16.8: a signed-in user reaches the account page from our own pages.
    page = await _open(chromium, sites, _state(shown, "logout", "ja"))
    try:
        assert await page.locator('a[href^="/_auth/account"]').is_visible()
    finally:
        await page.context.close()


async def test_adding_a_passkey_without_javascript_offers_no_button_that_does_nothing(
    chromium: Browser, sites: Sites, account_shown: list[Shown]
) -> None:
    # With JavaScript off the page said "Adding a passkey needs JavaScript" under "Follow your
    # browser's prompt" and above an enabled "Create passkey" button that did nothing.
    item = _state(account_shown, "account-passkey-add")
    page = await _open(chromium, sites, item, java_script_enabled=False)
    try:
        assert not await page.locator("#passkey-create").is_visible()
        assert not await page.locator("#passkey-register-lede").is_visible()
        assert await page.get_by_role("link", name="Cancel").is_visible()
    finally:
        await page.context.close()
    page = await _open(chromium, sites, item)
    try:
        assert await page.locator("#passkey-create").is_visible()
    finally:
        await page.context.close()


@pytest.mark.parametrize(
    ("lang", "said"), [("en", "Incorrect password."), ("ja", "パスワードが正しくありません。")]
)
async def test_confirm_its_you_blames_only_the_password(
    chromium: Browser, sites: Sites, account_shown: list[Shown], lang: str, said: str
) -> None:
    # It said "Incorrect username or password." on a page where no username is typed.
    page = await _open(chromium, sites, _state(account_shown, "reauth-wrong-password", lang))
    try:
        assert (await page.get_by_role("alert").inner_text()).strip() == said
    finally:
        await page.context.close()
