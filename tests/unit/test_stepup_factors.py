"""Which factors a sign-in passed (flow.password_factor / factor_answered), as tables: what the
session records for step-up (``max_auth_age`` / ``require_mfa``)."""

from __future__ import annotations

import pytest

from proxy.auth.flow import factor_answered, password_factor
from proxy.auth.state import LoginState
from proxy.sessions.session import FACTORS, MFA_FACTORS


@pytest.mark.parametrize(
    ("flow", "password", "factor"),
    [
        ("USER_SRP_AUTH", "pw", "srp"),
        ("CUSTOM_AUTH", "pw", "srp"),  # SRP first, then the Lambda's steps
        ("CUSTOM_AUTH", "", None),
        ("USER_PASSWORD_AUTH", "pw", "password"),
        ("ADMIN_USER_PASSWORD_AUTH", "pw", "password"),
        ("USER_AUTH", "", None),  # the factor is chosen at SELECT_CHALLENGE
        ("USER_AUTH", "pw", None),
    ],
)
def test_the_first_call_passes_the_password_or_nothing(
    flow: str, password: str, factor: str | None
) -> None:
    assert password_factor(flow, password) == factor


@pytest.mark.parametrize(
    ("challenge", "first_factor", "responses", "signed_in", "factor"),
    [
        ("SOFTWARE_TOKEN_MFA", None, {}, True, "totp"),
        ("MFA_SETUP", None, {}, True, "totp"),
        ("SMS_MFA", None, {}, True, "sms_mfa"),
        ("EMAIL_OTP", None, {}, True, "email_mfa"),
        ("EMAIL_OTP", "EMAIL_OTP", {}, True, "email_otp"),  # USER_AUTH's first factor
        ("SMS_OTP", "SMS_OTP", {}, True, "sms_otp"),
        ("WEB_AUTHN", "WEB_AUTHN", {}, True, "passkey"),
        ("SELECT_CHALLENGE", None, {"ANSWER": "PASSWORD_SRP"}, False, "srp"),
        ("SELECT_CHALLENGE", None, {"ANSWER": "PASSWORD"}, True, "password"),
        ("SELECT_CHALLENGE", None, {"ANSWER": "EMAIL_OTP"}, False, None),  # only a choice
        ("SELECT_MFA_TYPE", None, {"ANSWER": "SMS_MFA"}, False, None),
        ("NEW_PASSWORD_REQUIRED", None, {}, True, None),  # the password was checked before
        ("CUSTOM_CHALLENGE", None, {}, False, None),  # asked again: not passed yet
        ("CUSTOM_CHALLENGE", None, {}, True, "custom"),
        ("SOMETHING_NEW", None, {}, True, None),
    ],
)
def test_each_answered_challenge_passes_its_factor(
    challenge: str,
    first_factor: str | None,
    responses: dict[str, str],
    signed_in: bool,
    factor: str | None,
) -> None:
    state = LoginState.new("/")
    state.first_factor = first_factor
    assert factor_answered(state, challenge, responses, signed_in=signed_in) == factor
    assert factor is None or factor in FACTORS


def test_only_codes_answered_now_and_passkeys_are_multi_factor() -> None:
    assert {"totp", "sms_mfa", "email_mfa", "passkey"} == MFA_FACTORS
    assert "device" not in MFA_FACTORS  # a remembered device stands in for the code
    assert MFA_FACTORS <= FACTORS
