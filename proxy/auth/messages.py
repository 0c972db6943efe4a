"""Cognito's errors turned into what the user is told: the one place that chooses the words
(i18n keys) and statuses. Every credential problem reads the same, so nothing enumerates users.

Three moments, three tables: signing in (the login form again), answering a challenge (the same
page, a fresh sign-in, or an error page), and a code-and-form step of account recovery (the
same form again).
"""

from __future__ import annotations

import logging

from proxy.auth.outcomes import Blocked, Broken, Rejected, Restart, Retry
from proxy.cognito import errors

log = logging.getLogger("proxy.auth")

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


BLOCKED = Blocked("error.sign_in_blocked", 403)


def sign_in_failure(exc: errors.CognitoError) -> Rejected | Blocked:
    """A refused InitiateAuth (or its SRP step): the login form again, or the blocked page."""
    if isinstance(exc, errors.SignInBlocked):
        return BLOCKED
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


def challenge_failure(exc: errors.CognitoError) -> Retry | Restart | Broken:
    """A refused challenge answer (or a call the page needed)."""
    if isinstance(exc, errors.SignInBlocked):  # risk assessed after a factor answered here
        return BLOCKED
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


def code_failure(exc: errors.CognitoError, operation: str) -> Retry:
    """A refused recovery call (ConfirmForgotPassword, ConfirmSignUp, a resend, ...): the same
    form again. An unknown user reads like a wrong code: no enumeration."""
    if isinstance(exc, errors.InvalidPassword):
        return Retry(password_policy_message(exc), 400)
    if isinstance(exc, errors.ExpiredCode):
        return Retry("error.code_expired", 400)
    if isinstance(exc, errors.CodeMismatch | errors.BadCredentials):
        return Retry("error.invalid_code", 400)
    if isinstance(exc, errors.TooManyRequests):
        return Retry("error.too_many", 429)
    log.warning("%s failed: %s", operation, exc.code)
    return Retry("error.unavailable", 503)
