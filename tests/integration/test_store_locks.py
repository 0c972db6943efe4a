"""Lock and index primitives of every backend: the same behaviour from memory:// and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from proxy.sessions.backends import open_store
from proxy.sessions.lock import StoreLock
from proxy.sessions.memory import MemoryStore
from proxy.sessions.store import SessionStore
from tests.support.redis_server import RedisProcess

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        s: SessionStore = MemoryStore()
    else:
        server: RedisProcess = request.getfixturevalue("redis_server")
        s = open_store(server.url, timeout=1.0)
    yield s
    await s.close()


async def test_acquire_is_exclusive_until_released_by_its_owner(store: SessionStore) -> None:
    assert await store.acquire("lock", "a", 5)
    assert not await store.acquire("lock", "b", 5)
    await store.release("lock", "b")  # not b's lock: stays
    assert not await store.acquire("lock", "b", 5)
    await store.release("lock", "a")
    assert await store.acquire("lock", "b", 5)


async def test_a_lease_expires_by_itself_and_only_its_owner_renews_it(
    store: SessionStore,
) -> None:
    assert await store.acquire("lock", "a", 0.2)
    assert not await store.renew("lock", "b", 5)
    assert await store.renew("lock", "a", 0.3)
    await asyncio.sleep(0.4)
    assert not await store.renew("lock", "a", 5)  # expired: gone, not renewable
    assert await store.acquire("lock", "b", 5)


async def test_store_lock_keeps_its_lease_while_work_runs(store: SessionStore) -> None:
    lock = StoreLock(store, "gate:lock:x", lease=0.3)
    assert await lock.obtain()
    async with lock.kept():
        await asyncio.sleep(0.7)  # more than twice the lease
        assert not await StoreLock(store, "gate:lock:x", lease=1).obtain()
    await lock.release()
    assert await StoreLock(store, "gate:lock:x", lease=1).obtain()


async def test_index_members_add_remove_and_expire(store: SessionStore) -> None:
    assert await store.members("idx") == frozenset()
    await store.add_member("idx", "s1", 0.3)
    await store.add_member("idx", "s2", 0.3)
    assert await store.members("idx") == {"s1", "s2"}
    await store.remove_member("idx", "s1")
    assert await store.members("idx") == {"s2"}
    await asyncio.sleep(0.4)
    assert await store.members("idx") == frozenset()


async def test_index_ttl_is_lengthened_never_shortened(store: SessionStore) -> None:
    await store.add_member("idx", "long", 5)
    await store.add_member("idx", "short", 0.1)
    await asyncio.sleep(0.25)
    assert await store.members("idx") == {"long", "short"}
