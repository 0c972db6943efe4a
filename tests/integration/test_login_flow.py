"""End to end over HTTP: browser → proxy → strict Cognito double → session → upstream headers.

The strict double really verifies SRP signatures and SECRET_HASH, so a login that succeeds here
proves our SRP and secret-hash code, not just the plumbing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.cognito_double import CognitoDouble
from tests.support.stack import (
    Browser,
    Upstream,
    cognito_kwargs,
    proxy_settings,
    running_proxy,
)

PASSWORD = "Correct-horse-9!"


def _pool(double: CognitoDouble, *, secret: bool) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, client_secret = double.create_client(pool_id, secret=secret)
    double.add_user(
        pool_id,
        "carol",
        PASSWORD,
        attributes={
            "email": "carol@example.com",
            "email_verified": "true",
            "preferred_username": "Carol",
            "name": "Carol Example",
        },
        groups=["admins", "staff"],
    )
    return cognito_kwargs(double, pool_id, client_id, client_secret)


async def _browser_for(settings_kw: dict[str, Any]) -> AsyncIterator[Browser]:
    async with running_proxy(proxy_settings(**settings_kw)) as base:
        browser = Browser(base)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(params=["USER_SRP_AUTH", "ADMIN_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH"])
async def browser(
    request: pytest.FixtureRequest, double: CognitoDouble, upstream: Upstream
) -> AsyncIterator[Browser]:
    kw = _pool(double, secret=True) | {"upstream_url": upstream.url, "auth_flow": request.param}
    async for b in _browser_for(kw):
        yield b


async def test_signed_in_request_reaches_upstream_with_identity_headers(
    browser: Browser, upstream: Upstream
) -> None:
    resp = await browser.login("carol", PASSWORD, rd="/reports?year=2026")
    assert resp.status == 303
    assert resp.headers["Location"] == "/reports?year=2026"

    resp = await browser.get("/reports?year=2026")
    assert resp.status == 200
    assert await resp.text() == "upstream saw GET /reports?year=2026"
    headers = upstream.last_headers
    assert headers["X-Forwarded-User"] == "carol"
    assert headers["X-Forwarded-Email"] == "carol@example.com"
    assert headers["X-Forwarded-Groups"] == "admins,staff"
    assert headers["X-Forwarded-Preferred-Username"] == "Carol"


async def test_wrong_password_gets_the_generic_error_and_no_session(
    browser: Browser, upstream: Upstream
) -> None:
    wrong = await browser.login("carol", "not-the-password")
    unknown = await browser.login("nobody-here", "whatever-it-is")
    for resp in (wrong, unknown):
        assert resp.status == 401
        assert "Incorrect username or password." in await resp.text()
    assert browser.cookie("gate") is None
    resp = await browser.get("/")
    assert resp.status == 302
    assert upstream.seen == []


async def test_client_cannot_inject_identity_headers(browser: Browser, upstream: Upstream) -> None:
    await browser.login("carol", PASSWORD)
    spoof = {
        "X-Forwarded-User": "mallory",
        "x_forwarded_email": "mallory@evil.example",
        "X-FORWARDED-GROUPS": "root",
        "Connection": "X-Forwarded-User",
    }
    resp = await browser.get("/", headers=spoof)
    assert resp.status == 200
    sent = upstream.seen[-1]["all_headers"]
    values = [v for k, v in sent]
    assert "mallory" not in values and "root" not in values
    assert "mallory@evil.example" not in values
    assert upstream.last_headers["X-Forwarded-User"] == "carol"


async def test_the_proxy_cookies_never_reach_the_upstream(
    browser: Browser, upstream: Upstream
) -> None:
    await browser.login("carol", PASSWORD)
    browser.http.cookie_jar.update_cookies({"app_pref": "dark", "app_sid": "s1"})
    assert (await browser.get("/")).status == 200
    sent = [v for k, v in upstream.seen[-1]["all_headers"] if k.lower() == "cookie"]
    assert len(sent) == 1
    pairs = sorted(p.strip() for p in sent[0].split(";"))
    assert pairs == ["app_pref=dark", "app_sid=s1"]


async def test_unauthenticated_browser_is_sent_to_login_and_api_gets_401(
    browser: Browser, upstream: Upstream
) -> None:
    resp = await browser.get("/app/page?x=1")
    assert resp.status == 302
    assert resp.headers["Location"] == "/_auth/login?rd=%2Fapp%2Fpage%3Fx%3D1"
    resp = await browser.get("/api/data", headers={"Accept": "application/json"})
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthenticated"
    resp = await browser.post("/api/data", {"a": "b"})
    assert resp.status == 401
    assert upstream.seen == []


async def test_logout_is_a_post_and_ends_the_session_server_side(
    browser: Browser, upstream: Upstream
) -> None:
    await browser.login("carol", PASSWORD)
    stolen = browser.cookie("gate")
    assert stolen

    # A GET (a link, a cross-site image) shows a confirmation, it does not sign out.
    page = await browser.get("/_auth/logout")
    assert page.status == 200
    assert (await browser.get("/")).status == 200

    token = CSRF_FROM(await page.text())
    resp = await browser.post("/_auth/logout", {"csrf": token})
    assert resp.status == 303
    assert resp.headers["Location"] == "/_auth/login?notice=signed_out"
    assert (await browser.get("/")).status == 302

    # The old cookie replayed by someone else no longer works either.
    replay = Browser(browser.base)
    try:
        replay.http.cookie_jar.update_cookies({"gate": stolen})
        assert (await replay.get("/")).status == 302
    finally:
        await replay.close()


async def test_logout_without_the_csrf_token_is_refused(browser: Browser) -> None:
    await browser.login("carol", PASSWORD)
    resp = await browser.post("/_auth/logout", {"csrf": "forged"})
    assert resp.status == 403
    assert (await browser.get("/")).status == 200


async def test_login_post_without_csrf_token_is_refused(browser: Browser) -> None:
    await browser.login_form()
    resp = await browser.post("/_auth/login", {"username": "carol", "password": PASSWORD})
    assert resp.status == 403
    assert browser.cookie("gate") is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1"},
    ],
)
async def test_cross_site_login_posts_are_refused_even_with_the_token(
    browser: Browser, headers: dict[str, str]
) -> None:
    token = await browser.login_form()
    resp = await browser.post(
        "/_auth/login", {"csrf": token, "username": "carol", "password": PASSWORD}, headers=headers
    )
    assert resp.status == 403
    assert browser.cookie("gate") is None


async def test_check_endpoint_answers_auth_request(browser: Browser) -> None:
    assert (await browser.get("/_auth/check")).status == 401
    await browser.login("carol", PASSWORD)
    resp = await browser.get("/_auth/check")
    assert resp.status == 200
    assert resp.headers["X-Auth-Request-User"] == "carol"
    assert resp.headers["X-Auth-Request-Email"] == "carol@example.com"
    info = await (await browser.get("/_auth/userinfo")).json()
    assert info["email"] == "carol@example.com"
    assert not any("token" in key.lower() for key in info)


async def test_open_redirect_in_rd_is_neutralised(browser: Browser) -> None:
    resp = await browser.login("carol", PASSWORD, rd="//evil.example/x")
    assert resp.status == 303
    assert resp.headers["Location"] == "/"


async def test_login_works_without_client_secret(double: CognitoDouble, upstream: Upstream) -> None:
    kw = _pool(double, secret=False) | {"upstream_url": upstream.url}
    async for browser in _browser_for(kw):
        assert (await browser.login("carol", PASSWORD)).status == 303
        assert (await browser.get("/")).status == 200


async def test_wrong_client_secret_is_an_outage_not_a_bad_password(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _pool(double, secret=True) | {"upstream_url": upstream.url}
    kw["client_secret"] = "not-the-secret"
    async for browser in _browser_for(kw):
        resp = await browser.login("carol", PASSWORD)
        assert resp.status in (401, 503)
        assert browser.cookie("gate") is None


def CSRF_FROM(page: str) -> str:
    from tests.support.stack import CSRF_FIELD

    match = CSRF_FIELD.search(page)
    assert match
    return match.group(1)
