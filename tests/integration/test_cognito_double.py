"""Proves the strict Cognito double right, using clients that owe nothing to ``proxy/``.

pycognito (whose SRP is used against real Cognito by many projects) is the reference SRP client;
boto3 and aioboto3 exercise the wire protocol; PyJWT checks the tokens against the served JWKS.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aioboto3
import boto3
import jwt
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa
from pycognito import Cognito
from pycognito.aws_srp import AWSSRP

from tests.support.cognito_double import CognitoDouble, format_timestamp, running_double

USERNAME = "alice"
EMAIL = "alice@example.com"
PASSWORD = "Correct-Horse-9"
BAD_CREDENTIALS = ("NotAuthorizedException", "Incorrect username or password.")


@dataclass
class Setup:
    """One pool, one app client and one user, plus a boto3 client pointed at the double."""

    double: CognitoDouble
    pool_id: str
    client_id: str
    client_secret: str | None
    sub: str
    boto: Any

    def secret_hash(self, username: str) -> str:
        assert self.client_secret is not None
        message = (username + self.client_id).encode()
        digest = hmac.new(self.client_secret.encode(), message, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def with_hash(self, params: dict[str, str], username: str | None = None) -> dict[str, str]:
        """``params`` plus SECRET_HASH over ``username`` (default: params["USERNAME"])."""
        if self.client_secret is None:
            return params
        return {**params, "SECRET_HASH": self.secret_hash(username or params["USERNAME"])}

    def pycognito(self, username: str = USERNAME) -> Cognito:
        return Cognito(
            self.pool_id,
            self.client_id,
            client_secret=self.client_secret,
            username=username,
            boto3_client_kwargs=self.double.client_kwargs(),
        )

    def srp(self, username: str = USERNAME, password: str = PASSWORD) -> AWSSRP:
        return AWSSRP(
            username=username,
            password=password,
            pool_id=self.pool_id,
            client_id=self.client_id,
            client=self.boto,
            client_secret=self.client_secret,
        )

    def password_login(self, username: str = USERNAME, password: str = PASSWORD) -> dict[str, Any]:
        params = self.with_hash({"USERNAME": username, "PASSWORD": password})
        response: dict[str, Any] = self.boto.initiate_auth(
            ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=params
        )
        return response

    def verify(self, token: str, *, token_use: str) -> dict[str, Any]:
        """Verify a token the way a relying party would: JWKS signature, iss, aud, exp."""
        key = jwt.PyJWKClient(self.double.jwks_url(self.pool_id)).get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            issuer=self.double.issuer(self.pool_id),
            audience=self.client_id if token_use == "id" else None,
            options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": token_use == "id"},
        )
        assert claims["token_use"] == token_use
        return claims


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return error["Code"], error["Message"]


def claim_signature(
    aws: AWSSRP, challenge: dict[str, str], timestamp: str, *, user_id: str | None = None
) -> str:
    """The PASSWORD_CLAIM_SIGNATURE computed with pycognito's SRP maths for any TIMESTAMP."""
    user_id = user_id or challenge["USER_ID_FOR_SRP"]
    key = aws.get_password_authentication_key(
        user_id, aws.password, int(challenge["SRP_B"], 16), challenge["SALT"]
    )
    message = (
        aws.pool_id.split("_")[1].encode()
        + user_id.encode()
        + base64.b64decode(challenge["SECRET_BLOCK"])
        + timestamp.encode()
    )
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def start_srp(setup: Setup, username: str = USERNAME) -> tuple[AWSSRP, dict[str, Any]]:
    aws = setup.srp(username)
    response = setup.boto.initiate_auth(
        ClientId=setup.client_id, AuthFlow="USER_SRP_AUTH", AuthParameters=aws.get_auth_params()
    )
    assert response["ChallengeName"] == "PASSWORD_VERIFIER"
    return aws, response


def answer(
    setup: Setup, challenge: dict[str, Any], responses: dict[str, str], *, session: bool = True
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "ClientId": setup.client_id,
        "ChallengeName": "PASSWORD_VERIFIER",
        "ChallengeResponses": responses,
    }
    if session:
        kwargs["Session"] = challenge["Session"]
    result: dict[str, Any] = setup.boto.respond_to_auth_challenge(**kwargs)
    return result


def now_timestamp(offset: timedelta = timedelta()) -> str:
    return format_timestamp(datetime.now(UTC) + offset)


@pytest.fixture
def double() -> Iterator[CognitoDouble]:
    with running_double() as running:
        yield running


def make_setup(
    double: CognitoDouble,
    *,
    secret: bool = False,
    flows: set[str] | None = None,
    **user: Any,
) -> Setup:
    pool_id = double.create_pool()
    client_id, client_secret = double.create_client(pool_id, secret=secret, flows=flows)
    attributes = user.pop("attributes", {"email": EMAIL, "custom:tenant": "acme"})
    sub = double.add_user(
        pool_id, USERNAME, PASSWORD, attributes=attributes, groups=["admins"], **user
    )
    boto = boto3.client("cognito-idp", **double.client_kwargs())
    return Setup(double, pool_id, client_id, client_secret, sub, boto)


@pytest.fixture(params=[False, True], ids=["no-secret", "secret"])
def setup(request: pytest.FixtureRequest, double: CognitoDouble) -> Setup:
    return make_setup(double, secret=request.param)


@pytest.fixture
def secret_setup(double: CognitoDouble) -> Setup:
    return make_setup(double, secret=True)


# ---- SRP with an independent client ---------------------------------------------------------


def test_pycognito_srp_login_yields_verifiable_tokens(setup: Setup) -> None:
    user = setup.pycognito()
    user.authenticate(password=PASSWORD)

    id_claims = setup.verify(user.id_token, token_use="id")
    assert id_claims["sub"] == setup.sub
    assert id_claims["cognito:username"] == USERNAME
    assert id_claims["email"] == EMAIL
    assert id_claims["email_verified"] is True
    assert id_claims["custom:tenant"] == "acme"
    assert id_claims["cognito:groups"] == ["admins"]
    assert id_claims["exp"] - id_claims["iat"] == 3600
    access = setup.verify(user.access_token, token_use="access")
    assert access["client_id"] == setup.client_id
    assert access["username"] == USERNAME
    assert access["scope"] == "aws.cognito.signin.user.admin"
    assert access["origin_jti"] == id_claims["origin_jti"]
    assert jwt.get_unverified_header(user.id_token) == {
        "alg": "RS256",
        "kid": jwt.get_unverified_header(user.access_token)["kid"],
    }
    assert user.refresh_token
    user.verify_tokens()  # pycognito's own check: issuer = endpoint_url/pool, JWKS from there

    (initiate,) = setup.double.calls_to("InitiateAuth")
    assert initiate["AuthFlow"] == "USER_SRP_AUTH"
    assert ("SECRET_HASH" in initiate["AuthParameters"]) == (setup.client_secret is not None)
    (respond,) = setup.double.calls_to("RespondToAuthChallenge")
    assert respond["ChallengeName"] == "PASSWORD_VERIFIER"


def test_pycognito_wrong_password_is_rejected(setup: Setup) -> None:
    with pytest.raises(ClientError) as exc:
        setup.pycognito().authenticate(password=PASSWORD + "x")
    assert error_of(exc) == BAD_CREDENTIALS
    assert setup.double.failures[-1][2] == "bad SRP signature"


def test_alias_login_uses_the_real_username_for_srp(setup: Setup) -> None:
    aws, challenge = start_srp(setup, username=EMAIL)
    params = challenge["ChallengeParameters"]
    assert params["USER_ID_FOR_SRP"] == params["USERNAME"] == USERNAME

    # A client that keeps using the alias in the SRP maths cannot produce a valid claim.
    timestamp = now_timestamp()
    wrong = claim_signature(aws, params, timestamp, user_id=EMAIL)
    responses = setup.with_hash(
        {
            "USERNAME": USERNAME,
            "PASSWORD_CLAIM_SECRET_BLOCK": params["SECRET_BLOCK"],
            "PASSWORD_CLAIM_SIGNATURE": wrong,
            "TIMESTAMP": timestamp,
        }
    )
    with pytest.raises(ClientError) as exc:
        answer(setup, challenge, responses)
    assert error_of(exc) == BAD_CREDENTIALS

    # pycognito does it right: alias in InitiateAuth, username from then on.
    user = setup.pycognito(username=EMAIL)
    user.authenticate(password=PASSWORD)
    assert setup.verify(user.id_token, token_use="id")["cognito:username"] == USERNAME


def test_unverified_email_is_not_an_alias(double: CognitoDouble) -> None:
    setup = make_setup(double, attributes={"email": EMAIL, "email_verified": "false"})
    with pytest.raises(ClientError) as exc:
        setup.password_login(username=EMAIL)
    assert error_of(exc) == BAD_CREDENTIALS


def test_tampered_signature_is_rejected(setup: Setup) -> None:
    aws, challenge = start_srp(setup)
    responses = aws.process_challenge(challenge["ChallengeParameters"], aws.get_auth_params())
    raw = bytearray(base64.b64decode(responses["PASSWORD_CLAIM_SIGNATURE"]))
    raw[0] ^= 0x01
    responses["PASSWORD_CLAIM_SIGNATURE"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(ClientError) as exc:
        answer(setup, challenge, responses)
    assert error_of(exc) == BAD_CREDENTIALS
    assert setup.double.failures[-1][2] == "bad SRP signature"


def test_session_is_single_use(setup: Setup) -> None:
    aws, challenge = start_srp(setup)
    responses = aws.process_challenge(challenge["ChallengeParameters"], aws.get_auth_params())
    assert "AuthenticationResult" in answer(setup, challenge, responses)

    used_once = (
        "NotAuthorizedException",
        "Invalid session for the user, session can only be used once.",
    )
    with pytest.raises(ClientError) as exc:
        answer(setup, challenge, responses)
    assert error_of(exc) == used_once
    # Replaying through the SECRET_BLOCK alone (no Session) is refused the same way.
    with pytest.raises(ClientError) as exc:
        answer(setup, challenge, responses, session=False)
    assert error_of(exc) == used_once


def test_expired_session_is_rejected(setup: Setup) -> None:
    setup.double.session_ttl = 0.3
    aws, challenge = start_srp(setup)
    time.sleep(0.6)
    responses = aws.process_challenge(challenge["ChallengeParameters"], aws.get_auth_params())
    with pytest.raises(ClientError) as exc:
        answer(setup, challenge, responses)
    assert error_of(exc) == (
        "NotAuthorizedException",
        "Invalid session for the user, session is expired.",
    )


def test_session_expires_when_the_clock_moves(setup: Setup) -> None:
    aws, challenge = start_srp(setup)
    responses = aws.process_challenge(challenge["ChallengeParameters"], aws.get_auth_params())
    setup.double.clock = lambda: time.time() + 181  # past the default 180 s session life
    setup.double.timestamp_skew = 600  # keep the TIMESTAMP acceptable: only the session ages
    with pytest.raises(ClientError) as exc:
        answer(setup, challenge, responses)
    assert error_of(exc) == (
        "NotAuthorizedException",
        "Invalid session for the user, session is expired.",
    )


def test_username_must_be_user_id_for_srp(secret_setup: Setup) -> None:
    setup = secret_setup
    setup.double.add_user(setup.pool_id, "bob", PASSWORD)
    for claimed_name in (EMAIL, "bob"):
        aws, challenge = start_srp(setup, username=EMAIL)
        params = challenge["ChallengeParameters"]
        timestamp = now_timestamp()
        responses = setup.with_hash(
            {
                "USERNAME": claimed_name,  # docs: the username, never an alias or another user
                "PASSWORD_CLAIM_SECRET_BLOCK": params["SECRET_BLOCK"],
                "PASSWORD_CLAIM_SIGNATURE": claim_signature(aws, params, timestamp),
                "TIMESTAMP": timestamp,
            }
        )
        with pytest.raises(ClientError) as exc:
            answer(setup, challenge, responses)
        assert error_of(exc) == BAD_CREDENTIALS
        assert "USER_ID_FOR_SRP" in setup.double.failures[-1][2]


def test_session_is_bound_to_its_challenge_and_client(double: CognitoDouble) -> None:
    setup = make_setup(double)
    first_aws, first = start_srp(setup)
    _, second = start_srp(setup)
    responses = first_aws.process_challenge(
        first["ChallengeParameters"], first_aws.get_auth_params()
    )
    # First login's (valid) proof presented with the second login's Session.
    with pytest.raises(ClientError) as exc:
        setup.boto.respond_to_auth_challenge(
            ClientId=setup.client_id,
            ChallengeName="PASSWORD_VERIFIER",
            ChallengeResponses=responses,
            Session=second["Session"],
        )
    assert error_of(exc) == BAD_CREDENTIALS
    assert setup.double.failures[-1][2] == "SECRET_BLOCK is not this session's"

    other_client, _ = double.create_client(setup.pool_id)
    aws, challenge = start_srp(setup)
    responses = aws.process_challenge(challenge["ChallengeParameters"], aws.get_auth_params())
    with pytest.raises(ClientError) as exc:
        setup.boto.respond_to_auth_challenge(
            ClientId=other_client,
            ChallengeName="PASSWORD_VERIFIER",
            ChallengeResponses=responses,
            Session=challenge["Session"],
        )
    assert error_of(exc) == ("NotAuthorizedException", "Invalid session for the user.")


def test_pycognito_style_answer_without_session_still_works(setup: Setup) -> None:
    aws, challenge = start_srp(setup)
    responses = aws.process_challenge(challenge["ChallengeParameters"], aws.get_auth_params())
    result = answer(setup, challenge, responses, session=False)
    setup.verify(result["AuthenticationResult"]["IdToken"], token_use="id")


def test_secret_hash_is_enforced(secret_setup: Setup) -> None:
    setup = secret_setup
    aws = setup.srp()
    params = aws.get_auth_params()

    def initiate(auth_params: dict[str, str]) -> None:
        setup.boto.initiate_auth(
            ClientId=setup.client_id, AuthFlow="USER_SRP_AUTH", AuthParameters=auth_params
        )

    with pytest.raises(ClientError) as exc:
        initiate({k: v for k, v in params.items() if k != "SECRET_HASH"})
    assert error_of(exc) == (
        "NotAuthorizedException",
        f"Client {setup.client_id} is configured with secret but SECRET_HASH was not received",
    )
    wrong_hash = (
        "NotAuthorizedException",
        f"Unable to verify secret hash for client {setup.client_id}",
    )
    with pytest.raises(ClientError) as exc:
        initiate({**params, "SECRET_HASH": setup.secret_hash("mallory")})
    assert error_of(exc) == wrong_hash

    _, challenge = start_srp(setup)
    responses = aws.process_challenge(challenge["ChallengeParameters"], params)
    responses["SECRET_HASH"] = setup.secret_hash(EMAIL)  # over the wrong name
    with pytest.raises(ClientError) as exc:
        answer(setup, challenge, responses)
    assert error_of(exc) == wrong_hash


def test_secret_hash_for_a_client_without_secret_is_refused(double: CognitoDouble) -> None:
    setup = make_setup(double)
    with pytest.raises(ClientError) as exc:
        setup.boto.initiate_auth(
            ClientId=setup.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": USERNAME, "PASSWORD": PASSWORD, "SECRET_HASH": "x"},
        )
    assert error_of(exc)[0] == "InvalidParameterException"


def test_timestamp_window_and_format(setup: Setup) -> None:
    def attempt(timestamp: str) -> dict[str, Any]:
        aws, challenge = start_srp(setup)
        params = challenge["ChallengeParameters"]
        responses = setup.with_hash(
            {
                "USERNAME": params["USERNAME"],
                "PASSWORD_CLAIM_SECRET_BLOCK": params["SECRET_BLOCK"],
                "PASSWORD_CLAIM_SIGNATURE": claim_signature(aws, params, timestamp),
                "TIMESTAMP": timestamp,
            }
        )
        return answer(setup, challenge, responses)

    # Control: the same helper with a current (or slightly skewed) clock succeeds ...
    assert "AuthenticationResult" in attempt(now_timestamp())
    assert "AuthenticationResult" in attempt(now_timestamp(timedelta(seconds=-90)))
    # ... so a correctly signed but stale TIMESTAMP fails only for being stale.
    with pytest.raises(ClientError) as exc:
        attempt(now_timestamp(timedelta(minutes=-10)))
    assert error_of(exc) == BAD_CREDENTIALS
    assert setup.double.failures[-1][2].startswith("stale TIMESTAMP")
    with pytest.raises(ClientError) as exc:
        attempt(now_timestamp(timedelta(minutes=10)))
    assert error_of(exc) == BAD_CREDENTIALS

    with pytest.raises(ClientError) as exc:
        attempt(datetime.now(UTC).isoformat())
    assert error_of(exc) == (
        "InvalidParameterException",
        "TIMESTAMP format should be EEE MMM d HH:mm:ss z yyyy in english.",
    )


def test_zero_padded_day_fails_like_cognito() -> None:
    # Cognito verifies the claim over its canonical TIMESTAMP, so "Jul 05" cannot verify.
    pinned = datetime(2018, 7, 5, 11, 1, tzinfo=UTC).timestamp()
    started = time.time()
    with running_double(clock=lambda: pinned + (time.time() - started)) as double:
        setup = make_setup(double)

        def attempt(timestamp: str) -> dict[str, Any]:
            aws, challenge = start_srp(setup)
            params = challenge["ChallengeParameters"]
            responses = {
                "USERNAME": USERNAME,
                "PASSWORD_CLAIM_SECRET_BLOCK": params["SECRET_BLOCK"],
                "PASSWORD_CLAIM_SIGNATURE": claim_signature(aws, params, timestamp),
                "TIMESTAMP": timestamp,
            }
            return answer(setup, challenge, responses)

        with pytest.raises(ClientError) as exc:
            attempt("Thu Jul 05 11:01:00 UTC 2018")
        assert error_of(exc) == BAD_CREDENTIALS
        assert double.failures[-1][2] == "bad SRP signature"
        assert "AuthenticationResult" in attempt("Thu Jul 5 11:01:00 UTC 2018")


def test_timestamp_canonical_form() -> None:
    assert format_timestamp(datetime(2018, 7, 10, 11, 1, tzinfo=UTC)) == (
        "Tue Jul 10 11:01:00 UTC 2018"
    )
    assert format_timestamp(datetime(2018, 7, 5, 9, 2, 3, tzinfo=UTC)) == (
        "Thu Jul 5 09:02:03 UTC 2018"
    )
    # Same form pycognito sends, including the unpadded day.
    moment = datetime(2024, 2, 3, 4, 5, 6)
    assert AWSSRP.get_cognito_formatted_timestamp(moment) == format_timestamp(
        moment.replace(tzinfo=UTC)
    )


def test_unknown_user_srp_looks_like_a_wrong_password(setup: Setup) -> None:
    with pytest.raises(ClientError) as wrong_password:
        setup.pycognito().authenticate(password="not-it")
    with pytest.raises(ClientError) as unknown_user:
        setup.pycognito(username="nobody").authenticate(password=PASSWORD)
    assert error_of(wrong_password) == error_of(unknown_user) == BAD_CREDENTIALS
    # The fake challenge is stable per name, as a real salt would be.
    first = start_srp(setup, "nobody")[1]["ChallengeParameters"]
    second = start_srp(setup, "nobody")[1]["ChallengeParameters"]
    assert first["SALT"] == second["SALT"]
    assert first["SRP_B"] != second["SRP_B"]


def test_user_existence_errors_can_be_switched_on() -> None:
    with running_double(prevent_user_existence_errors=False) as double:
        setup = make_setup(double)
        with pytest.raises(ClientError) as exc:
            setup.password_login(username="nobody")
        assert error_of(exc) == ("UserNotFoundException", "User does not exist.")


# ---- password flows, flow gating, validation ---------------------------------------------


def test_password_flows_issue_tokens(setup: Setup) -> None:
    tokens = setup.password_login()["AuthenticationResult"]
    assert setup.verify(tokens["IdToken"], token_use="id")["sub"] == setup.sub
    for flow in ("ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"):
        result = setup.boto.admin_initiate_auth(
            UserPoolId=setup.pool_id,
            ClientId=setup.client_id,
            AuthFlow=flow,
            AuthParameters=setup.with_hash({"USERNAME": EMAIL, "PASSWORD": PASSWORD}),
        )
        claims = setup.verify(result["AuthenticationResult"]["AccessToken"], token_use="access")
        assert claims["username"] == USERNAME
        assert result["AuthenticationResult"]["TokenType"] == "Bearer"


@pytest.mark.parametrize("flow", ["USER_PASSWORD_AUTH", "ADMIN_USER_PASSWORD_AUTH"])
def test_unknown_user_and_wrong_password_are_indistinguishable(setup: Setup, flow: str) -> None:
    def login(username: str, password: str) -> tuple[str, str]:
        params = setup.with_hash({"USERNAME": username, "PASSWORD": password})
        with pytest.raises(ClientError) as exc:
            if flow == "USER_PASSWORD_AUTH":
                setup.boto.initiate_auth(
                    ClientId=setup.client_id, AuthFlow=flow, AuthParameters=params
                )
            else:
                setup.boto.admin_initiate_auth(
                    UserPoolId=setup.pool_id,
                    ClientId=setup.client_id,
                    AuthFlow=flow,
                    AuthParameters=params,
                )
        return error_of(exc)

    assert login(USERNAME, "wrong") == login("nobody", PASSWORD) == BAD_CREDENTIALS


def test_flows_must_be_enabled_on_the_client(double: CognitoDouble) -> None:
    srp_only = make_setup(double, flows={"USER_SRP_AUTH"})
    with pytest.raises(ClientError) as exc:
        srp_only.password_login()
    assert error_of(exc) == (
        "InvalidParameterException",
        "USER_PASSWORD_AUTH flow not enabled for this client",
    )
    srp_only.pycognito().authenticate(password=PASSWORD)

    password_only = make_setup(double, flows={"ALLOW_USER_PASSWORD_AUTH"})
    with pytest.raises(ClientError) as exc:
        password_only.pycognito().authenticate(password=PASSWORD)
    assert error_of(exc) == (
        "InvalidParameterException",
        "USER_SRP_AUTH flow not enabled for this client",
    )
    with pytest.raises(ClientError) as exc:
        password_only.boto.initiate_auth(
            ClientId=password_only.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": USERNAME, "PASSWORD": PASSWORD},
        )
    assert error_of(exc) == ("InvalidParameterException", "Initiate Auth method not supported.")


def test_requests_are_validated(double: CognitoDouble) -> None:
    setup = make_setup(double)
    with pytest.raises(ClientError) as exc:
        setup.boto.initiate_auth(
            ClientId="nosuchclient", AuthFlow="USER_SRP_AUTH", AuthParameters={}
        )
    assert error_of(exc) == (
        "ResourceNotFoundException",
        "User pool client nosuchclient does not exist.",
    )
    with pytest.raises(ClientError) as exc:
        setup.boto.initiate_auth(
            ClientId=setup.client_id, AuthFlow="USER_SRP_AUTH", AuthParameters={"USERNAME": "a"}
        )
    assert error_of(exc) == ("InvalidParameterException", "Missing required parameter SRP_A")
    with pytest.raises(ClientError) as exc:
        setup.boto.admin_initiate_auth(
            UserPoolId=f"{double.region}_Nope",
            ClientId=setup.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": USERNAME, "PASSWORD": PASSWORD},
        )
    assert error_of(exc)[0] == "ResourceNotFoundException"
    aws, challenge = start_srp(setup)
    with pytest.raises(ClientError) as exc:
        answer(setup, challenge, {"USERNAME": USERNAME, "TIMESTAMP": now_timestamp()})
    assert error_of(exc)[0] == "InvalidParameterException"
    # Validation failures leave the session usable.
    responses = aws.process_challenge(challenge["ChallengeParameters"], aws.get_auth_params())
    assert "AuthenticationResult" in answer(setup, challenge, responses)


def test_admin_srp_with_context_data(setup: Setup) -> None:
    aws = setup.srp()
    context = {
        "IpAddress": "203.0.113.7",
        "ServerName": "gate.example.com",
        "ServerPath": "/login",
        "HttpHeaders": [{"headerName": "User-Agent", "headerValue": "pytest"}],
    }
    challenge = setup.boto.admin_initiate_auth(
        UserPoolId=setup.pool_id,
        ClientId=setup.client_id,
        AuthFlow="USER_SRP_AUTH",
        AuthParameters=aws.get_auth_params(),
        ContextData=context,
    )
    responses = aws.process_challenge(challenge["ChallengeParameters"], aws.get_auth_params())
    result = setup.boto.admin_respond_to_auth_challenge(
        UserPoolId=setup.pool_id,
        ClientId=setup.client_id,
        ChallengeName="PASSWORD_VERIFIER",
        ChallengeResponses=responses,
        Session=challenge["Session"],
        ContextData=context,
    )
    setup.verify(result["AuthenticationResult"]["IdToken"], token_use="id")
    assert setup.double.calls_to("AdminInitiateAuth")[0]["ContextData"] == context


def test_admin_operations_require_sigv4(double: CognitoDouble) -> None:
    setup = make_setup(double)
    unsigned = boto3.client(
        "cognito-idp", **double.client_kwargs(), config=Config(signature_version=UNSIGNED)
    )
    with pytest.raises(ClientError) as exc:
        unsigned.admin_initiate_auth(
            UserPoolId=setup.pool_id,
            ClientId=setup.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": USERNAME, "PASSWORD": PASSWORD},
        )
    assert error_of(exc)[0] == "MissingAuthenticationTokenException"
    # The public user-pool API needs no IAM credentials, as in Cognito.
    assert "AuthenticationResult" in unsigned.initiate_auth(
        ClientId=setup.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": USERNAME, "PASSWORD": PASSWORD},
    )
    elsewhere = boto3.client(
        "cognito-idp", **{**double.client_kwargs(), "region_name": "eu-west-1"}
    )
    with pytest.raises(ClientError) as exc:
        elsewhere.admin_user_global_sign_out(UserPoolId=setup.pool_id, Username=USERNAME)
    assert error_of(exc)[0] == "InvalidSignatureException"


# ---- user states ---------------------------------------------------------------------------


def test_disabled_user_is_refused(setup: Setup) -> None:
    setup.double.set_user_enabled(setup.pool_id, USERNAME, False)
    disabled = ("NotAuthorizedException", "User is disabled.")
    with pytest.raises(ClientError) as exc:
        setup.password_login()
    assert error_of(exc) == disabled
    with pytest.raises(ClientError) as exc:
        setup.pycognito().authenticate(password=PASSWORD)
    assert error_of(exc) == disabled


def test_force_change_password(double: CognitoDouble) -> None:
    setup = make_setup(double, secret=True, status="FORCE_CHANGE_PASSWORD")
    challenge = setup.password_login()
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    assert "AuthenticationResult" not in challenge
    assert json.loads(challenge["ChallengeParameters"]["userAttributes"])["email"] == EMAIL

    def respond(new_password: str) -> dict[str, Any]:
        result: dict[str, Any] = setup.boto.respond_to_auth_challenge(
            ClientId=setup.client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=challenge["Session"],
            ChallengeResponses=setup.with_hash(
                {"USERNAME": USERNAME, "NEW_PASSWORD": new_password}
            ),
        )
        return result

    with pytest.raises(ClientError) as exc:
        respond("short")
    assert error_of(exc)[0] == "InvalidPasswordException"
    tokens = respond("Brand-New-Pass-1")["AuthenticationResult"]
    setup.verify(tokens["IdToken"], token_use="id")
    assert double.user_info(setup.pool_id, USERNAME)["status"] == "CONFIRMED"
    with pytest.raises(ClientError) as exc:
        setup.password_login()
    assert error_of(exc) == BAD_CREDENTIALS
    setup.pycognito().authenticate(password="Brand-New-Pass-1")


def test_force_change_password_through_srp(double: CognitoDouble) -> None:
    setup = make_setup(double, status="FORCE_CHANGE_PASSWORD")
    user = setup.pycognito()
    user.new_password_challenge(PASSWORD, "Another-Pass-2")
    setup.verify(user.id_token, token_use="id")
    setup.password_login(password="Another-Pass-2")


# ---- tokens: refresh, revocation, sign-out, GetUser ----------------------------------------


def test_refresh_then_revoke(setup: Setup) -> None:
    first = setup.password_login()["AuthenticationResult"]
    first_claims = setup.verify(first["AccessToken"], token_use="access")

    def refresh(secret_hash_user: str = USERNAME) -> dict[str, Any]:
        params = setup.with_hash({"REFRESH_TOKEN": first["RefreshToken"]}, secret_hash_user)
        result = setup.boto.initiate_auth(
            ClientId=setup.client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters=params
        )
        tokens: dict[str, Any] = result["AuthenticationResult"]
        return tokens

    refreshed = refresh()
    assert "RefreshToken" not in refreshed
    claims = setup.verify(refreshed["AccessToken"], token_use="access")
    assert claims["origin_jti"] == first_claims["origin_jti"]
    assert claims["auth_time"] == first_claims["auth_time"]
    assert claims["jti"] != first_claims["jti"]
    assert setup.verify(refreshed["IdToken"], token_use="id")["sub"] == setup.sub
    if setup.client_secret is not None:
        refresh(setup.sub)  # Cognito's documented choice for refresh: the sub
        with pytest.raises(ClientError) as exc:
            refresh(EMAIL)
        assert error_of(exc)[0] == "NotAuthorizedException"

    assert setup.boto.get_user(AccessToken=refreshed["AccessToken"])["Username"] == USERNAME
    revoke: dict[str, Any] = {"Token": first["RefreshToken"], "ClientId": setup.client_id}
    if setup.client_secret is not None:
        with pytest.raises(ClientError):
            setup.boto.revoke_token(**revoke)
        revoke["ClientSecret"] = setup.client_secret
    setup.boto.revoke_token(**revoke)
    setup.boto.revoke_token(**revoke)  # idempotent

    with pytest.raises(ClientError) as exc:
        refresh()
    assert error_of(exc) == ("NotAuthorizedException", "Refresh Token has been revoked")
    for token in (first["AccessToken"], refreshed["AccessToken"]):
        with pytest.raises(ClientError) as exc:
            setup.boto.get_user(AccessToken=token)
        assert error_of(exc) == ("NotAuthorizedException", "Access Token has been revoked")
    # Another login of the same user is unaffected.
    other = setup.password_login()["AuthenticationResult"]
    assert setup.boto.get_user(AccessToken=other["AccessToken"])["Username"] == USERNAME


def test_refresh_token_is_bound_to_its_client(double: CognitoDouble) -> None:
    setup = make_setup(double)
    other_client, _ = double.create_client(setup.pool_id)
    tokens = setup.password_login()["AuthenticationResult"]
    with pytest.raises(ClientError) as exc:
        setup.boto.initiate_auth(
            ClientId=other_client,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]},
        )
    assert error_of(exc) == ("NotAuthorizedException", "Invalid Refresh Token")


def test_global_sign_out_revokes_every_login(setup: Setup) -> None:
    logins = [setup.password_login()["AuthenticationResult"] for _ in range(2)]
    attributes = setup.boto.get_user(AccessToken=logins[0]["AccessToken"])["UserAttributes"]
    assert {"Name": "sub", "Value": setup.sub} in attributes
    assert {"Name": "email", "Value": EMAIL} in attributes

    setup.boto.global_sign_out(AccessToken=logins[0]["AccessToken"])
    for tokens in logins:
        with pytest.raises(ClientError) as exc:
            setup.boto.initiate_auth(
                ClientId=setup.client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters=setup.with_hash({"REFRESH_TOKEN": tokens["RefreshToken"]}, USERNAME),
            )
        assert error_of(exc) == ("NotAuthorizedException", "Refresh Token has been revoked")

    fresh = setup.password_login()["AuthenticationResult"]
    setup.boto.admin_user_global_sign_out(UserPoolId=setup.pool_id, Username=USERNAME)
    with pytest.raises(ClientError) as exc:
        setup.boto.get_user(AccessToken=fresh["AccessToken"])
    assert error_of(exc) == ("NotAuthorizedException", "Access Token has been revoked")


def test_get_user_checks_the_access_token(double: CognitoDouble) -> None:
    setup = make_setup(double)
    tokens = setup.password_login()["AuthenticationResult"]
    claims = jwt.decode(tokens["AccessToken"], options={"verify_signature": False})
    header = jwt.get_unverified_header(tokens["AccessToken"])
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, forger, algorithm="RS256", headers={"kid": header["kid"]})
    invalid = ("NotAuthorizedException", "Invalid Access Token")
    for token in (forged, tokens["IdToken"], "not-a-jwt"):
        with pytest.raises(ClientError) as exc:
            setup.boto.get_user(AccessToken=token)
        assert error_of(exc) == invalid

    expired = ("NotAuthorizedException", "Access Token has expired")
    double.clock = lambda: time.time() + 3600
    with pytest.raises(ClientError) as exc:
        setup.boto.get_user(AccessToken=tokens["AccessToken"])
    assert error_of(exc) == expired
    double.clock = time.time
    double.token_ttl = -10  # already expired when issued
    stillborn = setup.password_login()["AuthenticationResult"]["AccessToken"]
    with pytest.raises(ClientError) as exc:
        setup.boto.get_user(AccessToken=stillborn)
    assert error_of(exc) == expired


def test_aws_issuer_style() -> None:
    with running_double(issuer_style="aws", region="eu-west-1") as double:
        setup = make_setup(double)
        tokens = setup.password_login()["AuthenticationResult"]
        claims = setup.verify(tokens["IdToken"], token_use="id")
        assert claims["iss"] == f"https://cognito-idp.eu-west-1.amazonaws.com/{setup.pool_id}"
        assert setup.pool_id.startswith("eu-west-1_")
        assert setup.boto.get_user(AccessToken=tokens["AccessToken"])["Username"] == USERNAME


# ---- wire protocol and async clients -------------------------------------------------------


def test_wire_protocol(double: CognitoDouble) -> None:
    setup = make_setup(double)

    def post(target: str, body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
        request = urllib.request.Request(
            f"{double.url}/",
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
        )
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, dict(response.headers), json.load(response)
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), json.load(err)

    status, headers, body = post(
        "AWSCognitoIdentityProviderService.InitiateAuth",
        json.dumps({"ClientId": setup.client_id, "AuthFlow": "USER_PASSWORD_AUTH"}).encode(),
    )
    assert status == 400
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert body == {"__type": "InvalidParameterException", "message": body["message"]}
    assert post("AWSCognitoIdentityProviderService.Nope", b"{}")[2]["__type"] == (
        "UnknownOperationException"
    )
    assert post("AWSCognitoIdentityProviderService.InitiateAuth", b"{nope")[2]["__type"] == (
        "SerializationException"
    )

    with urllib.request.urlopen(double.jwks_url(setup.pool_id)) as response:
        (key,) = json.load(response)["keys"]
    tokens = setup.password_login()["AuthenticationResult"]
    assert key["kid"] == jwt.get_unverified_header(tokens["IdToken"])["kid"]
    assert {key["kty"], key["alg"], key["use"]} == {"RSA", "RS256", "sig"}
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(double.jwks_url(f"{double.region}_Unknown"))


async def test_aioboto3_client_in_another_loop(double: CognitoDouble) -> None:
    setup = make_setup(double, secret=True)
    session = aioboto3.Session()
    async with session.client("cognito-idp", **double.client_kwargs()) as client:

        async def login(password: str) -> dict[str, Any]:
            result: dict[str, Any] = await client.admin_initiate_auth(
                UserPoolId=setup.pool_id,
                ClientId=setup.client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters=setup.with_hash({"USERNAME": USERNAME, "PASSWORD": password}),
            )
            return result

        results = await asyncio.gather(*(login(PASSWORD) for _ in range(8)))
        origin_jtis = {
            setup.verify(r["AuthenticationResult"]["IdToken"], token_use="id")["origin_jti"]
            for r in results
        }
        assert len(origin_jtis) == 8
        user = await client.get_user(AccessToken=results[0]["AuthenticationResult"]["AccessToken"])
        assert user["Username"] == USERNAME

        with pytest.raises(ClientError) as exc:
            await login("wrong")
        assert error_of(exc) == BAD_CREDENTIALS
        with pytest.raises(client.exceptions.NotAuthorizedException):
            await login("wrong")
