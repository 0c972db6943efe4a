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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, Route
from pydantic import SecretStr

from proxy.demo import DEMO_SITES, DemoCognito, double_settings, start_demo_cognito, upstream_app
from proxy.devtools.webauthn import SoftwareAuthenticator
from proxy.settings import Settings
from tests.e2e.helpers import ARTIFACTS
from tests.support.stack import CSRF_FIELD, running_proxy
from tests.support.totp import totp

pytestmark = pytest.mark.asyncio(loop_scope="session")

SHOTS = ARTIFACTS / "gallery"
WIDTHS = (375, 1280)
LANGS = ("en", "ja")
RP_ID = "gate.example"
TINA = "Tina-demo-2026!"  # tina-en, tina-ja: an authenticator app each


@dataclass
class Shown:
    """One answer of the proxy, as a browser received it."""

    name: str
    lang: str
    status: int
    headers: dict[str, str]
    html: str


class Client:
    """A cookie-keeping HTTP client on one proxy; every path gets the page language."""

    def __init__(self, base: str, lang: str) -> None:
        self.base, self.lang = base, lang
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            # As a browser set to that language asks (proxied paths have no ?lang of ours).
            headers={"Accept": "text/html,application/xhtml+xml", "Accept-Language": lang},
        )
        self.last = ""

    def _url(self, path: str) -> str:
        # Our pages take ?lang; the app's paths are the app's (Accept-Language speaks there).
        if not path.startswith("/_auth/") or "lang=" in path:
            return self.base + path
        return f"{self.base}{path}{'&' if '?' in path else '?'}lang={self.lang}"

    async def _keep(self, resp: aiohttp.ClientResponse) -> tuple[int, str, str | None]:
        self.last = await resp.text()
        self.headers = {
            k: v
            for k, v in resp.headers.items()
            if k.lower() in ("content-type", "content-security-policy")
        }
        return resp.status, self.last, resp.headers.get("Location")

    async def get(self, path: str) -> tuple[int, str, str | None]:
        async with self.http.get(self._url(path), allow_redirects=False) as resp:
            return await self._keep(resp)

    async def post(self, path: str, fields: dict[str, str]) -> tuple[int, str, str | None]:
        match = CSRF_FIELD.search(self.last)
        data = {"csrf": match.group(1) if match else "", **fields}
        async with self.http.post(self._url(path), data=data, allow_redirects=False) as resp:
            return await self._keep(resp)

    async def walk(self, path: str, fields: dict[str, str] | None = None) -> int:
        """GET (or POST ``fields`` to) ``path`` and follow our redirects; the status at the end."""
        status, _, location = await (self.post(path, fields) if fields else self.get(path))
        for _ in range(5):
            if status not in (302, 303) or not location or not location.startswith("/"):
                break
            status, _, location = await self.get(location)
        return status

    def shown(self, name: str, status: int) -> Shown:
        return Shown(name, self.lang, status, dict(self.headers), self.last)

    async def close(self) -> None:
        await self.http.close()


@dataclass
class Sites:
    main: str
    enrol: str
    custom: str
    passwordless: str
    down: str  # its upstream refuses connections: 502
    slow: str  # its upstream answers /api/slow too late: 504
    no_store: str  # its session store is unreachable: 503
    cognito: DemoCognito
    totp: dict[str, str]  # lang -> tina's TOTP secret


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def _variant(settings: Settings, **sections: Any) -> Settings:
    return settings.model_copy(update=sections)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sites() -> AsyncIterator[Sites]:
    cognito = start_demo_cognito()
    double = cognito.double
    # USER_AUTH: the factor is chosen after the username (code, passkey or password).
    pool = double.create_pool()
    client_id, secret = double.create_client(pool, secret=True, flows={"USER_AUTH"})
    double.add_user(
        pool,
        "pia",
        "Pia-demo-2026!",
        attributes={"email": "pia@example.com", "phone_number": "+815011112222"},
    )
    main_pool = cognito.pools["main"].pool_id
    for lang in LANGS:
        double.add_user(
            main_pool,
            f"tina-{lang}",
            TINA,
            attributes={"email": f"tina-{lang}@example.com", "name": "Tina Example"},
            mfa=["SOFTWARE_TOKEN_MFA"],
        )
    totp_secrets = {lang: double.totp_secret(main_pool, f"tina-{lang}") for lang in LANGS}
    runner, upstream = await _serve(upstream_app())
    try:
        by_key = {s.key: s for s in DEMO_SITES}
        main = double_settings(cognito, by_key["main"], upstream, "127.0.0.1:8080")
        passwordless = _variant(
            main,
            cognito=main.cognito.model_copy(
                update={
                    "user_pool_id": pool,
                    "client_id": client_id,
                    "client_secret": SecretStr(secret) if secret else None,
                    "jwks_url": double.jwks_url(pool),
                    "issuer": double.issuer(pool),
                    "auth_flow": "USER_AUTH",
                }
            ),
        )
        down = _variant(
            main, upstream=main.upstream.model_copy(update={"url": "http://127.0.0.1:9"})
        )
        slow = _variant(main, upstream=main.upstream.model_copy(update={"read_timeout": 0.3}))
        no_store = _variant(
            main,
            session=main.session.model_copy(
                update={"store_url": "redis://127.0.0.1:9/0", "store_timeout": 0.3}
            ),
        )
        async with (
            running_proxy(main) as main_base,
            running_proxy(
                double_settings(cognito, by_key["enrol"], upstream, "127.0.0.1:8080")
            ) as enrol,
            running_proxy(
                double_settings(cognito, by_key["custom"], upstream, "127.0.0.1:8080")
            ) as custom,
            running_proxy(passwordless) as pwl,
            running_proxy(down) as down_base,
            running_proxy(slow) as slow_base,
            running_proxy(no_store) as no_store_base,
        ):
            double.set_user_auth(
                pool,
                ("PASSWORD", "EMAIL_OTP", "SMS_OTP", "WEB_AUTHN"),
                relying_party_id=RP_ID,
                allowed_origins=(pwl,),
            )
            key = SoftwareAuthenticator(RP_ID, origin=pwl)
            double.register_passkey(pool, "pia", key.credential_id, key.public_key, RP_ID)
            yield Sites(
                main_base,
                enrol,
                custom,
                pwl,
                down_base,
                slow_base,
                no_store_base,
                cognito,
                totp_secrets,
            )
    finally:
        await runner.cleanup()
        cognito.stop()


# -- reaching each page --------------------------------------------------------------------

Flow = Callable[[Sites, str], Awaitable[list[Shown]]]


def _user(site: str, name: str) -> str:
    if name.startswith("tina-"):
        return TINA
    return next(
        u.password for s in DEMO_SITES if s.key == site for u in s.users if u.username == name
    )


async def _signed_in_pages(sites: Sites, lang: str) -> list[Shown]:
    c = Client(sites.main, lang)
    try:
        out = []
        assert await c.walk("/_auth/login") == 200
        out.append(c.shown("login", 200))
        assert (
            await c.walk("/_auth/login", {"username": "alice", "password": "wrong-Pass-1"}) == 401
        )
        out.append(c.shown("login-wrong-password", 401))
        # A tampered CSRF token: 403.
        await c.walk("/_auth/login")
        c.last = CSRF_FIELD.sub('name="csrf" value="tampered"', c.last)
        assert await c.walk("/_auth/login", {"username": "alice", "password": "x"}) == 403
        out.append(c.shown("error-403-csrf", 403))
        for notice in ("signed_out", "expired", "expired_post", "post_lost", "password_changed"):
            assert await c.walk(f"/_auth/login?notice={notice}") == 200
            out.append(c.shown(f"login-notice-{notice}", 200))
        await c.walk("/_auth/login")
        assert (
            await c.walk("/_auth/login", {"username": "alice", "password": _user("main", "alice")})
            == 200
        )
        assert await c.walk("/_auth/logout") == 200
        out.append(c.shown("logout", 200))
        assert await c.walk("/_auth/nothing-here") == 404
        out.append(c.shown("error-404", 404))
        return out
    finally:
        await c.close()


async def _challenge_pages(sites: Sites, lang: str) -> list[Shown]:
    out = []
    cases = [
        ("challenge-totp", f"tina-{lang}"),
        ("challenge-sms", "sara"),
        ("challenge-choose-mfa", "sel"),
        ("challenge-new-password", "nina"),
    ]
    for name, user in cases:
        c = Client(sites.main, lang)
        try:
            await c.walk("/_auth/login")
            status = await c.walk(
                "/_auth/login", {"username": user, "password": _user("main", user)}
            )
            assert status == 200, (name, c.last[:300])
            out.append(c.shown(name, status))
            if name == "challenge-totp":
                assert await c.walk("/_auth/challenge", {"code": "000000"}) == 400
                out.append(c.shown("challenge-totp-wrong-code", 400))
                # en and ja sign in at once, and a TOTP code counts once: one user each.
                assert await c.walk("/_auth/challenge", {"code": totp(sites.totp[lang])}) == 200
                assert "Remember this device?" in c.last or lang == "ja", c.last[:300]
                out.append(c.shown("remember-device", 200))
            if name == "challenge-choose-mfa":
                assert await c.walk("/_auth/challenge", {"choice": "EMAIL_OTP"}) == 200
                out.append(c.shown("challenge-email-mfa", 200))
        finally:
            await c.close()
    c = Client(sites.main, lang)
    try:
        await c.walk("/_auth/login")
        assert (
            await c.walk("/_auth/login", {"username": "uma", "password": _user("main", "uma")})
            == 200
        )
        out.append(c.shown("confirm-signup", 200))
        assert await c.walk("/_auth/forgot") == 200
        out.append(c.shown("forgot", 200))
        assert await c.walk("/_auth/forgot", {"username": "bob"}) == 200
        out.append(c.shown("forgot-confirm", 200))
    finally:
        await c.close()
    for name, base, site, user in (
        ("challenge-mfa-setup", sites.enrol, "enrol", "enzo"),
        ("challenge-custom", sites.custom, "custom", "cara"),
    ):
        c = Client(base, lang)
        try:
            await c.walk("/_auth/login")
            assert (
                await c.walk("/_auth/login", {"username": user, "password": _user(site, user)})
                == 200
            )
            out.append(c.shown(name, 200))
        finally:
            await c.close()
    return out


async def _passwordless_pages(sites: Sites, lang: str) -> list[Shown]:
    out = []
    for choice, name in (("WEB_AUTHN", "challenge-passkey"), ("EMAIL_OTP", "challenge-email-code")):
        c = Client(sites.passwordless, lang)
        try:
            assert await c.walk("/_auth/login") == 200
            if choice == "WEB_AUTHN":
                out.append(c.shown("login-username-only", 200))
            assert await c.walk("/_auth/login", {"username": "pia"}) == 200
            if choice == "WEB_AUTHN":
                out.append(c.shown("challenge-select", 200))
            assert await c.walk("/_auth/challenge", {"choice": choice}) == 200
            out.append(c.shown(name, 200))
        finally:
            await c.close()
    return out


async def _failure_pages(sites: Sites, lang: str) -> list[Shown]:
    out = []
    for name, base, path, status in (
        ("error-502", sites.down, "/", 502),
        ("error-504", sites.slow, "/api/slow?seconds=2", 504),
    ):
        c = Client(base, lang)
        try:
            await c.walk("/_auth/login")
            await c.walk("/_auth/login", {"username": "alice", "password": _user("main", "alice")})
            assert await c.walk(path) == status, (name, c.last[:200])
            out.append(c.shown(name, status))
        finally:
            await c.close()
    c = Client(sites.no_store, lang)
    try:
        # The login form needs no store; signing in does.
        assert await c.walk("/_auth/login") == 200
        assert await c.walk("/_auth/login", {"username": "alice", "password": "x"}) == 503
        out.append(c.shown("error-503", 503))
    finally:
        await c.close()
    return out


FLOWS: tuple[Flow, ...] = (_signed_in_pages, _challenge_pages, _passwordless_pages, _failure_pages)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shown(sites: Sites) -> list[Shown]:
    found = await asyncio.gather(*(flow(sites, lang) for flow in FLOWS for lang in LANGS))
    return [page for pages in found for page in pages]


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


async def test_every_page_at_both_widths_languages_schemes_with_and_without_javascript(
    chromium: Browser, sites: Sites, shown: list[Shown]
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    names = {s.name for s in shown}
    assert len(names) >= 29, sorted(names)
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
        await c.walk("/_auth/login", {"username": "alice", "password": _user("main", "alice")})
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
