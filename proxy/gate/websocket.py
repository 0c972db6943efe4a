"""Keep an open WebSocket only as long as its session: close it promptly when the session ends.

An end decided in this process (logout, sign-out everywhere, a rejected refresh) arrives through
``SessionManager.ends`` at once. An end decided by another replica sharing the store is noticed
by re-checking the session every ``interval`` seconds while the socket is open; the re-check
also refreshes tokens near expiry and counts as activity for the idle timeout. A store or
Cognito blip does not close anything: only a session that is really gone does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from proxy.gate.identity import Identity, RefreshUnavailable
from proxy.sessions.store import StoreUnavailable

log = logging.getLogger("proxy.gate")


class SessionGuard:
    def __init__(self, identity: Identity, *, interval: float) -> None:
        self._identity = identity
        self._interval = interval

    @contextlib.asynccontextmanager
    async def watch(self, cookie: str) -> AsyncIterator[asyncio.Event]:
        """An Event set when the session behind ``cookie`` ends, here or on another replica."""
        key = self._identity.sessions.record_key(cookie)
        if key is None:  # cannot happen for a resolved session; fail closed anyway
            ended = asyncio.Event()
            ended.set()
            yield ended
            return
        with self._identity.sessions.ends.watch(key) as ended:
            closed = asyncio.Event()
            task = asyncio.create_task(self._recheck(cookie, ended, closed))
            try:
                yield ended
            finally:
                closed.set()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _recheck(self, cookie: str, ended: asyncio.Event, closed: asyncio.Event) -> None:
        # ``closed`` as well as the cancellation: one may be swallowed below (Python 3.11's
        # asyncio.wait_for in redis-py, see StoreLock._keep), and the relay's end waits for us.
        while not ended.is_set() and not closed.is_set():
            await asyncio.sleep(self._interval)
            if closed.is_set():
                return
            try:
                session = await self._identity.resolve_cookie(cookie)
            except (StoreUnavailable, RefreshUnavailable):
                continue
            if session is None:
                log.info("session ended, closing its websocket")
                ended.set()
