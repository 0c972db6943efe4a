"""An open WebSocket lives only as long as its session, on this replica and across replicas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from proxy.demo import free_port
from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import RedisProcess
from tests.support.stack import CSRF_FIELD, Browser, proxy_settings, running_proxy

pytestmark = pytest.mark.integration

PASSWORD = "Socket-pass-1!"


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, _ = double.create_client(pool_id)
    double.add_user(pool_id, "walt", PASSWORD)
    return {
        "pool_id": pool_id,
        "client_id": client_id,
        "endpoint_url": double.url,
        "jwks_url": double.jwks_url(pool_id),
        "issuer": double.issuer(pool_id),
    }


@pytest.fixture
async def echo_app() -> AsyncIterator[str]:
    """An upstream with a WebSocket echo at /ws."""

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type is aiohttp.WSMsgType.TEXT:
                await sock.send_str(msg.data)
        return sock

    app = web.Application()
    app.router.add_get("/ws", ws)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def socket_with(
    browser: Browser, base: str
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    cookie = browser.cookie("gate")
    assert cookie
    jar = aiohttp.CookieJar(unsafe=True)
    jar.update_cookies({"gate": cookie}, URL(base))
    async with aiohttp.ClientSession(cookie_jar=jar) as http, http.ws_connect(base + "/ws") as ws:
        await ws.send_str("hello")
        assert (await ws.receive(timeout=5)).data == "hello"
        yield ws


async def sign_out(browser: Browser, **fields: str) -> None:
    page = await browser.get("/_auth/logout")
    match = CSRF_FIELD.search(await page.text())
    assert match
    assert (await browser.post("/_auth/logout", {"csrf": match.group(1), **fields})).status == 303


async def closed_after(ws: aiohttp.ClientWebSocketResponse, started: float) -> float:
    msg = await ws.receive(timeout=10)
    assert msg.type is aiohttp.WSMsgType.CLOSE, msg
    assert ws.close_code == 1008
    return time.monotonic() - started


async def test_logout_closes_the_sessions_websocket_at_once(
    pool: dict[str, Any], echo_app: str
) -> None:
    # Re-checks are rare here: only the in-process end signal can close it fast.
    settings = proxy_settings(upstream_url=echo_app, session={"ws_recheck_interval": 60}, **pool)
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("walt", PASSWORD)).status == 303
            async with socket_with(browser, base) as ws:
                started = time.monotonic()
                await sign_out(browser)
                elapsed = await closed_after(ws, started)
                print(f"websocket closed {elapsed * 1000:.0f} ms after logout (same replica)")
                assert elapsed < 2.0  # the re-check would take 60 s: this was the end signal
        finally:
            await browser.close()


async def test_sign_out_everywhere_on_one_replica_closes_websockets_on_another(
    pool: dict[str, Any], echo_app: str, redis_server: RedisProcess
) -> None:
    interval = 0.5
    settings = proxy_settings(
        upstream_url=echo_app,
        store_url=redis_server.url,
        session={"store_url": redis_server.url, "ws_recheck_interval": interval},
        **pool,
    )
    async with running_proxy(settings) as a, running_proxy(settings) as b:
        on_a, on_b = Browser(a), Browser(b)
        try:
            assert (await on_a.login("walt", PASSWORD)).status == 303
            assert (await on_b.login("walt", PASSWORD)).status == 303  # another device
            async with socket_with(on_b, b) as ws:
                started = time.monotonic()
                await sign_out(on_a, everywhere="1")
                elapsed = await closed_after(ws, started)
                print(f"websocket on replica B closed {elapsed * 1000:.0f} ms after sign-out")
                assert elapsed < interval + 2.0
        finally:
            await on_a.close()
            await on_b.close()


async def test_a_websocket_of_a_live_session_stays_open_across_rechecks(
    pool: dict[str, Any], echo_app: str
) -> None:
    settings = proxy_settings(upstream_url=echo_app, session={"ws_recheck_interval": 0.2}, **pool)
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("walt", PASSWORD)).status == 303
            async with socket_with(browser, base) as ws:
                for i in range(4):
                    await ws.send_str(f"m{i}")
                    assert (await ws.receive(timeout=2)).data == f"m{i}"
                    await asyncio.sleep(0.25)
        finally:
            await browser.close()
