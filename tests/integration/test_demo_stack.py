"""The demo's own pieces (moto's Cognito, the demo app) behind the proxy, with Redis sessions.

moto accepts any SRP signature, so this proves the plumbing and the demo, not the SRP math
(test_login_flow.py does that against the strict double).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from aiohttp import web

from proxy.demo import (
    DEMO_USERS,
    LocalCognito,
    demo_settings,
    free_port,
    start_local_cognito,
    upstream_app,
)
from tests.support.redis_server import RedisProcess, start_redis_server
from tests.support.stack import Browser, running_proxy


@pytest.fixture(scope="module")
def moto_cognito() -> Iterator[LocalCognito]:
    cognito = start_local_cognito()
    try:
        yield cognito
    finally:
        cognito.stop()


@pytest.fixture(scope="module")
def redis_proc() -> Iterator[RedisProcess]:
    proc = start_redis_server()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def demo_app_url() -> AsyncIterator[str]:
    port = free_port()
    runner = web.AppRunner(upstream_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_demo_user_signs_in_and_the_demo_app_shows_the_headers(
    moto_cognito: LocalCognito, redis_proc: RedisProcess, demo_app_url: str, store: str
) -> None:
    settings = demo_settings(moto_cognito, demo_app_url, "127.0.0.1:8080")
    if store == "redis":
        settings = settings.model_copy(
            update={"session": settings.session.model_copy(update={"store_url": redis_proc.url})}
        )
    alice = DEMO_USERS[0]
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            resp = await browser.get("/")
            assert resp.status == 302
            resp = await browser.login(alice.username, alice.password)
            assert resp.status == 303
            page = await browser.get("/")
            text = await page.text()
            assert page.status == 200
            assert "Hello, alice" in text
            who = await (await browser.get("/api/whoami")).json()
            groups = set(who.pop("X-Forwarded-Groups").split(","))
            assert groups == {"admins", "staff"}  # moto keeps groups unordered
            assert who == {
                "X-Forwarded-User": "alice",
                "X-Forwarded-Email": "alice@example.com",
                "X-Forwarded-Preferred-Username": "Alice",
            }
            readiness = await browser.get("/_auth/readyz")
            assert readiness.status == 200
        finally:
            await browser.close()

    if store == "redis":
        # What a Redis dump reveals: no tokens, no cookie values, no user names.
        client = redis.Redis.from_url(redis_proc.url)
        keys = client.keys("gate:*")
        assert keys
        # Session records are strings; the per-user index (gate:u:...) is a set of record keys.
        dump = b"".join(
            b"".join(client.smembers(k)) if client.type(k) == b"set" else client.get(k) or b""
            for k in keys
        )
        assert b"".join(keys).count(b"gate:u:") == 1
        assert b"eyJ" not in dump  # no JWT (base64 of '{"')
        assert b"alice" not in dump
        client.close()
