"""Every challenge of the strict Cognito double, driven by clients that owe nothing to ``proxy/``.

boto3 speaks the wire protocol; pycognito's SRP maths answers PASSWORD_VERIFIER and the device
SRP challenges; TOTP codes are computed here from RFC 6238 with hmac; passkeys are simulated by
``SoftwareAuthenticator``. Each defence is pinned by a rejected wrong answer, replay, expiry or
cross-user/cross-challenge use of a session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aioboto3
import boto3
import jwt
import pytest
from botocore.exceptions import ClientError
from pycognito.aws_srp import AWSSRP, generate_hash_device

from proxy.devtools.cognito_double import (
    CognitoDouble,
    SoftwareAuthenticator,
    captcha_challenge,
    running_double,
)
from tests.support.totp import totp

USERNAME = "alice"
EMAIL = "alice@example.com"
PHONE = "+15555551234"
PASSWORD = "Correct-Horse-9"
OTHER = "bob"
FLOWS = {
    "USER_SRP_AUTH",
    "USER_PASSWORD_AUTH",
    "ADMIN_USER_PASSWORD_AUTH",
    "CUSTOM_AUTH",
    "USER_AUTH",
}


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@dataclass
class Pool:
    double: CognitoDouble
    pool_id: str
    client_id: str
    secret: str | None
    boto: Any

    def hashed(self, params: dict[str, str], username: str | None = None) -> dict[str, str]:
        if self.secret is None:
            return params
        message = ((username or params["USERNAME"]) + self.client_id).encode()
        digest = hmac.new(self.secret.encode(), message, hashlib.sha256).digest()
        return {**params, "SECRET_HASH": base64.b64encode(digest).decode()}

    def secret_hash(self, username: str) -> dict[str, str]:
        """Top-level SecretHash for the user operations (ForgotPassword, SignUp...)."""
        hashed = self.hashed({"USERNAME": username})
        return {"SecretHash": hashed["SECRET_HASH"]} if "SECRET_HASH" in hashed else {}

    def login(self, username: str = USERNAME, password: str = PASSWORD, **extra: str) -> Any:
        params = self.hashed({"USERNAME": username, "PASSWORD": password, **extra})
        return self.boto.initiate_auth(
            ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=params
        )

    def initiate(self, flow: str, params: dict[str, str]) -> Any:
        return self.boto.initiate_auth(
            ClientId=self.client_id, AuthFlow=flow, AuthParameters=self.hashed(params)
        )

    def respond(
        self,
        challenge: str,
        session: str | None,
        responses: dict[str, str],
        username: str = USERNAME,
    ) -> Any:
        kwargs: dict[str, Any] = {
            "ClientId": self.client_id,
            "ChallengeName": challenge,
            "ChallengeResponses": self.hashed({"USERNAME": username, **responses}),
        }
        if session is not None:
            kwargs["Session"] = session
        return self.boto.respond_to_auth_challenge(**kwargs)

    def srp(self, username: str = USERNAME, password: str = PASSWORD, **device: str) -> AWSSRP:
        return AWSSRP(
            username=username,
            password=password,
            pool_id=self.pool_id,
            client_id=self.client_id,
            client=self.boto,
            client_secret=self.secret,
            **device,
        )

    def code(self, channel: str, username: str = USERNAME) -> str:
        code = self.double.last_code(self.pool_id, username, channel)  # type: ignore[arg-type]
        assert code is not None
        return code


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[CognitoDouble, Any]]:
    """One double and one boto3 client for the module: each test gets its own pool."""
    with running_double() as running:
        yield running, boto3.client("cognito-idp", **running.client_kwargs())


@pytest.fixture(autouse=True)
def double(shared: tuple[CognitoDouble, Any]) -> Iterator[CognitoDouble]:
    running = shared[0]
    running.calls.clear()
    running.failures.clear()
    yield running
    running.clock = time.time


@pytest.fixture
def new_pool(shared: tuple[CognitoDouble, Any]) -> Callable[..., Pool]:
    def make(*, secret: bool = False) -> Pool:
        double, boto = shared
        pool_id = double.create_pool()
        client_id, client_secret = double.create_client(pool_id, secret=secret, flows=FLOWS)
        return Pool(double, pool_id, client_id, client_secret, boto)

    return make


@pytest.fixture(params=[False, True], ids=["no-secret", "secret"])
def pool(request: pytest.FixtureRequest, new_pool: Callable[..., Pool]) -> Pool:
    return new_pool(secret=request.param)


@pytest.fixture
def plain(new_pool: Callable[..., Pool]) -> Pool:
    return new_pool()


def add(pool: Pool, username: str = USERNAME, **kwargs: Any) -> str:
    attributes = kwargs.pop(
        "attributes", {"email": f"{username}@example.com", "phone_number": PHONE}
    )
    return pool.double.add_user(pool.pool_id, username, PASSWORD, attributes=attributes, **kwargs)


def is_tokens(response: Any) -> bool:
    return "AccessToken" in response.get("AuthenticationResult", {})


# ---- SMS_MFA / EMAIL_OTP as a second factor ---------------------------------------------------


def test_sms_mfa_sends_a_masked_code_and_the_right_code_signs_in(pool: Pool) -> None:
    add(pool, mfa=["SMS_MFA"])
    challenge = pool.login()
    assert challenge["ChallengeName"] == "SMS_MFA"
    assert challenge["ChallengeParameters"] == {
        "CODE_DELIVERY_DELIVERY_MEDIUM": "SMS",
        "CODE_DELIVERY_DESTINATION": "+*******1234",
    }
    tokens = pool.respond("SMS_MFA", challenge["Session"], {"SMS_MFA_CODE": pool.code("SMS")})
    assert is_tokens(tokens)


def test_email_otp_mfa_sends_a_masked_code_and_the_right_code_signs_in(pool: Pool) -> None:
    add(pool, mfa=["EMAIL_OTP"])
    challenge = pool.login()
    assert challenge["ChallengeName"] == "EMAIL_OTP"
    assert challenge["ChallengeParameters"]["CODE_DELIVERY_DELIVERY_MEDIUM"] == "EMAIL"
    assert challenge["ChallengeParameters"]["CODE_DELIVERY_DESTINATION"] == "a***@e***"
    code = pool.code("EMAIL")
    assert is_tokens(pool.respond("EMAIL_OTP", challenge["Session"], {"EMAIL_OTP_CODE": code}))


def test_wrong_mfa_code_is_rejected_and_the_same_session_may_retry(plain: Pool) -> None:
    add(plain, mfa=["SMS_MFA"])
    challenge = plain.login()
    code = plain.code("SMS")
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(ClientError) as exc:
        plain.respond("SMS_MFA", challenge["Session"], {"SMS_MFA_CODE": wrong})
    assert error_code(exc) == "CodeMismatchException"
    tokens = plain.respond("SMS_MFA", challenge["Session"], {"SMS_MFA_CODE": code})
    assert is_tokens(tokens)


def test_three_wrong_mfa_codes_kill_the_session(plain: Pool) -> None:
    add(plain, mfa=["SMS_MFA"])
    challenge = plain.login()
    code = plain.code("SMS")
    wrong = "000000" if code != "000000" else "111111"
    codes = []
    for _ in range(3):
        with pytest.raises(ClientError) as exc:
            plain.respond("SMS_MFA", challenge["Session"], {"SMS_MFA_CODE": wrong})
        codes.append(error_code(exc))
    assert codes == ["CodeMismatchException", "CodeMismatchException", "NotAuthorizedException"]
    with pytest.raises(ClientError) as exc:
        plain.respond("SMS_MFA", challenge["Session"], {"SMS_MFA_CODE": code})
    assert error_code(exc) == "NotAuthorizedException"


def test_mfa_session_is_single_use(plain: Pool) -> None:
    add(plain, mfa=["SMS_MFA"])
    challenge = plain.login()
    code = plain.code("SMS")
    assert is_tokens(plain.respond("SMS_MFA", challenge["Session"], {"SMS_MFA_CODE": code}))
    with pytest.raises(ClientError) as exc:
        plain.respond("SMS_MFA", challenge["Session"], {"SMS_MFA_CODE": code})
    assert error_code(exc) == "NotAuthorizedException"


def test_mfa_code_from_an_earlier_sign_in_is_not_accepted(plain: Pool) -> None:
    add(plain, mfa=["SMS_MFA"])
    plain.login()
    old = plain.code("SMS")
    challenge = plain.login()
    new = plain.code("SMS")
    if old != new:  # one in a million they coincide
        with pytest.raises(ClientError) as exc:
            plain.respond("SMS_MFA", challenge["Session"], {"SMS_MFA_CODE": old})
        assert error_code(exc) == "CodeMismatchException"


def test_mfa_session_expires(plain: Pool) -> None:
    add(plain, mfa=["SMS_MFA"])
    challenge = plain.login()
    code = plain.code("SMS")
    plain.double.clock = lambda: time.time() + plain.double.session_ttl + 1
    with pytest.raises(ClientError) as exc:
        plain.respond("SMS_MFA", challenge["Session"], {"SMS_MFA_CODE": code})
    assert error_code(exc) == "NotAuthorizedException"
    assert plain.double.failures[-1][2] == "session expired"


def test_mfa_session_of_one_user_cannot_sign_in_another(plain: Pool) -> None:
    add(plain, mfa=["SMS_MFA"])
    add(plain, OTHER, mfa=["SMS_MFA"], attributes={"phone_number": "+15555550000"})
    challenge = plain.login()
    code = plain.code("SMS")
    with pytest.raises(ClientError) as exc:
        plain.respond("SMS_MFA", challenge["Session"], {"SMS_MFA_CODE": code}, username=OTHER)
    assert error_code(exc) == "NotAuthorizedException"
    # ...and the rightful user still can: the attempt did not burn the session.
    assert is_tokens(plain.respond("SMS_MFA", challenge["Session"], {"SMS_MFA_CODE": code}))


def test_mfa_session_cannot_answer_another_challenge(plain: Pool) -> None:
    add(plain, mfa=["SMS_MFA"])
    challenge = plain.login()
    with pytest.raises(ClientError) as exc:
        plain.respond("EMAIL_OTP", challenge["Session"], {"EMAIL_OTP_CODE": plain.code("SMS")})
    assert error_code(exc) == "NotAuthorizedException"


def test_mfa_answer_needs_secret_hash_when_the_client_has_a_secret(
    new_pool: Callable[..., Pool],
) -> None:
    pool = new_pool(secret=True)
    add(pool, mfa=["SMS_MFA"])
    challenge = pool.login()
    with pytest.raises(ClientError) as exc:
        pool.boto.respond_to_auth_challenge(
            ClientId=pool.client_id,
            ChallengeName="SMS_MFA",
            Session=challenge["Session"],
            ChallengeResponses={"USERNAME": USERNAME, "SMS_MFA_CODE": pool.code("SMS")},
        )
    assert error_code(exc) == "NotAuthorizedException"


def test_admin_flow_gets_the_same_mfa_challenge(plain: Pool) -> None:
    add(plain, mfa=["SMS_MFA"])
    challenge = plain.boto.admin_initiate_auth(
        UserPoolId=plain.pool_id,
        ClientId=plain.client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": USERNAME, "PASSWORD": PASSWORD},
        ContextData={
            "IpAddress": "203.0.113.9",
            "ServerName": "gate.example",
            "ServerPath": "/_auth/login",
            "HttpHeaders": [{"headerName": "User-Agent", "headerValue": "test"}],
        },
    )
    assert challenge["ChallengeName"] == "SMS_MFA"
    tokens = plain.boto.admin_respond_to_auth_challenge(
        UserPoolId=plain.pool_id,
        ClientId=plain.client_id,
        ChallengeName="SMS_MFA",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": USERNAME, "SMS_MFA_CODE": plain.code("SMS")},
    )
    assert is_tokens(tokens)
    assert plain.double.context_data("AdminInitiateAuth")[0]["IpAddress"] == "203.0.113.9"


def test_public_calls_record_user_context_data(plain: Pool) -> None:
    add(plain)
    plain.boto.initiate_auth(
        ClientId=plain.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": USERNAME, "PASSWORD": PASSWORD},
        UserContextData={"IpAddress": "198.51.100.7"},
    )
    assert plain.double.context_data("InitiateAuth") == [{"IpAddress": "198.51.100.7"}]


async def test_aioboto3_client_completes_an_email_otp_challenge(plain: Pool) -> None:
    add(plain, mfa=["EMAIL_OTP"])
    session = aioboto3.Session()
    async with session.client("cognito-idp", **plain.double.client_kwargs()) as client:
        challenge = await client.initiate_auth(
            ClientId=plain.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": USERNAME, "PASSWORD": PASSWORD},
        )
        assert challenge["ChallengeName"] == "EMAIL_OTP"
        tokens = await client.respond_to_auth_challenge(
            ClientId=plain.client_id,
            ChallengeName="EMAIL_OTP",
            Session=challenge["Session"],
            ChallengeResponses={"USERNAME": USERNAME, "EMAIL_OTP_CODE": plain.code("EMAIL")},
        )
    assert is_tokens(tokens)


def test_pool_mfa_off_signs_in_without_a_second_factor(plain: Pool) -> None:
    add(plain, mfa=["SMS_MFA"])
    plain.double.set_pool_mfa(plain.pool_id, "OFF")
    assert is_tokens(plain.login())


# ---- SOFTWARE_TOKEN_MFA ----------------------------------------------------------------------


def test_totp_mfa_accepts_the_current_code(pool: Pool) -> None:
    add(pool, mfa=["SOFTWARE_TOKEN_MFA"])
    secret = pool.double.totp_secret(pool.pool_id, USERNAME)
    assert secret is not None
    challenge = pool.login()
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    tokens = pool.respond(
        "SOFTWARE_TOKEN_MFA", challenge["Session"], {"SOFTWARE_TOKEN_MFA_CODE": totp(secret)}
    )
    assert is_tokens(tokens)


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-30, True), (30, True), (-90, False), (90, False)]
)
def test_totp_mfa_allows_one_step_of_clock_skew_only(
    plain: Pool, offset: int, accepted: bool
) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    add(plain, mfa=["SOFTWARE_TOKEN_MFA"], totp_secret=secret)
    challenge = plain.login()
    code = totp(secret, time.time() + offset)
    if accepted:
        assert is_tokens(
            plain.respond(
                "SOFTWARE_TOKEN_MFA", challenge["Session"], {"SOFTWARE_TOKEN_MFA_CODE": code}
            )
        )
    else:
        with pytest.raises(ClientError) as exc:
            plain.respond(
                "SOFTWARE_TOKEN_MFA", challenge["Session"], {"SOFTWARE_TOKEN_MFA_CODE": code}
            )
        assert error_code(exc) == "CodeMismatchException"


def test_totp_code_cannot_be_used_twice(plain: Pool) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    add(plain, mfa=["SOFTWARE_TOKEN_MFA"], totp_secret=secret)
    code = totp(secret)
    first = plain.login()
    plain.respond("SOFTWARE_TOKEN_MFA", first["Session"], {"SOFTWARE_TOKEN_MFA_CODE": code})
    second = plain.login()
    with pytest.raises(ClientError) as exc:
        plain.respond("SOFTWARE_TOKEN_MFA", second["Session"], {"SOFTWARE_TOKEN_MFA_CODE": code})
    assert error_code(exc) == "CodeMismatchException"


def test_totp_of_another_secret_is_rejected(plain: Pool) -> None:
    add(plain, mfa=["SOFTWARE_TOKEN_MFA"], totp_secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    challenge = plain.login()
    code = totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    with pytest.raises(ClientError) as exc:
        plain.respond("SOFTWARE_TOKEN_MFA", challenge["Session"], {"SOFTWARE_TOKEN_MFA_CODE": code})
    assert error_code(exc) == "CodeMismatchException"


# ---- SELECT_MFA_TYPE -----------------------------------------------------------------------------


def test_several_mfa_types_without_preference_ask_the_user_to_choose(pool: Pool) -> None:
    add(pool, mfa=["SMS_MFA", "SOFTWARE_TOKEN_MFA"])
    challenge = pool.login()
    assert challenge["ChallengeName"] == "SELECT_MFA_TYPE"
    assert json.loads(challenge["ChallengeParameters"]["MFAS_CAN_CHOOSE"]) == [
        "SMS_MFA",
        "SOFTWARE_TOKEN_MFA",
    ]
    sms = pool.respond("SELECT_MFA_TYPE", challenge["Session"], {"ANSWER": "SMS_MFA"})
    assert sms["ChallengeName"] == "SMS_MFA"
    assert is_tokens(pool.respond("SMS_MFA", sms["Session"], {"SMS_MFA_CODE": pool.code("SMS")}))


def test_select_mfa_type_rejects_a_type_the_user_does_not_have(plain: Pool) -> None:
    add(plain, mfa=["SMS_MFA", "SOFTWARE_TOKEN_MFA"])
    challenge = plain.login()
    with pytest.raises(ClientError) as exc:
        plain.respond("SELECT_MFA_TYPE", challenge["Session"], {"ANSWER": "EMAIL_OTP"})
    assert error_code(exc) == "InvalidParameterException"


def test_preferred_mfa_is_asked_directly(plain: Pool) -> None:
    add(plain, mfa=["SMS_MFA", "SOFTWARE_TOKEN_MFA"], preferred_mfa="SOFTWARE_TOKEN_MFA")
    assert plain.login()["ChallengeName"] == "SOFTWARE_TOKEN_MFA"


# ---- MFA_SETUP -----------------------------------------------------------------------------------


def test_required_mfa_without_a_factor_sets_up_totp_then_uses_it(pool: Pool) -> None:
    add(pool, attributes={"email": EMAIL})
    pool.double.set_pool_mfa(pool.pool_id, "ON")
    challenge = pool.login()
    assert challenge["ChallengeName"] == "MFA_SETUP"
    assert json.loads(challenge["ChallengeParameters"]["MFAS_CAN_SETUP"]) == ["SOFTWARE_TOKEN_MFA"]

    associated = pool.boto.associate_software_token(Session=challenge["Session"])
    secret = associated["SecretCode"]
    base64.b32decode(secret + "=" * (-len(secret) % 8))  # base32, as authenticator apps need
    verified = pool.boto.verify_software_token(
        Session=associated["Session"], UserCode=totp(secret), FriendlyDeviceName="phone"
    )
    assert verified["Status"] == "SUCCESS"
    tokens = pool.respond("MFA_SETUP", verified["Session"], {})
    assert is_tokens(tokens)
    assert pool.double.totp_secret(pool.pool_id, USERNAME) == secret

    pool.double.clock = lambda: time.time() + 60  # a new TOTP step for the next sign-in
    again = pool.login()
    assert again["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    assert again["ChallengeParameters"]["FRIENDLY_DEVICE_NAME"] == "phone"
    code = totp(secret, time.time() + 60)
    assert is_tokens(
        pool.respond("SOFTWARE_TOKEN_MFA", again["Session"], {"SOFTWARE_TOKEN_MFA_CODE": code})
    )


def test_mfa_setup_rejects_a_wrong_code_and_cannot_finish_unverified(plain: Pool) -> None:
    add(plain, attributes={"email": EMAIL})
    plain.double.set_pool_mfa(plain.pool_id, "ON")
    challenge = plain.login()
    associated = plain.boto.associate_software_token(Session=challenge["Session"])
    wrong = totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    with pytest.raises(ClientError) as exc:
        plain.boto.verify_software_token(Session=associated["Session"], UserCode=wrong)
    assert error_code(exc) == "EnableSoftwareTokenMFAException"
    for session in (challenge["Session"], associated["Session"]):
        with pytest.raises(ClientError) as exc:
            plain.respond("MFA_SETUP", session, {})
        assert error_code(exc) == "NotAuthorizedException"
    assert plain.double.totp_secret(plain.pool_id, USERNAME) is None


def test_mfa_setup_session_cannot_be_finished_as_another_user(plain: Pool) -> None:
    add(plain, attributes={"email": EMAIL})
    add(plain, OTHER, attributes={"email": "bob@example.com"})
    plain.double.set_pool_mfa(plain.pool_id, "ON")
    challenge = plain.login()
    associated = plain.boto.associate_software_token(Session=challenge["Session"])
    verified = plain.boto.verify_software_token(
        Session=associated["Session"], UserCode=totp(associated["SecretCode"])
    )
    with pytest.raises(ClientError) as exc:
        plain.respond("MFA_SETUP", verified["Session"], {}, username=OTHER)
    assert error_code(exc) == "NotAuthorizedException"


def test_totp_associated_with_an_access_token_is_enabled_by_mfa_preference(plain: Pool) -> None:
    add(plain, attributes={"email": EMAIL})
    access = plain.login()["AuthenticationResult"]["AccessToken"]
    with pytest.raises(ClientError) as exc:
        plain.boto.set_user_mfa_preference(
            AccessToken=access,
            SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True},
        )
    assert error_code(exc) == "InvalidParameterException"  # not verified yet
    secret = plain.boto.associate_software_token(AccessToken=access)["SecretCode"]
    plain.boto.verify_software_token(AccessToken=access, UserCode=totp(secret))
    plain.boto.set_user_mfa_preference(
        AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    user = plain.boto.get_user(AccessToken=access)
    assert user["PreferredMfaSetting"] == "SOFTWARE_TOKEN_MFA"
    assert plain.login()["ChallengeName"] == "SOFTWARE_TOKEN_MFA"


def test_verify_software_token_refuses_a_code_that_is_not_six_digits(plain: Pool) -> None:
    add(plain, attributes={"email": EMAIL})
    access = plain.login()["AuthenticationResult"]["AccessToken"]
    plain.boto.associate_software_token(AccessToken=access)
    with pytest.raises(ClientError) as exc:  # SoftwareTokenMFAUserCodeType: [0-9]+, length 6
        plain.boto.verify_software_token(AccessToken=access, UserCode="12ab56")
    assert error_code(exc) == "InvalidParameterException"


# ---- NEW_PASSWORD_REQUIRED -----------------------------------------------------------------------


def test_new_password_required_asks_for_missing_required_attributes(pool: Pool) -> None:
    add(pool, attributes={"email": EMAIL}, status="FORCE_CHANGE_PASSWORD")
    pool.double.set_required_attributes(pool.pool_id, ["email", "given_name"])
    challenge = pool.login()
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    params = challenge["ChallengeParameters"]
    assert json.loads(params["requiredAttributes"]) == ["userAttributes.given_name"]
    assert json.loads(params["userAttributes"])["email"] == EMAIL

    with pytest.raises(ClientError) as exc:
        pool.respond(
            "NEW_PASSWORD_REQUIRED", challenge["Session"], {"NEW_PASSWORD": "New-Pass-123"}
        )
    assert error_code(exc) == "InvalidParameterException"
    assert "given_name" in exc.value.response["Error"]["Message"]

    tokens = pool.respond(
        "NEW_PASSWORD_REQUIRED",
        challenge["Session"],
        {"NEW_PASSWORD": "New-Pass-123", "userAttributes.given_name": "Alice"},
    )
    assert is_tokens(tokens)
    info = pool.double.user_info(pool.pool_id, USERNAME)
    assert info["status"] == "CONFIRMED"
    assert info["attributes"]["given_name"] == "Alice"
    assert is_tokens(pool.login(password="New-Pass-123"))


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Sh0rt!", "long enough"),
        ("no-upper-123", "uppercase"),
        ("NO-LOWER-123", "lowercase"),
        ("No-Digits-Here", "numeric"),
        ("NoSymbols123", "symbol"),
    ],
)
def test_new_password_policy_names_the_broken_rule(plain: Pool, password: str, rule: str) -> None:
    add(plain, status="FORCE_CHANGE_PASSWORD")
    challenge = plain.login()
    with pytest.raises(ClientError) as exc:
        plain.respond("NEW_PASSWORD_REQUIRED", challenge["Session"], {"NEW_PASSWORD": password})
    assert error_code(exc) == "InvalidPasswordException"
    assert rule in exc.value.response["Error"]["Message"]


def test_new_password_is_followed_by_mfa(plain: Pool) -> None:
    add(plain, status="FORCE_CHANGE_PASSWORD", mfa=["SMS_MFA"])
    challenge = plain.login()
    after = plain.respond(
        "NEW_PASSWORD_REQUIRED", challenge["Session"], {"NEW_PASSWORD": "New-Pass-123"}
    )
    assert after["ChallengeName"] == "SMS_MFA"


def test_new_password_session_cannot_change_another_users_password(plain: Pool) -> None:
    add(plain, status="FORCE_CHANGE_PASSWORD")
    add(plain, OTHER, status="FORCE_CHANGE_PASSWORD", attributes={"email": "bob@example.com"})
    challenge = plain.login()
    with pytest.raises(ClientError) as exc:
        plain.respond(
            "NEW_PASSWORD_REQUIRED", challenge["Session"], {"NEW_PASSWORD": "New-Pass-123"}, OTHER
        )
    assert error_code(exc) == "NotAuthorizedException"
    assert plain.double.user_info(plain.pool_id, OTHER)["status"] == "FORCE_CHANGE_PASSWORD"


# ---- forgotten password, sign-up confirmation ----------------------------------------------------


def test_forgot_password_sends_a_code_and_confirm_sets_the_password(pool: Pool) -> None:
    add(pool)
    sent = pool.boto.forgot_password(
        ClientId=pool.client_id, Username=USERNAME, **pool.secret_hash(USERNAME)
    )
    assert sent["CodeDeliveryDetails"] == {
        "Destination": "a***@e***",
        "DeliveryMedium": "EMAIL",
        "AttributeName": "email",
    }
    code = pool.code("EMAIL")
    pool.boto.confirm_forgot_password(
        ClientId=pool.client_id,
        Username=USERNAME,
        ConfirmationCode=code,
        Password="Reset-Pass-456",
        **pool.secret_hash(USERNAME),
    )
    assert is_tokens(pool.login(password="Reset-Pass-456"))
    with pytest.raises(ClientError) as exc:  # the code is single use
        pool.boto.confirm_forgot_password(
            ClientId=pool.client_id,
            Username=USERNAME,
            ConfirmationCode=code,
            Password="Other-Pass-789",
            **pool.secret_hash(USERNAME),
        )
    assert error_code(exc) == "CodeMismatchException"


def test_forgot_password_needs_secret_hash(new_pool: Callable[..., Pool]) -> None:
    pool = new_pool(secret=True)
    add(pool)
    with pytest.raises(ClientError) as exc:
        pool.boto.forgot_password(ClientId=pool.client_id, Username=USERNAME)
    assert error_code(exc) == "NotAuthorizedException"


def test_confirm_forgot_password_rejects_wrong_expired_and_too_many_codes(plain: Pool) -> None:
    add(plain)

    def confirm(code: str, password: str = "Reset-Pass-456") -> str:
        with pytest.raises(ClientError) as exc:
            plain.boto.confirm_forgot_password(
                ClientId=plain.client_id,
                Username=USERNAME,
                ConfirmationCode=code,
                Password=password,
            )
        return error_code(exc)

    plain.boto.forgot_password(ClientId=plain.client_id, Username=USERNAME)
    code = plain.code("EMAIL")
    wrong = "000000" if code != "000000" else "111111"
    assert confirm(code, password="weak") == "InvalidPasswordException"  # code survives
    assert [confirm(wrong) for _ in range(5)] == ["CodeMismatchException"] * 4 + [
        "LimitExceededException"
    ]
    assert confirm(code) == "CodeMismatchException"  # voided

    plain.boto.forgot_password(ClientId=plain.client_id, Username=USERNAME)
    code = plain.code("EMAIL")
    plain.double.clock = lambda: time.time() + 3601
    assert confirm(code) == "ExpiredCodeException"


def test_forgot_password_for_an_unknown_user_pretends_to_send(plain: Pool) -> None:
    sent = plain.boto.forgot_password(ClientId=plain.client_id, Username="nobody")
    assert sent["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"
    assert plain.double.last_code(plain.pool_id, "nobody", "EMAIL") is None
    with pytest.raises(ClientError) as exc:
        plain.boto.confirm_forgot_password(
            ClientId=plain.client_id,
            Username="nobody",
            ConfirmationCode="123456",
            Password="Reset-Pass-456",
        )
    assert error_code(exc) == "CodeMismatchException"


def test_reset_required_user_must_reset_before_signing_in(plain: Pool) -> None:
    add(plain, status="RESET_REQUIRED")
    with pytest.raises(ClientError) as exc:
        plain.login()
    assert error_code(exc) == "PasswordResetRequiredException"
    plain.boto.forgot_password(ClientId=plain.client_id, Username=USERNAME)
    plain.boto.confirm_forgot_password(
        ClientId=plain.client_id,
        Username=USERNAME,
        ConfirmationCode=plain.code("EMAIL"),
        Password="Reset-Pass-456",
    )
    assert is_tokens(plain.login(password="Reset-Pass-456"))


def test_forgot_password_refuses_invited_and_unconfirmed_users(plain: Pool) -> None:
    add(plain, status="FORCE_CHANGE_PASSWORD")
    add(plain, OTHER, status="UNCONFIRMED", attributes={"email": "bob@example.com"})
    codes = []
    for username in (USERNAME, OTHER):
        with pytest.raises(ClientError) as exc:
            plain.boto.forgot_password(ClientId=plain.client_id, Username=username)
        codes.append(error_code(exc))
    assert codes == ["NotAuthorizedException", "InvalidParameterException"]


def test_sign_up_cannot_mark_its_own_email_verified(plain: Pool) -> None:
    with pytest.raises(ClientError) as exc:
        plain.boto.sign_up(
            ClientId=plain.client_id,
            Username="carol",
            Password=PASSWORD,
            UserAttributes=[
                {"Name": "email", "Value": "alice@example.com"},
                {"Name": "email_verified", "Value": "true"},
            ],
        )
    assert error_code(exc) == "NotAuthorizedException"


def test_sign_up_then_confirm_with_the_sent_code(pool: Pool) -> None:
    signed = pool.boto.sign_up(
        ClientId=pool.client_id,
        Username="carol",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "carol@example.com"}],
        **pool.secret_hash("carol"),
    )
    assert signed["UserConfirmed"] is False
    assert signed["CodeDeliveryDetails"]["Destination"] == "c***@e***"
    with pytest.raises(ClientError) as exc:
        pool.login("carol")
    assert error_code(exc) == "UserNotConfirmedException"

    first = pool.code("EMAIL", "carol")
    pool.boto.resend_confirmation_code(
        ClientId=pool.client_id, Username="carol", **pool.secret_hash("carol")
    )
    second = pool.code("EMAIL", "carol")
    if first != second:
        with pytest.raises(ClientError) as exc:
            pool.boto.confirm_sign_up(
                ClientId=pool.client_id,
                Username="carol",
                ConfirmationCode=first,
                **pool.secret_hash("carol"),
            )
        assert error_code(exc) == "CodeMismatchException"
    pool.boto.confirm_sign_up(
        ClientId=pool.client_id,
        Username="carol",
        ConfirmationCode=second,
        **pool.secret_hash("carol"),
    )
    assert pool.double.user_info(pool.pool_id, "carol")["attributes"]["email_verified"] == "true"
    assert is_tokens(pool.login("carol"))


# ---- CUSTOM_AUTH ---------------------------------------------------------------------------------


def test_custom_auth_asks_the_handlers_question_and_accepts_the_answer(pool: Pool) -> None:
    add(pool)
    pool.double.set_custom_auth(pool.pool_id, captcha_challenge)
    challenge = pool.initiate("CUSTOM_AUTH", {"USERNAME": USERNAME})
    assert challenge["ChallengeName"] == "CUSTOM_CHALLENGE"
    assert challenge["ChallengeParameters"] == {
        "type": "captcha",
        "question": "What is 3 + 4?",
        "USERNAME": USERNAME,
    }
    assert is_tokens(pool.respond("CUSTOM_CHALLENGE", challenge["Session"], {"ANSWER": "7"}))


def test_custom_auth_re_asks_after_a_wrong_answer_and_fails_after_three(plain: Pool) -> None:
    add(plain)
    plain.double.set_custom_auth(plain.pool_id, captcha_challenge)
    challenge = plain.initiate("CUSTOM_AUTH", {"USERNAME": USERNAME})
    for _ in range(2):
        challenge = plain.respond("CUSTOM_CHALLENGE", challenge["Session"], {"ANSWER": "8"})
        assert challenge["ChallengeName"] == "CUSTOM_CHALLENGE"
    with pytest.raises(ClientError) as exc:
        plain.respond("CUSTOM_CHALLENGE", challenge["Session"], {"ANSWER": "8"})
    assert error_code(exc) == "NotAuthorizedException"


def test_custom_challenge_session_is_single_use_and_bound_to_the_user(plain: Pool) -> None:
    add(plain)
    add(plain, OTHER, attributes={"email": "bob@example.com"})
    plain.double.set_custom_auth(plain.pool_id, captcha_challenge)
    challenge = plain.initiate("CUSTOM_AUTH", {"USERNAME": USERNAME})
    with pytest.raises(ClientError) as exc:
        plain.respond("CUSTOM_CHALLENGE", challenge["Session"], {"ANSWER": "7"}, username=OTHER)
    assert error_code(exc) == "NotAuthorizedException"
    assert is_tokens(plain.respond("CUSTOM_CHALLENGE", challenge["Session"], {"ANSWER": "7"}))
    with pytest.raises(ClientError) as exc:
        plain.respond("CUSTOM_CHALLENGE", challenge["Session"], {"ANSWER": "7"})
    assert error_code(exc) == "NotAuthorizedException"


def test_custom_auth_with_srp_first_verifies_the_password_then_asks(pool: Pool) -> None:
    add(pool)
    seen: list[list[dict[str, Any]]] = []

    def handler(username: str, history: list[dict[str, Any]]) -> dict[str, Any]:
        seen.append(history)
        return captcha_challenge(username, history)

    pool.double.set_custom_auth(pool.pool_id, handler)
    aws = pool.srp()
    params = {**aws.get_auth_params(), "CHALLENGE_NAME": "SRP_A"}
    params.pop("SECRET_HASH", None)
    verifier = pool.initiate("CUSTOM_AUTH", params)
    assert verifier["ChallengeName"] == "PASSWORD_VERIFIER"
    responses = aws.process_challenge(verifier["ChallengeParameters"], params)
    responses.pop("SECRET_HASH", None)
    custom = pool.respond("PASSWORD_VERIFIER", verifier["Session"], responses)
    assert custom["ChallengeName"] == "CUSTOM_CHALLENGE"
    assert [h["challengeName"] for h in seen[0]] == ["SRP_A", "PASSWORD_VERIFIER"]
    assert is_tokens(pool.respond("CUSTOM_CHALLENGE", custom["Session"], {"ANSWER": "7"}))


def test_custom_auth_with_srp_first_rejects_a_wrong_password(plain: Pool) -> None:
    add(plain)
    plain.double.set_custom_auth(plain.pool_id, captcha_challenge)
    aws = plain.srp(password="Wrong-Horse-9")
    params = {**aws.get_auth_params(), "CHALLENGE_NAME": "SRP_A"}
    verifier = plain.initiate("CUSTOM_AUTH", params)
    responses = aws.process_challenge(verifier["ChallengeParameters"], params)
    with pytest.raises(ClientError) as exc:
        plain.respond("PASSWORD_VERIFIER", verifier["Session"], responses)
    assert error_code(exc) == "NotAuthorizedException"


def test_custom_auth_without_a_handler_is_refused(plain: Pool) -> None:
    add(plain)
    with pytest.raises(ClientError) as exc:
        plain.initiate("CUSTOM_AUTH", {"USERNAME": USERNAME})
    assert error_code(exc) == "NotAuthorizedException"


# ---- devices -------------------------------------------------------------------------------------


def totp_sign_in(pool: Pool, secret: str, at: float) -> Any:
    challenge = pool.login()
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    return pool.respond(
        "SOFTWARE_TOKEN_MFA", challenge["Session"], {"SOFTWARE_TOKEN_MFA_CODE": totp(secret, at)}
    )


def remember_device(pool: Pool, tokens: Any, *, opt_in: bool = True) -> dict[str, str]:
    """ConfirmDevice (+ UpdateDeviceStatus) like a client library; returns pycognito kwargs."""
    result = tokens["AuthenticationResult"]
    meta = result["NewDeviceMetadata"]
    device_password, config = generate_hash_device(meta["DeviceGroupKey"], meta["DeviceKey"])
    confirmed = pool.boto.confirm_device(
        AccessToken=result["AccessToken"],
        DeviceKey=meta["DeviceKey"],
        DeviceSecretVerifierConfig=config,
        DeviceName="laptop",
    )
    assert confirmed["UserConfirmationNecessary"] is True
    if opt_in:
        pool.boto.update_device_status(
            AccessToken=result["AccessToken"],
            DeviceKey=meta["DeviceKey"],
            DeviceRememberedStatus="remembered",
        )
    return {
        "device_key": meta["DeviceKey"],
        "device_group_key": meta["DeviceGroupKey"],
        "device_password": device_password,
    }


def device_sign_in(pool: Pool, device: dict[str, str]) -> Any:
    """USER_SRP_AUTH with a DEVICE_KEY, answered with pycognito's SRP and device SRP maths.

    (pycognito's own authenticate_user omits SECRET_HASH on DEVICE_SRP_AUTH, which Cognito
    requires for clients with a secret, so the steps are driven here.)
    """
    aws = pool.srp(**device)
    params = aws.get_auth_params()
    verifier = pool.boto.initiate_auth(
        ClientId=pool.client_id, AuthFlow="USER_SRP_AUTH", AuthParameters=params
    )
    responses = aws.process_challenge(verifier["ChallengeParameters"], params)
    step = pool.boto.respond_to_auth_challenge(
        ClientId=pool.client_id,
        ChallengeName="PASSWORD_VERIFIER",
        Session=verifier["Session"],
        ChallengeResponses=responses,
    )
    if step.get("ChallengeName") != "DEVICE_SRP_AUTH":
        return step
    srp_a = format(aws.large_a_value, "x")
    device_challenge = pool.respond(
        "DEVICE_SRP_AUTH", step["Session"], {"DEVICE_KEY": device["device_key"], "SRP_A": srp_a}
    )
    assert device_challenge["ChallengeName"] == "DEVICE_PASSWORD_VERIFIER"
    answer = aws.process_device_challenge(device_challenge["ChallengeParameters"])
    return pool.boto.respond_to_auth_challenge(
        ClientId=pool.client_id,
        ChallengeName="DEVICE_PASSWORD_VERIFIER",
        Session=device_challenge["Session"],
        ChallengeResponses=answer,
    )


def test_pycognito_device_flow_without_session_works_for_a_public_client(plain: Pool) -> None:
    """pycognito sends DEVICE_SRP_AUTH without Session; the double accepts that, like Cognito."""
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    add(plain, mfa=["SOFTWARE_TOKEN_MFA"], totp_secret=secret)
    plain.double.set_device_tracking(plain.pool_id)
    device = remember_device(plain, totp_sign_in(plain, secret, time.time()))
    assert is_tokens(plain.srp(**device).authenticate_user())


@pytest.fixture
def tracked(pool: Pool) -> tuple[Pool, str]:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    add(pool, mfa=["SOFTWARE_TOKEN_MFA"], totp_secret=secret)
    pool.double.set_device_tracking(pool.pool_id)
    return pool, secret


def test_remembered_device_signs_in_with_device_srp_instead_of_mfa(
    tracked: tuple[Pool, str],
) -> None:
    pool, secret = tracked
    device = remember_device(pool, totp_sign_in(pool, secret, time.time()))
    tokens = device_sign_in(pool, device)
    assert is_tokens(tokens)
    assert "NewDeviceMetadata" not in tokens["AuthenticationResult"]
    names = [body["ChallengeName"] for body in pool.double.calls_to("RespondToAuthChallenge")]
    assert names[-2:] == ["DEVICE_SRP_AUTH", "DEVICE_PASSWORD_VERIFIER"]
    listed = pool.boto.list_devices(AccessToken=tokens["AuthenticationResult"]["AccessToken"])
    assert [d["DeviceKey"] for d in listed["Devices"]] == [device["device_key"]]


def test_device_srp_with_the_wrong_device_password_is_rejected(tracked: tuple[Pool, str]) -> None:
    pool, secret = tracked
    device = remember_device(pool, totp_sign_in(pool, secret, time.time()))
    device["device_password"] = base64.b64encode(b"x" * 40).decode()
    with pytest.raises(ClientError) as exc:
        device_sign_in(pool, device)
    assert error_code(exc) == "NotAuthorizedException"
    assert pool.double.failures[-1][2] == "bad device SRP signature"


def test_device_srp_needs_the_users_password_first(tracked: tuple[Pool, str]) -> None:
    pool, secret = tracked
    device = remember_device(pool, totp_sign_in(pool, secret, time.time()))
    aws = pool.srp()
    with pytest.raises(ClientError) as exc:  # no password step opened a DEVICE_SRP_AUTH session
        pool.respond(
            "DEVICE_SRP_AUTH",
            None,
            {"DEVICE_KEY": device["device_key"], "SRP_A": format(aws.large_a_value, "x")},
        )
    assert error_code(exc) == "NotAuthorizedException"


def test_device_not_opted_in_still_requires_mfa(tracked: tuple[Pool, str]) -> None:
    pool, secret = tracked
    device = remember_device(pool, totp_sign_in(pool, secret, time.time()), opt_in=False)
    challenge = pool.login(DEVICE_KEY=device["device_key"])
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"


def test_forgotten_device_requires_mfa_again(tracked: tuple[Pool, str]) -> None:
    pool, secret = tracked
    device = remember_device(pool, totp_sign_in(pool, secret, time.time()))
    pool.boto.admin_forget_device(
        UserPoolId=pool.pool_id, Username=USERNAME, DeviceKey=device["device_key"]
    )
    assert pool.login(DEVICE_KEY=device["device_key"])["ChallengeName"] == "SOFTWARE_TOKEN_MFA"


def test_confirm_device_refuses_a_token_from_another_sign_in(tracked: tuple[Pool, str]) -> None:
    pool, secret = tracked
    first = totp_sign_in(pool, secret, time.time())
    second = totp_sign_in(pool, secret, time.time() + 30)
    _, config = generate_hash_device("g", "k")
    with pytest.raises(ClientError) as exc:
        pool.boto.confirm_device(
            AccessToken=second["AuthenticationResult"]["AccessToken"],
            DeviceKey=first["AuthenticationResult"]["NewDeviceMetadata"]["DeviceKey"],
            DeviceSecretVerifierConfig=config,
        )
    assert error_code(exc) == "InvalidParameterException"


def test_always_remembered_devices_need_no_opt_in(plain: Pool) -> None:
    add(plain)
    plain.double.set_device_tracking(plain.pool_id, remembered="always")
    tokens = plain.login()
    meta = tokens["AuthenticationResult"]["NewDeviceMetadata"]
    device_password, config = generate_hash_device(meta["DeviceGroupKey"], meta["DeviceKey"])
    confirmed = plain.boto.confirm_device(
        AccessToken=tokens["AuthenticationResult"]["AccessToken"],
        DeviceKey=meta["DeviceKey"],
        DeviceSecretVerifierConfig=config,
    )
    assert confirmed["UserConfirmationNecessary"] is False
    device = {
        "device_key": meta["DeviceKey"],
        "device_group_key": meta["DeviceGroupKey"],
        "device_password": device_password,
    }
    assert is_tokens(device_sign_in(plain, device))


def refresh(pool: Pool, tokens: Any, **device: str) -> Any:
    params = {"REFRESH_TOKEN": tokens["AuthenticationResult"]["RefreshToken"], **device}
    if pool.secret is not None:
        params = pool.hashed(params, username=USERNAME)
    return pool.boto.initiate_auth(
        ClientId=pool.client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters=params
    )


def test_refresh_with_device_tracking_needs_the_confirmed_devices_key(
    tracked: tuple[Pool, str],
) -> None:
    pool, secret = tracked
    tokens = totp_sign_in(pool, secret, time.time())
    key = tokens["AuthenticationResult"]["NewDeviceMetadata"]["DeviceKey"]
    with pytest.raises(ClientError) as exc:  # not confirmed yet
        refresh(pool, tokens, DEVICE_KEY=key)
    assert pool.double.failures[-1][2] == "device not confirmed"
    remember_device(pool, tokens)
    with pytest.raises(ClientError) as exc:
        refresh(pool, tokens)
    assert error_code(exc) == "NotAuthorizedException"
    assert is_tokens(refresh(pool, tokens, DEVICE_KEY=key))
    pool.boto.admin_forget_device(UserPoolId=pool.pool_id, Username=USERNAME, DeviceKey=key)
    with pytest.raises(ClientError) as exc:
        refresh(pool, tokens, DEVICE_KEY=key)
    assert pool.double.failures[-1][2] == "device forgotten"


# ---- USER_AUTH (choice-based sign-in) ------------------------------------------------------------


@pytest.fixture
def choice(pool: Pool) -> Pool:
    add(pool)
    pool.double.set_user_auth(pool.pool_id)
    return pool


def test_user_auth_without_preference_offers_the_users_choices(choice: Pool) -> None:
    challenge = choice.initiate("USER_AUTH", {"USERNAME": USERNAME})
    assert challenge["ChallengeName"] == "SELECT_CHALLENGE"
    assert challenge["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP", "EMAIL_OTP", "SMS_OTP"]


@pytest.mark.parametrize(("factor", "channel"), [("EMAIL_OTP", "EMAIL"), ("SMS_OTP", "SMS")])
def test_user_auth_one_time_code_signs_in(choice: Pool, factor: str, channel: str) -> None:
    select = choice.initiate("USER_AUTH", {"USERNAME": USERNAME})
    challenge = choice.respond("SELECT_CHALLENGE", select["Session"], {"ANSWER": factor})
    assert challenge["ChallengeName"] == factor
    assert challenge["ChallengeParameters"]["CODE_DELIVERY_DELIVERY_MEDIUM"] == channel
    code = choice.code(channel)
    assert is_tokens(choice.respond(factor, challenge["Session"], {f"{factor}_CODE": code}))


def test_user_auth_password_answer_signs_in_and_a_wrong_one_does_not(choice: Pool) -> None:
    select = choice.initiate("USER_AUTH", {"USERNAME": USERNAME})
    with pytest.raises(ClientError) as exc:
        choice.respond(
            "SELECT_CHALLENGE", select["Session"], {"ANSWER": "PASSWORD", "PASSWORD": "nope"}
        )
    assert error_code(exc) == "NotAuthorizedException"
    again = choice.initiate("USER_AUTH", {"USERNAME": USERNAME})
    tokens = choice.respond(
        "SELECT_CHALLENGE", again["Session"], {"ANSWER": "PASSWORD", "PASSWORD": PASSWORD}
    )
    assert is_tokens(tokens)


def test_user_auth_password_srp_runs_real_srp(choice: Pool) -> None:
    aws = choice.srp()
    srp_a = format(aws.large_a_value, "x")
    verifier = choice.initiate(
        "USER_AUTH", {"USERNAME": USERNAME, "PREFERRED_CHALLENGE": "PASSWORD_SRP", "SRP_A": srp_a}
    )
    assert verifier["ChallengeName"] == "PASSWORD_VERIFIER"
    responses = aws.process_challenge(verifier["ChallengeParameters"], {"USERNAME": USERNAME})
    responses.pop("SECRET_HASH", None)
    assert is_tokens(choice.respond("PASSWORD_VERIFIER", verifier["Session"], responses))


def test_user_auth_password_is_followed_by_mfa(plain: Pool) -> None:
    add(plain, mfa=["SMS_MFA"])
    plain.double.set_user_auth(plain.pool_id)
    after = plain.initiate(
        "USER_AUTH", {"USERNAME": USERNAME, "PREFERRED_CHALLENGE": "PASSWORD", "PASSWORD": PASSWORD}
    )
    assert after["ChallengeName"] == "SMS_MFA"


def test_select_challenge_refuses_a_factor_not_offered(plain: Pool) -> None:
    add(plain)
    plain.double.set_user_auth(plain.pool_id, ["PASSWORD"])
    select = plain.initiate("USER_AUTH", {"USERNAME": USERNAME})
    assert select["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP"]
    with pytest.raises(ClientError) as exc:
        plain.respond("SELECT_CHALLENGE", select["Session"], {"ANSWER": "EMAIL_OTP"})
    assert error_code(exc) == "InvalidParameterException"


def test_otp_session_of_one_user_cannot_sign_in_another(plain: Pool) -> None:
    add(plain)
    add(plain, OTHER, attributes={"email": "bob@example.com"})
    plain.double.set_user_auth(plain.pool_id)
    challenge = plain.initiate(
        "USER_AUTH", {"USERNAME": USERNAME, "PREFERRED_CHALLENGE": "EMAIL_OTP"}
    )
    assert challenge["ChallengeName"] == "EMAIL_OTP"
    with pytest.raises(ClientError) as exc:
        plain.respond(
            "EMAIL_OTP", challenge["Session"], {"EMAIL_OTP_CODE": plain.code("EMAIL")}, OTHER
        )
    assert error_code(exc) == "NotAuthorizedException"


# ---- WebAuthn ------------------------------------------------------------------------------------

RP_ID = "login.example.com"


@pytest.fixture
def passkey(plain: Pool) -> tuple[Pool, SoftwareAuthenticator]:
    add(plain)
    plain.double.set_user_auth(plain.pool_id, relying_party_id=RP_ID)
    authenticator = SoftwareAuthenticator(RP_ID)
    plain.double.register_passkey(
        plain.pool_id, USERNAME, authenticator.credential_id, authenticator.public_key, RP_ID
    )
    return plain, authenticator


def webauthn_challenge(pool: Pool) -> Any:
    challenge = pool.initiate(
        "USER_AUTH", {"USERNAME": USERNAME, "PREFERRED_CHALLENGE": "WEB_AUTHN"}
    )
    assert challenge["ChallengeName"] == "WEB_AUTHN"
    return challenge


def test_passkey_assertion_signs_in(passkey: tuple[Pool, SoftwareAuthenticator]) -> None:
    pool, authenticator = passkey
    challenge = webauthn_challenge(pool)
    options = json.loads(challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    assert options["rpId"] == RP_ID
    assert options["userVerification"] == "preferred"
    assert options["allowCredentials"][0]["type"] == "public-key"
    assert len(base64.urlsafe_b64decode(options["challenge"] + "==")) == 32
    credential = authenticator.assertion(options)
    assert is_tokens(pool.respond("WEB_AUTHN", challenge["Session"], {"CREDENTIAL": credential}))


def reject(pool: Pool, session: str, credential: str) -> str:
    with pytest.raises(ClientError) as exc:
        pool.respond("WEB_AUTHN", session, {"CREDENTIAL": credential})
    assert error_code(exc) == "NotAuthorizedException"
    return pool.double.failures[-1][2]


def test_passkey_assertion_for_another_origin_is_rejected(
    passkey: tuple[Pool, SoftwareAuthenticator],
) -> None:
    pool, authenticator = passkey
    challenge = webauthn_challenge(pool)
    options = challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"]
    credential = authenticator.assertion(options, origin="https://evil.example")
    assert "origin" in reject(pool, challenge["Session"], credential)


def test_passkey_assertion_replayed_on_a_new_challenge_is_rejected(
    passkey: tuple[Pool, SoftwareAuthenticator],
) -> None:
    pool, authenticator = passkey
    first = webauthn_challenge(pool)
    credential = authenticator.assertion(first["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    pool.respond("WEB_AUTHN", first["Session"], {"CREDENTIAL": credential})
    second = webauthn_challenge(pool)
    assert "challenge" in reject(pool, second["Session"], credential)


def test_passkey_assertion_for_another_rp_is_rejected(
    passkey: tuple[Pool, SoftwareAuthenticator],
) -> None:
    pool, authenticator = passkey
    challenge = webauthn_challenge(pool)
    options = json.loads(challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    credential = authenticator.assertion(
        {**options, "rpId": "evil.example"}, origin=f"https://{RP_ID}"
    )
    assert "rpIdHash" in reject(pool, challenge["Session"], credential)


def test_passkey_assertion_signed_by_another_key_is_rejected(
    passkey: tuple[Pool, SoftwareAuthenticator],
) -> None:
    pool, authenticator = passkey
    impostor = SoftwareAuthenticator(RP_ID)
    impostor.credential_id = authenticator.credential_id
    challenge = webauthn_challenge(pool)
    credential = impostor.assertion(challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    assert "signature" in reject(pool, challenge["Session"], credential)


def test_passkey_with_a_sign_count_that_did_not_grow_is_rejected(
    passkey: tuple[Pool, SoftwareAuthenticator],
) -> None:
    pool, authenticator = passkey
    first = webauthn_challenge(pool)
    pool.respond(
        "WEB_AUTHN",
        first["Session"],
        {
            "CREDENTIAL": authenticator.assertion(
                first["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"]
            )
        },
    )
    authenticator.sign_count = 0  # a clone starting over
    second = webauthn_challenge(pool)
    credential = authenticator.assertion(
        second["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"]
    )
    assert "signCount" in reject(pool, second["Session"], credential)


def test_passkey_without_user_verification_is_rejected_when_required(plain: Pool) -> None:
    add(plain)
    plain.double.set_user_auth(plain.pool_id, relying_party_id=RP_ID, user_verification="required")
    authenticator = SoftwareAuthenticator(RP_ID)
    plain.double.register_passkey(
        plain.pool_id, USERNAME, authenticator.credential_id, authenticator.public_key, RP_ID
    )
    challenge = webauthn_challenge(plain)
    options = challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"]
    credential = authenticator.assertion(options, user_verified=False)
    assert "user-verified" in reject(plain, challenge["Session"], credential)


def test_webauthn_session_is_single_use(passkey: tuple[Pool, SoftwareAuthenticator]) -> None:
    pool, authenticator = passkey
    challenge = webauthn_challenge(pool)
    options = challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"]
    pool.respond(
        "WEB_AUTHN", challenge["Session"], {"CREDENTIAL": authenticator.assertion(options)}
    )
    reject(pool, challenge["Session"], authenticator.assertion(options))


def test_passkey_registered_through_the_api_signs_in(plain: Pool) -> None:
    add(plain)
    origin = "http://localhost:8080"
    plain.double.set_user_auth(
        plain.pool_id, relying_party_id="localhost", allowed_origins=[origin]
    )
    access = plain.login()["AuthenticationResult"]["AccessToken"]
    options = plain.boto.start_web_authn_registration(AccessToken=access)[
        "CredentialCreationOptions"
    ]
    authenticator = SoftwareAuthenticator("localhost", origin=origin)
    with pytest.raises(ClientError) as exc:  # wrong challenge
        plain.boto.complete_web_authn_registration(
            AccessToken=access,
            Credential=authenticator.register_response({**options, "challenge": "AAAA"}),
        )
    assert error_code(exc) == "WebAuthnChallengeNotFoundException"
    assert "challenge" in plain.double.failures[-1][2]

    options = plain.boto.start_web_authn_registration(AccessToken=access)[
        "CredentialCreationOptions"
    ]
    plain.boto.complete_web_authn_registration(
        AccessToken=access, Credential=authenticator.register_response(options)
    )
    assert plain.double.user_info(plain.pool_id, USERNAME)["passkeys"] == 1
    challenge = webauthn_challenge(plain)
    credential = authenticator.assertion(
        challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"]
    )
    assert is_tokens(plain.respond("WEB_AUTHN", challenge["Session"], {"CREDENTIAL": credential}))


# ---- malformed input is a client error, never a crash ------------------------------------------


@pytest.mark.parametrize(
    "credential",
    [
        "not json",
        "[]",
        '{"type": "public-key"}',
        '{"type": "public-key", "rawId": 5, "response": {"clientDataJSON": "!!"}}',
        '{"type": "public-key", "id": "AAAA", "response": {"signature": "AAAA"}}',
    ],
)
def test_malformed_webauthn_credential_is_rejected_cleanly(
    passkey: tuple[Pool, SoftwareAuthenticator], credential: str
) -> None:
    pool, _ = passkey
    challenge = webauthn_challenge(pool)
    reject(pool, challenge["Session"], credential)


def test_malformed_device_and_totp_requests_are_client_errors(tracked: tuple[Pool, str]) -> None:
    pool, secret = tracked
    tokens = totp_sign_in(pool, secret, time.time())
    access = tokens["AuthenticationResult"]["AccessToken"]
    key = tokens["AuthenticationResult"]["NewDeviceMetadata"]["DeviceKey"]
    calls = [
        lambda: pool.boto.confirm_device(
            AccessToken=access,
            DeviceKey=key,
            DeviceSecretVerifierConfig={"PasswordVerifier": "%%%", "Salt": ""},
        ),
        lambda: pool.boto.verify_software_token(Session="x" * 40, UserCode="123456"),
        lambda: pool.boto.associate_software_token(Session="x" * 40),
        lambda: pool.boto.update_device_status(
            AccessToken=access, DeviceKey="us-east-1_nope", DeviceRememberedStatus="remembered"
        ),
        lambda: pool.respond("DEVICE_SRP_AUTH", None, {"DEVICE_KEY": key, "SRP_A": "zz"}),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert not [f for f in pool.double.failures if f[1] == "InternalErrorException"]


def get_tokens(pool: Pool, refresh_token: str, **extra: str) -> Any:
    """GetTokensFromRefreshToken: ClientSecret itself (no SECRET_HASH), DeviceKey if given."""
    kwargs: dict[str, Any] = {"ClientId": pool.client_id, "RefreshToken": refresh_token, **extra}
    if pool.secret is not None:
        kwargs["ClientSecret"] = pool.secret
    return pool.boto.get_tokens_from_refresh_token(**kwargs)


@pytest.mark.parametrize("rotation", [False, True], ids=["rotation-off", "rotation-on"])
def test_get_tokens_from_refresh_token_needs_the_confirmed_devices_key(
    tracked: tuple[Pool, str], rotation: bool
) -> None:
    pool, secret = tracked
    pool.double.set_refresh_token_rotation(pool.client_id, rotation, 10)
    tokens = totp_sign_in(pool, secret, time.time())
    key = tokens["AuthenticationResult"]["NewDeviceMetadata"]["DeviceKey"]
    refresh_token = tokens["AuthenticationResult"]["RefreshToken"]
    with pytest.raises(ClientError):  # not confirmed yet
        get_tokens(pool, refresh_token, DeviceKey=key)
    assert pool.double.failures[-1][2] == "device not confirmed"
    remember_device(pool, tokens)
    with pytest.raises(ClientError) as exc:
        get_tokens(pool, refresh_token)
    assert error_code(exc) == "NotAuthorizedException"
    assert pool.double.failures[-1][2] == "DEVICE_KEY missing or not the token's device"
    result = get_tokens(pool, refresh_token, DeviceKey=key)["AuthenticationResult"]
    assert ("RefreshToken" in result) is rotation
    claims = jwt.decode(result["AccessToken"], options={"verify_signature": False})
    assert claims["device_key"] == key
