"""The double's threat-protection event history (AdminListUserAuthEvents, the two feedback
calls) through a real boto3 client: every sign-in attempt logged, success and failure, with
the risk its model assessed; raw answers checked member by member against botocore's model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.model import Shape

from tests.support.cognito_double import CognitoDouble, running_double

PASSWORD = "Correct-Horse-9"


@pytest.fixture(scope="module")
def running() -> Iterator[CognitoDouble]:
    with running_double() as double:
        yield double


@pytest.fixture
def setup(running: CognitoDouble) -> tuple[CognitoDouble, str, str, Any]:
    pool_id = running.create_pool()
    client_id, _ = running.create_client(pool_id)
    running.add_user(pool_id, "alice", PASSWORD, attributes={"email": "alice@example.com"})
    running.add_user(pool_id, "bob", PASSWORD, attributes={"email": "bob@example.com"})
    running.set_threat_protection(pool_id, mode="AUDIT")
    return running, pool_id, client_id, boto3.client("cognito-idp", **running.client_kwargs())


def conforms(value: Any, shape: Shape, where: str = "") -> None:
    """Every member the answer has is one the model has, of the model's type and enum."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), where
        members = shape.members  # type: ignore[attr-defined]
        for name, item in value.items():
            assert name in members, f"{where}.{name} is not in {shape.name}"
            conforms(item, members[name], f"{where}.{name}")
    elif kind == "list":
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            conforms(item, shape.member, f"{where}[{i}]")  # type: ignore[attr-defined]
    elif kind == "string":
        assert isinstance(value, str), where
        if shape.enum:  # type: ignore[attr-defined]
            assert value in shape.enum, f"{where}={value!r}"  # type: ignore[attr-defined]
    elif kind == "timestamp":
        assert isinstance(value, int | float) and not isinstance(value, bool), where
    elif kind == "boolean":
        assert isinstance(value, bool), where
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), where


def raw_answers(boto: Any, operation: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def keep(http_response: Any, **_: Any) -> None:
        seen.append(json.loads(http_response.content or b"{}"))

    boto.meta.events.register(f"after-call.cognito-idp.{operation}", keep)
    return seen


def sign_in(boto: Any, client_id: str, username: str, password: str = PASSWORD) -> bool:
    try:
        boto.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    except ClientError:
        return False
    return True


def test_every_sign_in_attempt_is_logged_with_its_risk(
    setup: tuple[CognitoDouble, str, str, Any],
) -> None:
    double, pool_id, client_id, boto = setup
    raw = raw_answers(boto, "AdminListUserAuthEvents")
    double.ip_locations["127.0.0.1"] = ("Osaka", "Japan")
    assert not sign_in(boto, client_id, "alice", "Wrong-Horse-1")
    double.set_risk(pool_id, "medium", username="alice")
    assert sign_in(boto, client_id, "alice")
    assert sign_in(boto, client_id, "bob")
    events = boto.admin_list_user_auth_events(UserPoolId=pool_id, Username="alice")["AuthEvents"]
    assert [(e["EventResponse"], e["EventRisk"]["RiskLevel"]) for e in events] == [
        ("Pass", "Medium"),  # newest first
        ("Fail", "Low"),
    ]
    assert events[0]["ChallengeResponses"] == [
        {"ChallengeName": "Password", "ChallengeResponse": "Success"}
    ]
    assert events[1]["ChallengeResponses"] == [
        {"ChallengeName": "Password", "ChallengeResponse": "Failure"}
    ]
    assert events[0]["EventType"] == "SignIn"
    assert events[0]["EventRisk"]["RiskDecision"] == "NoRisk"  # AUDIT: no action taken
    assert events[0]["EventContextData"] == {
        "IpAddress": "127.0.0.1",
        "City": "Osaka",
        "Country": "Japan",
    }
    assert "FeedbackToken" not in raw[-1]["AuthEvents"][0]  # only ever in Cognito's email
    model = boto.meta.service_model.operation_model("AdminListUserAuthEvents").output_shape
    conforms(raw[-1], model)
    page = boto.admin_list_user_auth_events(UserPoolId=pool_id, Username="alice", MaxResults=1)
    assert len(page["AuthEvents"]) == 1 and page["NextToken"]
    rest = boto.admin_list_user_auth_events(
        UserPoolId=pool_id, Username="alice", MaxResults=1, NextToken=page["NextToken"]
    )
    assert rest["AuthEvents"][0]["EventId"] == events[1]["EventId"]
    assert "NextToken" not in rest


def test_an_mfa_sign_in_is_in_progress_until_its_code_and_a_block_fails(
    setup: tuple[CognitoDouble, str, str, Any],
) -> None:
    double, pool_id, client_id, boto = setup
    double.add_user(
        pool_id,
        "carol",
        PASSWORD,
        attributes={"email": "carol@example.com", "phone_number": "+15555550100"},
        mfa=["SMS_MFA"],
    )
    first = boto.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "carol", "PASSWORD": PASSWORD},
    )
    (event,) = boto.admin_list_user_auth_events(UserPoolId=pool_id, Username="carol")["AuthEvents"]
    assert event["EventResponse"] == "InProgress"
    with pytest.raises(ClientError):
        boto.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="SMS_MFA",
            Session=first["Session"],
            ChallengeResponses={"USERNAME": "carol", "SMS_MFA_CODE": "000000"},
        )
    code = double.last_code(pool_id, "carol", "SMS")
    answer = boto.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="SMS_MFA",
        Session=first["Session"],
        ChallengeResponses={"USERNAME": "carol", "SMS_MFA_CODE": code},
    )
    assert "AuthenticationResult" in answer
    (event,) = boto.admin_list_user_auth_events(UserPoolId=pool_id, Username="carol")["AuthEvents"]
    assert event["EventResponse"] == "Pass"
    assert [c["ChallengeResponse"] for c in event["ChallengeResponses"]] == [
        "Success",
        "Failure",
        "Success",
    ]
    double.set_threat_protection(pool_id, mode="ENFORCED")
    double.set_risk(pool_id, "high", username="carol")
    assert not sign_in(boto, client_id, "carol")
    newest = boto.admin_list_user_auth_events(UserPoolId=pool_id, Username="carol")["AuthEvents"][0]
    assert (newest["EventResponse"], newest["EventRisk"]) == (
        "Fail",
        {"RiskDecision": "Block", "RiskLevel": "High", "CompromisedCredentialsDetected": False},
    )


def test_feedback_only_on_the_users_own_event_and_with_the_emails_token(
    setup: tuple[CognitoDouble, str, str, Any],
) -> None:
    double, pool_id, client_id, boto = setup
    assert sign_in(boto, client_id, "alice")
    assert sign_in(boto, client_id, "bob")
    (alice_event,) = double.auth_events(pool_id, "alice")
    (bob_event,) = double.auth_events(pool_id, "bob")
    with pytest.raises(ClientError) as refused:
        boto.admin_update_auth_event_feedback(
            UserPoolId=pool_id,
            Username="alice",
            EventId=bob_event["EventId"],
            FeedbackValue="Invalid",
        )
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"
    boto.admin_update_auth_event_feedback(
        UserPoolId=pool_id,
        Username="alice",
        EventId=alice_event["EventId"],
        FeedbackValue="Invalid",
    )
    (listed,) = boto.admin_list_user_auth_events(UserPoolId=pool_id, Username="alice")["AuthEvents"]
    assert listed["EventFeedback"]["FeedbackValue"] == "Invalid"
    assert listed["EventFeedback"]["Provider"] == "Admin"
    with pytest.raises(ClientError) as refused:
        boto.update_auth_event_feedback(
            UserPoolId=pool_id,
            Username="bob",
            EventId=bob_event["EventId"],
            FeedbackToken=alice_event["FeedbackToken"],
            FeedbackValue="Valid",
        )
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
    boto.update_auth_event_feedback(
        UserPoolId=pool_id,
        Username="bob",
        EventId=bob_event["EventId"],
        FeedbackToken=bob_event["FeedbackToken"],
        FeedbackValue="Valid",
    )
    (listed,) = boto.admin_list_user_auth_events(UserPoolId=pool_id, Username="bob")["AuthEvents"]
    assert listed["EventFeedback"]["FeedbackValue"] == "Valid"


def test_no_history_without_threat_protection_or_user(running: CognitoDouble) -> None:
    pool_id = running.create_pool()
    client_id, _ = running.create_client(pool_id)
    running.add_user(pool_id, "dora", PASSWORD)
    boto = boto3.client("cognito-idp", **running.client_kwargs())
    assert sign_in(boto, client_id, "dora")
    with pytest.raises(ClientError) as refused:
        boto.admin_list_user_auth_events(UserPoolId=pool_id, Username="dora")
    assert refused.value.response["Error"]["Code"] == "UserPoolAddOnNotEnabledException"
    running.set_threat_protection(pool_id, mode="AUDIT")
    assert boto.admin_list_user_auth_events(UserPoolId=pool_id, Username="dora")["AuthEvents"] == []
    with pytest.raises(ClientError) as refused:
        boto.admin_list_user_auth_events(UserPoolId=pool_id, Username="nobody")
    assert refused.value.response["Error"]["Code"] == "UserNotFoundException"
