"""The account page attacked from outside: forged posts, a stale sign-in, an outage."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from tests.security.conftest import PASSWORD, USER, Stack, stack_for
from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import RedisProcess
from tests.support.stack import Browser
from tests.support.stepup import age_sign_in

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# Every route of the page's sensitive_route in this deployment (no passkeys: not USER_AUTH).
SENSITIVE = (
    "account/password",
    "account/profile/contact",
    "account/methods/totp/start",
    "account/methods/totp/verify",
    "account/methods/mfa",
)


async def account_token(browser: Browser) -> str:
    async with browser.http.get(browser.base + "/_auth/account", allow_redirects=False) as resp:
        assert resp.status == 200, resp.status
        match = CSRF.search(await resp.text())
    assert match
    return match[1]


@pytest.fixture
async def stale(double: CognitoDouble, redis_server: RedisProcess) -> AsyncIterator[Stack]:
    """A signed-in browser whose sign-in is older than GATE_ACCOUNT_REAUTH_MAX_AGE (300 s)."""
    session = {"store_url": redis_server.url, "cache_ttl": 0}
    async with stack_for(double, session=session) as s:
        cookie = await s.signed_in_cookie()
        await age_sign_in(redis_server.url, cookie, 400)
        yield s


@pytest.mark.parametrize(
    ("token", "headers"),
    [
        # a sibling subdomain is same-site: the SameSite=Lax session cookie comes along
        ("mine", {"Sec-Fetch-Site": "same-site"}),
        ("mine", {"Origin": "https://evil.example"}),
        (None, {}),
        ("forged", {}),
    ],
    ids=["same-site", "foreign-origin", "no-token", "forged-token"],
)
async def test_a_forged_sensitive_post_from_a_stale_session_is_refused_not_sent_to_reauth(
    stale: Stack, token: str | None, headers: dict[str, str]
) -> None:
    """A forged post is a 403 like on every other form, not "confirm it's you: what you sent
    was not sent, send it again": that page would tell the user they sent it, at the
    attacker's chosen moment, on our own origin."""
    data = {}
    if token is not None:
        data["csrf"] = await account_token(stale.browser) if token == "mine" else "f" * 64
    for path in SENSITIVE:
        resp = await stale.browser.post(f"/_auth/{path}", data, headers=headers)
        assert resp.status == 403, (path, resp.headers.get("Location"))


async def test_a_genuine_sensitive_post_from_a_stale_session_still_goes_to_reauth(
    stale: Stack,
) -> None:
    token = await account_token(stale.browser)
    for path in SENSITIVE:
        resp = await stale.browser.post(f"/_auth/{path}", {"csrf": token})
        assert resp.status == 303, path
        assert resp.headers["Location"].startswith("/_auth/reauth?"), path


# Every form of the page in this deployment, posted with a valid token during an outage.
FORMS = (
    *SENSITIVE,
    "account/profile",
    "account/profile/verify",
    "account/profile/resend",
    "account/methods/totp/cancel",
    "account/devices/forget",
    "account/sessions/end",
    "account/sessions/end-others",
)


async def test_the_account_page_with_the_store_down_is_the_503_page_never_a_500(
    double: CognitoDouble, redis_server: RedisProcess
) -> None:
    async with stack_for(double, session={"store_url": redis_server.url}) as s:
        await s.signed_in_cookie()
        token = await account_token(s.browser)
        redis_server.stop()
        answers = [await s.browser.get("/_auth/account"), await s.browser.get("/_auth/reauth")]
        for path in FORMS:
            answers.append(
                await s.browser.post(f"/_auth/{path}", {"csrf": token, "session": "a" * 64})
            )
        for resp in answers:
            assert resp.status == 503, resp.url
            assert resp.content_type == "text/html"  # our error page, with its Try again
            assert resp.headers["Cache-Control"] == "no-store"
            assert "Set-Cookie" not in resp.headers  # nobody is signed out by a blip
        async with s.browser.http.get(s.base + "/_auth/account") as page:
            assert 'href="/_auth/account"' in await page.text()  # Try again
        # a form's 503: Try again is the page the form is on (the form's path has no GET)
        async with s.browser.http.post(
            s.base + "/_auth/account/sessions/end-others?lang=ja", data={"csrf": token}
        ) as page:
            assert page.status == 503
            assert 'href="/_auth/account?lang=ja"' in await page.text()


HOSTILE = "<img src=x onerror=alert(1)>\"'&"


async def test_what_the_page_shows_is_text_and_the_ip_is_the_peers(stack: Stack) -> None:
    """A second browser signs in with a hostile User-Agent and a forged X-Forwarded-For (no
    trusted proxy is configured); the user names themselves with markup. The page shows text,
    the peer's address, and is never stored by a shared cache."""
    other = Browser(stack.base)
    other.http.headers["User-Agent"] = HOSTILE + " Firefox/133.0 (X11; Linux x86_64)"
    other.http.headers["X-Forwarded-For"] = "203.0.113.66"
    try:
        assert (await other.login(USER, PASSWORD)).status == 303
    finally:
        await other.close()
    await stack.signed_in_cookie()
    token = await account_token(stack.browser)
    saved = await stack.browser.post(
        "/_auth/account/profile", {"csrf": token, "attr:name": HOSTILE}
    )
    assert saved.status == 303
    async with stack.browser.http.get(stack.base + "/_auth/account") as resp:
        html = await resp.text()
        assert resp.headers["Cache-Control"] == "no-store"
    assert "<img src=x" not in html and "onerror=alert(1)>" not in html
    assert 'value="&lt;img src=x onerror=alert(1)&gt;&#34;&#39;&amp;"' in html  # the name
    assert "Firefox · Linux" in html  # the other browser, by name only
    assert "203.0.113.66" not in html
    assert html.count("127.0.0.1") == 2  # both sessions: the address that connected
