"""Who is making this request: session cookie → session, refreshed when its tokens near expiry.

One refresh per session across every replica: concurrent requests in this process share one
attempt (an in-process single-flight), and that attempt first takes the session's lease in the
shared store. A replica that finds the lease taken waits briefly, re-reading the record, and
uses the tokens the holder saved.

With the session cache on, concurrent misses for one cookie share one store read too: when an
entry expires, every request of that session in flight misses at the same moment (50 at 50
busy connections), and each used to read, open and decode the record itself and take a pooled
Redis connection for it (opening new ones past the pool's size).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from proxy.gate.cache import SessionCache
from proxy.gate.cookies import cookie_value
from proxy.observe import audit
from proxy.refresh import NoRefreshToken, Refresher, RefreshFailed, RefreshRejected
from proxy.sessions.session import Session, SessionManager

log = logging.getLogger("proxy.gate")

# A waiter re-reads the record this often, for at most REFRESH_WAIT seconds; after that it goes
# on with tokens that are still valid (or 503 if they are not).
REFRESH_POLL = 0.05
REFRESH_WAIT = 5.0
# After a transient refresh failure (throttling, timeout) this process waits this long before
# asking Cognito again for that session, so an outage is not met with a retry storm.
REFRESH_RETRY_AFTER = 1.0
_MAX_BACKOFFS = 10_000


class _Load:
    """A store read of one cookie's session that concurrent cache misses share."""

    __slots__ = ("abandoned", "future", "ticket")

    def __init__(self, ticket: int, future: asyncio.Future[Session | None]) -> None:
        self.ticket = ticket  # the cache's generation when the read began
        self.future = future
        self.abandoned = False  # the reading request was cancelled: joiners read for themselves


class RefreshUnavailable(Exception):
    """The tokens expired and Cognito could not be asked for new ones right now (fail closed)."""


class Identity:
    def __init__(
        self,
        *,
        sessions: SessionManager,
        refresher: Refresher,
        cookie_name: str,
        refresh_margin: float = 300.0,
        cache: SessionCache | None = None,
    ) -> None:
        self.sessions = sessions
        self._refresher = refresher
        self.cookie_name = cookie_name
        self._margin = refresh_margin
        self._cache = cache
        # One refresh per session at a time in this process; concurrent requests share it.
        self._refreshing: dict[str, asyncio.Future[Session | None]] = {}
        self._retry_at: dict[str, float] = {}  # cookie -> monotonic time of the next attempt
        self._loading: dict[str, _Load] = {}  # cookie -> the store read in flight (cache on)

    async def resolve(self, request: web.Request) -> Session | None:
        """The request's live session, or None. Raises StoreUnavailable / RefreshUnavailable."""
        cookie = cookie_value(request, self.cookie_name)
        if not cookie:
            return None
        return await self.resolve_cookie(cookie)

    async def resolve_cookie(self, cookie: str) -> Session | None:
        """As ``resolve``, for a cookie value (also used by long-lived connections)."""
        session = await self._load(cookie)
        if session is None:
            return None
        if not self._needs_refresh(session):
            await self.sessions.touch(cookie, session)
            return session
        pending = self._refreshing.get(cookie)
        if pending is not None:
            return await asyncio.shield(pending)
        retry_at = self._retry_at.get(cookie)
        if retry_at is not None:
            if time.monotonic() < retry_at:
                if session.expires_at > time.time():
                    return session
                raise RefreshUnavailable
            del self._retry_at[cookie]
        future: asyncio.Future[Session | None] = asyncio.get_running_loop().create_future()
        self._refreshing[cookie] = future
        try:
            result = await self._refresh_once(cookie, session)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) get it, nobody else must
            raise
        finally:
            del self._refreshing[cookie]

    async def renew_cookie(self, cookie: str) -> Session | None:
        """New tokens for ``cookie``'s session now, however fresh its tokens are: the user's
        attributes just changed at Cognito (the account page's profile) and the claims sent to
        the app must say so on the next request. The same lease and refresh as near expiry;
        the save invalidates every replica's cache entry. A refresh Cognito cannot give right
        now leaves the session as it was (its claims catch up at the next refresh)."""
        lock = self.sessions.lock(cookie)
        if lock is None:
            return None
        deadline = time.monotonic() + REFRESH_WAIT
        while not await lock.obtain():
            # Another request holds the lease (a refresh begun before the change, perhaps):
            # wait for it, then refresh once more ourselves.
            if time.monotonic() >= deadline:
                return await self.sessions.load(cookie)
            await asyncio.sleep(REFRESH_POLL)
        try:
            async with lock.kept():
                current = await self.sessions.load(cookie)
                if current is None:
                    return None
                try:
                    return await self._refresh(cookie, current)
                except RefreshUnavailable:
                    return current
        finally:
            await lock.release()

    async def _load(self, cookie: str) -> Session | None:
        cache = self._cache
        if cache is None:
            return await self.sessions.load(cookie)
        cached = cache.get(cookie)
        # Near expiry, ask the store: another replica may have refreshed it already.
        if cached is not None and not self._needs_refresh(cached):
            return cached
        ticket = cache.ticket()
        pending = self._loading.get(cookie)
        # Join a read of this cookie only if nothing was invalidated since it began: a request
        # that arrives after a sign-out never gets a record read before it.
        while pending is not None and pending.ticket == ticket:
            # Shielded: this request being cancelled must not cancel the others' read.
            session = await asyncio.shield(pending.future)
            if not pending.abandoned:
                return session
            ticket = cache.ticket()  # its own request was cancelled mid-read: read it ourselves
            pending = self._loading.get(cookie)
        load = _Load(ticket, asyncio.get_running_loop().create_future())
        self._loading[cookie] = load
        try:
            session = await self.sessions.load(cookie)
        except asyncio.CancelledError:
            load.abandoned = True
            load.future.set_result(None)
            raise
        except BaseException as exc:
            load.future.set_exception(exc)  # the joiners fail as this request does (503)
            load.future.exception()  # retrieved: no warning when nobody joined
            raise
        finally:
            if self._loading.get(cookie) is load:
                del self._loading[cookie]
        load.future.set_result(session)
        if session is not None and (record := self.sessions.record_hash(cookie)):
            ends_at = self.sessions.timeouts.ends_at(session)
            cache.put(cookie, session, record=record, ends_at=ends_at, ticket=ticket)
        return session

    def _needs_refresh(self, session: Session) -> bool:
        # Refresh within the margin of expiry, but never before half the tokens' life: with
        # short-lived tokens (Cognito allows 5 minutes) a fixed margin would refresh every time.
        lifetime = session.expires_at - float(session.claims.get("iat", session.created_at))
        return session.expires_at - time.time() <= min(self._margin, lifetime / 2)

    async def _refresh_once(self, cookie: str, session: Session) -> Session | None:
        """Refresh under the session's lease in the shared store, or reuse the holder's result."""
        lock = self.sessions.lock(cookie)
        if lock is None:
            return None
        deadline = time.monotonic() + REFRESH_WAIT
        while True:
            if await lock.obtain():
                try:
                    async with lock.kept():
                        # Re-read under the lease: another replica may have refreshed already.
                        current = await self.sessions.load(cookie)
                        if current is None or not self._needs_refresh(current):
                            return current
                        return await self._refresh(cookie, current)
                finally:
                    await lock.release()
            await asyncio.sleep(REFRESH_POLL)
            current = await self.sessions.load(cookie)
            if current is None or not self._needs_refresh(current):
                return current
            if time.monotonic() >= deadline:
                if current.expires_at > time.time():
                    return current
                raise RefreshUnavailable

    async def _refresh(
        self, cookie: str, session: Session, *, again: bool = True
    ) -> Session | None:
        still_valid = session.expires_at > time.time()
        fresh = await self._refresher.refresh(session)
        if isinstance(fresh, NoRefreshToken):
            return session if still_valid else None
        if isinstance(fresh, RefreshRejected):
            # With refresh-token rotation a refused token may just be an old one: another
            # replica (whose lease ran out mid-call) replaced it and saved the new tokens.
            saved = await self.sessions.load(cookie)
            if saved is not None and saved.refresh_token != session.refresh_token:
                log.info(
                    "refresh token superseded (%s); using the saved tokens, session=%s",
                    fresh.code,
                    self.sessions.fingerprint(cookie),
                )
                if not self._needs_refresh(saved) or not again:
                    return saved
                return await self._refresh(cookie, saved, again=False)
            # Revoked or expired refresh token: the session is over.
            log.info(
                "refresh rejected (%s), ending session=%s",
                fresh.code,
                self.sessions.fingerprint(cookie),
            )
            audit(
                "session.end",
                reason="refresh_rejected",
                code=fresh.code,
                user=session.sub,
                session=self.sessions.fingerprint(cookie),
            )
            await self.sessions.delete(cookie, session)
            return None
        if isinstance(fresh, RefreshFailed):
            log.warning("refresh failed (%s); will retry", fresh.code)
            if len(self._retry_at) >= _MAX_BACKOFFS:
                self._retry_at.clear()
            self._retry_at[cookie] = time.monotonic() + REFRESH_RETRY_AFTER
            if still_valid:
                return session
            raise RefreshUnavailable from None
        # One store write holds the new tokens and, with rotation, the new refresh token: no
        # replica can refresh with the one rotation just replaced (we hold the lease).
        if not await self.sessions.save(cookie, fresh):
            # Signed out while we were refreshing: stay signed out, and do not leave the
            # rotated refresh token valid at Cognito.
            await self._refresher.discard(fresh, session)
            return None
        return fresh
