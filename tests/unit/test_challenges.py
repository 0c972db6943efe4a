"""The challenge table's pure parts: lenient list parsing, codes, QR/otpauth, template choice."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from proxy.auth import qr
from proxy.auth.challenges import (
    STEPS,
    CustomStep,
    Invalid,
    MfaSetupStep,
    NewPasswordStep,
    clean_code,
    parse_name_list,
    step_for,
)
from proxy.auth.state import LoginState


def _state(challenge: str, **parameters: str) -> LoginState:
    state = LoginState.new("/")
    state.challenge = challenge
    state.username = "u"
    state.parameters = dict(parameters)
    return state


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('["SMS_MFA","SOFTWARE_TOKEN_MFA"]', ["SMS_MFA", "SOFTWARE_TOKEN_MFA"]),
        ("SOFTWARE_TOKEN_MFA", ["SOFTWARE_TOKEN_MFA"]),
        ("[SMS_MFA, SOFTWARE_TOKEN_MFA]", ["SMS_MFA", "SOFTWARE_TOKEN_MFA"]),
        ("SMS_MFA,SMS_MFA", ["SMS_MFA"]),
        ("", []),
        (None, []),
    ],
)
def test_name_lists_are_parsed_leniently(raw: str | None, expected: list[str]) -> None:
    assert parse_name_list(raw) == expected


def test_mfa_setup_is_supported_only_for_totp() -> None:
    assert step_for(_state("MFA_SETUP", MFAS_CAN_SETUP='["SOFTWARE_TOKEN_MFA"]')) is not None
    assert step_for(_state("MFA_SETUP", MFAS_CAN_SETUP="garbage-but-nothing")) is None
    assert step_for(_state("MFA_SETUP")) is not None  # absent: Cognito offers TOTP
    assert isinstance(STEPS["MFA_SETUP"], MfaSetupStep)


def test_unknown_challenge_has_no_step() -> None:
    assert step_for(_state("SOMETHING_NEW")) is None


@pytest.mark.parametrize(
    ("typed", "code"),
    [("123456", "123456"), (" 123 456 ", "123456"), ("12", None), ("<b>1234</b>", None)],
)
def test_codes_are_cleaned_or_refused(typed: str, code: str | None) -> None:
    assert clean_code(typed) == code


def test_required_attributes_become_fields_and_answers() -> None:
    state = _state(
        "NEW_PASSWORD_REQUIRED",
        requiredAttributes='["userAttributes.name", "userAttributes.custom:team", "bad name"]',
    )
    step = NewPasswordStep()
    assert step.required_attributes(state) == ["name", "custom:team"]
    form = {
        "new_password": "Pw-1234567!",
        "confirm_password": "Pw-1234567!",
        "userAttributes.name": "Ann",
        "userAttributes.custom:team": "blue",
        "userAttributes.admin": "true",  # not asked for: not sent
    }
    assert step.answer(state, form) == {
        "NEW_PASSWORD": "Pw-1234567!",
        "userAttributes.name": "Ann",
        "userAttributes.custom:team": "blue",
    }
    assert step.answer(state, {**form, "userAttributes.name": " "}) == Invalid(
        "error.required_field"
    )


def test_custom_template_name_is_sanitised() -> None:
    step = CustomStep()
    exists = {"custom_captcha.html"}.__contains__
    assert step.template_for(_state("CUSTOM_CHALLENGE", type="Captcha"), exists) == (
        "custom_captcha.html"
    )
    for kind in ("../login", "captcha.html", "x" * 41, "magic"):
        assert step.template_for(_state("CUSTOM_CHALLENGE", type=kind), exists) == (
            "custom_challenge.html"
        )


def test_otpauth_uri_and_svg_qr() -> None:
    uri = qr.otpauth_uri(issuer="Acme Cloud", account="ann@example.com", secret="ABCDEF234567")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert parts.path == "/Acme%20Cloud:ann@example.com"
    assert parse_qs(parts.query) == {"secret": ["ABCDEF234567"], "issuer": ["Acme Cloud"]}
    data_uri = qr.svg_data_uri(uri)
    assert data_uri.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(data_uri.split(",", 1)[1])
    assert svg.startswith(b"<svg") and b"<path" in svg and b"script" not in svg


@pytest.mark.parametrize(
    ("challenge", "first_factor", "spared"),
    [
        ("SOFTWARE_TOKEN_MFA", None, "SOFTWARE_TOKEN_MFA"),
        ("MFA_SETUP", None, "SOFTWARE_TOKEN_MFA"),  # enrols, then answers, the app
        ("SMS_MFA", None, "SMS_MFA"),
        ("EMAIL_OTP", None, "EMAIL_OTP"),  # MFA after the password (USER_SRP_AUTH)
        ("EMAIL_OTP", "PASSWORD", "EMAIL_OTP"),  # USER_AUTH: password, then emailed MFA
        ("EMAIL_OTP", "EMAIL_OTP", None),  # USER_AUTH: the emailed code is the first factor
        ("SMS_OTP", "SMS_OTP", None),
        ("WEB_AUTHN", "WEB_AUTHN", None),
        ("SELECT_MFA_TYPE", None, None),  # only picks the factor that comes next
        ("NEW_PASSWORD_REQUIRED", None, None),
        ("CUSTOM_CHALLENGE", None, None),
    ],
)
def test_second_factor_is_what_a_remembered_device_would_spare(
    challenge: str, first_factor: str | None, spared: str | None
) -> None:
    from proxy.auth.flow import second_factor

    state = LoginState.new("/")
    state.challenge, state.first_factor = challenge, first_factor
    assert second_factor(state) == spared


def test_a_flow_record_with_a_retired_field_still_reads() -> None:
    """challenge_at was never read and is gone; a sign-in in progress across the deploy goes on."""
    state = LoginState.new("/app")
    record = json.loads(state.to_bytes())
    record["challenge_at"] = 1234.5
    assert LoginState.from_bytes(json.dumps(record).encode()) == state
    assert LoginState.from_bytes(b"[]") is None
