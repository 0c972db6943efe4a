"""The app behind the proxy refuses or hangs: our own 502 / 504 page, and no request is resent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from proxy.demo import free_port
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import Browser, proxy_settings, running_proxy

PASSWORD = "Upstream-pass-1!"


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, _ = double.create_client(pool_id, secret=False)
    double.add_user(pool_id, "jo", PASSWORD)
    return {
        "pool_id": pool_id,
        "client_id": client_id,
        "endpoint_url": double.url,
        "jwks_url": double.jwks_url(pool_id),
        "issuer": double.issuer(pool_id),
    }


@asynccontextmanager
async def hanging_upstream(seen: list[str]) -> AsyncIterator[str]:
    async def hang(request: web.Request) -> web.Response:
        seen.append(request.method)
        await asyncio.sleep(3)
        return web.Response(text="too late")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_refused_upstream_gets_our_502_page(pool: dict[str, Any]) -> None:
    settings = proxy_settings(upstream_url=f"http://127.0.0.1:{free_port()}", **pool)
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("jo", PASSWORD)).status == 303
            resp = await browser.get("/app")
            assert resp.status == 502
            page = await resp.text()
            assert "Bad gateway" in page
            assert "/_auth/static/" in page  # our stylesheet: the branded page, not a bare one
            assert "Content-Security-Policy" in resp.headers
        finally:
            await browser.close()


async def test_hanging_upstream_gets_504_and_a_post_is_sent_once(pool: dict[str, Any]) -> None:
    seen: list[str] = []
    async with hanging_upstream(seen) as upstream:
        settings = proxy_settings(upstream_url=upstream, upstream={"url": upstream,
                                  "read_timeout": 0.5}, **pool)  # fmt: skip
        async with running_proxy(settings) as base:
            browser = Browser(base)
            try:
                assert (await browser.login("jo", PASSWORD)).status == 303
                resp = await browser.post("/orders", {"item": "1"})
                assert resp.status == 504
                assert "Gateway timeout" in await resp.text()
                await asyncio.sleep(0.3)
                assert seen == ["POST"]  # never resent
            finally:
                await browser.close()
