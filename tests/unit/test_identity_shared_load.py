"""Concurrent cache misses for one cookie share one store read.

When a session's cache entry expires, every request of that session in flight misses at the
same moment; each used to read the record from the store itself (50 reads, and 50 pooled Redis
connections, at 50 busy connections). A real SessionManager over memory://, behind a store that
holds each GET until the test lets it go and counts them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from proxy.gate.cache import SessionCache
from proxy.gate.identity import Identity
from proxy.sessions.backends import open_store
from proxy.sessions.session import Session, SessionManager
from proxy.sessions.store import StoreUnavailable
from tests.unit.test_identity_decisions import TOKEN_STATES, StubRefresher, session


class HeldStore:
    """The memory store, but every GET reads at once and answers when ``release`` is set (or
    fails, when told): a read in flight holds what the record was when it began."""

    def __init__(self) -> None:
        self._inner = open_store("memory://")
        self.gets = 0
        self.release = asyncio.Event()
        self.fail = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        value = await self._inner.get(key)
        await self.release.wait()
        if self.fail:
            raise StoreUnavailable("redis GET failed: TimeoutError")
        return value


async def _setup() -> tuple[Identity, SessionManager, SessionCache, HeldStore, str]:
    store = HeldStore()
    cache = SessionCache(ttl=60)

    async def changed(record: str, ttl: float) -> None:
        cache.invalidate(record)

    async def ended(records: Sequence[str]) -> None:
        for record in records:
            cache.invalidate(record)

    sessions = SessionManager(
        store,  # type: ignore[arg-type]
        b"k" * 32,
        lifetime=86_400,
        on_change=changed,
        on_end=ended,
    )
    identity = Identity(
        sessions=sessions, refresher=StubRefresher("new"), cookie_name="gate", cache=cache
    )
    store.release.set()
    cookie = await sessions.create(session(TOKEN_STATES["fresh"]))
    store.release.clear()
    store.gets = 0
    return identity, sessions, cache, store, cookie


async def _started(store: HeldStore, gets: int) -> None:
    for _ in range(100):
        if store.gets >= gets:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{store.gets} GETs, expected {gets}")


async def test_fifty_concurrent_misses_read_the_store_once() -> None:
    identity, _, cache, store, cookie = await _setup()
    tasks = [asyncio.create_task(identity.resolve_cookie(cookie)) for _ in range(50)]
    await _started(store, 1)
    store.release.set()
    got = await asyncio.gather(*tasks)
    assert store.gets == 1
    assert all(isinstance(s, Session) and s.access_token == "acc-old" for s in got)
    assert cache.size == 1
    await identity.resolve_cookie(cookie)  # and then from memory
    assert store.gets == 1


async def test_a_request_after_a_sign_out_does_not_take_a_read_begun_before_it() -> None:
    identity, sessions, _, store, cookie = await _setup()
    before = asyncio.create_task(identity.resolve_cookie(cookie))
    await _started(store, 1)
    await sessions.delete(cookie)  # signed out (here or on another replica) meanwhile
    after = asyncio.create_task(identity.resolve_cookie(cookie))
    await _started(store, 2)  # its own read
    store.release.set()
    assert await after is None
    got = await before  # began before the sign-out: it read the record, which is not cached
    assert got is not None
    assert await identity.resolve_cookie(cookie) is None


async def test_a_cancelled_reader_leaves_the_others_to_read_for_themselves() -> None:
    identity, _, _, store, cookie = await _setup()
    first = asyncio.create_task(identity.resolve_cookie(cookie))
    await _started(store, 1)
    joiner = asyncio.create_task(identity.resolve_cookie(cookie))
    await asyncio.sleep(0)
    first.cancel()  # its client went away
    with pytest.raises(asyncio.CancelledError):
        await first
    await _started(store, 2)  # the joiner read it itself
    store.release.set()
    got = await joiner
    assert got is not None and got.access_token == "acc-old"


async def test_a_cancelled_joiner_does_not_cancel_the_read() -> None:
    identity, _, cache, store, cookie = await _setup()
    first = asyncio.create_task(identity.resolve_cookie(cookie))
    await _started(store, 1)
    joiner = asyncio.create_task(identity.resolve_cookie(cookie))
    await asyncio.sleep(0)
    joiner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await joiner
    store.release.set()
    got = await first
    assert got is not None and store.gets == 1 and cache.size == 1


async def test_a_store_outage_fails_every_waiting_request_closed_after_one_read() -> None:
    identity, _, cache, store, cookie = await _setup()
    store.fail = True
    tasks = [asyncio.create_task(identity.resolve_cookie(cookie)) for _ in range(10)]
    await _started(store, 1)
    store.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert store.gets == 1
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert cache.size == 0
    store.fail = False
    got = await identity.resolve_cookie(cookie)  # recovers by itself at the next request
    assert got is not None and store.gets == 2
