"""Cognito error codes → our error types.

Callers branch on the type, never on Cognito's message text: messages differ between pools
(e.g. with and without prevent-user-existence-errors) and may leak whether a user exists.
"""

from __future__ import annotations

from typing import Any


class CognitoError(Exception):
    """Base class. ``code`` is Cognito's error code, safe to log; the message may not be."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = message
        # Cognito's internal username when a failed SRP step told us (USER_ID_FOR_SRP): lets
        # brute-force counters join a user's aliases.
        self.user_id: str | None = None


class BadCredentials(CognitoError):
    """Wrong password, unknown user, disabled user: shown to the user as one generic message."""


class PasswordAttemptsExceeded(BadCredentials):
    """Cognito's own lockout ("Password attempts exceeded", after five wrong passwords).

    A bad credential for everything that follows: it counts toward the proxy's ban (so a burst
    of guesses on one account stops at the proxy instead of costing the pool's shared quota)
    and reads like a wrong password (a distinct answer would tell that the account exists).
    """


class RefreshTokenSuperseded(BadCredentials):
    """RefreshTokenReuseException: rotation replaced this refresh token and its grace period
    is over. Whoever replaced it saved the new one: re-read the session before giving up."""


class SignInBlocked(CognitoError):
    """Threat protection refused the sign-in ("Unable to login because of security reasons."):
    not a wrong password, and asking again gets the same answer."""


class SessionExpired(CognitoError):
    """Cognito's challenge Session ran out (3 minutes by default): the login starts again."""


class UserNotConfirmed(CognitoError):
    pass


class PasswordResetRequired(CognitoError):
    pass


class CodeMismatch(CognitoError):
    pass


class ExpiredCode(CognitoError):
    pass


class InvalidPassword(CognitoError):
    """The new password breaks the pool's password policy."""


class TooManyRequests(CognitoError):
    """Throttling or Cognito's own lockout: "try again later", never a bad password."""


class Unavailable(CognitoError):
    """Cognito cannot be reached or failed internally."""


class Misconfigured(CognitoError):
    """The pool or app client does not allow what we asked: an operator problem, logged loudly."""


class BadClientSecret(Misconfigured):
    """Cognito refused the app client secret (SECRET_HASH or ClientSecret): not the user's
    fault, and during a secret rotation the other configured secret may work."""


class RefreshFlowNotAllowed(Misconfigured):
    """The refresh flow is not offered: REFRESH_TOKEN_AUTH on a client with refresh-token
    rotation, or GetTokensFromRefreshToken on a pool or emulator without it."""


_BY_CODE: dict[str, type[CognitoError]] = {
    "NotAuthorizedException": BadCredentials,
    "UserNotFoundException": BadCredentials,
    "UserNotConfirmedException": UserNotConfirmed,
    "PasswordResetRequiredException": PasswordResetRequired,
    "CodeMismatchException": CodeMismatch,
    "ExpiredCodeException": ExpiredCode,
    "InvalidPasswordException": InvalidPassword,
    # VerifySoftwareToken's answer to a wrong TOTP code during enrolment.
    "EnableSoftwareTokenMFAException": CodeMismatch,
    "CodeDeliveryFailureException": Unavailable,
    "UsernameExistsException": BadCredentials,
    "AliasExistsException": BadCredentials,
    "SoftwareTokenMFANotFoundException": Misconfigured,
    "MFAMethodNotFoundException": Misconfigured,
    "WebAuthnNotEnabledException": Misconfigured,
    "WebAuthnRelyingPartyMismatchException": Misconfigured,
    "WebAuthnOriginNotAllowedException": Misconfigured,
    "WebAuthnChallengeNotFoundException": SessionExpired,
    "WebAuthnCredentialNotSupportedException": BadCredentials,
    "ForbiddenException": Misconfigured,
    "RefreshTokenReuseException": RefreshTokenSuperseded,
    "UnknownOperationException": Misconfigured,
    "TooManyRequestsException": TooManyRequests,
    "LimitExceededException": TooManyRequests,
    "TooManyFailedAttemptsException": TooManyRequests,
    "InternalErrorException": Unavailable,
    "ServiceUnavailable": Unavailable,
    "ResourceNotFoundException": Misconfigured,
    "InvalidParameterException": Misconfigured,
    "InvalidUserPoolConfigurationException": Misconfigured,
    "InvalidLambdaResponseException": Misconfigured,
    "UnexpectedLambdaException": Unavailable,
    "UserLambdaValidationException": BadCredentials,
    "UnrecognizedClientException": Misconfigured,
    "AccessDeniedException": Misconfigured,
    "MissingAuthenticationTokenException": Misconfigured,
}


def from_response(error: dict[str, Any]) -> CognitoError:
    """Build our error from botocore's ``ClientError.response["Error"]``."""
    code = str(error.get("Code") or "Unknown")
    message = str(error.get("Message") or "")
    cls = _BY_CODE.get(code, Unavailable if code.startswith("Throttl") else CognitoError)
    if cls is TooManyRequests or code.startswith("Throttl"):
        return TooManyRequests(code, message)
    lowered = message.lower()
    if (
        code == "NotAuthorizedException"
        and any(
            word in lowered
            for word in ("secret hash", "secret_hash", "client secret", "clientsecret")
        )
    ) or (code == "UnauthorizedException" and "client authentication" in lowered):
        # "Unable to verify secret hash for client ...", "... configured with secret but
        # SECRET_HASH was not received", RevokeToken's "Client authentication failed".
        return BadClientSecret(code, message)
    if code == "NotAuthorizedException" and "security reasons" in lowered:
        return SignInBlocked(code, message)
    if code == "NotAuthorizedException" and "attempts exceeded" in lowered:
        return PasswordAttemptsExceeded(code, message)
    if code == "NotAuthorizedException" and "session" in lowered and "expired" in lowered:
        # "Invalid session for the user, session is expired." is not a wrong password. Other
        # session refusals (too many wrong codes, a replayed session) stay BadCredentials.
        return SessionExpired(code, message)
    return cls(code, message)
