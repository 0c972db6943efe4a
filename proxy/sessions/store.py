"""The session backend interface: a byte key-value store in which every key expires, with
leases, sets and counters beside it, one protocol per role.

Backends know nothing about sessions, cookies or encryption; `SealedStore` adds those.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Protocol


class StoreUnavailable(Exception):
    """The backend could not answer (connection refused, timeout, loading, failover...).

    Callers must fail closed (503): this is never the same as "no such session".
    """


class StoreFull(StoreUnavailable):
    """The backend refused a write for lack of memory (Redis ``maxmemory`` with
    ``noeviction``); reads still work. Best-effort writes (activity) may skip on it."""


class KeyValue(Protocol):
    """Byte KV with per-key TTLs. Keys are short ASCII strings; values are opaque bytes."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None if absent or expired. Raises StoreUnavailable."""
        ...

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store `value` for `ttl` seconds (finite; a ttl <= 0 deletes). Raises StoreUnavailable."""
        ...

    async def replace(self, key: str, value: bytes, ttl: float) -> bool:
        """Like `set`, but only if `key` still exists; False if it did not (no write).

        True whenever the key was there, also when a ttl <= 0 deleted it.
        A refresh must not resurrect a session that a concurrent logout just deleted.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove `key` if present, whatever it holds (a value, a lease or a set). Raises
        StoreUnavailable."""
        ...


class Leases(Protocol):
    """Locks (see sessions/lock.py): a key holding the owner's random token."""

    async def acquire(self, key: str, token: str, ttl: float) -> bool:
        """Set `key` to `token` for `ttl` seconds only if absent (SET NX PX); True if set."""
        ...

    async def renew(self, key: str, token: str, ttl: float) -> bool:
        """Extend `key` to `ttl` seconds only if it still holds `token`; True if extended
        (a ttl <= 0 ends the lease)."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Delete `key` only if it still holds `token` (never someone else's lock)."""
        ...


class Sets(Protocol):
    """Sets of strings with a TTL: the per-user index of sessions."""

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        """Add `member` to the set at `key`; its TTL becomes at least `ttl` (never shortened)."""
        ...

    async def remove_member(self, key: str, member: str) -> None:
        """Remove `member` from the set at `key` (a set left empty disappears)."""
        ...

    async def members(self, key: str) -> frozenset[str]:
        """The members of the set at `key`; empty if absent or expired."""
        ...


class Batches(Protocol):
    """Many keys in one round trip: a user's sessions, read or ended at once (sign out
    everywhere, the account page's list), whatever their number."""

    async def existing(self, keys: Collection[str]) -> frozenset[str]:
        """Those of `keys` that hold a live value (or lease, or set). Raises StoreUnavailable."""
        ...

    async def delete_members(
        self, key: str, members: Collection[str], also: Collection[str] = ()
    ) -> None:
        """Delete the keys `members` names and the keys `also`, and remove `members` from the
        set at `key` (a set left empty disappears); one round trip, not atomic. Raises
        StoreUnavailable."""
        ...


class Asides(Protocol):
    """Records set aside: ended by someone who cannot open them (another browser's session,
    sealed under that browser's cookie), kept under another name until their own cookie
    comes back (SessionManager)."""

    async def set_aside(
        self, key: str, moves: Mapping[str, str], also: Collection[str] = ()
    ) -> None:
        """Rename each key of `moves` to its value, keeping its remaining TTL (a key that is
        gone moves nothing; each rename is atomic, so on Redis Cluster the new name must hash
        to the old one's slot), delete the keys `also`, and remove the renamed keys from the
        set at `key`; one round trip. Raises StoreUnavailable."""
        ...

    async def take(self, key: str) -> bytes | None:
        """The value at `key`, deleted in the same step: of concurrent callers, on any
        replica, only one gets it. Raises StoreUnavailable."""
        ...


class Counters(Protocol):
    """Integers that count up and expire: brute-force regulation."""

    async def incr(self, key: str, ttl: float) -> int:
        """Add 1 to the integer at `key` (absent counts as 0) and return the new value.

        The key expires `ttl` seconds after this call (ValueError unless positive). Atomic
        across replicas sharing the backend: brute-force counters rely on it. Raises
        StoreUnavailable.
        """
        ...


class SessionBackend(KeyValue, Sets, Batches, Asides, Leases, Protocol):
    """What SessionManager uses: records (through SealedStore), the per-user index, leases."""


class CountingStore(KeyValue, Counters, Protocol):
    """What the brute-force regulator uses: counters, and bans and aliases as values."""


class SessionStore(KeyValue, Leases, Sets, Batches, Asides, Counters, Protocol):
    """A whole backend (memory.py, redis.py): every role, and its connection's life.

    Callers take only the role they use, so a test double implements only that."""

    async def ping(self) -> None:
        """Return if the backend answers; raise StoreUnavailable otherwise."""
        ...

    async def close(self) -> None:
        """Release connections. The store must not be used afterwards."""
        ...


def check_ttl(ttl: float) -> bool:
    """For backends: True if `ttl` should store, False if it means "already expired".

    An infinite or NaN ttl is a caller bug that would create a key that never expires.
    """
    if not math.isfinite(ttl):
        raise ValueError("ttl must be a finite number of seconds")
    return ttl > 0
