"""A session lives exactly as long as it should: refresh near expiry, revocation, store outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import aiohttp
import boto3
import pytest
from yarl import URL

from proxy.cognito import errors
from proxy.cognito.client import CognitoClient, Tokens
from tests.support.cognito_double import CognitoDouble, running_double
from tests.support.redis_server import RedisProcess, start_redis_server
from tests.support.stack import (
    Browser,
    Upstream,
    cognito_kwargs,
    proxy_settings,
    running_proxy,
)

PASSWORD = "Lifecycle-pass-1!"
TOKEN_TTL = 4
JSON = {"Accept": "application/json"}


async def past_half_life() -> None:
    await asyncio.sleep(TOKEN_TTL / 2 + 0.3)


@pytest.fixture(scope="module")
def double() -> Iterator[CognitoDouble]:
    # Tokens live 4 s: the proxy refreshes them once half their life has passed.
    with running_double(token_ttl=TOKEN_TTL) as d:
        yield d


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, "dave", PASSWORD, attributes={"email": "dave@example.com"})
    return cognito_kwargs(double, pool_id, client_id, secret)


@pytest.fixture
async def browser(pool: dict[str, Any], upstream: Upstream) -> AsyncIterator[Browser]:
    async with running_proxy(proxy_settings(upstream_url=upstream.url, **pool)) as base:
        b = Browser(base)
        yield b
        await b.close()


def _refreshes(double: CognitoDouble, client_id: str) -> int:
    return sum(
        1
        for op, body in double.calls
        if op == "GetTokensFromRefreshToken" and body.get("ClientId") == client_id
    )


async def test_tokens_near_expiry_are_refreshed_once_for_concurrent_requests(
    browser: Browser, double: CognitoDouble, pool: dict[str, Any], upstream: Upstream
) -> None:
    assert (await browser.login("dave", PASSWORD)).status == 303
    before = _refreshes(double, pool["client_id"])
    assert (await browser.get("/fresh")).status == 200
    assert _refreshes(double, pool["client_id"]) == before  # fresh tokens: no refresh

    await past_half_life()
    answers = await asyncio.gather(*(browser.get(f"/item/{i}") for i in range(20)))
    assert [r.status for r in answers] == [200] * 20
    # One refresh for 20 concurrent requests of one session (ClientSecret included: the double
    # would refuse the refresh otherwise).
    assert _refreshes(double, pool["client_id"]) - before == 1
    assert upstream.last_headers["X-Forwarded-User"] == "dave"
    # The refreshed tokens were saved: the next request does not refresh again.
    assert (await browser.get("/again")).status == 200
    assert _refreshes(double, pool["client_id"]) - before == 1


async def test_a_revoked_refresh_token_ends_the_session(
    browser: Browser, double: CognitoDouble, pool: dict[str, Any]
) -> None:
    assert (await browser.login("dave", PASSWORD)).status == 303
    idp = boto3.client("cognito-idp", region_name=double.region, endpoint_url=double.url)
    idp.admin_user_global_sign_out(UserPoolId=pool["pool_id"], Username="dave")
    await past_half_life()
    resp = await browser.get("/after-signout")
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/_auth/login?rd=%2Fafter-signout")
    assert resp.headers["Location"].endswith("&notice=expired")


async def test_logout_revokes_the_refresh_token_at_cognito(
    browser: Browser, double: CognitoDouble
) -> None:
    assert (await browser.login("dave", PASSWORD)).status == 303
    page = await browser.get("/_auth/logout")
    token = page_csrf(await page.text())
    assert (await browser.post("/_auth/logout", {"csrf": token})).status == 303
    revoked = [body for op, body in double.calls if op == "RevokeToken"]
    assert revoked, "logout did not call RevokeToken"
    assert "ClientSecret" in revoked[-1]


@pytest.fixture
def redis_proc() -> Iterator[RedisProcess]:
    proc = start_redis_server()
    yield proc
    proc.resume()
    proc.stop()


async def test_store_outage_fails_closed_keeps_the_cookie_and_recovers(
    pool: dict[str, Any], upstream: Upstream, redis_proc: RedisProcess
) -> None:
    settings = proxy_settings(
        upstream_url=upstream.url,
        store_url=redis_proc.url,
        # No session cache: it would serve a session loaded moments ago through the outage
        # for up to its ttl (test_session_cache.py pins that); here every request asks Redis.
        session={"store_url": redis_proc.url, "store_timeout": 0.5, "cache_ttl": 0},
        **pool,
    )
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("dave", PASSWORD)).status == 303
            assert (await browser.get("/")).status == 200
            cookie = browser.cookie("gate")

            redis_proc.pause()  # Redis hangs: neither an answer nor a refused connection
            page = await browser.get("/")
            assert page.status == 503
            assert page.headers["Retry-After"]
            assert "Set-Cookie" not in page.headers
            api = await browser.get("/api", headers={"Accept": "application/json"})
            assert api.status == 503
            assert api.headers["Retry-After"]
            # The same identify() step, so the same outage answer (JSON: userinfo is an API).
            info = await browser.get("/_auth/userinfo")
            assert info.status == 503
            assert info.headers["Retry-After"]
            assert info.headers["Cache-Control"] == "no-store"
            assert await info.json() == {"error": "unavailable"}
            assert (await browser.get("/_auth/check")).status == 500  # what nginx expects
            assert (await browser.get("/_auth/readyz")).status == 503
            assert (await browser.get("/_auth/healthz")).status == 200

            redis_proc.resume()
            assert browser.cookie("gate") == cookie
            recovered = await browser.get("/")
            assert recovered.status == 200
        finally:
            await browser.close()


def page_csrf(page: str) -> str:
    from tests.support.stack import CSRF_FIELD

    match = CSRF_FIELD.search(page)
    assert match
    return match.group(1)


# -- several replicas sharing one Redis ---------------------------------------------------------


@asynccontextmanager
async def replicas(
    pool: dict[str, Any], upstream: Upstream, store_url: str, n: int = 2, **sections: Any
) -> AsyncIterator[list[str]]:
    """``n`` proxy instances (separate apps, caches and single-flights) on one store."""
    settings = proxy_settings(upstream_url=upstream.url, store_url=store_url, **pool, **sections)
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running_proxy(settings)) for _ in range(n)]


def same_cookie(source: Browser, base: str) -> Browser:
    """Another browser tab on another replica, holding the same session cookie."""
    other = Browser(base)
    value = source.cookie("gate")
    assert value
    other.http.cookie_jar.update_cookies({"gate": value}, URL(base))
    return other


@pytest.fixture
def slow_cognito(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refreshes take 300 ms, as over a real network: long enough for every replica to overlap."""
    original = CognitoClient.refresh

    async def slow(
        self: CognitoClient, refresh_token: str, username: str, device_key: str | None = None
    ) -> Tokens:
        await asyncio.sleep(0.3)
        return await original(self, refresh_token, username, device_key)

    monkeypatch.setattr(CognitoClient, "refresh", slow)


async def test_refresh_happens_once_under_50_concurrent_requests_over_two_replicas(
    pool: dict[str, Any],
    upstream: Upstream,
    double: CognitoDouble,
    redis_server: RedisProcess,
    slow_cognito: None,
) -> None:
    async with replicas(pool, upstream, redis_server.url) as (a, b):
        first, second = Browser(a), Browser(b)
        try:
            assert (await first.login("dave", PASSWORD)).status == 303
            second = same_cookie(first, b)
            before = _refreshes(double, pool["client_id"])
            await past_half_life()
            started = time.monotonic()
            answers = await asyncio.gather(
                *((first if i % 2 else second).get(f"/load/{i}", headers=JSON) for i in range(50))
            )
            elapsed = time.monotonic() - started
            assert [r.status for r in answers] == [200] * 50
            assert _refreshes(double, pool["client_id"]) - before == 1
            print(f"50 requests over 2 replicas, 1 refresh, {elapsed:.2f}s")
            # Both replicas now read the saved, fresh tokens: no second refresh.
            assert (await second.get("/after", headers=JSON)).status == 200
            assert (await first.get("/after", headers=JSON)).status == 200
            assert _refreshes(double, pool["client_id"]) - before == 1
        finally:
            await first.close()
            await second.close()


async def logout(browser: Browser, **fields: str) -> aiohttp.ClientResponse:
    page = await browser.get("/_auth/logout")
    assert page.status == 200, page.status
    return await browser.post("/_auth/logout", {"csrf": page_csrf(await page.text()), **fields})


async def status(browser: Browser, path: str = "/") -> int:
    return (await browser.get(path, headers=JSON)).status


async def test_logout_ends_the_session_on_every_replica(
    pool: dict[str, Any], upstream: Upstream, redis_server: RedisProcess
) -> None:
    async with replicas(pool, upstream, redis_server.url) as (a, b):
        mine, other_device = Browser(a), Browser(b)
        assert (await mine.login("dave", PASSWORD)).status == 303
        assert (await other_device.login("dave", PASSWORD)).status == 303
        mine_on_b = same_cookie(mine, b)
        try:
            assert await status(mine_on_b) == 200
            assert (await logout(mine)).status == 303
            assert await status(mine) == 401
            assert await status(mine_on_b) == 401  # the old cookie works nowhere
            assert await status(other_device) == 200  # a plain logout ends only this session
        finally:
            for br in (mine, other_device, mine_on_b):
                await br.close()


async def test_sign_out_everywhere_ends_every_session_of_the_user_on_every_replica(
    pool: dict[str, Any], upstream: Upstream, double: CognitoDouble, redis_server: RedisProcess
) -> None:
    double.add_user(pool["pool_id"], "erin", PASSWORD)
    async with replicas(pool, upstream, redis_server.url) as (a, b):
        laptop, phone, someone_else = Browser(a), Browser(b), Browser(b)
        assert (await laptop.login("dave", PASSWORD)).status == 303
        assert (await phone.login("dave", PASSWORD)).status == 303
        assert (await someone_else.login("erin", PASSWORD)).status == 303
        laptop_on_b = same_cookie(laptop, b)
        try:
            calls = len(double.calls_to("GlobalSignOut"))
            answer = await logout(laptop, everywhere="1")
            assert answer.status == 303
            assert answer.headers["Location"] == "/_auth/login?notice=signed_out"
            assert await status(laptop) == 401
            assert await status(laptop_on_b) == 401
            assert await status(phone) == 401  # another device, signed in through replica B
            assert await status(someone_else) == 200  # other users keep their sessions
            # Cognito revoked every refresh token of the user too (other apps included).
            assert len(double.calls_to("GlobalSignOut")) == calls + 1
        finally:
            for br in (laptop, phone, someone_else, laptop_on_b):
                await br.close()


@pytest.mark.parametrize(
    ("rd", "location"),
    [
        ("/goodbye?x=1", "/goodbye?x=1"),
        ("https://app.example.com/bye", "https://app.example.com/bye"),
        ("https://evil.example.com/", "/_auth/login?notice=signed_out"),
        ("//evil.example.com/", "/_auth/login?notice=signed_out"),
        ("/\\evil.example.com", "/_auth/login?notice=signed_out"),
    ],
)
async def test_logout_redirects_only_to_a_validated_rd(
    pool: dict[str, Any], upstream: Upstream, rd: str, location: str
) -> None:
    settings = proxy_settings(
        upstream_url=upstream.url,
        auth={"allowed_redirect_origins": ["https://app.example.com"]},
        **pool,
    )
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("dave", PASSWORD)).status == 303
            page = await browser.get("/_auth/logout?" + urlencode({"rd": rd}))
            answer = await browser.post(
                "/_auth/logout", {"csrf": page_csrf(await page.text()), "rd": rd}
            )
            assert answer.status == 303
            assert answer.headers["Location"] == location
            assert await status(browser) == 401
        finally:
            await browser.close()


async def test_keep_me_signed_in_gives_a_persistent_cookie_only_when_ticked(
    browser: Browser,
) -> None:
    page = await browser.get("/_auth/login?lang=ja")
    assert 'name="remember" type="checkbox"' in await page.text()
    assert "サインインしたままにする" in await page.text()
    token = await browser.login_form()
    plain = await browser.post(
        "/_auth/login", {"csrf": token, "username": "dave", "password": PASSWORD}
    )
    cookie = plain.headers["Set-Cookie"]
    assert "Max-Age" not in cookie and "expires" not in cookie.lower()

    other = Browser(browser.base)
    try:
        token = await other.login_form()
        remembered = await other.post(
            "/_auth/login",
            {"csrf": token, "username": "dave", "password": PASSWORD, "remember": "1"},
        )
        assert remembered.status == 303
        cookies = [v for v in remembered.headers.getall("Set-Cookie") if v.startswith("gate=")]
        assert "Max-Age=2592000" in cookies[0]
        assert await status(other) == 200
    finally:
        await other.close()


async def test_idle_session_ends_and_activity_keeps_it_alive(
    pool: dict[str, Any], upstream: Upstream, redis_server: RedisProcess
) -> None:
    settings = proxy_settings(
        upstream_url=upstream.url,
        store_url=redis_server.url,
        session={"store_url": redis_server.url, "idle_timeout": 3},
        **pool,
    )
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("dave", PASSWORD)).status == 303
            for _ in range(4):  # active for 4.8 s, longer than the idle timeout
                await asyncio.sleep(1.2)
                assert await status(browser) == 200
            await asyncio.sleep(3.3)  # then idle past it
            assert await status(browser) == 401
        finally:
            await browser.close()


async def test_a_transient_refresh_failure_keeps_the_session_and_retries_later(
    browser: Browser, double: CognitoDouble, pool: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await browser.login("dave", PASSWORD)).status == 303
    original = CognitoClient.refresh
    attempts: list[str] = []

    async def throttled(
        self: CognitoClient, refresh_token: str, username: str, device_key: str | None = None
    ) -> Tokens:
        attempts.append(username)
        raise errors.TooManyRequests("TooManyRequestsException")

    monkeypatch.setattr(CognitoClient, "refresh", throttled)
    # Long enough that a loaded test machine cannot outrun it between the quick requests below.
    monkeypatch.setattr("proxy.gate.identity.REFRESH_RETRY_AFTER", 2.0)
    await past_half_life()
    assert await status(browser) == 200  # tokens still valid: served, refresh retried later
    for _ in range(5):
        assert await status(browser) == 200
    assert len(attempts) == 1  # not a retry storm: the next attempt waits a little
    await asyncio.sleep(TOKEN_TTL / 2 + 0.1)  # expired, past the pause; Cognito still throttles
    assert await status(browser) == 503  # fail closed, but keep the session
    assert len(attempts) == 2
    before = _refreshes(double, pool["client_id"])
    monkeypatch.setattr(CognitoClient, "refresh", original)
    await asyncio.sleep(2.1)
    assert await status(browser) == 200  # Cognito answers again: refreshed, same session
    assert _refreshes(double, pool["client_id"]) - before == 1


async def test_sign_out_everywhere_works_after_the_access_token_expired(
    browser: Browser, double: CognitoDouble
) -> None:
    assert (await browser.login("dave", PASSWORD)).status == 303
    await asyncio.sleep(TOKEN_TTL + 0.5)  # idle: the stored access token is now expired
    failures = len(double.failures)
    assert (await logout(browser, everywhere="1")).status == 303
    # A fresh access token was fetched first, so Cognito accepted GlobalSignOut.
    assert [f for f in double.failures[failures:] if f[0] == "GlobalSignOut"] == []
    assert double.calls_to("GlobalSignOut")
