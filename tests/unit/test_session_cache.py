"""The in-process session cache: bounded staleness and size, nothing cached across invalidation."""

from __future__ import annotations

import time

import pytest

from proxy.gate.cache import SessionCache
from proxy.sessions.session import Session


def session(sub: str = "u1") -> Session:
    now = time.time()
    return Session(
        username=sub,
        sub=sub,
        claims={"sub": sub},
        id_token="i",
        access_token="a",
        refresh_token=None,
        expires_at=now + 3600,
        created_at=now,
    )


def put(cache: SessionCache, cookie: str, record: str, *, ends_at: float | None = None) -> Session:
    s = session(cookie)
    cache.put(
        cookie,
        s,
        record=record,
        ends_at=time.time() + 3600 if ends_at is None else ends_at,
        ticket=cache.ticket(),
    )
    return s


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr("proxy.gate.cache.time.monotonic", lambda: self.now)


def test_an_entry_is_served_until_its_ttl_and_not_after(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    cache = SessionCache(ttl=5)
    s = put(cache, "c1", "r1")
    clock.now += 4.9
    assert cache.get("c1") is s
    clock.now += 0.2
    assert cache.get("c1") is None
    assert cache.size == 0


def test_an_entry_never_outlives_the_session() -> None:
    cache = SessionCache(ttl=60)
    put(cache, "c1", "r1", ends_at=time.time() - 0.001)
    assert cache.get("c1") is None


def test_invalidating_the_record_drops_its_entry_only() -> None:
    cache = SessionCache(ttl=60)
    put(cache, "c1", "r1")
    other = put(cache, "c2", "r2")
    cache.invalidate("r1")
    assert cache.get("c1") is None
    assert cache.get("c2") is other


def test_a_load_that_raced_an_invalidation_is_not_cached() -> None:
    cache = SessionCache(ttl=60)
    ticket = cache.ticket()  # a load from the store starts...
    cache.invalidate("r1")  # ...the session ends meanwhile (the message may arrive first)...
    cache.put("c1", session(), record="r1", ends_at=time.time() + 60, ticket=ticket)
    assert cache.get("c1") is None  # ...and what the load read must not be served


def test_size_is_bounded_least_recently_used_first() -> None:
    cache = SessionCache(ttl=60, max_entries=2)
    a = put(cache, "a", "ra")
    put(cache, "b", "rb")
    assert cache.get("a") is a  # a is now the most recently used
    c = put(cache, "c", "rc")
    assert cache.get("b") is None
    assert cache.get("a") is a and cache.get("c") is c
    cache.invalidate("rb")  # the evicted entry's index went with it
    assert cache.size == 2


def test_a_suspended_cache_serves_and_keeps_nothing_and_resumes_empty() -> None:
    cache = SessionCache(ttl=60)
    put(cache, "c1", "r1")
    cache.suspend()
    assert cache.get("c1") is None
    put(cache, "c2", "r2")
    assert cache.get("c2") is None
    cache.resume()
    assert cache.size == 0
    s = put(cache, "c3", "r3")
    assert cache.get("c3") is s


def test_an_empty_cache_is_still_truthy() -> None:
    # `cache.invalidate if cache else ...` once wired a no-op because an empty cache was falsy.
    assert SessionCache(ttl=1)


def test_zero_ttl_is_refused_rather_than_caching_forever() -> None:
    with pytest.raises(ValueError):
        SessionCache(ttl=0)
