"""Two replicas share one Redis: a logout on one is refused by the other within milliseconds.

Each replica caches sessions in memory (GATE_SESSION_CACHE_TTL); these tests set that ttl long
(30 s) so that only the pub/sub invalidation can explain a fast refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import RedisProcess, start_redis_server
from tests.support.stack import (
    Browser,
    Upstream,
    cognito_kwargs,
    proxy_settings,
    recording_upstream,
    running_proxy,
)

PASSWORD = "Cache-pass-1!"
LONG_TTL = 30.0


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, "erin", PASSWORD, attributes={"email": "erin@example.com"})
    return cognito_kwargs(double, pool_id, client_id, secret)


@pytest.fixture
def redis_proc() -> Iterator[RedisProcess]:
    proc = start_redis_server()
    yield proc
    with contextlib.suppress(ProcessLookupError):  # a test may have stopped it already
        proc.resume()
    proc.stop()


@pytest.fixture
async def replicas(
    pool: dict[str, Any], redis_proc: RedisProcess
) -> AsyncIterator[tuple[str, str]]:
    async with AsyncExitStack() as stack:
        upstream: Upstream = await stack.enter_async_context(recording_upstream())
        settings = proxy_settings(
            upstream_url=upstream.url,
            session={"store_url": redis_proc.url, "cache_ttl": LONG_TTL},
            **pool,
        )
        a = await stack.enter_async_context(running_proxy(settings))
        b = await stack.enter_async_context(running_proxy(settings))
        yield a, b


def as_browser(base: str, cookie: str) -> Browser:
    browser = Browser(base)
    browser.http.cookie_jar.update_cookies({"gate": cookie})
    return browser


async def refused_after(browser: Browser, limit: float) -> float:
    """Seconds until `browser` is sent to the login page; fails the test after `limit`."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if (await browser.get("/")).status == 302:
            return time.monotonic() - started
        await asyncio.sleep(0.005)
    pytest.fail(f"the other replica still served the session after {limit} s")


async def test_logout_on_one_replica_is_refused_by_the_other_within_milliseconds(
    replicas: tuple[str, str],
) -> None:
    a, b = replicas
    on_a = Browser(a)
    try:
        assert (await on_a.login("erin", PASSWORD)).status == 303
        cookie = on_a.cookie("gate")
        assert cookie
        on_b = as_browser(b, cookie)
        try:
            for _ in range(3):  # B has it cached now
                assert (await on_b.get("/")).status == 200
            page = await on_a.get("/_auth/logout")
            token = page_csrf(await page.text())
            assert (await on_a.post("/_auth/logout", {"csrf": token})).status == 303
            waited = await refused_after(on_b, limit=5.0)
            print(f"replica B refused the signed-out cookie after {waited * 1000:.1f} ms")
            assert waited < 1.0, f"took {waited:.3f} s; the cache ttl is {LONG_TTL} s"
        finally:
            await on_b.close()
    finally:
        await on_a.close()


async def test_while_the_invalidation_channel_is_down_no_replica_serves_from_cache(
    replicas: tuple[str, str], redis_proc: RedisProcess
) -> None:
    a, b = replicas
    on_a = Browser(a)
    try:
        assert (await on_a.login("erin", PASSWORD)).status == 303
        cookie = on_a.cookie("gate")
        assert cookie
        on_b = as_browser(b, cookie)
        try:
            assert (await on_b.get("/")).status == 200  # cached on B
            redis_proc.stop()  # the subscription breaks: B must stop trusting its cache
            deadline = time.monotonic() + 5
            status = 200
            while time.monotonic() < deadline and status == 200:
                status = (await on_b.get("/", headers={"Accept": "application/json"})).status
                await asyncio.sleep(0.01)
            assert status == 503  # asks the store, which is down: fail closed
        finally:
            await on_b.close()
    finally:
        await on_a.close()


def page_csrf(page: str) -> str:
    from tests.support.stack import CSRF_FIELD

    match = CSRF_FIELD.search(page)
    assert match
    return match.group(1)
