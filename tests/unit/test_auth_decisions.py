"""The auth handlers' decisions on Cognito's answers as tables: no sockets, no store, no Cognito.

Which refusal leads to which outcome (the login form again, the same challenge page, a fresh
sign-in, the blocked page, an error page) with which words and status, for the three moments
in proxy/auth/messages.py. Integration tests (test_login_flow.py, ...) prove the same through
real servers; these pin every row so a change of words or status fails here first.
"""

from __future__ import annotations

import pytest

from proxy.auth.messages import (
    challenge_failure,
    code_failure,
    password_policy_message,
    sign_in_failure,
)
from proxy.auth.outcomes import Blocked, Broken, Rejected, Restart, Retry
from proxy.cognito import errors


def err(
    cls: type[errors.CognitoError], detail: str = "", user_id: str | None = None
) -> errors.CognitoError:
    exc = cls("SomeCode", detail)
    exc.user_id = user_id
    return exc


SIGN_IN = [
    # (Cognito's refusal, what the login step comes to)
    (errors.SignInBlocked, Blocked("error.sign_in_blocked", 403)),
    (errors.BadCredentials, Rejected("error.bad_credentials", 401, "u-1")),
    (errors.PasswordAttemptsExceeded, Rejected("error.bad_credentials", 401, "u-1")),
    (errors.UserNotConfirmed, Rejected("error.bad_credentials", 401, "u-1")),
    # No user id: a reset-required user is not counted toward the ban under their id.
    (errors.PasswordResetRequired, Rejected("error.bad_credentials", 401)),
    (errors.TooManyRequests, Rejected("error.too_many", 429)),
    (errors.SessionExpired, Rejected("error.flow_expired", 400)),
    (errors.Misconfigured, Rejected("error.unavailable", 503)),
    (errors.BadClientSecret, Rejected("error.unavailable", 503)),
    (errors.Unavailable, Rejected("error.unavailable", 503)),
    (errors.CodeMismatch, Rejected("error.generic", 502)),
    (errors.CognitoError, Rejected("error.generic", 502)),
]


@pytest.mark.parametrize(("cls", "expected"), SIGN_IN, ids=[c.__name__ for c, _ in SIGN_IN])
def test_sign_in_failure(cls: type[errors.CognitoError], expected: object) -> None:
    outcome = sign_in_failure(err(cls, user_id="u-1"))
    assert outcome == expected
    assert type(outcome) is type(expected)  # Blocked, not just an equal Broken


CHALLENGE = [
    (errors.SignInBlocked, Blocked("error.sign_in_blocked", 403)),
    (errors.CodeMismatch, Retry("error.invalid_code", 400)),
    (errors.ExpiredCode, Retry("error.code_expired", 400)),
    (errors.InvalidPassword, Retry("error.password_policy", 400)),
    (errors.TooManyRequests, Retry("error.too_many", 429)),
    (errors.Unavailable, Retry("error.unavailable", 503)),
    (errors.SessionExpired, Restart("error.flow_expired")),
    (errors.BadCredentials, Restart("error.challenge_failed")),
    (errors.PasswordAttemptsExceeded, Restart("error.challenge_failed")),
    (errors.Misconfigured, Broken("error.unavailable", 503)),
    (errors.UserNotConfirmed, Broken("error.generic", 502)),
    (errors.CognitoError, Broken("error.generic", 502)),
]


@pytest.mark.parametrize(("cls", "expected"), CHALLENGE, ids=[c.__name__ for c, _ in CHALLENGE])
def test_challenge_failure(cls: type[errors.CognitoError], expected: object) -> None:
    outcome = challenge_failure(err(cls))
    assert outcome == expected
    assert type(outcome) is type(expected)


CODE = [
    (errors.InvalidPassword, Retry("error.password_policy", 400)),
    (errors.ExpiredCode, Retry("error.code_expired", 400)),
    (errors.CodeMismatch, Retry("error.invalid_code", 400)),
    # An unknown user reads like a wrong code: no enumeration.
    (errors.BadCredentials, Retry("error.invalid_code", 400)),
    (errors.TooManyRequests, Retry("error.too_many", 429)),
    (errors.Unavailable, Retry("error.unavailable", 503)),
    (errors.SignInBlocked, Retry("error.unavailable", 503)),
    (errors.CognitoError, Retry("error.unavailable", 503)),
]


@pytest.mark.parametrize(("cls", "expected"), CODE, ids=[c.__name__ for c, _ in CODE])
def test_code_failure(cls: type[errors.CognitoError], expected: Retry) -> None:
    assert code_failure(err(cls), "ConfirmForgotPassword") == expected


POLICY = [
    (
        "Password did not conform with policy: Password not long enough",
        "error.password_policy.length",
    ),
    ("Password must have uppercase characters", "error.password_policy.upper"),
    ("Password must have lowercase characters", "error.password_policy.lower"),
    ("Password must have numeric characters", "error.password_policy.digit"),
    ("Password must have symbol characters", "error.password_policy.symbol"),
    ("Password did not conform with policy", "error.password_policy"),
]


@pytest.mark.parametrize(("detail", "key"), POLICY)
def test_password_policy_message(detail: str, key: str) -> None:
    exc = err(errors.InvalidPassword, detail)
    assert password_policy_message(exc) == key
    # The same words reach the challenge page and the recovery form.
    assert challenge_failure(exc) == Retry(key, 400)
    assert code_failure(exc, "ConfirmForgotPassword") == Retry(key, 400)
