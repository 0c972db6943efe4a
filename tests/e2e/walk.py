"""Reaching every page the proxy can show for real, as a person would, for the gallery
(tests/e2e/test_gallery.py) and the accessibility suite: a cookie-keeping HTTP client walks
each flow through the proxy against the strict double (wrong passwords, each Cognito
challenge, upstream failures, the account page's states) and keeps each answer (status, CSP,
HTML), so Chromium can look at exactly what was served.

The account page (issue 16) is walked from its forms: a section that has not landed simply
does not appear, and a section's own views (the TOTP enrolment, adding a passkey, step-up)
are walked when the page shown offers them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from proxy.demo import DEMO_SITES, DemoCognito, double_settings, start_demo_cognito, upstream_app
from proxy.devtools.webauthn import SoftwareAuthenticator
from proxy.settings import AccountSettings, Settings
from tests.support.stack import CSRF_FIELD, running_proxy
from tests.support.totp import totp

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

    def __init__(self, base: str, lang: str, user_agent: str | None = None) -> None:
        self.base, self.lang = base, lang
        # As a browser set to that language asks (proxied paths have no ?lang of ours).
        headers = {"Accept": "text/html,application/xhtml+xml", "Accept-Language": lang}
        if user_agent:
            headers["User-Agent"] = user_agent
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers
        )
        self.last = ""
        self.headers: dict[str, str] = {}

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
        status, _, location = await (
            self.post(path, fields) if fields is not None else self.get(path)
        )
        for _ in range(5):
            if status not in (302, 303) or not location or not location.startswith("/"):
                break
            status, _, location = await self.get(location)
        return status

    def offers(self, action: str) -> bool:
        """Whether the page shown has a form posting to ``<auth prefix>/<action>``."""
        pattern = rf'action="/_auth/{re.escape(action)}(?:\?[^"]*)?"'
        return re.search(pattern, self.last) is not None

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
    totp: dict[str, str]  # lang -> tina's TOTP secret; max-<lang> -> max's
    account: str  # the account page with every section (Admin API sign-in: recent activity)
    account_pool: str
    passwordless_pool: str


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def _variant(settings: Settings, **sections: Any) -> Settings:
    return settings.model_copy(update=sections)


# -- the account page's pool ---------------------------------------------------------------

ACCOUNT_PASSWORD = "Account-demo-2026!"
# What the page must survive at 375 px: a long address and a long name.
LONG_EMAIL = "maximiliane.featherstonehaugh-yamamoto.{lang}@accounts.long-subsidiary.example.com"
LONG_NAME = "Maximiliane Featherstonehaugh-Yamamoto"
# The browsers of max's sessions, oldest first (the sessions list names them from these).
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36",
)
# Every read of Cognito the account page makes: all failing is "Cognito unavailable".
ACCOUNT_READS = (
    "GetUser",
    "ListDevices",
    "ListWebAuthnCredentials",
    "GetUserAuthFactors",
    "AdminListUserAuthEvents",
)


def _account_pool(cognito: DemoCognito, totp_secrets: dict[str, str]) -> tuple[str, str, str]:
    """A pool with every account feature (the email kept until the new one is verified,
    remembered devices, threat protection's history) and its users per language: ``max-<lang>``
    with everything (an authenticator app, a phone, a long address and name), ``nell-<lang>``
    with nothing yet. Returns (pool, client id, client secret)."""
    double = cognito.double
    pool = double.create_pool()
    client_id, secret = double.create_client(pool, secret=True)
    double.set_keep_original_attributes(pool, ["email"])
    double.set_device_tracking(pool, remembered="user_opt_in")
    double.set_threat_protection(pool, mode="AUDIT")
    if isinstance(getattr(double, "ip_locations", None), dict):
        double.ip_locations["127.0.0.1"] = ("Osaka", "Japan")
    for lang in LANGS:
        double.add_user(
            pool,
            f"max-{lang}",
            ACCOUNT_PASSWORD,
            attributes={
                "email": LONG_EMAIL.format(lang=lang),
                "name": LONG_NAME,
                "phone_number": "+819012345678",
            },
            mfa=["SOFTWARE_TOKEN_MFA"],
        )
        totp_secrets[f"max-{lang}"] = double.totp_secret(pool, f"max-{lang}")
        # Step-up's second factor (a code counts once: max's three are spent).
        double.add_user(
            pool,
            f"otto-{lang}",
            ACCOUNT_PASSWORD,
            attributes={"email": f"otto-{lang}@example.com"},
            mfa=["SOFTWARE_TOKEN_MFA"],
        )
        totp_secrets[f"otto-{lang}"] = double.totp_secret(pool, f"otto-{lang}")
        double.add_user(
            pool, f"nell-{lang}", ACCOUNT_PASSWORD, attributes={"email": f"nell-{lang}@example.com"}
        )
    assert secret
    return pool, client_id, secret


def _account_settings(main: Settings, pool: tuple[str, str, str], double: Any) -> Settings:
    """The account page in front of ``pool``, signing in with the Admin API (recent activity
    needs it), every profile attribute a person keeps up to date there."""
    pool_id, client_id, secret = pool
    account: dict[str, Any] = {"profile_attributes": ["name", "email", "phone_number"]}
    if "mfa_factors" in AccountSettings.model_fields:  # the sign-in methods section
        account["mfa_factors"] = ["SOFTWARE_TOKEN_MFA", "SMS_MFA", "EMAIL_OTP"]
    return main.model_copy(
        update={
            "account": main.account.model_copy(update=account),
            "cognito": main.cognito.model_copy(
                update={
                    "user_pool_id": pool_id,
                    "client_id": client_id,
                    "client_secret": SecretStr(secret),
                    "jwks_url": double.jwks_url(pool_id),
                    "issuer": double.issuer(pool_id),
                    "auth_flow": "ADMIN_USER_PASSWORD_AUTH",
                }
            ),
        }
    )


@asynccontextmanager
async def running_sites() -> AsyncIterator[Sites]:
    """The proxies every walk needs (the ``sites`` fixture of tests/e2e/conftest.py)."""
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
    for lang in LANGS:
        # A passkey each: the account page of a USER_AUTH pool lists it (and adds more).
        double.add_user(
            pool, f"pam-{lang}", "Pam-demo-2026!", attributes={"email": f"pam-{lang}@example.com"}
        )
    account_pool = _account_pool(cognito, totp_secrets)
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
            running_proxy(_account_settings(main, account_pool, double)) as account_base,
        ):
            double.set_user_auth(
                pool,
                ("PASSWORD", "EMAIL_OTP", "SMS_OTP", "WEB_AUTHN"),
                relying_party_id=RP_ID,
                allowed_origins=(pwl,),
            )
            key = SoftwareAuthenticator(RP_ID, origin=pwl)
            double.register_passkey(pool, "pia", key.credential_id, key.public_key, RP_ID)
            for lang in LANGS:
                key = SoftwareAuthenticator(RP_ID, origin=pwl)
                double.register_passkey(
                    pool, f"pam-{lang}", key.credential_id, key.public_key, RP_ID
                )
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
                account_base,
                account_pool[0],
                pool,
            )
    finally:
        await runner.cleanup()
        cognito.stop()


# -- reaching each page --------------------------------------------------------------------

Flow = Callable[[Sites, str], Awaitable[list[Shown]]]


def password_of(site: str, name: str) -> str:
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
            await c.walk(
                "/_auth/login", {"username": "alice", "password": password_of("main", "alice")}
            )
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
                "/_auth/login", {"username": user, "password": password_of("main", user)}
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
            await c.walk(
                "/_auth/login", {"username": "uma", "password": password_of("main", "uma")}
            )
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
                await c.walk(
                    "/_auth/login", {"username": user, "password": password_of(site, user)}
                )
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
            await c.walk(
                "/_auth/login", {"username": "alice", "password": password_of("main", "alice")}
            )
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


# -- the account page (issue 16) -------------------------------------------------------------


async def _signed_in(base: str, lang: str, username: str, password: str, **kw: Any) -> Client:
    c = Client(base, lang, **kw)
    await c.walk("/_auth/login")
    status = await c.walk("/_auth/login", {"username": username, "password": password})
    assert status == 200, (username, c.last[:300])
    return c


async def account_everything(sites: Sites, lang: str) -> list[Shown]:
    """max: an authenticator app, a remembered device, three sessions in three browsers, a new
    email waiting for its code, recent activity (a wrong password among the sign-ins)."""
    out: list[Shown] = []
    user = f"max-{lang}"
    clients: list[Client] = []
    try:
        wrong = Client(sites.account, lang, USER_AGENTS[0])
        clients.append(wrong)
        await wrong.walk("/_auth/login")
        await wrong.walk("/_auth/login", {"username": user, "password": "Not-his-password-1"})
        for n, agent in enumerate(USER_AGENTS):
            c = await _signed_in(sites.account, lang, user, ACCOUNT_PASSWORD, user_agent=agent)
            clients.append(c)
            # A code counts once: each sign-in answers a later time step (-30 s, now, +30 s).
            code = totp(sites.totp[user], time.time() + 30 * (n - 1))
            assert await c.walk("/_auth/challenge", {"code": code}) == 200, c.last[:300]
            assert c.offers("device"), c.last[:300]
            last = n == len(USER_AGENTS) - 1
            status = await c.walk(
                "/_auth/device", {"remember": "yes" if last else "no", "rd": "/_auth/account"}
            )
            assert status == 200, c.last[:300]
        here = clients[-1]
        assert 'id="sessions"' in here.last, here.last[:300]
        if not here.offers("account/profile/contact"):
            out.append(here.shown("account-everything", 200))
        else:
            new = f"max.yamamoto.{lang}@new-employer.example.org"
            fields = {"attribute": "email", "attr:email": new}
            assert await here.walk("/_auth/account/profile/contact", fields) == 200, here.last[:300]
            assert new in here.last
            out.append(here.shown("account-everything", 200))
            status = await here.walk(
                "/_auth/account/profile/verify", {"attribute": "email", "code": "000000"}
            )
            assert status == 400, (status, here.last[:300])
            out.append(here.shown("account-profile-wrong-code", status))
        return out
    finally:
        for c in clients:
            await c.close()


async def _account_new(sites: Sites, lang: str) -> list[Shown]:
    """nell: nothing set up yet; then an authenticator app's enrolment (its QR code, a wrong
    code) and the step-up page, where this tree has them."""
    out: list[Shown] = []
    c = await _signed_in(sites.account, lang, f"nell-{lang}", ACCOUNT_PASSWORD)
    try:
        assert await c.walk("/_auth/account") == 200, c.last[:300]
        out.append(c.shown("account-new", 200))
        if c.offers("account/password"):
            fields = {
                "current_password": "Not-her-password-1",
                "new_password": "Another-demo-2026!",
                "confirm_password": "Another-demo-2026!",
            }
            status = await c.walk("/_auth/account/password", fields)
            assert status == 400, (status, c.last[:300])
            out.append(c.shown("account-password-wrong", status))
        if c.offers("account/methods/totp/start"):
            assert await c.walk("/_auth/account/methods/totp/start", {}) == 200, c.last[:300]
            out.append(c.shown("account-totp-enrol", 200))
            status = await c.walk("/_auth/account/methods/totp/verify", {"code": "000000"})
            assert status == 400, (status, c.last[:300])
            out.append(c.shown("account-totp-wrong-code", status))
        status = await c.walk("/_auth/reauth?rd=/_auth/account")
        if status != 404:  # step-up: "confirm it's you"
            assert status == 200, c.last[:300]
            out.append(c.shown("reauth", 200))
            # Where a sensitive form posted after the max age lands (it was not acted on).
            status = await c.walk("/_auth/reauth?rd=/_auth/account&notice=post_lost")
            assert status == 200 and "reauth-notice" in c.last, c.last[:300]
            out.append(c.shown("reauth-post-lost", 200))
        return out
    finally:
        await c.close()


async def _account_stepup(sites: Sites, lang: str) -> list[Shown]:
    """otto, who has an authenticator app, confirms it's him: a wrong password, then the
    code step (where this tree has step-up)."""
    out: list[Shown] = []
    user = f"otto-{lang}"
    c = await _signed_in(sites.account, lang, user, ACCOUNT_PASSWORD)
    try:
        code = totp(sites.totp[user])
        assert await c.walk("/_auth/challenge", {"code": code}) == 200, c.last[:300]
        if await c.walk("/_auth/reauth?rd=/_auth/account") == 404:
            return out
        status = await c.walk("/_auth/reauth", {"password": "Not-his-password-1"})
        assert status in (400, 401), (status, c.last[:300])
        out.append(c.shown("reauth-wrong-password", status))
        status = await c.walk("/_auth/reauth", {"password": ACCOUNT_PASSWORD})
        assert status == 200 and 'name="code"' in c.last, (status, c.last[:300])
        out.append(c.shown("reauth-code", 200))
        return out
    finally:
        await c.close()


async def _account_passkeys(sites: Sites, lang: str) -> list[Shown]:
    """pam, signed in with an emailed code in a USER_AUTH pool: her passkey listed, and the
    page that adds another."""
    out: list[Shown] = []
    user = f"pam-{lang}"
    c = Client(sites.passwordless, lang)
    try:
        await c.walk("/_auth/login")
        assert await c.walk("/_auth/login", {"username": user}) == 200
        assert await c.walk("/_auth/challenge", {"choice": "EMAIL_OTP"}) == 200
        code = sites.cognito.double.last_code(sites.passwordless_pool, user, "EMAIL")
        assert code, c.last[:300]
        assert await c.walk("/_auth/challenge", {"code": code}) == 200, c.last[:300]
        assert await c.walk("/_auth/account") == 200, c.last[:300]
        out.append(c.shown("account-passwordless", 200))
        if c.offers("account/passkeys/start"):
            assert await c.walk("/_auth/account/passkeys/start", {}) == 200, c.last[:300]
            out.append(c.shown("account-passkey-add", 200))
        return out
    finally:
        await c.close()


async def account_unavailable(sites: Sites) -> list[Shown]:
    """Every section with Cognito not answering its reads (a throttled or failing Cognito):
    each says it cannot be shown now, the page itself works. Run alone: it fails the double's
    reads for everyone while it looks."""
    out: list[Shown] = []
    double = sites.cognito.double
    for lang in LANGS:
        c = await _signed_in(
            sites.account, lang, f"nell-{lang}", ACCOUNT_PASSWORD, user_agent=USER_AGENTS[1]
        )
        try:
            double.inject_errors.update(
                {op: ("InternalErrorException", "Internal server error") for op in ACCOUNT_READS}
            )
            try:
                assert await c.walk("/_auth/account") == 200, c.last[:300]
            finally:
                for op in ACCOUNT_READS:
                    double.inject_errors.pop(op, None)
            out.append(c.shown("account-unavailable", 200))
        finally:
            await c.close()
    return out


FLOWS: tuple[Flow, ...] = (
    _signed_in_pages,
    _challenge_pages,
    _passwordless_pages,
    _failure_pages,
)
ACCOUNT_FLOWS: tuple[Flow, ...] = (
    account_everything,
    _account_new,
    _account_stepup,
    _account_passkeys,
)


async def account_states(sites: Sites) -> list[Shown]:
    """Every state of the account page this tree has, in both languages."""
    found = await asyncio.gather(*(flow(sites, lang) for flow in ACCOUNT_FLOWS for lang in LANGS))
    return [page for pages in found for page in pages] + await account_unavailable(sites)
