"""The double's attribute APIs as Cognito checks values and app-client permissions (through a
real boto3 client): what the account page's profile relies on."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.test_cognito_double_account import PASSWORD, Account, attributes, code_of
from tests.support.cognito_double import CognitoDouble, running_double


@pytest.fixture(scope="module")
def running() -> Iterator[CognitoDouble]:
    with running_double() as double:
        yield double


@pytest.fixture
def account(running: CognitoDouble) -> Account:
    pool_id = running.create_pool()
    client_id, _ = running.create_client(pool_id)
    running.add_user(
        pool_id, "alice", PASSWORD, attributes={"email": "alice@example.com", "name": "Alice"}
    )
    return Account(
        running, pool_id, client_id, boto3.client("cognito-idp", **running.client_kwargs())
    )


def update(account: Account, token: str, name: str, value: str) -> None:
    account.boto.update_user_attributes(
        AccessToken=token, UserAttributes=[{"Name": name, "Value": value}]
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("phone_number", "090-1234-5678", "Invalid phone number format."),
        ("phone_number", "+81 90 1234 5678", "Invalid phone number format."),
        ("email", "not-an-address", "Invalid email address format."),
        ("birthdate", "28/02/1990", "user.birthdate: Birthdate must be 10 characters YYYY-MM-DD"),
        ("name", "x" * 2049, "user.name: String must be no longer than 2048 characters"),
    ],
)
def test_values_cognito_refuses(account: Account, name: str, value: str, message: str) -> None:
    token = account.sign_in()
    with pytest.raises(ClientError) as exc:
        update(account, token, name, value)
    assert code_of(exc) == ("InvalidParameterException", message)


def test_a_required_attribute_cannot_be_blanked(account: Account) -> None:
    account.double.set_required_attributes(account.pool_id, ["name"])
    token = account.sign_in()
    with pytest.raises(ClientError) as exc:
        update(account, token, "name", "")
    assert code_of(exc)[0] == "InvalidParameterException"
    update(account, token, "nickname", "")  # not required: a blank value deletes it
    assert attributes(account, token)["name"] == "Alice"


def test_the_clients_write_attributes_are_enforced(account: Account) -> None:
    account.double.set_client_attributes(account.client_id, write=["email"])
    token = account.sign_in()
    with pytest.raises(ClientError) as exc:
        update(account, token, "name", "Alicia")
    assert code_of(exc) == (
        "NotAuthorizedException",
        "A client attempted to write unauthorized attribute",
    )
    update(account, token, "email", "alice@new.example")
    assert attributes(account, token)["name"] == "Alice"


def test_the_clients_read_attributes_limit_get_user(account: Account) -> None:
    account.double.set_client_attributes(account.client_id, read=["email", "email_verified"])
    token = account.sign_in()
    assert set(attributes(account, token)) == {"sub", "email", "email_verified"}
