"""A SessionStore wrapper that reports each StoreUnavailable to a callback (for metrics), and
whether the store is full: set by a write refused for memory, cleared by the next write that
succeeds (metrics and readyz show it). With a ``deadline``, each call as a whole gets that
long: the backend's timeouts bound each step (waiting for a pooled connection, connecting, the
command), and against a black-holed Redis those add up to several timeouts per call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TypeVar

from proxy.sessions.store import SessionStore, StoreFull, StoreUnavailable

T = TypeVar("T")


class ObservedStore:
    __slots__ = ("_deadline", "_on_error", "_on_full", "_store", "full")

    def __init__(
        self,
        store: SessionStore,
        on_error: Callable[[str], None],
        on_full: Callable[[bool], None] | None = None,
        deadline: float | None = None,
    ) -> None:
        self._store = store
        self._deadline = deadline
        self._on_error = on_error
        self._on_full = on_full
        self.full = False

    def __repr__(self) -> str:
        return f"ObservedStore({self._store!r})"

    async def _observed(self, operation: str, call: Awaitable[T], write: bool = False) -> T:
        try:
            async with asyncio.timeout(self._deadline):
                result = await call
        except TimeoutError:
            self._on_error(operation)
            raise StoreUnavailable(f"store {operation} exceeded {self._deadline}s") from None
        except StoreUnavailable as exc:
            if isinstance(exc, StoreFull):
                self._set_full(True)
            self._on_error(operation)
            raise
        if write and self.full:
            self._set_full(False)
        return result

    def _set_full(self, full: bool) -> None:
        if full != self.full:
            self.full = full
            if self._on_full is not None:
                self._on_full(full)

    async def get(self, key: str) -> bytes | None:
        return await self._observed("get", self._store.get(key))

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._observed("set", self._store.set(key, value, ttl), write=True)

    async def replace(self, key: str, value: bytes, ttl: float) -> bool:
        return await self._observed("replace", self._store.replace(key, value, ttl), write=True)

    async def delete(self, key: str) -> None:
        await self._observed("delete", self._store.delete(key))

    async def ping(self) -> None:
        await self._observed("ping", self._store.ping())

    async def acquire(self, key: str, token: str, ttl: float) -> bool:
        return await self._observed("acquire", self._store.acquire(key, token, ttl), write=True)

    async def renew(self, key: str, token: str, ttl: float) -> bool:
        return await self._observed("renew", self._store.renew(key, token, ttl))

    async def release(self, key: str, token: str) -> None:
        await self._observed("release", self._store.release(key, token))

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        await self._observed("add_member", self._store.add_member(key, member, ttl), write=True)

    async def remove_member(self, key: str, member: str) -> None:
        await self._observed("remove_member", self._store.remove_member(key, member))

    async def members(self, key: str) -> frozenset[str]:
        return await self._observed("members", self._store.members(key))

    async def existing(self, keys: Collection[str]) -> frozenset[str]:
        return await self._observed("existing", self._store.existing(keys))

    async def delete_members(
        self, key: str, members: Collection[str], also: Collection[str] = ()
    ) -> None:
        await self._observed("delete_members", self._store.delete_members(key, members, also))

    async def set_aside(
        self, key: str, moves: Mapping[str, str], also: Collection[str] = ()
    ) -> None:
        await self._observed("set_aside", self._store.set_aside(key, moves, also))

    async def take(self, key: str) -> bytes | None:
        return await self._observed("take", self._store.take(key))

    async def incr(self, key: str, ttl: float) -> int:
        return await self._observed("incr", self._store.incr(key, ttl), write=True)

    async def close(self) -> None:
        await self._store.close()
