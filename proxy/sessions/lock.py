"""A lease in the session store, owned by a random token: oauth2-proxy's Lock, over any backend.

Used so that, of all the replicas sharing one store, exactly one refreshes a session's tokens
(or rewrites its record) at a time. The lease expires by itself if its holder dies; while the
holder works, ``kept()`` renews it so a slow Cognito call cannot outlive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

from proxy.sessions.store import Leases, StoreUnavailable


class StoreLock:
    __slots__ = ("_key", "_lease", "_store", "_token")

    def __init__(self, store: Leases, key: str, *, lease: float) -> None:
        if not lease > 0:
            raise ValueError("lease must be positive")
        self._store = store
        self._key = key
        self._lease = lease
        self._token = secrets.token_urlsafe(16)

    @property
    def key(self) -> str:
        return self._key

    async def obtain(self) -> bool:
        """True if we hold the lease now (it was free). Raises StoreUnavailable."""
        return await self._store.acquire(self._key, self._token, self._lease)

    async def refresh(self) -> bool:
        """Extend our lease; False if it is no longer ours (it expired and was taken)."""
        return await self._store.renew(self._key, self._token, self._lease)

    async def release(self) -> None:
        """Give the lease back if it is still ours; never raises (it expires anyway)."""
        with contextlib.suppress(StoreUnavailable):
            await self._store.release(self._key, self._token)

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator[None]:
        """Renew the lease every third of its length while the body runs."""
        done = asyncio.Event()
        task = asyncio.create_task(self._keep(done))
        try:
            yield
        finally:
            done.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep(self, done: asyncio.Event) -> None:
        # ``done`` as well as the cancellation: Python 3.11's asyncio.wait_for (redis-py wraps
        # each socket write in one) returns its result instead of raising when a cancellation
        # meets a write finishing in the same loop turn. That swallowed cancellation left a
        # keeper renewing its lease for good, its refresh never ending and every request of
        # that session waiting on it (bench/soak.py --minutes 30, docs/performance.md).
        while not done.is_set():
            await asyncio.sleep(self._lease / 3)
            if done.is_set():
                return
            with contextlib.suppress(StoreUnavailable):
                if not await self.refresh():
                    return
