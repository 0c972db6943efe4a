"""Who is asking: a verified bearer token, else the session cookie.

ONE step for the proxied path, ``/_auth/check`` and ``/_auth/userinfo``, so the three cannot
come to different answers about the same request. With a bearer token (when enabled) the cookie
is not looked at: one request, one identity, never merged. Its failures are two, and each
surface turns them into its answer in one place (``gate.decision``): the caller's token is no
good (:class:`InvalidToken`), or who the caller is cannot be told right now
(:class:`Unavailable`: store, Cognito or signing keys unreachable; fail closed and keep the
cookie, so nobody is signed out by a blip).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from proxy.cognito.tokens import JwksUnavailable, TokenError
from proxy.gate.bearer import BearerAuth, bearer_token
from proxy.gate.identity import Identity, RefreshUnavailable
from proxy.sessions.session import Session
from proxy.sessions.store import StoreUnavailable


class Unidentified(Exception):
    """The request carries an identity that cannot be accepted (now or at all)."""


class InvalidToken(Unidentified):
    """A bearer token that does not verify; ``reason`` names the failed check."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unavailable(Unidentified):
    """The store, Cognito (a needed refresh) or the signing keys cannot be reached."""


@dataclass(frozen=True, slots=True)
class Caller:
    """An identified caller: a live session, or a verified bearer token (``session`` None)."""

    claims: dict[str, Any]
    session: Session | None = None
    token: str | None = None  # the bearer token itself
    token_use: Literal["access", "id"] | None = None

    @property
    def access_token(self) -> str | None:
        """The caller's Cognito access token, if it has one we hold."""
        if self.session is not None:
            return self.session.access_token
        return self.token if self.token_use == "access" else None  # noqa: S105


class Identify:
    def __init__(self, identity: Identity, bearer: BearerAuth | None = None) -> None:
        self.identity = identity
        self._bearer = bearer

    async def __call__(self, request: web.Request) -> Caller | None:
        """The caller, or None when the request names nobody (no token, no live session).

        Raises InvalidToken or Unavailable."""
        if self._bearer is not None and (token := bearer_token(request)) is not None:
            try:
                claims = await self._bearer.claims(token)
            except JwksUnavailable as exc:  # before TokenError: it is one
                raise Unavailable(str(exc)) from exc
            except TokenError as exc:
                raise InvalidToken(type(exc).__name__) from exc
            return Caller(claims, token=token, token_use=self._bearer.token_use)
        try:
            session = await self.identity.resolve(request)
        except (StoreUnavailable, RefreshUnavailable) as exc:
            raise Unavailable(type(exc).__name__) from exc
        return None if session is None else Caller(session.claims, session=session)
