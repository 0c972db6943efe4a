"""ONE behaviour suite for every backend: memory:// and Redis must answer the same.

Each test runs against both. Where they used to differ (zero and non-finite TTLs, a delete
that left the per-user index behind in memory, counters at zero TTL, ...) the backends were
fixed, not the tests. What only one backend has (eviction under a cap, Redis outages and
topologies) is tested beside it (tests/unit/test_sessions.py, test_redis_store.py).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from proxy.sessions.backends import open_store
from proxy.sessions.lock import StoreLock
from proxy.sessions.store import SessionStore
from tests.support.redis_server import RedisProcess, start_redis_server

pytestmark = pytest.mark.integration

BAD_TTLS = [math.nan, math.inf, -math.inf]


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisProcess]:
    """One private redis-server for the module, emptied before each test."""
    server = start_redis_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        s = open_store("memory://")
    else:
        server: RedisProcess = request.getfixturevalue("shared_redis")
        raw = Redis.from_url(server.url)
        await raw.flushall()
        await raw.aclose()
        s = open_store(server.url, timeout=1.0)
    yield s
    await s.close()


# --- key-value -------------------------------------------------------------------------


async def test_get_set_overwrite_delete(store: SessionStore) -> None:
    assert await store.get("k") is None
    await store.set("k", b"\x00binary\xff", 60)
    assert await store.get("k") == b"\x00binary\xff"
    await store.set("k", b"v2", 60)
    assert await store.get("k") == b"v2"
    await store.delete("k")
    assert await store.get("k") is None
    await store.delete("k")  # deleting a missing key is fine
    await store.ping()


async def test_every_key_expires(store: SessionStore) -> None:
    await store.set("short", b"v", 0.2)
    await store.set("long", b"v", 60)
    await asyncio.sleep(0.3)
    assert await store.get("short") is None
    assert await store.get("long") == b"v"


@pytest.mark.parametrize("ttl", [0, -1, -0.001])
async def test_a_ttl_of_zero_or_less_deletes(store: SessionStore, ttl: float) -> None:
    await store.set("k", b"v", 60)
    await store.set("k", b"v2", ttl)
    assert await store.get("k") is None


async def test_a_tiny_positive_ttl_still_stores(store: SessionStore) -> None:
    await store.set("k", b"v", 0.0001)  # Redis rounds up to 1 ms; either way it expires
    await asyncio.sleep(0.05)
    assert await store.get("k") is None


@pytest.mark.parametrize("ttl", BAD_TTLS)
async def test_a_non_finite_ttl_is_a_caller_bug_everywhere(store: SessionStore, ttl: float) -> None:
    """A key that never expires must not be creatable by a NaN or infinity."""
    await store.set("k", b"v", 60)
    await store.acquire("lock", "t", 60)
    with pytest.raises(ValueError, match="ttl"):
        await store.set("k", b"v", ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.replace("k", b"v", ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.replace("missing", b"v", ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.acquire("other", "t", ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.renew("lock", "t", ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.renew("not-held", "t", ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.add_member("idx", "m", ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.incr("n", ttl)
    assert await store.get("k") == b"v"  # nothing was written
    assert await store.get("n") is None
    assert await store.members("idx") == frozenset()


async def test_replace_writes_only_an_existing_key(store: SessionStore) -> None:
    assert not await store.replace("k", b"v", 60)
    assert await store.get("k") is None  # no write
    await store.set("k", b"v1", 60)
    assert await store.replace("k", b"v2", 60)
    assert await store.get("k") == b"v2"


async def test_replace_does_not_resurrect_an_expired_key(store: SessionStore) -> None:
    await store.set("k", b"v1", 0.1)
    await asyncio.sleep(0.2)
    assert not await store.replace("k", b"v2", 60)
    assert await store.get("k") is None


async def test_replace_with_a_zero_ttl_deletes_and_says_whether_the_key_was_there(
    store: SessionStore,
) -> None:
    await store.set("k", b"v", 60)
    assert await store.replace("k", b"v2", 0)
    assert await store.get("k") is None
    assert not await store.replace("k", b"v3", 0)
    assert await store.get("k") is None


async def test_replace_sets_the_new_ttl(store: SessionStore) -> None:
    await store.set("k", b"v1", 60)
    assert await store.replace("k", b"v2", 0.2)
    await asyncio.sleep(0.3)
    assert await store.get("k") is None


# --- leases ----------------------------------------------------------------------------


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


async def test_a_lease_is_not_acquired_for_zero_seconds(store: SessionStore) -> None:
    assert not await store.acquire("lock", "a", 0)
    assert await store.acquire("lock", "b", 5)  # and nothing was left behind


async def test_renewing_for_zero_seconds_ends_the_lease(store: SessionStore) -> None:
    assert await store.acquire("lock", "a", 5)
    assert await store.renew("lock", "a", 0)
    assert await store.acquire("lock", "b", 5)


async def test_acquire_does_not_take_a_key_holding_a_value(store: SessionStore) -> None:
    await store.set("lock", b"something", 5)
    assert not await store.acquire("lock", "a", 5)
    await store.release("lock", "something")  # a value is released only by its holder
    assert await store.get("lock") is None


async def test_store_lock_keeps_its_lease_while_work_runs(store: SessionStore) -> None:
    lock = StoreLock(store, "gate:lock:x", lease=0.3)
    assert await lock.obtain()
    async with lock.kept():
        await asyncio.sleep(0.7)  # more than twice the lease
        assert not await StoreLock(store, "gate:lock:x", lease=1).obtain()
    await lock.release()
    assert await StoreLock(store, "gate:lock:x", lease=1).obtain()


# --- sets ------------------------------------------------------------------------------


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


async def test_existing_names_the_live_keys_of_many(store: SessionStore) -> None:
    await store.set("a", b"1", 60)
    await store.set("short", b"1", 0.1)
    await store.add_member("idx", "m", 60)
    await asyncio.sleep(0.2)
    assert await store.existing(["a", "short", "idx", "never"]) == {"a", "idx"}
    assert await store.existing([]) == frozenset()


async def test_delete_members_deletes_their_keys_and_drops_them_from_the_set(
    store: SessionStore,
) -> None:
    for key in ("r1", "r2", "r3", "c1", "c2"):
        await store.set(key, b"v", 60)
    for member in ("r1", "r2", "r3"):
        await store.add_member("idx", member, 60)
    await store.delete_members("idx", ["r1", "r2"], ["c1", "c2", "never"])
    assert await store.existing(["r1", "r2", "r3", "c1", "c2"]) == {"r3"}
    assert await store.members("idx") == {"r3"}
    await store.delete_members("idx", ["r3"])
    assert await store.members("idx") == frozenset()  # left empty: gone
    assert await store.existing(["idx", "r3"]) == frozenset()
    await store.delete_members("", (), ())  # nothing at all: fine


async def test_set_aside_renames_keeping_the_ttl_and_drops_the_members(
    store: SessionStore,
) -> None:
    for key in ("r1", "r2", "c1"):
        await store.set(key, b"v-" + key.encode(), 0.4 if key == "r1" else 60)
    for member in ("r1", "r2", "gone"):
        await store.add_member("idx", member, 60)
    await store.set_aside(
        "idx", {"r1": "{r1}:aside", "r2": "{r2}:aside", "gone": "{gone}:aside"}, ["c1"]
    )
    assert await store.existing(["r1", "r2", "c1", "{gone}:aside"]) == frozenset()
    assert await store.get("{r2}:aside") == b"v-r2"
    assert await store.get("{r1}:aside") == b"v-r1"
    assert await store.members("idx") == frozenset()
    await asyncio.sleep(0.5)  # r1's remaining ttl went with it
    assert await store.get("{r1}:aside") is None
    assert await store.get("{r2}:aside") == b"v-r2"
    await store.set_aside("idx", {}, ())  # nothing at all: fine


async def test_take_gives_the_value_to_one_caller_only(store: SessionStore) -> None:
    await store.set("k", b"v", 60)
    taken = await asyncio.gather(*(store.take("k") for _ in range(5)))
    assert sorted(taken, key=lambda v: v or b"") == [None, None, None, None, b"v"]
    assert await store.get("k") is None
    assert await store.take("never") is None


async def test_removing_the_last_member_removes_the_set(store: SessionStore) -> None:
    await store.add_member("idx", "only", 60)
    await store.remove_member("idx", "only")
    await store.remove_member("idx", "never")  # absent: fine
    assert await store.members("idx") == frozenset()
    # Gone for good: a new member starts a fresh set with its own ttl.
    await store.add_member("idx", "next", 0.1)
    await asyncio.sleep(0.2)
    assert await store.members("idx") == frozenset()


async def test_adding_with_a_zero_ttl_adds_nothing(store: SessionStore) -> None:
    await store.add_member("idx", "m", 0)
    assert await store.members("idx") == frozenset()
    await store.add_member("idx", "a", 60)
    await store.add_member("idx", "b", -1)
    assert await store.members("idx") == {"a"}


async def test_delete_removes_a_set_too(store: SessionStore) -> None:
    """Sign-out-everywhere deletes the per-user index with `delete`: it must be gone."""
    await store.add_member("idx", "s1", 60)
    await store.delete("idx")
    assert await store.members("idx") == frozenset()


async def test_a_value_written_over_a_set_replaces_it(store: SessionStore) -> None:
    await store.add_member("k", "s1", 60)
    await store.set("k", b"v", 60)
    assert await store.get("k") == b"v"
    await store.delete("k")
    assert await store.members("k") == frozenset()
    assert await store.get("k") is None


async def test_members_are_strings_whatever_their_characters(store: SessionStore) -> None:
    members = {"gate:s:" + "a" * 64, "ünïcode", "with space"}
    for m in members:
        await store.add_member("idx", m, 60)
    assert await store.members("idx") == members


# --- counters --------------------------------------------------------------------------


async def test_incr_counts_from_one_and_the_key_expires(store: SessionStore) -> None:
    assert await store.incr("n", 0.2) == 1
    assert await store.incr("n", 0.2) == 2
    assert await store.get("n") == b"2"
    await asyncio.sleep(0.3)
    assert await store.get("n") is None
    assert await store.incr("n", 60) == 1


async def test_incr_moves_the_expiry_to_ttl_after_the_last_call(store: SessionStore) -> None:
    assert await store.incr("n", 0.3) == 1
    await asyncio.sleep(0.2)
    assert await store.incr("n", 0.3) == 2
    await asyncio.sleep(0.2)  # 0.4 s after the first call, 0.2 s after the last
    assert await store.get("n") == b"2"


async def test_incr_continues_a_value_set_as_a_number(store: SessionStore) -> None:
    await store.set("n", b"41", 60)
    assert await store.incr("n", 60) == 42


@pytest.mark.parametrize("ttl", [0, -1])
async def test_a_counter_needs_a_positive_ttl(store: SessionStore, ttl: float) -> None:
    await store.set("n", b"5", 60)
    with pytest.raises(ValueError, match="positive ttl"):
        await store.incr("n", ttl)
    assert await store.get("n") == b"5"


async def test_concurrent_increments_all_count(store: SessionStore) -> None:
    values = await asyncio.gather(*(store.incr("n", 60) for _ in range(50)))
    assert sorted(values) == list(range(1, 51))
