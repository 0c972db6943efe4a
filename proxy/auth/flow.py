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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from proxy.auth.challenges import Invalid, step_for
from proxy.cognito import errors
from proxy.cognito.client import (
    AuthResult,
    CognitoClient,
    ContextData,
    Device,
    NewDevice,
    Tokens,
)
from proxy.cognito.tokens import TokenError, TokenVerifier
from proxy.sessions.session import Session, verified_session

log = logging.getLogger("proxy.auth")


@dataclass(slots=True)
class LoginState:
    """One browser's sign-in in progress."""

    csrf: str
    return_to: str
    started_at: float
    # The username Cognito knows (USER_ID_FOR_SRP / the challenge's USERNAME): what every
    # later step sends, whatever the browser posts.
    username: str | None = None
    challenge: str | None = None
    cognito_session: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    user_id_for_srp: str | None = None
    # When the current challenge was issued: its Cognito Session lives ~3 minutes.
    challenge_at: float | None = None
    # USER_AUTH's SELECT_CHALLENGE: the factors Cognito offers.
    available: list[str] = field(default_factory=list)
    # MFA_SETUP: the TOTP secret from AssociateSoftwareToken, shown to this user only.
    totp_secret: str | None = None
    # Forgot password / confirm sign-up: where Cognito says it sent the code (masked).
    code_destination: str | None = None
    # What the user typed at sign-in (maybe an alias); only to match a remembered device.
    typed_username: str | None = None
    # Why a detour page is shown ("reset_required"), for its notice.
    reason: str | None = None
    # Shown on the next challenge page: the same custom challenge came back (wrong answer).
    retry_message: str | None = None
    # A second factor was passed in this sign-in: only then is the device worth remembering.
    mfa_done: bool = False

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
    # Cognito tracks this browser as a new device: confirm it (refresh needs its key).
    new_device: NewDevice | None = None


@dataclass(frozen=True)
class Rejected:
    """Show the login form again with a message (an i18n key) and HTTP status."""

    message: str
    status: int


@dataclass(frozen=True)
class NeedsChallenge:
    name: str
    cognito_session: str | None
    parameters: dict[str, str]


@dataclass(frozen=True)
class Retry:
    """Show the same challenge page again with a message; Cognito still accepts answers."""

    message: str
    status: int


@dataclass(frozen=True)
class Restart:
    """The sign-in cannot go on (its Cognito session expired or was refused): start again."""

    message: str


@dataclass(frozen=True)
class Detour:
    """Cognito wants another flow first: ``page`` is "forgot" (PasswordResetRequired) or
    "confirm" (UserNotConfirmed); ``username`` is the one to carry there."""

    page: str
    username: str


@dataclass(frozen=True)
class Broken:
    """Nothing the user can do: an error page (unknown challenge, misconfiguration)."""

    message: str
    status: int


Step = SignedIn | Rejected | NeedsChallenge | Retry | Restart | Detour | Broken


class Authenticator:
    """Runs sign-in steps against Cognito and turns verified tokens into a Session."""

    def __init__(self, cognito: CognitoClient, verifier: TokenVerifier) -> None:
        self._cognito = cognito
        self._verifier = verifier

    @property
    def cognito(self) -> CognitoClient:
        return self._cognito

    async def sign_in(
        self,
        username: str,
        password: str,
        context: ContextData | None,
        device: Device | None = None,
    ) -> Step:
        try:
            try:
                result = await self._cognito.password_login(username, password, context, device)
            except errors.Misconfigured as exc:
                if device is None or exc.code != "ResourceNotFoundException":
                    raise
                # A device Cognito no longer knows (forgotten by an admin): sign in without it.
                log.info("remembered device unknown to Cognito; signing in without it")
                device = None
                result = await self._cognito.password_login(username, password, context)
        except errors.UserNotConfirmed:
            # Cognito says so only after the password checked out: no enumeration.
            return Detour("confirm", username)
        except errors.PasswordResetRequired:
            return Detour("forgot", username)
        except errors.CognitoError as exc:
            return _rejection(exc)
        return await self._next(result, device)

    async def answer(
        self,
        state: LoginState,
        form: Mapping[str, str],
        context: ContextData | None,
        device: Device | None = None,
    ) -> Step:
        """Answer the stored challenge with the posted form. ``state`` is updated in place
        for the next step (the caller saves it)."""
        step = step_for(state)
        if step is None or state.username is None:
            log.error("no page for Cognito challenge %s", state.challenge)
            return Broken("error.unsupported_challenge", 502)
        responses = step.answer(state, form)
        if isinstance(responses, Invalid):
            return Retry(responses.message, 400)
        try:
            await step.before_answer(state, self._cognito, form)
            result = await step.respond(state, self._cognito, responses, context, device)
        except errors.SessionExpired:
            return Restart("error.flow_expired")
        except errors.BadCredentials:
            # A refused answer Cognito will not take again (too many wrong codes, a wrong
            # password or passkey, a replayed session): the same words for every case.
            return Restart(step.refused_message)
        except errors.CognitoError as exc:
            return _challenge_failure(exc)
        return await self._next(result, device)

    async def prepare(self, state: LoginState) -> Step | bool:
        """Cognito calls the current page needs before it is shown (True: state changed)."""
        step = step_for(state)
        if step is None:
            log.error("no page for Cognito challenge %s", state.challenge)
            return Broken("error.unsupported_challenge", 502)
        try:
            return await step.prepare(state, self._cognito)
        except errors.CognitoError as exc:
            failure = _challenge_failure(exc)
            # Nothing was answered yet: a retryable failure still cannot show the page.
            return (
                Broken(failure.message, failure.status) if isinstance(failure, Retry) else failure
            )

    async def _next(self, result: AuthResult, device: Device | None = None) -> Step:
        if result.tokens is not None:
            try:
                session = await self.session_from(result.tokens)
                if result.new_device is None and device is not None:
                    session.device_key = device.device_key  # tokens linked to this device
            except TokenError as exc:
                # Cognito handed us a token we cannot verify: a config error, not the user's.
                log.error("token from Cognito failed verification: %s", type(exc).__name__)
                return Broken("error.generic", 502)
            return SignedIn(session, result.new_device)
        assert result.challenge is not None
        challenge = result.challenge
        parameters = dict(challenge.parameters)
        if challenge.available:
            parameters["AVAILABLE_CHALLENGES"] = json.dumps(list(challenge.available))
        if result.user_id and "USER_ID_FOR_SRP" not in parameters:
            parameters["USER_ID_FOR_SRP"] = result.user_id
        return NeedsChallenge(challenge.name, challenge.session, parameters)

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


# Answering one of these proves a second factor (what remembered devices stand in for).
MFA_CHALLENGES = frozenset(
    {"SMS_MFA", "EMAIL_OTP", "SOFTWARE_TOKEN_MFA", "MFA_SETUP", "SELECT_MFA_TYPE"}
)


def enter_challenge(state: LoginState, step: NeedsChallenge, fallback_username: str) -> None:
    """Record the challenge Cognito asked for in the server-side state."""
    params = step.parameters
    # A custom challenge's Lambda answers a wrong reply by asking the same question again.
    same_again = state.challenge == step.name == "CUSTOM_CHALLENGE" and _public(
        state.parameters
    ) == _public(params)
    state.retry_message = "error.answer_rejected" if same_again else None
    state.mfa_done = state.mfa_done or state.challenge in MFA_CHALLENGES
    state.user_id_for_srp = params.get("USER_ID_FOR_SRP") or state.user_id_for_srp
    state.username = (
        params.get("USERNAME") or state.user_id_for_srp or state.username or fallback_username
    )
    state.challenge = step.name
    state.cognito_session = step.cognito_session
    state.parameters = {k: v for k, v in params.items() if k != "AVAILABLE_CHALLENGES"}
    state.available = json.loads(params.get("AVAILABLE_CHALLENGES", "[]"))
    state.challenge_at = time.time()
    state.totp_secret = None


def _public(params: Mapping[str, str]) -> dict[str, str]:
    private = ("USERNAME", "USER_ID_FOR_SRP", "AVAILABLE_CHALLENGES")
    return {k: v for k, v in params.items() if k not in private}


_POLICY_HINTS = (
    ("long enough", "error.password_policy.length"),
    ("uppercase", "error.password_policy.upper"),
    ("lowercase", "error.password_policy.lower"),
    ("numeric", "error.password_policy.digit"),
    ("symbol", "error.password_policy.symbol"),
)


def password_policy_message(exc: errors.CognitoError) -> str:
    """Cognito names the broken rule in English; show it in the page's language."""
    detail = exc.detail.lower()
    for needle, key in _POLICY_HINTS:
        if needle in detail:
            return key
    return "error.password_policy"


def _challenge_failure(exc: errors.CognitoError) -> Retry | Restart | Broken:
    if isinstance(exc, errors.CodeMismatch):
        return Retry("error.invalid_code", 400)
    if isinstance(exc, errors.ExpiredCode):
        return Retry("error.code_expired", 400)
    if isinstance(exc, errors.InvalidPassword):
        return Retry(password_policy_message(exc), 400)
    if isinstance(exc, errors.TooManyRequests):
        return Retry("error.too_many", 429)
    if isinstance(exc, errors.Unavailable):
        return Retry("error.unavailable", 503)
    if isinstance(exc, errors.SessionExpired):
        return Restart("error.flow_expired")
    if isinstance(exc, errors.BadCredentials):
        # A refused answer Cognito will not take again (too many wrong codes, a replayed or
        # foreign session): the same words for every case.
        return Restart("error.challenge_failed")
    if isinstance(exc, errors.Misconfigured):
        log.error("Cognito rejected our challenge answer as misconfigured: %s", exc.code)
        return Broken("error.unavailable", 503)
    log.error("unexpected Cognito error on a challenge: %s", exc.code)
    return Broken("error.generic", 502)


def _rejection(exc: errors.CognitoError) -> Rejected:
    # Every credential problem gets the same words and status: no user enumeration.
    if isinstance(exc, errors.BadCredentials | errors.UserNotConfirmed):
        return Rejected("error.bad_credentials", 401)
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
