"""The strict Cognito double as Cognito is since 2025-2026, through a real boto3 client.

Refresh-token rotation and GetTokensFromRefreshToken, two client secrets, Cognito's own lockout,
threat protection (blocked and risk-MFA sign-ins, compromised credentials) and the multi-Region
issuer. Each test states the documented behaviour it holds the double to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import jwt
import pytest
from botocore.exceptions import ClientError
from pycognito.aws_srp import AWSSRP

from proxy.devtools.cognito_double import CognitoDouble, running_double

USERNAME = "alice"
EMAIL = "alice@example.com"
PASSWORD = "Correct-Horse-9"
BLOCKED = ("NotAuthorizedException", "Unable to login because of security reasons.")
EXCEEDED = ("NotAuthorizedException", "Password attempts exceeded")
BAD = ("NotAuthorizedException", "Incorrect username or password.")


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


@dataclass
class Client:
    double: CognitoDouble
    pool_id: str
    client_id: str
    secret: str | None
    boto: Any

    def hashed(self, params: dict[str, str], secret: str | None = None) -> dict[str, str]:
        secret = secret or self.secret
        if secret is None:
            return params
        message = (params["USERNAME"] + self.client_id).encode()
        digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
        return {**params, "SECRET_HASH": base64.b64encode(digest).decode()}

    def login(
        self, password: str = PASSWORD, *, secret: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        params = self.hashed({"USERNAME": USERNAME, "PASSWORD": password}, secret)
        result: dict[str, Any] = self.boto.initiate_auth(
            ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=params, **extra
        )
        return result

    def admin_login(self, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
        params = self.hashed({"USERNAME": USERNAME, "PASSWORD": password})
        result: dict[str, Any] = self.boto.admin_initiate_auth(
            UserPoolId=self.pool_id,
            ClientId=self.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters=params,
            **extra,
        )
        return result

    def tokens(self) -> dict[str, Any]:
        result: dict[str, Any] = self.login()["AuthenticationResult"]
        return result

    def get_tokens(self, refresh_token: str, *, secret: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"ClientId": self.client_id, "RefreshToken": refresh_token}
        if secret or self.secret:
            kwargs["ClientSecret"] = secret or self.secret
        result: dict[str, Any] = self.boto.get_tokens_from_refresh_token(**kwargs)
        return dict(result["AuthenticationResult"])

    def refresh_token_auth(self, refresh_token: str, *, admin: bool = False) -> dict[str, Any]:
        params = self.hashed({"USERNAME": USERNAME, "REFRESH_TOKEN": refresh_token})
        params.pop("USERNAME")
        if admin:
            result: dict[str, Any] = self.boto.admin_initiate_auth(
                UserPoolId=self.pool_id,
                ClientId=self.client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters=params,
            )
        else:
            result = self.boto.initiate_auth(
                ClientId=self.client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters=params
            )
        return result

    def srp_login(self, password: str = PASSWORD) -> dict[str, Any]:
        aws = AWSSRP(
            username=USERNAME,
            password=password,
            pool_id=self.pool_id,
            client_id=self.client_id,
            client=self.boto,
            client_secret=self.secret,
        )
        result: dict[str, Any] = aws.authenticate_user()
        return result


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[CognitoDouble, Any]]:
    with running_double() as running:
        yield running, boto3.client("cognito-idp", **running.client_kwargs())


@pytest.fixture(autouse=True)
def double(shared: tuple[CognitoDouble, Any]) -> Iterator[CognitoDouble]:
    running = shared[0]
    yield running
    running.clock = time.time
    running.issuer_style = "local"


def make_client(
    shared: tuple[CognitoDouble, Any], *, secret: bool = False, **client: Any
) -> Client:
    double, boto = shared
    pool_id = double.create_pool()
    client_id, client_secret = double.create_client(pool_id, secret=secret, **client)
    double.add_user(pool_id, USERNAME, PASSWORD, attributes={"email": EMAIL})
    return Client(double, pool_id, client_id, client_secret, boto)


@pytest.fixture(params=[False, True], ids=["public", "secret"])
def client(request: pytest.FixtureRequest, shared: tuple[CognitoDouble, Any]) -> Client:
    return make_client(shared, secret=request.param)


@pytest.fixture(params=[False, True], ids=["public", "secret"])
def rotating(request: pytest.FixtureRequest, shared: tuple[CognitoDouble, Any]) -> Client:
    return make_client(
        shared, secret=request.param, refresh_token_rotation=True, retry_grace_period_seconds=10
    )


def at(double: CognitoDouble, offset: float) -> None:
    double.clock = lambda: time.time() + offset


# ---- GetTokensFromRefreshToken, rotation off --------------------------------------------------


def test_rotation_off_returns_new_access_and_id_tokens_only(client: Client) -> None:
    first = client.tokens()
    for _ in range(2):  # the same refresh token keeps working
        result = client.get_tokens(first["RefreshToken"])
        assert "RefreshToken" not in result
        assert result["TokenType"] == "Bearer"
        claims = jwt.decode(result["AccessToken"], options={"verify_signature": False})
        original = jwt.decode(first["AccessToken"], options={"verify_signature": False})
        assert claims["origin_jti"] == original["origin_jti"]
        assert claims["jti"] != original["jti"]
    # REFRESH_TOKEN_AUTH stays allowed without rotation, on the public and the Admin API.
    assert "AccessToken" in client.refresh_token_auth(first["RefreshToken"])["AuthenticationResult"]
    admin = client.refresh_token_auth(first["RefreshToken"], admin=True)
    assert "AccessToken" in admin["AuthenticationResult"]


def test_client_secret_is_the_secret_itself_and_required(shared: tuple[CognitoDouble, Any]) -> None:
    confidential = make_client(shared, secret=True)
    token = confidential.tokens()["RefreshToken"]
    boto = confidential.boto
    with pytest.raises(ClientError) as exc:
        boto.get_tokens_from_refresh_token(ClientId=confidential.client_id, RefreshToken=token)
    assert error_of(exc)[0] == "NotAuthorizedException"
    assert "ClientSecret was not received" in error_of(exc)[1]
    assert confidential.secret is not None
    hashed = confidential.hashed({"USERNAME": USERNAME})["SECRET_HASH"]
    for wrong in (hashed, confidential.secret[:-1] + "x"):
        with pytest.raises(ClientError) as exc:
            confidential.get_tokens(token, secret=wrong)
        assert error_of(exc) == (
            "NotAuthorizedException",
            f"Unable to verify client secret for client {confidential.client_id}",
        )
    public = make_client(shared)
    with pytest.raises(ClientError) as exc:
        public.get_tokens(public.tokens()["RefreshToken"], secret="a" * 30)
    assert error_of(exc)[0] == "InvalidParameterException"


def test_get_tokens_refuses_unknown_foreign_and_revoked_tokens(client: Client) -> None:
    tokens = client.tokens()
    other = make_client((client.double, client.boto), secret=client.secret is not None)
    with pytest.raises(ClientError) as exc:
        other.get_tokens(tokens["RefreshToken"])
    assert error_of(exc) == ("NotAuthorizedException", "Invalid Refresh Token")
    with pytest.raises(ClientError) as exc:
        client.get_tokens("not-a-token")
    assert error_of(exc) == ("NotAuthorizedException", "Invalid Refresh Token")
    client.boto.global_sign_out(AccessToken=tokens["AccessToken"])
    with pytest.raises(ClientError) as exc:
        client.get_tokens(tokens["RefreshToken"])
    assert error_of(exc) == ("NotAuthorizedException", "Refresh Token has been revoked")


# ---- rotation on --------------------------------------------------------------------------------


def test_rotation_returns_a_new_refresh_token_each_time(rotating: Client) -> None:
    token = rotating.tokens()["RefreshToken"]
    seen = {token}
    for _ in range(3):
        result = rotating.get_tokens(token)
        token = result["RefreshToken"]
        assert token not in seen
        seen.add(token)
        assert rotating.boto.get_user(AccessToken=result["AccessToken"])["Username"] == USERNAME


@pytest.mark.parametrize("admin", [False, True], ids=["InitiateAuth", "AdminInitiateAuth"])
def test_rotation_refuses_refresh_token_auth(rotating: Client, admin: bool) -> None:
    token = rotating.tokens()["RefreshToken"]
    with pytest.raises(ClientError) as exc:
        rotating.refresh_token_auth(token, admin=admin)
    assert error_of(exc) == (
        "InvalidParameterException",
        "REFRESH_TOKEN_AUTH flow not enabled for this client",
    )
    # Turning rotation off gives REFRESH_TOKEN_AUTH back.
    rotating.double.set_refresh_token_rotation(rotating.client_id, False)
    assert "AuthenticationResult" in rotating.refresh_token_auth(token, admin=admin)


def test_describe_user_pool_client_shows_rotation_and_flows(rotating: Client) -> None:
    described = rotating.boto.describe_user_pool_client(
        UserPoolId=rotating.pool_id, ClientId=rotating.client_id
    )["UserPoolClient"]
    assert described["RefreshTokenRotation"] == {
        "Feature": "ENABLED",
        "RetryGracePeriodSeconds": 10,
    }
    assert "ALLOW_REFRESH_TOKEN_AUTH" not in described["ExplicitAuthFlows"]
    assert described.get("ClientSecret") == rotating.secret
    rotating.double.set_refresh_token_rotation(rotating.client_id, False)
    described = rotating.boto.describe_user_pool_client(
        UserPoolId=rotating.pool_id, ClientId=rotating.client_id
    )["UserPoolClient"]
    assert described["RefreshTokenRotation"]["Feature"] == "DISABLED"
    assert "ALLOW_REFRESH_TOKEN_AUTH" in described["ExplicitAuthFlows"]


def test_old_refresh_token_is_valid_only_within_the_grace_period(rotating: Client) -> None:
    double = rotating.double
    old = rotating.tokens()["RefreshToken"]
    new = rotating.get_tokens(old)["RefreshToken"]
    at(double, 9)  # inside the 10 s grace period: a retry with the old token still works
    retried = rotating.get_tokens(old)
    assert retried["RefreshToken"] not in (old, new)
    at(double, 11)
    with pytest.raises(ClientError) as exc:
        rotating.get_tokens(old)
    assert error_of(exc)[0] == "RefreshTokenReuseException"
    assert "RefreshToken" in rotating.get_tokens(new)  # the replacement is unaffected


def test_grace_period_zero_invalidates_at_once(shared: tuple[CognitoDouble, Any]) -> None:
    client = make_client(shared, refresh_token_rotation=True, retry_grace_period_seconds=0)
    old = client.tokens()["RefreshToken"]
    at(client.double, 0.001)
    new = client.get_tokens(old)["RefreshToken"]
    at(client.double, 0.5)
    with pytest.raises(ClientError) as exc:
        client.get_tokens(old)
    assert error_of(exc)[0] == "RefreshTokenReuseException"
    assert client.get_tokens(new)["RefreshToken"] != new


def test_grace_period_is_0_to_60_seconds(shared: tuple[CognitoDouble, Any]) -> None:
    client = make_client(shared)
    for bad in (-1, 61):
        with pytest.raises(ValueError, match="RetryGracePeriodSeconds"):
            client.double.set_refresh_token_rotation(client.client_id, True, bad)
    client.double.set_refresh_token_rotation(client.client_id, True, 60)


def test_revoking_the_rotated_token_revokes_the_whole_chain(rotating: Client) -> None:
    first = rotating.tokens()
    rotated = rotating.get_tokens(first["RefreshToken"])
    revoke: dict[str, Any] = {"Token": rotated["RefreshToken"], "ClientId": rotating.client_id}
    if rotating.secret is not None:
        revoke["ClientSecret"] = rotating.secret
    rotating.boto.revoke_token(**revoke)
    for token in (first["RefreshToken"], rotated["RefreshToken"]):
        with pytest.raises(ClientError) as exc:
            rotating.get_tokens(token)
        assert error_of(exc) == ("NotAuthorizedException", "Refresh Token has been revoked")
    with pytest.raises(ClientError) as exc:
        rotating.boto.get_user(AccessToken=rotated["AccessToken"])
    assert error_of(exc) == ("NotAuthorizedException", "Access Token has been revoked")


def test_rotated_tokens_end_when_the_first_one_would_have(rotating: Client) -> None:
    rotating.double.refresh_token_ttl = 100
    try:
        token = rotating.tokens()["RefreshToken"]
        at(rotating.double, 50)
        token = rotating.get_tokens(token)["RefreshToken"]
        at(rotating.double, 101)
        with pytest.raises(ClientError) as exc:
            rotating.get_tokens(token)
        assert error_of(exc) == ("NotAuthorizedException", "Refresh Token has expired")
    finally:
        rotating.double.refresh_token_ttl = 30 * 86400.0


# ---- two client secrets ----------------------------------------------------------------------


def test_two_secrets_are_both_valid_until_one_is_deleted(shared: tuple[CognitoDouble, Any]) -> None:
    client = make_client(shared, secret=True)
    double = client.double
    ((old_id, old),) = double.client_secrets(client.client_id)
    assert old_id.startswith(f"{client.client_id}--")
    new_id, new = double.add_client_secret(client.client_id)
    for secret in (old, new):
        tokens = client.login(secret=secret)["AuthenticationResult"]
        assert "RefreshToken" not in client.get_tokens(tokens["RefreshToken"], secret=secret)
    with pytest.raises(ValueError, match="already has 2 secrets"):
        double.add_client_secret(client.client_id)
    double.delete_client_secret(client.client_id, old_id)
    with pytest.raises(ClientError) as exc:
        client.login(secret=old)
    assert error_of(exc)[0] == "NotAuthorizedException"
    assert "secret hash" in error_of(exc)[1]
    tokens = client.login(secret=new)["AuthenticationResult"]
    with pytest.raises(ClientError):
        client.get_tokens(tokens["RefreshToken"], secret=old)
    with pytest.raises(ValueError, match="last client secret"):
        double.delete_client_secret(client.client_id, new_id)
    public = make_client(shared)
    with pytest.raises(ValueError, match="not a confidential client"):
        double.add_client_secret(public.client_id)


def test_client_secret_operations_on_the_wire(shared: tuple[CognitoDouble, Any]) -> None:
    """botocore in this venv predates AddUserPoolClientSecret: the request is built by hand,
    as the API reference gives it (IAM-signed, JSON 1.1)."""
    client = make_client(shared, secret=True)
    double = client.double

    def call(operation: str, body: dict[str, Any], *, signed: bool = True) -> tuple[int, Any]:
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"AWSCognitoIdentityProviderService.{operation}",
        }
        if signed:
            headers["Authorization"] = (
                f"AWS4-HMAC-SHA256 Credential=AKID/20260101/{double.region}/cognito-idp/"
                f"aws4_request, SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
            )
        request = urllib.request.Request(
            f"{double.url}/", data=json.dumps(body).encode(), method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)

    ids = {"UserPoolId": client.pool_id, "ClientId": client.client_id}
    assert call("AddUserPoolClientSecret", ids, signed=False)[1]["__type"] == (
        "MissingAuthenticationTokenException"
    )
    chosen = "MyOwnSecretValue1234567890"
    status, body = call("AddUserPoolClientSecret", {**ids, "ClientSecret": chosen})
    assert status == 200
    descriptor = body["ClientSecretDescriptor"]
    assert "ClientSecretValue" not in descriptor  # not sent back when we chose it
    assert descriptor["ClientSecretId"].startswith(f"{client.client_id}--")
    assert client.login(secret=chosen)["AuthenticationResult"]
    status, body = call("AddUserPoolClientSecret", ids)
    assert body["__type"] == "LimitExceededException"
    assert call("AddUserPoolClientSecret", {**ids, "ClientSecret": "short"})[1]["__type"] == (
        "InvalidParameterException"
    )
    old_id = double.client_secrets(client.client_id)[0][0]
    assert call("DeleteUserPoolClientSecret", {**ids, "ClientSecretId": old_id}) == (200, {})
    status, body = call("DeleteUserPoolClientSecret", {**ids, "ClientSecretId": old_id})
    assert body["__type"] == "ResourceNotFoundException"
    status, body = call("AddUserPoolClientSecret", ids)
    assert status == 200 and len(body["ClientSecretDescriptor"]["ClientSecretValue"]) >= 24
    assert client.login(secret=body["ClientSecretDescriptor"]["ClientSecretValue"])


# ---- Cognito's lockout -----------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_user_out(client: Client) -> None:
    for _ in range(5):
        with pytest.raises(ClientError) as exc:
            client.login("Wrong-Pass-1")
        assert error_of(exc) == BAD
    # Locked out for 2^(5-5) = 1 s: even the right password is refused, on every flow.
    with pytest.raises(ClientError) as exc:
        client.login()
    assert error_of(exc) == EXCEEDED
    with pytest.raises(ClientError) as exc:
        client.srp_login()
    assert error_of(exc) == EXCEEDED
    at(client.double, 1.1)
    with pytest.raises(ClientError) as exc:  # the sixth failure: 2 s now
        client.login("Wrong-Pass-1")
    assert error_of(exc) == BAD
    at(client.double, 2.0)
    with pytest.raises(ClientError) as exc:
        client.login()
    assert error_of(exc) == EXCEEDED
    at(client.double, 3.2)
    assert client.login()["AuthenticationResult"]  # a success after the lockout resets it
    for _ in range(4):
        with pytest.raises(ClientError) as exc:
            client.login("Wrong-Pass-1")
        assert error_of(exc) == BAD


def test_srp_failures_count_and_lockout_reaches_15_minutes(client: Client) -> None:
    for _ in range(5):
        with pytest.raises(ClientError) as exc:
            client.srp_login("Wrong-Pass-1")
        assert error_of(exc) == BAD
    with pytest.raises(ClientError) as exc:
        client.login()
    assert error_of(exc) == EXCEEDED
    offset = 0.0
    for failures in range(6, 16):
        offset += min(2.0 ** (failures - 6), 900.0) + 0.1
        at(client.double, offset)
        with pytest.raises(ClientError):
            client.login("Wrong-Pass-1")
    at(client.double, offset + 899)  # the 15th failure: 2^10 s would be longer, capped at 900
    with pytest.raises(ClientError) as exc:
        client.login()
    assert error_of(exc) == EXCEEDED
    at(client.double, offset + 899 + 901)  # 15 minutes without any attempt: reset
    assert client.login()["AuthenticationResult"]


# ---- threat protection -----------------------------------------------------------------------


def test_high_risk_sign_in_is_blocked(client: Client) -> None:
    double = client.double
    double.set_threat_protection(client.pool_id)
    double.set_risk(client.pool_id, "high", username=USERNAME)
    with pytest.raises(ClientError) as exc:
        client.login()
    assert error_of(exc) == BLOCKED
    with pytest.raises(ClientError) as exc:
        client.srp_login()
    assert error_of(exc) == BLOCKED
    assert double.risk_events(client.pool_id)[-1][:3] == (USERNAME, "high", "BLOCK")
    with pytest.raises(ClientError) as exc:  # a wrong password stays a wrong password
        client.login("Wrong-Pass-1")
    assert error_of(exc) == BAD
    double.set_threat_protection(client.pool_id, mode="AUDIT")
    assert client.login()["AuthenticationResult"]
    assert double.risk_events(client.pool_id)[-1][:3] == (USERNAME, "high", "NO_ACTION")


def test_medium_risk_asks_mfa_of_a_user_whose_mfa_is_optional_and_off(client: Client) -> None:
    double = client.double
    assert client.login()["AuthenticationResult"]  # MFA OPTIONAL, none enabled: no challenge
    double.set_threat_protection(client.pool_id)
    double.set_risk(client.pool_id, "medium", username=USERNAME)
    challenge = client.login()
    assert challenge["ChallengeName"] == "EMAIL_OTP"  # the verified email is the factor
    code = double.last_code(client.pool_id, USERNAME, "EMAIL")
    assert code is not None
    answer = client.boto.respond_to_auth_challenge(
        ClientId=client.client_id,
        ChallengeName="EMAIL_OTP",
        Session=challenge["Session"],
        ChallengeResponses=client.hashed({"USERNAME": USERNAME, "EMAIL_OTP_CODE": code}),
    )
    assert "AccessToken" in answer["AuthenticationResult"]


def test_mfa_required_without_a_factor_blocks(shared: tuple[CognitoDouble, Any]) -> None:
    double, boto = shared
    pool_id = double.create_pool()
    client_id, _ = double.create_client(pool_id)
    double.add_user(pool_id, USERNAME, PASSWORD)  # no email, no phone, no TOTP
    client = Client(double, pool_id, client_id, None, boto)
    double.set_threat_protection(pool_id, medium="MFA_REQUIRED")
    double.set_risk(pool_id, "medium", username=USERNAME)
    with pytest.raises(ClientError) as exc:
        client.login()
    assert error_of(exc) == BLOCKED
    double.set_threat_protection(pool_id, medium="MFA_IF_CONFIGURED")
    assert client.login()["AuthenticationResult"]


def test_compromised_password_requires_a_reset(client: Client) -> None:
    double = client.double
    double.set_threat_protection(client.pool_id)
    double.add_compromised_password(client.pool_id, PASSWORD)
    assert client.srp_login()["AuthenticationResult"]  # SRP never shows Cognito the password
    with pytest.raises(ClientError) as exc:
        client.login()
    assert error_of(exc)[0] == "PasswordResetRequiredException"
    assert double.user_info(client.pool_id, USERNAME)["status"] == "RESET_REQUIRED"
    with pytest.raises(ClientError) as exc:  # and from now on, whatever the flow
        client.srp_login()
    assert error_of(exc)[0] == "PasswordResetRequiredException"
    assert [e[1:3] for e in double.risk_events(client.pool_id)] == [
        ("low", "NO_ACTION"),  # the SRP sign-in
        ("compromised", "BLOCK"),
    ]


def test_compromised_password_on_the_admin_api(shared: tuple[CognitoDouble, Any]) -> None:
    client = make_client(shared)
    client.double.set_threat_protection(client.pool_id, block_compromised_credentials=False)
    client.double.add_compromised_password(client.pool_id, PASSWORD)
    assert client.admin_login()["AuthenticationResult"]  # allowed: only recorded
    client.double.set_threat_protection(client.pool_id)
    with pytest.raises(ClientError) as exc:
        client.admin_login()
    assert error_of(exc)[0] == "PasswordResetRequiredException"


RISKY_IP = "203.0.113.9"


def test_the_user_ip_counts_only_where_cognito_takes_it(shared: tuple[CognitoDouble, Any]) -> None:
    """UserContextData.IpAddress is honoured on the public API only for a client with a secret
    and EnablePropagateAdditionalUserContextData; the Admin API's ContextData always counts."""
    context = {"UserContextData": {"IpAddress": RISKY_IP}}
    admin_context = {
        "ContextData": {
            "IpAddress": RISKY_IP,
            "ServerName": "gate.example.com",
            "ServerPath": "/_auth/login",
            "HttpHeaders": [],
        }
    }
    cases = [
        ({}, False),
        ({"secret": True}, False),
        ({"propagate_user_context": True}, False),
        ({"secret": True, "propagate_user_context": True}, True),
    ]
    for options, honoured in cases:
        client = make_client(shared, **options)
        client.double.set_threat_protection(client.pool_id)
        client.double.set_risk(client.pool_id, "high", ip_address=RISKY_IP)
        if honoured:
            with pytest.raises(ClientError) as exc:
                client.login(**context)
            assert error_of(exc) == BLOCKED
        else:
            assert client.login(**context)["AuthenticationResult"], options
            assert client.double.risk_events(client.pool_id)[-1][3] == "127.0.0.1"
        with pytest.raises(ClientError) as exc:
            client.admin_login(**admin_context)
        assert error_of(exc) == BLOCKED


# ---- issuers -----------------------------------------------------------------------------------


def test_multi_region_issuer_and_a_pool_moving_to_it(client: Client) -> None:
    double = client.double
    before = client.tokens()
    double.issuer_style = "multi_region"
    after = client.tokens()
    claims = jwt.decode(after["IdToken"], options={"verify_signature": False})
    assert claims["iss"] == (
        f"https://issuer-cognito-idp.{double.region}.amazonaws.com/{client.pool_id}"
    )
    assert double.issuer(client.pool_id) == claims["iss"]
    key = jwt.PyJWKClient(double.jwks_url(client.pool_id)).get_signing_key_from_jwt(
        after["IdToken"]
    )
    jwt.decode(
        after["IdToken"],
        key.key,
        algorithms=["RS256"],
        issuer=claims["iss"],
        audience=client.client_id,
    )
    # Tokens minted before the move keep working at Cognito, and refreshes mint the new issuer.
    for tokens in (before, after):
        assert client.boto.get_user(AccessToken=tokens["AccessToken"])["Username"] == USERNAME
    refreshed = client.get_tokens(before["RefreshToken"])
    assert (
        jwt.decode(refreshed["AccessToken"], options={"verify_signature": False})["iss"]
        == (claims["iss"])
    )
