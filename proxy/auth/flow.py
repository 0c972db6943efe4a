"""The sign-in conversation: Cognito's answer → the next step to show.

The state of a sign-in in progress lives server-side (sealed in the store, bound to the
pre-login cookie), never in hidden form fields: the username sent to Cognito on later steps is
always the stored one.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field

from proxy.cognito import errors
from proxy.cognito.client import AuthResult, CognitoClient, ContextData, Tokens
from proxy.cognito.tokens import TokenError, TokenVerifier
from proxy.sessions.session import Session, verified_session

log = logging.getLogger("proxy.auth")


@dataclass(slots=True)
class LoginState:
    """One browser's sign-in in progress."""

    csrf: str
    return_to: str
    started_at: float
    username: str | None = None
    challenge: str | None = None
    cognito_session: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    remember: bool = False  # "keep me signed in" was ticked

    @classmethod
    def new(cls, return_to: str) -> LoginState:
        return cls(csrf=secrets.token_urlsafe(32), return_to=return_to, started_at=time.time())

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> LoginState | None:
        try:
            return cls(**json.loads(raw))
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True)
class SignedIn:
    session: Session


@dataclass(frozen=True)
class Rejected:
    """Show the login form again with a message (an i18n key) and HTTP status."""

    message: str
    status: int
    user_id: str | None = None  # Cognito's internal username, when a failed step named it
    retry_after: float | None = None  # seconds, for "try again later"


@dataclass(frozen=True)
class NeedsChallenge:
    name: str
    cognito_session: str | None
    parameters: dict[str, str]


Step = SignedIn | Rejected | NeedsChallenge


class Authenticator:
    """Runs sign-in steps against Cognito and turns verified tokens into a Session."""

    def __init__(self, cognito: CognitoClient, verifier: TokenVerifier) -> None:
        self._cognito = cognito
        self._verifier = verifier

    async def sign_in(self, username: str, password: str, context: ContextData | None) -> Step:
        try:
            result = await self._cognito.password_login(username, password, context)
        except errors.CognitoError as exc:
            return _rejection(exc)
        return await self._next(result)

    async def _next(self, result: AuthResult) -> Step:
        if result.tokens is not None:
            try:
                return SignedIn(await self.session_from(result.tokens))
            except TokenError as exc:
                # Cognito handed us a token we cannot verify: a config error, not the user's.
                log.error("token from Cognito failed verification: %s", type(exc).__name__)
                return Rejected("error.generic", 502)
        assert result.challenge is not None
        return NeedsChallenge(
            result.challenge.name, result.challenge.session, result.challenge.parameters
        )

    async def session_from(self, tokens: Tokens) -> Session:
        try:
            return await verified_session(
                self._verifier.verify,
                id_token=tokens.id_token,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
            )
        except ValueError as exc:
            raise TokenError(str(exc)) from None


def _rejection(exc: errors.CognitoError) -> Rejected:
    # Every credential problem gets the same words and status: no user enumeration.
    if isinstance(exc, errors.BadCredentials | errors.UserNotConfirmed):
        return Rejected("error.bad_credentials", 401, exc.user_id)
    if isinstance(exc, errors.PasswordResetRequired):
        return Rejected("error.bad_credentials", 401)
    if isinstance(exc, errors.TooManyRequests):
        return Rejected("error.too_many", 429)
    if isinstance(exc, errors.SessionExpired):
        return Rejected("error.flow_expired", 400)
    if isinstance(exc, errors.Misconfigured):
        log.error("Cognito rejected our request as misconfigured: %s", exc.code)
        return Rejected("error.unavailable", 503)
    if isinstance(exc, errors.Unavailable):
        return Rejected("error.unavailable", 503)
    log.error("unexpected Cognito error: %s", exc.code)
    return Rejected("error.generic", 502)
