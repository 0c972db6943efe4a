"""Ending another browser's session from the account page revokes its refresh token.

The record is sealed under the other browser's cookie, so the replica that ends it cannot read
the token: the record is set aside (renamed, the same sealed bytes, its ttl kept), and the
other browser's next request, on any replica, takes it, revokes its refresh token (RevokeToken
at the strict double) and is sent to the login page. Two replicas share one Redis and cache
sessions for 30 s: only the end itself can explain a refusal at once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
import boto3
import pytest
from aiohttp import web
from redis.asyncio import Redis
from yarl import URL

from proxy.app import derive_key
from proxy.demo import free_port
from proxy.sessions.sealed import SealedStore
from proxy.sessions.session import Session
from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import RedisProcess
from tests.support.redis_topologies import redis_cluster
from tests.support.stack import (
    COOKIE_SECRET,
    Browser,
    cognito_kwargs,
    proxy_settings,
    running_proxy,
)

pytestmark = pytest.mark.integration

PASSWORD = "Revoke-pass-1!"
LONG_TTL = 30.0
SESSION_IDS = re.compile(r'name="session" value="([0-9a-f]{64})"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, "gail", PASSWORD, attributes={"email": "gail@example.com"})
    return cognito_kwargs(double, pool_id, client_id, secret)


@pytest.fixture
async def echo_app() -> AsyncIterator[str]:
    """The app: a page at / and a WebSocket echo at /ws."""

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type is aiohttp.WSMsgType.TEXT:
                await sock.send_str(msg.data)
        return sock

    async def home(request: web.Request) -> web.Response:
        return web.Response(text="the app")

    app = web.Application()
    app.router.add_get("/ws", ws)
    app.router.add_get("/", home)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def replicas(
    pool: dict[str, Any], app: str, store_url: str, **session: Any
) -> AsyncIterator[tuple[str, str]]:
    settings = proxy_settings(
        upstream_url=app,
        session={"store_url": store_url, "cache_ttl": LONG_TTL, **session},
        **pool,
    )
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(running_proxy(settings))
        b = await stack.enter_async_context(running_proxy(settings))
        yield a, b


def refresh_token_of(cookie: str, sealed: bytes) -> str:
    """What only the holder of `cookie` can read: the refresh token in its record."""
    store = SealedStore(None, derive_key(COOKIE_SECRET, "session"), namespace="s")  # type: ignore[arg-type]
    payload = store.open_aside(cookie, sealed)
    assert payload is not None
    session = Session.from_bytes(payload)
    assert session is not None and session.refresh_token
    return session.refresh_token


def record_key(cookie: str) -> str:
    store = SealedStore(None, derive_key(COOKIE_SECRET, "session"), namespace="s")  # type: ignore[arg-type]
    key = store.record_key(cookie)
    assert key is not None
    return key


def revoked(double: CognitoDouble, token: str) -> int:
    return sum(1 for op, body in double.calls if op == "RevokeToken" and body["Token"] == token)


async def account(browser: Browser) -> tuple[list[str], str]:
    async with browser.http.get(browser.base + "/_auth/account") as resp:
        assert resp.status == 200
        html = await resp.text()
    token = CSRF.search(html)
    assert token
    return SESSION_IDS.findall(html), token[1]


async def to_login_at_once(browser: Browser, limit: float = 1.0) -> float:
    """Seconds until `browser` is sent to the login page (the cache would serve it 30 s)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        resp = await browser.get("/")
        if resp.status == 302:
            assert resp.headers["Location"].startswith("/_auth/login")
            return time.monotonic() - started
        assert resp.status == 200
        await asyncio.sleep(0.005)
    pytest.fail(f"the ended session was still served after {limit} s")


def refresh_refused(double: CognitoDouble, pool: dict[str, Any], token: str) -> bool:
    idp = boto3.client("cognito-idp", region_name=double.region, endpoint_url=double.url)
    try:
        idp.get_tokens_from_refresh_token(
            RefreshToken=token, ClientId=pool["client_id"], ClientSecret=pool["client_secret"]
        )
    except idp.exceptions.NotAuthorizedException:
        return True
    return False


async def test_ending_another_browsers_session_revokes_its_refresh_token(
    pool: dict[str, Any], double: CognitoDouble, echo_app: str, redis_server: RedisProcess
) -> None:
    redis = Redis.from_url(redis_server.url)
    async with replicas(pool, echo_app, redis_server.url) as (a, b):
        mine, other = Browser(a), Browser(b)
        try:
            assert (await mine.login("gail", PASSWORD)).status == 303
            assert (await other.login("gail", PASSWORD)).status == 303
            for _ in range(3):  # replica B has the other session cached now
                assert (await other.get("/")).status == 200
            cookie = other.cookie("gate")
            assert cookie
            key = record_key(cookie)
            sealed = await redis.get(key)
            assert sealed is not None
            token = refresh_token_of(cookie, sealed)
            assert not refresh_refused(double, pool, token)  # a live refresh token
            lives = await redis.pttl(key)

            (other_id,), csrf = await account(mine)
            resp = await mine.post(
                "/_auth/account/sessions/end", {"csrf": csrf, "session": other_id}
            )
            assert resp.status == 303
            # Set aside, not readable here: the same sealed bytes under the aside name, the
            # record, its card and its index entry gone. Not revoked yet: nobody here can.
            assert await redis.get(key) is None
            assert await redis.get(SealedStore.aside_key(key)) == sealed
            assert 0 < await redis.pttl(SealedStore.aside_key(key)) <= lives  # its own ttl
            assert await redis.keys("gate:card:" + other_id) == []
            assert revoked(double, token) == 0

            waited = await to_login_at_once(other)
            print(f"the ended browser was sent to the login page after {waited * 1000:.1f} ms")
            assert revoked(double, token) == 1
            assert refresh_refused(double, pool, token)
            assert await redis.get(SealedStore.aside_key(key)) is None  # nothing left
            resp = await other.get("/")  # signed out, and nothing revoked twice
            assert resp.status == 302
            assert revoked(double, token) == 1
            assert (await mine.get("/")).status == 200  # the one that ended it goes on
        finally:
            await mine.close()
            await other.close()
            await redis.aclose()


async def test_the_ended_browsers_websocket_closes_and_its_token_is_revoked(
    pool: dict[str, Any], double: CognitoDouble, echo_app: str, redis_server: RedisProcess
) -> None:
    interval = 0.5
    async with replicas(pool, echo_app, redis_server.url, ws_recheck_interval=interval) as (a, b):
        mine, other = Browser(a), Browser(b)
        try:
            assert (await mine.login("gail", PASSWORD)).status == 303
            assert (await other.login("gail", PASSWORD)).status == 303
            cookie = other.cookie("gate")
            assert cookie
            redis = Redis.from_url(redis_server.url)
            sealed = await redis.get(record_key(cookie))
            await redis.aclose()
            assert sealed is not None
            token = refresh_token_of(cookie, sealed)
            jar = aiohttp.CookieJar(unsafe=True)
            jar.update_cookies({"gate": cookie}, URL(b))
            async with (
                aiohttp.ClientSession(cookie_jar=jar) as http,
                http.ws_connect(b + "/ws") as ws,
            ):
                await ws.send_str("hello")
                assert (await ws.receive(timeout=5)).data == "hello"
                (other_id,), csrf = await account(mine)
                resp = await mine.post(
                    "/_auth/account/sessions/end", {"csrf": csrf, "session": other_id}
                )
                assert resp.status == 303
                msg = await ws.receive(timeout=interval + 5)
                assert msg.type is aiohttp.WSMsgType.CLOSE, msg
                assert ws.close_code == 1008
            # The socket's re-check presented the cookie: its token is revoked already.
            assert revoked(double, token) == 1
            assert (await other.get("/")).status == 302
            assert revoked(double, token) == 1
        finally:
            await mine.close()
            await other.close()


async def test_sign_out_everywhere_else_revokes_each_others_token_on_its_return(
    pool: dict[str, Any], double: CognitoDouble, echo_app: str, redis_server: RedisProcess
) -> None:
    redis = Redis.from_url(redis_server.url)
    async with replicas(pool, echo_app, redis_server.url) as (a, b):
        mine = Browser(a)
        others = [Browser(b), Browser(a)]
        try:
            tokens = []
            for browser in (mine, *others):
                assert (await browser.login("gail", PASSWORD)).status == 303
            for browser in others:
                cookie = browser.cookie("gate")
                assert cookie
                sealed = await redis.get(record_key(cookie))
                assert sealed is not None
                tokens.append(refresh_token_of(cookie, sealed))
            ids, csrf = await account(mine)
            assert len(ids) == 2
            resp = await mine.post("/_auth/account/sessions/end-others", {"csrf": csrf})
            assert resp.status == 303
            assert [revoked(double, t) for t in tokens] == [0, 0]
            await to_login_at_once(others[0])
            assert [revoked(double, t) for t in tokens] == [1, 0]
            await to_login_at_once(others[1])
            assert [revoked(double, t) for t in tokens] == [1, 1]
            assert await redis.keys("{gate:s:*") == []
            assert (await mine.get("/")).status == 200
        finally:
            for browser in (mine, *others):
                await browser.close()
            await redis.aclose()


async def test_ending_another_session_on_a_redis_cluster(
    pool: dict[str, Any], double: CognitoDouble, echo_app: str
) -> None:
    # The rename is one script over two keys: the aside key's hash tag keeps it in the
    # record's slot, whichever master that is.
    with redis_cluster(3) as cluster:
        settings = proxy_settings(
            upstream_url=echo_app, session={"store_url": cluster.url, "cache_ttl": 0}, **pool
        )
        async with running_proxy(settings) as base:
            group = [Browser(base) for _ in range(4)]
            try:
                for browser in group:
                    assert (await browser.login("gail", PASSWORD)).status == 303
                ids, csrf = await account(group[0])
                assert len(ids) == 3
                resp = await group[0].post("/_auth/account/sessions/end-others", {"csrf": csrf})
                assert resp.status == 303
                before = sum(1 for op, _ in double.calls if op == "RevokeToken")
                for browser in group[1:]:
                    assert (await browser.get("/")).status == 302
                after = sum(1 for op, _ in double.calls if op == "RevokeToken")
                assert after - before == 3
                assert (await group[0].get("/")).status == 200
            finally:
                for browser in group:
                    await browser.close()
