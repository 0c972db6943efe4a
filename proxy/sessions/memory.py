"""In-process backend: for a single gate instance, development and tests."""

from __future__ import annotations

import builtins
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping

from proxy.sessions.store import check_ttl


class MemoryStore:
    """Dict of key -> (deadline, value) on a monotonic clock.

    Expired keys are dropped when read, and by a full sweep that runs when the dict has
    doubled since the last sweep or `sweep_interval` has passed (amortised O(1) per set).
    `max_entries` caps memory against floods of anonymous login flows: past it, the
    least recently written keys are evicted.
    """

    __slots__ = (
        "_clock",
        "_data",
        "_max_entries",
        "_next_sweep_at",
        "_sets",
        "_sweep_interval",
        "_sweep_len",
    )

    _MIN_SWEEP_LEN = 1024

    def __init__(
        self,
        *,
        max_entries: int = 100_000,
        sweep_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._clock = clock
        # Ordered by last write, so eviction under the cap pops from the front in O(1).
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        # Sets (the per-user session index) live apart from byte values: key -> (deadline, set).
        self._sets: dict[str, tuple[float, builtins.set[str]]] = {}
        self._max_entries = max_entries
        self._sweep_interval = sweep_interval
        self._sweep_len = self._MIN_SWEEP_LEN
        self._next_sweep_at = clock() + sweep_interval

    @property
    def size(self) -> int:
        """Entries held, including expired ones not swept yet.

        (A property, not __len__: an empty store must stay truthy for `store or default`.)
        """
        return len(self._data)

    async def get(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._data[key]
            return None
        return item[1]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if not check_ttl(ttl):
            await self.delete(key)
            return
        if self._sets:
            self._sets.pop(key, None)  # one key, one kind (as in Redis): a value replaces a set
        now = self._clock()
        data = self._data
        data[key] = (now + ttl, value)
        data.move_to_end(key)
        if len(data) > self._sweep_len or now >= self._next_sweep_at:
            self.sweep(now)
        if len(data) > self._max_entries:
            data.popitem(last=False)

    async def replace(self, key: str, value: bytes, ttl: float) -> bool:
        check_ttl(ttl)  # a non-finite ttl is refused even for a missing key
        entry = self._data.get(key)
        if entry is None or entry[0] <= self._clock():
            return False
        await self.set(key, value, ttl)  # a ttl <= 0 deletes: the key was there, so True
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)
        self._sets.pop(key, None)  # the per-user index is deleted this way (end_all)

    async def ping(self) -> None:
        return None

    async def acquire(self, key: str, token: str, ttl: float) -> bool:
        if not check_ttl(ttl) or await self.get(key) is not None:
            return False
        await self.set(key, token.encode(), ttl)
        return True

    async def renew(self, key: str, token: str, ttl: float) -> bool:
        check_ttl(ttl)  # a non-finite ttl is refused even for a lease not held
        if await self.get(key) != token.encode():
            return False
        await self.set(key, token.encode(), ttl)
        return True

    async def release(self, key: str, token: str) -> None:
        if await self.get(key) == token.encode():
            await self.delete(key)

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        if not check_ttl(ttl):
            return
        now = self._clock()
        deadline, members = self._live_set(key, now)
        members.add(member)
        self._sets[key] = (max(deadline, now + ttl), members)

    async def remove_member(self, key: str, member: str) -> None:
        members = self._live_set(key, self._clock())[1]
        members.discard(member)
        if not members:
            self._sets.pop(key, None)

    async def members(self, key: str) -> frozenset[str]:
        return frozenset(self._live_set(key, self._clock())[1])

    async def existing(self, keys: Collection[str]) -> frozenset[str]:
        now = self._clock()
        return frozenset(
            k
            for k in keys
            if ((item := self._data.get(k)) is not None and item[0] > now)
            or self._live_set(k, now)[1]
        )

    async def delete_members(
        self, key: str, members: Collection[str], also: Collection[str] = ()
    ) -> None:
        for k in (*members, *also):
            await self.delete(k)
        for member in members:
            await self.remove_member(key, member)

    async def set_aside(
        self, key: str, moves: Mapping[str, str], also: Collection[str] = ()
    ) -> None:
        now = self._clock()
        for old, new in moves.items():
            item = self._data.pop(old, None)
            if item is not None and item[0] > now:
                self._data[new] = item  # the same deadline: the remaining TTL is kept
                self._data.move_to_end(new)
            await self.remove_member(key, old)
        for k in also:
            await self.delete(k)

    async def take(self, key: str) -> bytes | None:
        value = await self.get(key)
        self._data.pop(key, None)
        return value

    def _live_set(self, key: str, now: float) -> tuple[float, builtins.set[str]]:
        entry = self._sets.get(key)
        if entry is None or entry[0] <= now:
            self._sets.pop(key, None)
            return now, builtins.set()
        return entry

    async def close(self) -> None:
        self._data.clear()
        self._sets.clear()

    async def incr(self, key: str, ttl: float) -> int:
        if not check_ttl(ttl):
            raise ValueError("a counter needs a positive ttl")
        current = await self.get(key)
        value = (int(current) if current is not None else 0) + 1
        await self.set(key, str(value).encode(), ttl)
        return value

    def sweep(self, now: float | None = None) -> int:
        """Drop every expired key; return how many were dropped."""
        if now is None:
            now = self._clock()
        data = self._data
        expired = [k for k, (deadline, _) in data.items() if deadline <= now]
        for k in expired:
            del data[k]
        for k in [k for k, (deadline, _) in self._sets.items() if deadline <= now]:
            del self._sets[k]
        while len(data) > self._max_entries:
            data.popitem(last=False)
        self._sweep_len = max(self._MIN_SWEEP_LEN, 2 * len(data))
        self._next_sweep_at = now + self._sweep_interval
        return len(expired)
