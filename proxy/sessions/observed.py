"""A SessionStore wrapper that reports each StoreUnavailable to a callback (for metrics)."""

from __future__ import annotations

from collections.abc import Callable

from proxy.sessions.store import SessionStore, StoreUnavailable


class ObservedStore:
    __slots__ = ("_on_error", "_store")

    def __init__(self, store: SessionStore, on_error: Callable[[str], None]) -> None:
        self._store = store
        self._on_error = on_error

    def __repr__(self) -> str:
        return f"ObservedStore({self._store!r})"

    async def get(self, key: str) -> bytes | None:
        try:
            return await self._store.get(key)
        except StoreUnavailable:
            self._on_error("get")
            raise

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        try:
            await self._store.set(key, value, ttl)
        except StoreUnavailable:
            self._on_error("set")
            raise

    async def replace(self, key: str, value: bytes, ttl: float) -> bool:
        try:
            return await self._store.replace(key, value, ttl)
        except StoreUnavailable:
            self._on_error("replace")
            raise

    async def delete(self, key: str) -> None:
        try:
            await self._store.delete(key)
        except StoreUnavailable:
            self._on_error("delete")
            raise

    async def ping(self) -> None:
        try:
            await self._store.ping()
        except StoreUnavailable:
            self._on_error("ping")
            raise

    async def close(self) -> None:
        await self._store.close()
