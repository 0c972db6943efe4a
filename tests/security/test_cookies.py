"""Cookies: exact attributes, no fixation, and any cookie we did not issue means "no session"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from proxy.sessions.memory import MemoryStore
from proxy.sessions.session import SessionManager
from tests.security.conftest import PASSWORD, USER, Stack, stack_for
from tests.support.challenges import flow_browser, pool_kwargs
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import CSRF_FIELD, recording_upstream
from tests.support.totp import totp


def _set_cookies(resp: aiohttp.ClientResponse) -> dict[str, str]:
    """name → the raw Set-Cookie line, as the browser receives it."""
    out = {}
    for line in resp.headers.getall("Set-Cookie", ()):
        out[line.split("=", 1)[0]] = line
    return out


def _attributes(line: str) -> tuple[str, set[str]]:
    value, *attrs = (part.strip() for part in line.split(";"))
    return value.split("=", 1)[1], {a for a in attrs if a}


@pytest.fixture
async def secure_stack(double: CognitoDouble) -> AsyncIterator[Stack]:
    async with stack_for(double, cookie={"secret": "s" * 48, "secure": True}) as s:
        yield s


async def _secure_login(stack: Stack) -> tuple[aiohttp.ClientResponse, str, str]:
    """Sign in with secure cookies over loopback http (the jar would drop them: send by hand)."""
    http = stack.browser.http
    async with http.get(stack.base + "/_auth/login") as page:
        flow_line = _set_cookies(page)["__Host-gate-login"]
        token = CSRF_FIELD.search(await page.text())
    assert token
    flow = _attributes(flow_line)[0]
    async with http.post(
        stack.base + "/_auth/login",
        data={"csrf": token.group(1), "username": USER, "password": PASSWORD},
        headers={"Cookie": f"__Host-gate-login={flow}"},
        allow_redirects=False,
    ) as resp:
        await resp.read()
    return resp, flow_line, flow


async def test_secure_cookies_are_host_prefixed_with_exact_attributes(secure_stack: Stack) -> None:
    resp, flow_line, _ = await _secure_login(secure_stack)
    assert resp.status == 303
    session_line = _set_cookies(resp)["__Host-gate"]
    for line in (flow_line, session_line):
        _, attrs = _attributes(line)
        assert attrs == {"HttpOnly", "Path=/", "SameSite=Lax", "Secure"}, line
        assert "domain" not in line.lower()


async def test_sign_in_deletes_the_pre_login_cookie_and_its_state(secure_stack: Stack) -> None:
    resp, _, flow = await _secure_login(secure_stack)
    cleared = _set_cookies(resp)["__Host-gate-login"]
    value, attrs = _attributes(cleared)
    assert value in ("", '""')
    assert any(a.lower().startswith("max-age=0") for a in attrs) or "expires=" in cleared.lower()
    assert "Secure" in attrs and "Path=/" in attrs  # or the browser would not replace it
    # Before any challenge the pre-login cookie is a signed token with no server-side state
    # (nothing to delete): replaying it is only a login form, its CSRF token no credential.
    assert flow.startswith("t1.")
    async with secure_stack.browser.http.post(
        secure_stack.base + "/_auth/login",
        data={"csrf": "x", "username": USER, "password": PASSWORD},
        headers={"Cookie": f"__Host-gate-login={flow}"},
        allow_redirects=False,
    ) as replay:
        assert replay.status == 403
        assert "__Host-gate" not in _set_cookies(replay)


async def test_a_sign_in_that_stored_its_state_leaves_none_behind(double: CognitoDouble) -> None:
    # A challenge stores the sign-in's state (the Cognito session, the username): once signed
    # in, the pre-login cookie that held it leads nowhere.
    pool = double.create_pool()
    double.set_pool_mfa(pool, "OPTIONAL", factors=("SOFTWARE_TOKEN_MFA",))
    client_id, secret = double.create_client(pool, secret=True)
    double.add_user(pool, "mia", PASSWORD, mfa=("SOFTWARE_TOKEN_MFA",))
    async with (
        recording_upstream() as upstream,
        flow_browser(
            **pool_kwargs(double, pool, client_id, secret), upstream_url=upstream.url
        ) as browser,
    ):
        first = await browser.sign_in("mia", PASSWORD)
        assert first.status == 303 and first.location == "/_auth/challenge"
        stored = browser.cookie("gate-login")
        assert stored and not stored.startswith("t1.")  # a sealed record's handle now
        page = await browser.follow(first)
        assert (await browser.get("/_auth/challenge")).status == 200
        code = totp(double.totp_secret(pool, "mia") or "", time.time())
        done = await browser.answer(page, {"code": code})
        assert done.status == 303 and browser.cookie("gate")
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
            http.get(
                browser.base + "/_auth/challenge",
                headers={"Cookie": f"gate-login={stored}"},
                allow_redirects=False,
            ) as replay,
        ):
            assert replay.status == 303
            assert replay.headers["Location"].startswith("/_auth/login")


async def test_plain_http_cookies_drop_the_host_prefix_but_keep_the_rest(stack: Stack) -> None:
    resp = await stack.browser.login(USER, PASSWORD)
    _, attrs = _attributes(_set_cookies(resp)["gate"])
    assert attrs == {"HttpOnly", "Path=/", "SameSite=Lax"}


async def _login_with_planted(stack: Stack, planted: str) -> str:
    """Open the form, then (like an attacker's subdomain or XSS would) plant `planted`, post."""
    token = await stack.browser.login_form()
    flow = stack.browser.cookie("gate-login")
    async with stack.browser.http.post(
        stack.base + "/_auth/login",
        data={"csrf": token, "username": USER, "password": PASSWORD},
        headers={"Cookie": f"gate-login={flow}; gate={planted}"},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303
        value, _ = _attributes(_set_cookies(resp)["gate"])
    return value


async def _status_with(stack: Stack, cookie: str) -> int:
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        http.get(
            stack.base + "/",
            headers={"Cookie": f"gate={cookie}", "Accept": "text/html"},
            allow_redirects=False,
        ) as resp,
    ):
        return resp.status


async def test_sign_in_replaces_a_planted_session_cookie(stack: Stack) -> None:
    """Session fixation: a cookie planted before sign-in never becomes the user's session."""
    planted = await stack.signed_in_cookie()  # a real session someone else holds
    stack.browser.http.cookie_jar.clear()
    fresh = await _login_with_planted(stack, planted)
    assert fresh and fresh != planted
    assert await _status_with(stack, fresh) == 200
    assert await _status_with(stack, planted) == 302  # ended server-side at sign-in


async def test_sign_in_with_a_forged_session_cookie_gets_a_fresh_one(stack: Stack) -> None:
    forged = "A" * 66 + "." + "B" * 22
    fresh = await _login_with_planted(stack, forged)
    assert fresh != forged
    assert await _status_with(stack, fresh) == 200


async def _foreign_cookie() -> str:
    """A perfectly valid cookie — from another deployment (another secret)."""
    other = SessionManager(MemoryStore(), b"another-deployment-secret-0123456789", lifetime=3600)
    from proxy.sessions.session import Session

    session = Session("carol", "sub", {}, "i", "a", None, 2e9, 2e9)
    return await other.create(session)


@pytest.mark.parametrize(
    "kind", ["truncated", "extended", "random", "foreign", "huge", "non_ascii", "empty"]
)
async def test_a_cookie_we_did_not_issue_is_no_session_never_an_error(
    stack: Stack, kind: str
) -> None:
    real = await stack.signed_in_cookie()
    value = {
        "truncated": real[:-3],
        "extended": real + "A",
        "random": "x" * 89,
        "foreign": await _foreign_cookie(),
        "huge": "A" * 4000,
        "non_ascii": "%E2%98%83" + real[9:],
        "empty": "",
    }[kind]
    http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    try:
        for path, accept, expected in (
            ("/", "text/html", 302),
            ("/api", "application/json", 401),
            ("/_auth/check", "*/*", 401),
            ("/_auth/userinfo", "*/*", 401),
            ("/_auth/logout", "text/html", 303),
            ("/_auth/login", "text/html", 200),
        ):
            async with http.get(
                stack.base + path,
                headers={"Cookie": f"gate={value}; gate-login={value}", "Accept": accept},
                allow_redirects=False,
            ) as resp:
                assert resp.status == expected, (path, resp.status)
        async with http.post(
            stack.base + "/_auth/logout",
            data={"csrf": "x"},
            headers={"Cookie": f"gate={value}"},
            allow_redirects=False,
        ) as resp:
            assert resp.status in (303, 403)
    finally:
        await http.close()
    await asyncio.sleep(0)
    assert stack.upstream.seen == []


async def test_behind_tls_termination_the_https_origin_is_ours(secure_stack: Stack) -> None:
    """cookie.secure means browsers reach us over HTTPS, even if TLS ended before us."""
    http = secure_stack.browser.http
    host = f"{secure_stack.host}:{secure_stack.port}"
    for origin, expected in ((f"https://{host}", 303), (f"http://{host}", 403)):
        async with http.get(secure_stack.base + "/_auth/login") as page:
            flow = _attributes(_set_cookies(page)["__Host-gate-login"])[0]
            token = CSRF_FIELD.search(await page.text())
        assert token
        async with http.post(
            secure_stack.base + "/_auth/login",
            data={"csrf": token.group(1), "username": USER, "password": PASSWORD},
            headers={"Cookie": f"__Host-gate-login={flow}", "Origin": origin},
            allow_redirects=False,
        ) as resp:
            assert resp.status == expected, origin
