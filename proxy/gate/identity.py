"""Who is making this request: session cookie → session, refreshed when its tokens near expiry."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from proxy.cognito import errors
from proxy.cognito.client import CognitoClient
from proxy.cognito.tokens import TokenError, TokenVerifier
from proxy.sessions.session import Session, SessionManager, verified_session

log = logging.getLogger("proxy.gate")


class RefreshUnavailable(Exception):
    """The tokens expired and Cognito could not be asked for new ones right now (fail closed)."""


class Identity:
    def __init__(
        self,
        *,
        sessions: SessionManager,
        cognito: CognitoClient,
        verifier: TokenVerifier,
        cookie_name: str,
        refresh_margin: float = 300.0,
    ) -> None:
        self.sessions = sessions
        self._cognito = cognito
        self._verifier = verifier
        self.cookie_name = cookie_name
        self._margin = refresh_margin
        # One refresh per session at a time in this process; concurrent requests share it.
        self._refreshing: dict[str, asyncio.Future[Session | None]] = {}

    async def resolve(self, request: web.Request) -> Session | None:
        """The request's live session, or None. Raises StoreUnavailable / RefreshUnavailable."""
        cookie = request.cookies.get(self.cookie_name)
        if not cookie:
            return None
        session = await self.sessions.load(cookie)
        if session is None or not self._needs_refresh(session):
            return session
        pending = self._refreshing.get(cookie)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Session | None] = asyncio.get_running_loop().create_future()
        self._refreshing[cookie] = future
        try:
            result = await self._refresh(cookie, session)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) get it, nobody else must
            raise
        finally:
            del self._refreshing[cookie]

    def _needs_refresh(self, session: Session) -> bool:
        # Refresh within the margin of expiry, but never before half the tokens' life: with
        # short-lived tokens (Cognito allows 5 minutes) a fixed margin would refresh every time.
        lifetime = session.expires_at - float(session.claims.get("iat", session.created_at))
        return session.expires_at - time.time() <= min(self._margin, lifetime / 2)

    async def _refresh(self, cookie: str, session: Session) -> Session | None:
        still_valid = session.expires_at > time.time()
        if not session.refresh_token:
            return session if still_valid else None
        try:
            tokens = await self._cognito.refresh(
                session.refresh_token, session.username, session.device_key
            )
            fresh = await verified_session(
                self._verifier.verify,
                id_token=tokens.id_token,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                previous=session,
            )
        except errors.BadCredentials:
            # Revoked or expired refresh token: the session is over.
            log.info("refresh rejected, ending session=%s", self.sessions.fingerprint(cookie))
            await self.sessions.delete(cookie)
            return None
        except (errors.CognitoError, TokenError, ValueError) as exc:
            log.warning("refresh failed (%s); will retry", getattr(exc, "code", type(exc).__name__))
            if still_valid:
                return session
            raise RefreshUnavailable from None
        if not await self.sessions.save(cookie, fresh):
            return None  # signed out while we were refreshing: stay signed out
        return fresh
