"""Pre-login records have a bound (issue 13.4): showing a form writes nothing to the store.

Every cookie-less ``GET /_auth/login`` used to write a record kept for the login timeout, so R
requests a second held 600·R records (and in ``memory://`` evicted real sessions). The form's
CSRF token and return path now travel in a signed pre-login cookie; the store is written only
once a posted form has something to keep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import redis

import proxy.app
from proxy.sessions.memory import MemoryStore
from tests.security.conftest import PASSWORD, USER, pool_settings
from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import RedisProcess
from tests.support.stack import Browser, proxy_settings, recording_upstream, running_proxy

FLOOD = 300


async def _flood(base: str, paths: tuple[str, ...]) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:

        async def one(i: int) -> None:
            path = paths[i % len(paths)]
            async with http.get(f"{base}{path}?rd=/app/{i}", allow_redirects=False) as resp:
                assert resp.status == 200
                await resp.read()

        for start in range(0, FLOOD, 50):
            await asyncio.gather(*(one(i) for i in range(start, start + 50)))


async def _flood_leaves_the_store_as_it_was(
    double: CognitoDouble, store_url: str, count: Callable[[], int]
) -> None:
    async with recording_upstream() as upstream:
        kw: dict[str, Any] = pool_settings(double) | {"upstream_url": upstream.url}
        settings = proxy_settings(**kw, session={"store_url": store_url})
        async with running_proxy(settings) as base:
            browser = Browser(base)
            try:
                # A signed-in user first: their records are what a flood must not disturb.
                assert (await browser.login(USER, PASSWORD)).status == 303
                before = count()
                await _flood(base, ("/_auth/login", "/_auth/forgot"))
                assert count() == before
                assert (await browser.get("/")).status == 200  # still signed in
                # And a sign-in from one of those pages works as before.
                other = Browser(base)
                try:
                    assert (await other.login(USER, PASSWORD)).status == 303
                finally:
                    await other.close()
            finally:
                await browser.close()


async def test_a_flood_of_login_pages_writes_nothing_to_the_memory_store(
    double: CognitoDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores: list[MemoryStore] = []
    open_store = proxy.app.open_store

    def keep(url: str, **kw: Any) -> Any:
        store = open_store(url, **kw)
        assert isinstance(store, MemoryStore)
        stores.append(store)
        return store

    monkeypatch.setattr(proxy.app, "open_store", keep)
    await _flood_leaves_the_store_as_it_was(double, "memory://", lambda: stores[0].size)


async def test_a_flood_of_login_pages_writes_nothing_to_redis(
    double: CognitoDouble, redis_server: RedisProcess
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        await _flood_leaves_the_store_as_it_was(
            double,
            redis_server.url,
            lambda: int(client.dbsize()),  # type: ignore[arg-type]
        )
    finally:
        client.close()
