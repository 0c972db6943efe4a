"""The sign-in conversation: Cognito's answer → the next step to show (``outcomes``).

The state of a sign-in in progress (``state.LoginState``) lives server-side, never in hidden
form fields: the username sent to Cognito on later steps is always the stored one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from proxy.auth.challenges import Invalid, step_for
from proxy.auth.messages import challenge_failure, sign_in_failure
from proxy.auth.outcomes import (
    Broken,
    Detour,
    NeedsChallenge,
    Restart,
    Retry,
    SignedIn,
    Step,
)
from proxy.auth.state import LoginState
from proxy.cognito import errors
from proxy.cognito.client import (
    AuthResult,
    CognitoClient,
    ContextData,
    Device,
    Tokens,
)
from proxy.cognito.tokens import TokenError, TokenVerifier
from proxy.sessions.session import Session, verified_session

log = logging.getLogger("proxy.auth")


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
        state: LoginState | None = None,
    ) -> Step:
        """The first step of a sign-in; ``state`` (when given) records the factor passed."""
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
            return sign_in_failure(exc)
        if state is not None:
            passed = password_factor(self._cognito.auth_flow, password)
            if passed is not None:
                _note(state, passed)
            if result.tokens is not None and device is not None and result.new_device is None:
                _note(state, "device")  # DEVICE_SRP_AUTH answered: Cognito skipped MFA
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
        answered = state.challenge
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
            return challenge_failure(exc)
        passed = factor_answered(state, answered, responses, signed_in=result.tokens is not None)
        if passed is not None:
            _note(state, passed)
        if result.tokens is not None and device is not None and result.new_device is None:
            _note(state, "device")
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
            failure = challenge_failure(exc)
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


# Cognito's MFA challenges: what a remembered device stands in for at the next sign-in.
MFA_CHALLENGES = frozenset(
    {"SMS_MFA", "EMAIL_OTP", "SOFTWARE_TOKEN_MFA", "MFA_SETUP", "SELECT_MFA_TYPE"}
)


def second_factor(state: LoginState) -> str | None:
    """The second factor that answering ``state.challenge`` passes, or None: for a step that
    only picks one (SELECT_MFA_TYPE), and for USER_AUTH's emailed code when it was chosen as the
    first factor (a remembered device spares only MFA, never a first factor). MFA_SETUP enrols
    and answers an authenticator app."""
    name = state.challenge
    if name not in MFA_CHALLENGES or name == "SELECT_MFA_TYPE" or name == state.first_factor:
        return None
    return "SOFTWARE_TOKEN_MFA" if name == "MFA_SETUP" else name


def password_factor(auth_flow: str, password: str) -> str | None:
    """The factor a successful first call passed: the password (by SRP where the flow uses it),
    or none (CUSTOM_AUTH / USER_AUTH without a password: later challenges decide)."""
    if not password:
        return None
    if auth_flow in ("USER_SRP_AUTH", "CUSTOM_AUTH"):
        return "srp"
    if auth_flow == "USER_AUTH":
        return None  # the password is not sent up front; SELECT_CHALLENGE answers it
    return "password"


# The factor each answered challenge passes (session.FACTORS); those not listed pass none
# (NEW_PASSWORD_REQUIRED follows a password already checked, SELECT_MFA_TYPE only picks).
_CHALLENGE_FACTORS = {
    "SOFTWARE_TOKEN_MFA": "totp",
    "MFA_SETUP": "totp",
    "SMS_MFA": "sms_mfa",
    "SMS_OTP": "sms_otp",
    "WEB_AUTHN": "passkey",
}


def factor_answered(
    state: LoginState, challenge: str | None, responses: Mapping[str, str], *, signed_in: bool
) -> str | None:
    """The factor that answering ``challenge`` (accepted by Cognito) passed, or None."""
    if challenge == "EMAIL_OTP":
        return "email_otp" if state.first_factor == "EMAIL_OTP" else "email_mfa"
    if challenge == "SELECT_CHALLENGE":
        answer = responses.get("ANSWER")
        return {"PASSWORD_SRP": "srp", "PASSWORD": "password"}.get(answer or "")
    if challenge == "CUSTOM_CHALLENGE":
        # The Lambda may ask again after a wrong answer: passed only when it lets the user in.
        return "custom" if signed_in else None
    return _CHALLENGE_FACTORS.get(challenge or "")


def _note(state: LoginState, factor: str) -> None:
    if factor not in state.factors:
        state.factors.append(factor)


def enter_challenge(state: LoginState, step: NeedsChallenge, fallback_username: str) -> None:
    """Record the challenge Cognito asked for in the server-side state."""
    params = step.parameters
    # A custom challenge's Lambda answers a wrong reply by asking the same question again.
    same_again = state.challenge == step.name == "CUSTOM_CHALLENGE" and _public(
        state.parameters
    ) == _public(params)
    state.retry_message = "error.answer_rejected" if same_again else None
    state.second_factor = second_factor(state) or state.second_factor
    state.user_id_for_srp = params.get("USER_ID_FOR_SRP") or state.user_id_for_srp
    state.username = (
        params.get("USERNAME") or state.user_id_for_srp or state.username or fallback_username
    )
    state.challenge = step.name
    state.cognito_session = step.cognito_session
    state.parameters = {k: v for k, v in params.items() if k != "AVAILABLE_CHALLENGES"}
    state.available = json.loads(params.get("AVAILABLE_CHALLENGES", "[]"))
    state.totp_secret = None


def _public(params: Mapping[str, str]) -> dict[str, str]:
    private = ("USERNAME", "USER_ID_FOR_SRP", "AVAILABLE_CHALLENGES")
    return {k: v for k, v in params.items() if k not in private}
