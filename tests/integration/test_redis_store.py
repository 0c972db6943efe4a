"""RedisStore and SealedStore against a real, private redis-server (see tests/support)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from proxy.demo import free_port
from proxy.sessions.backends import open_store
from proxy.sessions.redis import RedisStore
from proxy.sessions.sealed import SealedStore
from proxy.sessions.store import StoreUnavailable
from tests.support.redis_server import RedisProcess, start_redis_server

pytestmark = pytest.mark.integration

SECRET = b"k" * 32
TIMEOUT = 0.5


@pytest.fixture
async def raw(redis_server: RedisProcess) -> AsyncIterator[Redis]:
    """A plain client for looking at what the store wrote."""
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_server: RedisProcess) -> AsyncIterator[RedisStore]:
    s = open_store(redis_server.url, timeout=TIMEOUT)
    assert isinstance(s, RedisStore)
    yield s
    await s.close()


async def all_raised(store: RedisStore) -> float:
    """Run every operation against a dead server; each must raise StoreUnavailable.

    Returns the slowest one's duration.
    """
    worst = 0.0
    for op in (
        lambda: store.get("k"),
        lambda: store.set("k", b"v", 60),
        lambda: store.delete("k"),
        lambda: store.ping(),
    ):
        start = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await op()
        worst = max(worst, time.monotonic() - start)
    return worst


async def test_get_set_delete_ping(store: RedisStore, raw: Redis) -> None:
    await store.ping()
    assert await store.get("k") is None
    await store.set("k", b"\x00binary\xff", 60)
    assert await store.get("k") == b"\x00binary\xff"
    assert 59_000 < await raw.pttl("k") <= 60_000
    await store.delete("k")
    assert await store.get("k") is None
    await store.delete("k")  # deleting a missing key is fine


async def test_every_key_expires(store: RedisStore, raw: Redis) -> None:
    await store.set("short", b"v", 0.2)
    await store.set("long", b"v", 3600)
    await store.set("gone", b"v", 60)
    await store.set("gone", b"v", 0)  # non-positive ttl deletes
    keys = sorted(await raw.keys("*"))
    assert keys == [b"long", b"short"]
    assert [await raw.pttl(k) > 0 for k in keys] == [True, True]
    await asyncio.sleep(0.3)
    assert await store.get("short") is None
    assert await store.get("long") == b"v"


async def test_sealed_over_redis(store: RedisStore, raw: Redis) -> None:
    sealed = SealedStore(store, SECRET, namespace="s")
    payload = b'{"access_token":"eyJraWQiOiJBQkMiLCJhbGciOiJSUzI1NiJ9.SECRET-TOKEN"}'
    cookie = await sealed.create(payload, 60)
    assert await sealed.load(cookie) == payload
    await sealed.save(cookie, payload + b"!", 60)
    assert await sealed.load(cookie) == payload + b"!"

    # What a Redis dump shows: a hash-named key and ciphertext.
    blob = base64.urlsafe_b64decode(cookie.split(".")[0] + "==")
    record_id, key = blob[1:17], blob[17:49]
    (store_key,) = await raw.keys("*")
    assert store_key == b"gate:s:" + hashlib.sha256(record_id).hexdigest().encode()
    assert record_id.hex().encode() not in store_key
    value = await raw.get(store_key)
    assert value is not None
    assert b"SECRET-TOKEN" not in value and b"access_token" not in value
    assert record_id not in value and key not in value
    assert 0 < await raw.pttl(store_key) <= 60_000

    await sealed.delete(cookie)
    assert await sealed.load(cookie) is None
    assert await raw.keys("*") == []


async def test_sealed_expiry_in_redis(store: RedisStore) -> None:
    sealed = SealedStore(store, SECRET, namespace="f")
    cookie = await sealed.create(b"flow", 0.05)
    assert await sealed.load(cookie) == b"flow"
    await asyncio.sleep(0.15)
    assert await sealed.load(cookie) is None


async def test_unavailable_fast_when_nothing_listens() -> None:
    store = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=2.0)
    try:
        assert await all_raised(store) < 0.5  # refused: no waiting for the timeout
        sealed = SealedStore(store, SECRET, namespace="s")
        with pytest.raises(StoreUnavailable):
            await sealed.create(b"v", 60)
    finally:
        await store.close()


async def test_hung_server_costs_one_timeout(redis_server: RedisProcess) -> None:
    store = RedisStore.from_url(redis_server.url, timeout=TIMEOUT)
    try:
        await store.set("k", b"v", 60)  # a pooled, live connection
        redis_server.pause()
        try:
            start = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.get("k")
            elapsed = time.monotonic() - start
        finally:
            redis_server.resume()
        # Timed out once: not retried, and not redis-py's default retries with backoff.
        assert TIMEOUT * 0.8 < elapsed < TIMEOUT * 1.8
        assert await store.get("k") == b"v"  # and recovers once it answers again
    finally:
        await store.close()


async def test_stop_then_restart_recovers_without_a_new_store() -> None:
    server = start_redis_server()
    store = RedisStore.from_url(server.url, timeout=TIMEOUT)
    sealed = SealedStore(store, SECRET, namespace="s")
    try:
        cookie = await sealed.create(b"before", 60)
        assert await sealed.load(cookie) == b"before"

        server.stop()
        assert await all_raised(store) < TIMEOUT
        with pytest.raises(StoreUnavailable):  # never "no session" while down
            await sealed.load(cookie)

        server = start_redis_server(port=server.port)
        await store.ping()
        assert await sealed.load(cookie) is None  # the new server is empty (no persistence)
        cookie = await sealed.create(b"after", 60)
        assert await sealed.load(cookie) == b"after"
    finally:
        await store.close()
        server.stop()


async def test_restart_between_requests_is_invisible() -> None:
    # Several pooled connections all die with the server; the next requests must not
    # see it (the pool notices closed sockets, or retries once on a fresh connection).
    server = start_redis_server()
    store = RedisStore.from_url(server.url, timeout=TIMEOUT)
    try:
        await asyncio.gather(*(store.set(f"k{i}", b"v", 60) for i in range(20)))
        server.stop()
        server = start_redis_server(port=server.port)
        results = await asyncio.gather(*(store.get(f"k{i}") for i in range(20)))
        assert results == [None] * 20
        await asyncio.gather(*(store.set(f"k{i}", b"w", 60) for i in range(20)))
        assert await store.get("k7") == b"w"
    finally:
        await store.close()
        server.stop()


async def test_many_concurrent_requests_share_a_bounded_pool(redis_server: RedisProcess) -> None:
    # More concurrent requests than pooled connections queue instead of failing. The timeout
    # is generous on purpose: this pins queueing, not speed (a loaded CI machine is slow).
    store = RedisStore.from_url(redis_server.url, timeout=10.0)
    try:
        sealed = SealedStore(store, SECRET, namespace="s")
        cookies = await asyncio.gather(*(sealed.create(b"%d" % i, 60) for i in range(300)))
        loaded = await asyncio.gather(*(sealed.load(c) for c in cookies))
        assert loaded == [b"%d" % i for i in range(300)]
    finally:
        await store.close()


async def test_replace_writes_only_existing_keys_in_redis(redis_server: RedisProcess) -> None:
    store = RedisStore.from_url(redis_server.url, timeout=1.0)
    try:
        assert await store.replace("gate:t:absent", b"x", 60) is False
        assert await store.get("gate:t:absent") is None
        await store.set("gate:t:present", b"old", 60)
        assert await store.replace("gate:t:present", b"new", 60) is True
        assert await store.get("gate:t:present") == b"new"
    finally:
        await store.close()
