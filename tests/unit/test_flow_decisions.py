"""The Authenticator's decisions as tables: Cognito's answer → the next step of the sign-in.

Cognito is a fake at the client boundary (tests/support/auth_fakes.py) that answers as each row
says and records what it was sent; tokens are verified by a fake that reads their claims. The
integration tests (test_login_flow.py, test_cognito_double_challenges.py,
test_challenges_user_auth.py, test_devices.py) prove the same against the strict double; these
pin each row so that a change fails here first, in milliseconds.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy.auth.flow import Authenticator, enter_challenge, second_factor
from proxy.auth.outcomes import (
    Blocked,
    Broken,
    Detour,
    NeedsChallenge,
    Rejected,
    Restart,
    Retry,
    SignedIn,
    Step,
)
from proxy.auth.state import LoginState
from proxy.cognito.client import Device, NewDevice
from tests.support.auth_fakes import (
    BAD_PASSWORD,
    BLOCKED,
    SESSION_EXPIRED,
    TOO_MANY_CODES,
    FakeCognito,
    FakeVerifier,
    challenge,
    refusal,
    signed_in,
)

DEVICE = Device("dev-1", "grp-1", "dpw")
NEW_DEVICE = NewDevice("dev-new", "grp-1")


def authenticator(cognito: FakeCognito) -> Authenticator:
    return Authenticator(cognito, FakeVerifier())  # type: ignore[arg-type]


def seen(step: Step) -> object:
    """What the user will get from ``step``: for a sign-in, whose session, linked to which
    device, with which device to confirm; any other step as it is."""
    if isinstance(step, SignedIn):
        s = step.session
        return ("signed in", s.username, s.sub, s.device_key, step.new_device)
    return step


def is_exactly(outcome: object, expected: object) -> bool:
    return outcome == expected and type(outcome) is type(expected)


# -- sign_in: the password form's post ---------------------------------------------------------

SIGN_IN: list[tuple[str, list[Any], Device | None, object]] = [
    # (row, Cognito's answers to password_login in turn, remembered device, what follows)
    ("tokens", [signed_in()], None, ("signed in", "ann", "s-1", None, None)),
    (
        "tokens for a new device: confirm it",
        [signed_in(NEW_DEVICE)],
        None,
        ("signed in", "ann", "s-1", None, NEW_DEVICE),
    ),
    (
        "remembered device answered: the tokens are linked to it",
        [signed_in()],
        DEVICE,
        ("signed in", "ann", "s-1", "dev-1", None),
    ),
    (
        "remembered device but Cognito issues another: that one is confirmed instead",
        [signed_in(NEW_DEVICE)],
        DEVICE,
        ("signed in", "ann", "s-1", None, NEW_DEVICE),
    ),
    (
        "remembered device forgotten by an admin: signed in without it",
        [refusal("ResourceNotFoundException", "Device does not exist."), signed_in()],
        DEVICE,
        ("signed in", "ann", "s-1", None, None),
    ),
    (
        "ResourceNotFound without a device is our setup",
        [refusal("ResourceNotFoundException", "User pool client does not exist.")],
        None,
        Rejected("error.unavailable", 503),
    ),
    (
        "TOTP asked",
        [challenge("SOFTWARE_TOKEN_MFA", user_id="u-1")],
        None,
        NeedsChallenge("SOFTWARE_TOKEN_MFA", "cog-session-1", {"USER_ID_FOR_SRP": "u-1"}),
    ),
    (
        "SMS code asked, with where it went",
        [challenge("SMS_MFA", CODE_DELIVERY_DESTINATION="+*******0123")],
        None,
        NeedsChallenge("SMS_MFA", "cog-session-1", {"CODE_DELIVERY_DESTINATION": "+*******0123"}),
    ),
    (
        "emailed code asked",
        [challenge("EMAIL_OTP", CODE_DELIVERY_DESTINATION="a***@e***")],
        None,
        NeedsChallenge("EMAIL_OTP", "cog-session-1", {"CODE_DELIVERY_DESTINATION": "a***@e***"}),
    ),
    (
        "pick an MFA type",
        [challenge("SELECT_MFA_TYPE", MFAS_CAN_CHOOSE='["SMS_MFA","SOFTWARE_TOKEN_MFA"]')],
        None,
        NeedsChallenge(
            "SELECT_MFA_TYPE",
            "cog-session-1",
            {"MFAS_CAN_CHOOSE": '["SMS_MFA","SOFTWARE_TOKEN_MFA"]'},
        ),
    ),
    (
        "MFA enrolment",
        [challenge("MFA_SETUP", MFAS_CAN_SETUP='["SOFTWARE_TOKEN_MFA"]')],
        None,
        NeedsChallenge("MFA_SETUP", "cog-session-1", {"MFAS_CAN_SETUP": '["SOFTWARE_TOKEN_MFA"]'}),
    ),
    (
        "a new password first",
        [challenge("NEW_PASSWORD_REQUIRED", requiredAttributes="[]")],
        None,
        NeedsChallenge("NEW_PASSWORD_REQUIRED", "cog-session-1", {"requiredAttributes": "[]"}),
    ),
    (
        "a custom challenge",
        [challenge("CUSTOM_CHALLENGE", question="2+2?")],
        None,
        NeedsChallenge("CUSTOM_CHALLENGE", "cog-session-1", {"question": "2+2?"}),
    ),
    (
        "USER_AUTH offers factors: they travel with the parameters",
        [challenge("SELECT_CHALLENGE", available=("PASSWORD_SRP", "EMAIL_OTP"), user_id="u-1")],
        None,
        NeedsChallenge(
            "SELECT_CHALLENGE",
            "cog-session-1",
            {"AVAILABLE_CHALLENGES": '["PASSWORD_SRP", "EMAIL_OTP"]', "USER_ID_FOR_SRP": "u-1"},
        ),
    ),
    (
        "Cognito's own USER_ID_FOR_SRP wins over the client's guess",
        [challenge("SOFTWARE_TOKEN_MFA", user_id="typed", USER_ID_FOR_SRP="u-1")],
        None,
        NeedsChallenge("SOFTWARE_TOKEN_MFA", "cog-session-1", {"USER_ID_FOR_SRP": "u-1"}),
    ),
    ("wrong password", [refusal(*BAD_PASSWORD)], None, Rejected("error.bad_credentials", 401)),
    (
        "unknown user reads the same",
        [refusal("UserNotFoundException", "User does not exist.")],
        None,
        Rejected("error.bad_credentials", 401),
    ),
    (
        "blocked by threat protection",
        [refusal(*BLOCKED)],
        None,
        Blocked("error.sign_in_blocked", 403),
    ),
    (
        "not confirmed yet: to the confirm page",
        [refusal("UserNotConfirmedException", "User is not confirmed.")],
        None,
        Detour("confirm", "ann"),
    ),
    (
        "reset required: to the forgot page",
        [refusal("PasswordResetRequiredException", "Password reset required for the user")],
        None,
        Detour("forgot", "ann"),
    ),
    (
        "throttled",
        [refusal("TooManyRequestsException", "Rate exceeded")],
        None,
        Rejected("error.too_many", 429),
    ),
    (
        "Cognito down",
        [refusal("InternalErrorException", "")],
        None,
        Rejected("error.unavailable", 503),
    ),
    (
        "an error nobody mapped",
        [refusal("SomethingNewException", "")],
        None,
        Rejected("error.generic", 502),
    ),
    ("a token that fails verification", [signed_in(bad=True)], None, Broken("error.generic", 502)),
    (
        "ID and access tokens of two users",
        [signed_in(other_sub="s-2")],
        None,
        Broken("error.generic", 502),
    ),
]


@pytest.mark.parametrize(
    ("answers", "device", "expected"), [r[1:] for r in SIGN_IN], ids=[r[0] for r in SIGN_IN]
)
async def test_sign_in(answers: list[Any], device: Device | None, expected: object) -> None:
    cognito = FakeCognito().will("password_login", *answers)
    step = await authenticator(cognito).sign_in("ann", "pw", None, device)
    assert is_exactly(seen(step), expected)
    # Each call carries the typed name and password; a retry drops the device Cognito forgot.
    sent = cognito.called("password_login")
    assert [(c["username"], c["password"]) for c in sent] == [("ann", "pw")] * len(answers)
    assert [c["device"] for c in sent] == [device] + [None] * (len(answers) - 1)


# -- answer: a challenge page's post -----------------------------------------------------------

ANSWER: list[
    tuple[str, dict[str, Any], dict[str, str], dict[str, list[Any]], object, list[Any]]
] = [
    # (row, the stored state, the posted form, Cognito's answers by method, what follows,
    #  what Cognito was sent: (method, the essentials) in order)
    (
        "SMS code, spaces dropped; the stored username, never the form's",
        {"challenge": "SMS_MFA", "username": "u-1"},
        {"code": "123 456", "username": "mallory"},
        {"respond": [signed_in()]},
        ("signed in", "ann", "s-1", None, None),
        [("respond", "SMS_MFA", "u-1", {"SMS_MFA_CODE": "123456"})],
    ),
    (
        "TOTP code",
        {"challenge": "SOFTWARE_TOKEN_MFA", "username": "u-1"},
        {"code": "654321"},
        {"respond": [signed_in(NEW_DEVICE)]},
        ("signed in", "ann", "s-1", None, NEW_DEVICE),
        [("respond", "SOFTWARE_TOKEN_MFA", "u-1", {"SOFTWARE_TOKEN_MFA_CODE": "654321"})],
    ),
    (
        "emailed code",
        {"challenge": "EMAIL_OTP", "username": "u-1"},
        {"code": "11112222"},
        {"respond": [signed_in()]},
        ("signed in", "ann", "s-1", None, None),
        [("respond", "EMAIL_OTP", "u-1", {"EMAIL_OTP_CODE": "11112222"})],
    ),
    (
        "a code that cannot be one never reaches Cognito",
        {"challenge": "SOFTWARE_TOKEN_MFA", "username": "u-1"},
        {"code": "12"},
        {},
        Retry("error.invalid_code", 400),
        [],
    ),
    (
        "wrong code: the same page",
        {"challenge": "SOFTWARE_TOKEN_MFA", "username": "u-1"},
        {"code": "000000"},
        {"respond": [refusal("CodeMismatchException", "Invalid code received for user")]},
        Retry("error.invalid_code", 400),
        [("respond", "SOFTWARE_TOKEN_MFA", "u-1", {"SOFTWARE_TOKEN_MFA_CODE": "000000"})],
    ),
    (
        "expired code: the same page",
        {"challenge": "EMAIL_OTP", "username": "u-1"},
        {"code": "11112222"},
        {"respond": [refusal("ExpiredCodeException", "Invalid code provided")]},
        Retry("error.code_expired", 400),
        [("respond", "EMAIL_OTP", "u-1", {"EMAIL_OTP_CODE": "11112222"})],
    ),
    (
        "too many wrong codes: start again",
        {"challenge": "SMS_MFA", "username": "u-1"},
        {"code": "000000"},
        {"respond": [refusal(*TOO_MANY_CODES)]},
        Restart("error.challenge_failed"),
        [("respond", "SMS_MFA", "u-1", {"SMS_MFA_CODE": "000000"})],
    ),
    (
        "Cognito's session ran out: start again",
        {"challenge": "SMS_MFA", "username": "u-1"},
        {"code": "123456"},
        {"respond": [refusal(*SESSION_EXPIRED)]},
        Restart("error.flow_expired"),
        [("respond", "SMS_MFA", "u-1", {"SMS_MFA_CODE": "123456"})],
    ),
    (
        "threat protection blocks at the second factor",
        {"challenge": "SMS_MFA", "username": "u-1"},
        {"code": "123456"},
        {"respond": [refusal(*BLOCKED)]},
        Blocked("error.sign_in_blocked", 403),
        [("respond", "SMS_MFA", "u-1", {"SMS_MFA_CODE": "123456"})],
    ),
    (
        "Cognito down while answering: the same page, try again",
        {"challenge": "SMS_MFA", "username": "u-1"},
        {"code": "123456"},
        {"respond": [refusal("InternalErrorException")]},
        Retry("error.unavailable", 503),
        [("respond", "SMS_MFA", "u-1", {"SMS_MFA_CODE": "123456"})],
    ),
    (
        "one challenge leads to another",
        {"challenge": "SOFTWARE_TOKEN_MFA", "username": "u-1"},
        {"code": "123456"},
        {"respond": [challenge("NEW_PASSWORD_REQUIRED", session="cog-session-9")]},
        NeedsChallenge("NEW_PASSWORD_REQUIRED", "cog-session-9", {}),
        [("respond", "SOFTWARE_TOKEN_MFA", "u-1", {"SOFTWARE_TOKEN_MFA_CODE": "123456"})],
    ),
    (
        "new password with the attributes Cognito requires",
        {
            "challenge": "NEW_PASSWORD_REQUIRED",
            "username": "u-1",
            "parameters": {"requiredAttributes": '["userAttributes.name"]'},
        },
        {
            "new_password": "N3w-pass!",
            "confirm_password": "N3w-pass!",
            "userAttributes.name": " Ann ",
        },
        {"respond": [signed_in()]},
        ("signed in", "ann", "s-1", None, None),
        [
            (
                "respond",
                "NEW_PASSWORD_REQUIRED",
                "u-1",
                {"NEW_PASSWORD": "N3w-pass!", "userAttributes.name": "Ann"},
            )
        ],
    ),
    (
        "new passwords that differ",
        {"challenge": "NEW_PASSWORD_REQUIRED", "username": "u-1"},
        {"new_password": "N3w-pass!", "confirm_password": "other"},
        {},
        Retry("error.password_mismatch", 400),
        [],
    ),
    (
        "a required attribute left empty",
        {
            "challenge": "NEW_PASSWORD_REQUIRED",
            "username": "u-1",
            "parameters": {"requiredAttributes": '["userAttributes.name"]'},
        },
        {"new_password": "N3w-pass!", "confirm_password": "N3w-pass!"},
        {},
        Retry("error.required_field", 400),
        [],
    ),
    (
        "a new password against the pool's policy: which rule, in the page's words",
        {"challenge": "NEW_PASSWORD_REQUIRED", "username": "u-1"},
        {"new_password": "short", "confirm_password": "short"},
        {
            "respond": [
                refusal(
                    "InvalidPasswordException",
                    "Password did not conform with policy: Password not long enough",
                )
            ]
        },
        Retry("error.password_policy.length", 400),
        [("respond", "NEW_PASSWORD_REQUIRED", "u-1", {"NEW_PASSWORD": "short"})],
    ),
    (
        "pick SMS among the MFA types",
        {
            "challenge": "SELECT_MFA_TYPE",
            "username": "u-1",
            "parameters": {"MFAS_CAN_CHOOSE": '["SMS_MFA","SOFTWARE_TOKEN_MFA"]'},
        },
        {"choice": "SMS_MFA"},
        {"respond": [challenge("SMS_MFA")]},
        NeedsChallenge("SMS_MFA", "cog-session-1", {}),
        [("respond", "SELECT_MFA_TYPE", "u-1", {"ANSWER": "SMS_MFA"})],
    ),
    (
        "an MFA type Cognito did not offer",
        {
            "challenge": "SELECT_MFA_TYPE",
            "username": "u-1",
            "parameters": {"MFAS_CAN_CHOOSE": '["SOFTWARE_TOKEN_MFA"]'},
        },
        {"choice": "SMS_MFA"},
        {},
        Retry("error.required_field", 400),
        [],
    ),
    (
        "MFA enrolment: VerifySoftwareToken, then the challenge with its new session",
        {"challenge": "MFA_SETUP", "username": "u-1", "cognito_session": "cog-session-2"},
        {"code": "123456"},
        {"verify_software_token": ["cog-session-3"], "respond": [signed_in()]},
        ("signed in", "ann", "s-1", None, None),
        [
            ("verify_software_token", "cog-session-2", "123456"),
            ("respond", "MFA_SETUP", "u-1", {}),
        ],
    ),
    (
        "MFA enrolment with a wrong code: the same page, the challenge not answered",
        {"challenge": "MFA_SETUP", "username": "u-1", "cognito_session": "cog-session-2"},
        {"code": "000000"},
        {"verify_software_token": [refusal("EnableSoftwareTokenMFAException", "Code mismatch")]},
        Retry("error.invalid_code", 400),
        [("verify_software_token", "cog-session-2", "000000")],
    ),
    (
        "MFA enrolment of SMS only: no page of ours can do it",
        {
            "challenge": "MFA_SETUP",
            "username": "u-1",
            "parameters": {"MFAS_CAN_SETUP": '["SMS_MFA"]'},
        },
        {"code": "123456"},
        {},
        Broken("error.unsupported_challenge", 502),
        [],
    ),
    (
        "custom challenge answered",
        {"challenge": "CUSTOM_CHALLENGE", "username": "u-1"},
        {"answer": " 4 "},
        {"respond": [signed_in()]},
        ("signed in", "ann", "s-1", None, None),
        [("respond", "CUSTOM_CHALLENGE", "u-1", {"ANSWER": "4"})],
    ),
    (
        "custom challenge left empty",
        {"challenge": "CUSTOM_CHALLENGE", "username": "u-1"},
        {"answer": "  "},
        {},
        Retry("error.required_field", 400),
        [],
    ),
    (
        "USER_AUTH: the password, by SRP (it never leaves the proxy)",
        {
            "challenge": "SELECT_CHALLENGE",
            "username": "u-1",
            "available": ["PASSWORD_SRP", "PASSWORD", "EMAIL_OTP"],
        },
        {"choice": "PASSWORD_SRP", "password": "pw"},
        {"answer_with_password_srp": [signed_in()]},
        ("signed in", "ann", "s-1", None, None),
        [("answer_with_password_srp", "cog-session-1", "u-1", "pw")],
    ),
    (
        "USER_AUTH: a wrong password restarts with the password words",
        {"challenge": "SELECT_CHALLENGE", "username": "u-1", "available": ["PASSWORD_SRP"]},
        {"choice": "PASSWORD_SRP", "password": "wrong"},
        {"answer_with_password_srp": [refusal(*BAD_PASSWORD)]},
        Restart("error.bad_credentials"),
        [("answer_with_password_srp", "cog-session-1", "u-1", "wrong")],
    ),
    (
        "USER_AUTH: the password option without a password",
        {"challenge": "SELECT_CHALLENGE", "username": "u-1", "available": ["PASSWORD_SRP"]},
        {"choice": "PASSWORD_SRP"},
        {},
        Retry("error.required_field", 400),
        [],
    ),
    (
        "USER_AUTH: an emailed code chosen",
        {"challenge": "SELECT_CHALLENGE", "username": "u-1", "available": ["EMAIL_OTP"]},
        {"choice": "EMAIL_OTP"},
        {"respond": [challenge("EMAIL_OTP", CODE_DELIVERY_DESTINATION="a***@e***")]},
        NeedsChallenge("EMAIL_OTP", "cog-session-1", {"CODE_DELIVERY_DESTINATION": "a***@e***"}),
        [("respond", "SELECT_CHALLENGE", "u-1", {"ANSWER": "EMAIL_OTP"})],
    ),
    (
        "USER_AUTH: a factor the pool did not offer",
        {"challenge": "SELECT_CHALLENGE", "username": "u-1", "available": ["EMAIL_OTP"]},
        {"choice": "WEB_AUTHN"},
        {},
        Retry("error.required_field", 400),
        [],
    ),
    (
        "passkey credential",
        {"challenge": "WEB_AUTHN", "username": "u-1"},
        {"credential": '{"id":"c1","response":{"signature":"x"}}'},
        {"respond": [signed_in()]},
        ("signed in", "ann", "s-1", None, None),
        [
            (
                "respond",
                "WEB_AUTHN",
                "u-1",
                {"CREDENTIAL": '{"id":"c1","response":{"signature":"x"}}'},
            )
        ],
    ),
    (
        "a passkey post that is no credential",
        {"challenge": "WEB_AUTHN", "username": "u-1"},
        {"credential": '["not", "one"]'},
        {},
        Retry("error.passkey_failed", 400),
        [],
    ),
    (
        "DEVICE_SRP_AUTH without a remembered device: no page answers it",
        {"challenge": "DEVICE_SRP_AUTH", "username": "u-1"},
        {},
        {},
        Broken("error.unsupported_challenge", 502),
        [],
    ),
    (
        "a challenge nobody knows",
        {"challenge": "SOME_FUTURE_CHALLENGE", "username": "u-1"},
        {},
        {},
        Broken("error.unsupported_challenge", 502),
        [],
    ),
]


def sent(call_name: str, args: dict[str, Any]) -> tuple[Any, ...]:
    if call_name == "respond":
        return (call_name, args["challenge"], args["username"], args["responses"])
    if call_name == "verify_software_token":
        return (call_name, args["session"], args["code"])
    if call_name == "answer_with_password_srp":
        return (call_name, args["session"], args["username"], args["password"])
    return (call_name, args)


def stored(**fields: Any) -> LoginState:
    state = LoginState.new("/app")
    state.cognito_session = "cog-session-1"
    for key, value in fields.items():
        setattr(state, key, value)
    return state


@pytest.mark.parametrize(
    ("fields", "form", "script", "expected", "calls"),
    [r[1:] for r in ANSWER],
    ids=[r[0] for r in ANSWER],
)
async def test_answer(
    fields: dict[str, Any],
    form: dict[str, str],
    script: dict[str, list[Any]],
    expected: object,
    calls: list[tuple[Any, ...]],
) -> None:
    cognito = FakeCognito()
    for name, answers in script.items():
        cognito.will(name, *answers)
    step = await authenticator(cognito).answer(stored(**fields), form, None)
    assert is_exactly(seen(step), expected)
    assert [sent(c.name, c.args) for c in cognito.calls] == calls


async def test_a_remembered_device_goes_with_the_answer_and_links_the_tokens() -> None:
    cognito = FakeCognito().will("respond", signed_in())
    step = await authenticator(cognito).answer(
        stored(challenge="SMS_MFA", username="u-1"), {"code": "123456"}, None, DEVICE
    )
    assert seen(step) == ("signed in", "ann", "s-1", "dev-1", None)
    assert cognito.called("respond")[0]["device"] == DEVICE


@pytest.mark.parametrize(
    ("choice", "password", "first_factor"),
    [
        ("PASSWORD_SRP", "pw", "PASSWORD"),
        ("PASSWORD", "pw", "PASSWORD"),
        ("EMAIL_OTP", "", "EMAIL_OTP"),
    ],
)
async def test_select_challenge_records_the_first_factor(
    choice: str, password: str, first_factor: str
) -> None:
    """What the device page later says it spares depends on it: an emailed code chosen as the
    first factor is not a second factor a device could stand in for."""
    cognito = FakeCognito().will("respond", challenge("EMAIL_OTP"))
    cognito.will("answer_with_password_srp", signed_in())
    state = stored(challenge="SELECT_CHALLENGE", username="u-1", available=[choice])
    await authenticator(cognito).answer(state, {"choice": choice, "password": password}, None)
    assert state.first_factor == first_factor


# -- prepare: before a challenge page is shown ---------------------------------------------------

PREPARE: list[tuple[str, dict[str, Any], list[Any], object, str | None]] = [
    # (row, the stored state, AssociateSoftwareToken's answers, prepare's answer, the secret kept)
    (
        "enrolment: a secret for the QR code, the session moved on",
        {"challenge": "MFA_SETUP"},
        [("JBSWY3DPEHPK3PXP", "cog-session-2")],
        True,
        "JBSWY3DPEHPK3PXP",
    ),
    (
        "enrolment page shown again: the same secret, no second call",
        {"challenge": "MFA_SETUP", "totp_secret": "KEPTKEPTKEPT"},
        [],
        False,
        "KEPTKEPTKEPT",
    ),
    ("a code page needs nothing", {"challenge": "SMS_MFA"}, [], False, None),
    (
        "Cognito down: the page cannot be shown (no retry on a page never answered)",
        {"challenge": "MFA_SETUP"},
        [refusal("InternalErrorException")],
        Broken("error.unavailable", 503),
        None,
    ),
    (
        "throttled",
        {"challenge": "MFA_SETUP"},
        [refusal("TooManyRequestsException")],
        Broken("error.too_many", 429),
        None,
    ),
    (
        "Cognito's session ran out",
        {"challenge": "MFA_SETUP"},
        [refusal(*SESSION_EXPIRED)],
        Restart("error.flow_expired"),
        None,
    ),
    (
        "a challenge nobody knows",
        {"challenge": "SOME_FUTURE_CHALLENGE"},
        [],
        Broken("error.unsupported_challenge", 502),
        None,
    ),
]


@pytest.mark.parametrize(
    ("fields", "answers", "expected", "secret"),
    [r[1:] for r in PREPARE],
    ids=[r[0] for r in PREPARE],
)
async def test_prepare(
    fields: dict[str, Any], answers: list[Any], expected: object, secret: str | None
) -> None:
    cognito = FakeCognito()
    if answers:
        cognito.will("associate_software_token", *answers)
    state = stored(username="u-1", **fields)
    assert is_exactly(await authenticator(cognito).prepare(state), expected)
    assert state.totp_secret == secret
    assert len(cognito.calls) == len(answers)
    if expected is True:
        assert state.cognito_session == "cog-session-2"
        assert cognito.called("associate_software_token") == [{"session": "cog-session-1"}]


# -- enter_challenge: what the server-side state keeps of Cognito's question --------------------

ENTER: list[tuple[str, dict[str, Any], NeedsChallenge, dict[str, Any]]] = [
    # (row, the state before, the challenge Cognito asked, the state after (those fields))
    (
        "an alias typed: later steps send Cognito's own name",
        {"username": None},
        NeedsChallenge("SOFTWARE_TOKEN_MFA", "cs", {"USER_ID_FOR_SRP": "u-1"}),
        {"username": "u-1", "challenge": "SOFTWARE_TOKEN_MFA", "second_factor": None},
    ),
    (
        "the typed name when Cognito names nobody",
        {"username": None},
        NeedsChallenge("NEW_PASSWORD_REQUIRED", "cs", {}),
        {"username": "typed@example.com", "cognito_session": "cs"},
    ),
    (
        "TOTP passed: the factor a device would spare",
        {"challenge": "SOFTWARE_TOKEN_MFA", "username": "u-1"},
        NeedsChallenge("NEW_PASSWORD_REQUIRED", "cs", {}),
        {"second_factor": "SOFTWARE_TOKEN_MFA"},
    ),
    (
        "enrolment passed: an authenticator app",
        {"challenge": "MFA_SETUP", "username": "u-1"},
        NeedsChallenge("CUSTOM_CHALLENGE", "cs", {}),
        {"second_factor": "SOFTWARE_TOKEN_MFA"},
    ),
    (
        "picking a factor passes none",
        {"challenge": "SELECT_MFA_TYPE", "username": "u-1"},
        NeedsChallenge("SMS_MFA", "cs", {}),
        {"second_factor": None},
    ),
    (
        "USER_AUTH's emailed code as the first factor spares nothing",
        {"challenge": "EMAIL_OTP", "first_factor": "EMAIL_OTP", "username": "u-1"},
        NeedsChallenge("SOFTWARE_TOKEN_MFA", "cs", {}),
        {"second_factor": None},
    ),
    (
        "the same custom question again: the answer was wrong",
        {
            "challenge": "CUSTOM_CHALLENGE",
            "username": "u-1",
            "parameters": {"question": "2+2?", "USERNAME": "u-1"},
        },
        NeedsChallenge("CUSTOM_CHALLENGE", "cs", {"question": "2+2?", "USERNAME": "u-1"}),
        {"retry_message": "error.answer_rejected"},
    ),
    (
        "another custom question: no complaint",
        {"challenge": "CUSTOM_CHALLENGE", "username": "u-1", "parameters": {"question": "2+2?"}},
        NeedsChallenge("CUSTOM_CHALLENGE", "cs", {"question": "3+3?"}),
        {"retry_message": None, "parameters": {"question": "3+3?"}},
    ),
    (
        "USER_AUTH's factors kept apart from the parameters",
        {"username": None},
        NeedsChallenge(
            "SELECT_CHALLENGE",
            "cs",
            {"AVAILABLE_CHALLENGES": '["PASSWORD_SRP", "WEB_AUTHN"]', "USER_ID_FOR_SRP": "u-1"},
        ),
        {"available": ["PASSWORD_SRP", "WEB_AUTHN"], "parameters": {"USER_ID_FOR_SRP": "u-1"}},
    ),
    (
        "an enrolment secret is never carried into the next step",
        {"challenge": "MFA_SETUP", "username": "u-1", "totp_secret": "SECRET"},
        NeedsChallenge("NEW_PASSWORD_REQUIRED", "cs", {}),
        {"totp_secret": None},
    ),
]


@pytest.mark.parametrize(
    ("before", "asked", "after"), [r[1:] for r in ENTER], ids=[r[0] for r in ENTER]
)
def test_enter_challenge(
    before: dict[str, Any], asked: NeedsChallenge, after: dict[str, Any]
) -> None:
    state = stored(**before)
    enter_challenge(state, asked, "typed@example.com")
    assert {key: getattr(state, key) for key in after} == after


@pytest.mark.parametrize(
    ("challenge_name", "first_factor", "spared"),
    [
        ("SMS_MFA", None, "SMS_MFA"),
        ("EMAIL_OTP", None, "EMAIL_OTP"),
        ("SOFTWARE_TOKEN_MFA", None, "SOFTWARE_TOKEN_MFA"),
        ("MFA_SETUP", None, "SOFTWARE_TOKEN_MFA"),
        ("SELECT_MFA_TYPE", None, None),
        ("EMAIL_OTP", "EMAIL_OTP", None),
        ("SMS_OTP", "SMS_OTP", None),
        ("CUSTOM_CHALLENGE", None, None),
        ("NEW_PASSWORD_REQUIRED", None, None),
        (None, None, None),
    ],
)
def test_second_factor(
    challenge_name: str | None, first_factor: str | None, spared: str | None
) -> None:
    assert second_factor(stored(challenge=challenge_name, first_factor=first_factor)) == spared


def test_the_factors_json_round_trips() -> None:
    """The factors travel as JSON inside the parameters: a name with a quote survives."""
    state = stored(username=None)
    step = NeedsChallenge("SELECT_CHALLENGE", "cs", {"AVAILABLE_CHALLENGES": json.dumps(['A"B'])})
    enter_challenge(state, step, "ann")
    assert state.available == ['A"B']
