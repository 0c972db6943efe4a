"""No session card outlives its session: whichever way a session ends, its gate:card:* key in
Redis goes with it (a private redis-server, its keys counted after each kind of end)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import pytest
from redis.asyncio import Redis

from tests.support.cognito_double import CognitoDouble, running_double
from tests.support.redis_server import RedisProcess
from tests.support.stack import Browser, Upstream, cognito_kwargs, proxy_settings, running_proxy

PASSWORD = "Card-pass-1!"
TOKEN_TTL = 4
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SESSION_IDS = re.compile(r'name="session" value="([0-9a-f]{64})"')


@pytest.fixture(scope="module")
def double() -> Iterator[CognitoDouble]:
    # Tokens live 4 s: the proxy refreshes them once half their life has passed.
    with running_double(token_ttl=TOKEN_TTL) as d:
        yield d


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, "fay", PASSWORD, attributes={"email": "fay@example.com"})
    return cognito_kwargs(double, pool_id, client_id, secret)


@pytest.fixture
async def redis(redis_server: RedisProcess) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def cards(redis: Redis) -> int:
    return len(await redis.keys("gate:card:*"))


async def records(redis: Redis) -> int:
    return len(await redis.keys("gate:s:*"))


async def signed_in(base: str, count: int) -> list[Browser]:
    group = [Browser(base) for _ in range(count)]
    for browser in group:
        assert (await browser.login("fay", PASSWORD)).status == 303
    return group


async def csrf(browser: Browser, path: str) -> str:
    async with browser.http.get(browser.base + path) as resp:
        assert resp.status == 200
        match = CSRF.search(await resp.text())
    assert match
    return match[1]


def settings(pool: dict[str, Any], upstream: Upstream, redis: RedisProcess, **session: Any) -> Any:
    return proxy_settings(
        upstream_url=upstream.url, session={"store_url": redis.url, **session}, **pool
    )


async def test_sign_out_here_and_everywhere_leave_no_card(
    pool: dict[str, Any], upstream: Upstream, redis_server: RedisProcess, redis: Redis
) -> None:
    async with running_proxy(settings(pool, upstream, redis_server)) as base:
        group = await signed_in(base, 3)
        try:
            assert (await cards(redis), await records(redis)) == (3, 3)
            token = await csrf(group[0], "/_auth/logout")
            assert (await group[0].post("/_auth/logout", {"csrf": token})).status == 303
            assert (await cards(redis), await records(redis)) == (2, 2)
            token = await csrf(group[1], "/_auth/logout")
            resp = await group[1].post("/_auth/logout", {"csrf": token, "everywhere": "1"})
            assert resp.status == 303
            assert (await group[2].get("/")).status == 302
            assert (await cards(redis), await records(redis)) == (0, 0)
        finally:
            for browser in group:
                await browser.close()


async def test_ending_sessions_from_the_account_page_leaves_no_card(
    pool: dict[str, Any], upstream: Upstream, redis_server: RedisProcess, redis: Redis
) -> None:
    async with running_proxy(settings(pool, upstream, redis_server)) as base:
        group = await signed_in(base, 4)
        try:
            async with group[0].http.get(base + "/_auth/account") as resp:
                html = await resp.text()
            first, *_ = SESSION_IDS.findall(html)
            token = CSRF.search(html)
            assert token
            resp = await group[0].post(
                "/_auth/account/sessions/end", {"csrf": token[1], "session": first}
            )
            assert resp.status == 303
            assert await cards(redis) == 3
            resp = await group[0].post("/_auth/account/sessions/end-others", {"csrf": token[1]})
            assert resp.status == 303
            assert await cards(redis) == 1  # this browser's own
            for browser in group[1:]:
                assert (await browser.get("/")).status == 302
            assert await cards(redis) == 1
        finally:
            for browser in group:
                await browser.close()


async def test_an_expired_session_leaves_no_card(
    pool: dict[str, Any], upstream: Upstream, redis_server: RedisProcess, redis: Redis
) -> None:
    # Idle for longer than the idle timeout: the record expires in Redis, and the card with it.
    async with running_proxy(settings(pool, upstream, redis_server, idle_timeout=2)) as base:
        (browser,) = await signed_in(base, 1)
        try:
            assert (await cards(redis), await records(redis)) == (1, 1)
            await asyncio.sleep(2.5)
            assert (await cards(redis), await records(redis)) == (0, 0)
            assert (await browser.get("/")).status == 302
        finally:
            await browser.close()


async def test_a_session_cognito_revoked_leaves_no_card(
    pool: dict[str, Any],
    double: CognitoDouble,
    upstream: Upstream,
    redis_server: RedisProcess,
    redis: Redis,
) -> None:
    async with running_proxy(settings(pool, upstream, redis_server)) as base:
        (browser,) = await signed_in(base, 1)
        try:
            assert await cards(redis) == 1
            idp = boto3.client("cognito-idp", region_name=double.region, endpoint_url=double.url)
            idp.admin_user_global_sign_out(UserPoolId=pool["pool_id"], Username="fay")
            await asyncio.sleep(TOKEN_TTL / 2 + 0.3)  # past half-life: the gate refreshes
            resp = await browser.get("/")
            assert resp.status == 302  # Cognito refused the refresh: signed out
            assert (await cards(redis), await records(redis)) == (0, 0)
        finally:
            await browser.close()
