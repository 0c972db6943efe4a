"""In-process cache of recently loaded sessions: cookie value → Session, for a few seconds.

A store round-trip, an HMAC, an AES-GCM decrypt and a JSON parse on every proxied request are
most of what a session costs; the cache skips all four for a cookie seen moments ago.

Staleness bound. An entry is served for at most ``ttl`` seconds after it was loaded, and never
past the session's absolute lifetime. Ending or changing a session (logout, refresh, ...) goes
through ``SessionManager``, whose change hook calls ``invalidate`` here at once and, with Redis,
publishes to the other replicas (``proxy.sessions.invalidation``), which drop their entry as
soon as the message arrives. Whenever that subscription is not known to be live, the cache is
``suspended`` (serves nothing), so a lost message can never extend the bound beyond ``ttl``.

Keys are exact cookie values: only a value that the store accepted can hit. The entry also
remembers its record hash (sha256 of the record id, as in the store key) so an invalidation,
which names only that hash, finds it.

A load that raced an invalidation is not cached: ``ticket()`` before the load, ``put(ticket)``
after; any invalidation in between voids the ticket.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import NamedTuple

from proxy.sessions.session import Session


class _Entry(NamedTuple):
    session: Session
    fresh_until: float  # time.monotonic() deadline
    ends_at: float  # wall clock: the session's absolute end; never served past it
    record: str


class SessionCache:
    """Bounded LRU of live sessions, ``ttl`` seconds each at most."""

    __slots__ = ("_by_record", "_entries", "_generation", "_max", "_ttl", "suspended")

    def __init__(self, *, ttl: float, max_entries: int = 10_000) -> None:
        if not ttl > 0:
            raise ValueError("ttl must be positive (a ttl of 0 means: build no cache)")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_record: dict[str, str] = {}
        self._generation = 0
        self.suspended = False

    @property
    def ttl(self) -> float:
        return self._ttl

    @property
    def size(self) -> int:  # not __len__: an empty cache must not be falsy
        return len(self._entries)

    def get(self, cookie: str) -> Session | None:
        entry = self._entries.get(cookie)
        if entry is None:
            return None
        if self.suspended or entry.fresh_until <= time.monotonic() or entry.ends_at <= time.time():
            self._drop(cookie)
            return None
        self._entries.move_to_end(cookie)
        return entry.session

    def ticket(self) -> int:
        """Take before loading from the store; pass to ``put``."""
        return self._generation

    def put(
        self, cookie: str, session: Session, *, record: str, ends_at: float, ticket: int
    ) -> None:
        """Remember a session just loaded from the store (skipped if invalidated meanwhile)."""
        if self.suspended or ticket != self._generation:
            return
        self._drop(cookie)
        self._entries[cookie] = _Entry(session, time.monotonic() + self._ttl, ends_at, record)
        self._by_record[record] = cookie
        while len(self._entries) > self._max:
            _, entry = self._entries.popitem(last=False)
            self._by_record.pop(entry.record, None)

    def invalidate(self, record: str) -> None:
        """The session stored under ``record`` (its store-key hash) changed or ended."""
        self._generation += 1
        cookie = self._by_record.pop(record, None)
        if cookie is not None:
            self._entries.pop(cookie, None)

    def suspend(self) -> None:
        """Serve nothing until ``resume``: invalidations might be missed meanwhile."""
        self.suspended = True
        self.clear()

    def resume(self) -> None:
        self.clear()  # whatever was missed while suspended is gone with it
        self.suspended = False

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._by_record.clear()

    def _drop(self, cookie: str) -> None:
        entry = self._entries.pop(cookie, None)
        if entry is not None:
            self._by_record.pop(entry.record, None)
