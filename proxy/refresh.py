"""The one way a session gets fresh tokens: ``Refresher.refresh(session)``.

``Refresher.revoke(session)`` is, likewise, the one way a session's refresh token is revoked.

Every caller (the gate's Identity near expiry, sign-out-everywhere before GlobalSignOut) hands
over the whole session, so nothing a refresh needs can be forgotten: the refresh token, the
username Cognito's SECRET_HASH is computed over, and the key of the device the tokens are
linked to (Cognito refuses a device-linked refresh without it). The answer is the new session,
verified and carrying forward what the old one knew, or a typed failure; saving it (under the
session's lease) is the caller's business.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from proxy.cognito import errors
from proxy.cognito.client import CognitoClient
from proxy.cognito.tokens import TokenError, TokenVerifier
from proxy.sessions.session import Session, verified_session

log = logging.getLogger("proxy.refresh")


@dataclass(frozen=True)
class NoRefreshToken:
    """The session has no refresh token: its tokens live as long as they live."""


@dataclass(frozen=True)
class RefreshRejected:
    """Cognito refused the refresh token (revoked, expired): the session is over."""

    code: str


@dataclass(frozen=True)
class RefreshFailed:
    """Cognito could not give new tokens right now (unreachable, throttling) or gave tokens we
    could not verify: try again later; the session itself is not judged."""

    code: str


RefreshOutcome = Session | NoRefreshToken | RefreshRejected | RefreshFailed


class Refresher:
    def __init__(self, cognito: CognitoClient, verifier: TokenVerifier) -> None:
        self._cognito = cognito
        self._verifier = verifier

    async def revoke(self, session: Session) -> bool:
        """Revoke the session's refresh token at Cognito (RevokeToken, the client secret
        included), which also ends the access tokens issued from it: the one place a signed-out
        session's token is revoked (sign-out, a session ended from another browser). False when
        there was none or Cognito could not be asked (logged; the caller goes on)."""
        if not session.refresh_token:
            return False
        try:
            await self._cognito.revoke(session.refresh_token)
        except errors.CognitoError as exc:
            log.warning("refresh token revocation failed: %s", exc.code)
            return False
        return True

    async def discard(self, fresh: Session, previous: Session) -> None:
        """Revoke the refresh token rotation gave ``fresh`` when nobody will keep it (the
        session ended while it was being refreshed): it must not outlive the sign-out."""
        token = fresh.refresh_token
        if not token or token == previous.refresh_token:
            return
        try:
            await self._cognito.revoke(token)
        except errors.CognitoError as exc:
            log.warning("revoking the rotated refresh token of an ended session: %s", exc.code)

    async def refresh(self, session: Session) -> RefreshOutcome:
        """Fresh, verified tokens for ``session`` as a new Session (not saved)."""
        if not session.refresh_token:
            return NoRefreshToken()
        try:
            tokens = await self._cognito.refresh(
                session.refresh_token, session.username, session.device_key
            )
            return await verified_session(
                self._verifier.verify,
                id_token=tokens.id_token,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                previous=session,
            )
        except errors.BadCredentials as exc:
            return RefreshRejected(exc.code)
        except errors.CognitoError as exc:
            return RefreshFailed(exc.code)
        except (TokenError, ValueError) as exc:
            return RefreshFailed(type(exc).__name__)
