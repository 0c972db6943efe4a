"""The double's access-token APIs behind the account page, through a real boto3 client.

Each is checked as Cognito checks it: a valid, unrevoked access token carrying the
aws.cognito.signin.user.admin scope; the password policy; codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from proxy.devtools.webauthn import SoftwareAuthenticator
from tests.support.cognito_double import CognitoDouble, running_double

PASSWORD = "Correct-Horse-9"
NEW_PASSWORD = "Battery-Staple-7"
RP_ID = "app.example.com"


@dataclass
class Account:
    double: CognitoDouble
    pool_id: str
    client_id: str
    boto: Any

    def sign_in(self, username: str = "alice", password: str = PASSWORD) -> str:
        response = self.boto.initiate_auth(
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        token: str = response["AuthenticationResult"]["AccessToken"]
        return token


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
    running.add_user(pool_id, "bob", PASSWORD, attributes={"email": "bob@example.com"})
    boto = boto3.client("cognito-idp", **running.client_kwargs())
    return Account(running, pool_id, client_id, boto)


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return error["Code"], error["Message"]


def attributes(account: Account, token: str) -> dict[str, str]:
    user = account.boto.get_user(AccessToken=token)
    return {a["Name"]: a["Value"] for a in user["UserAttributes"]}


# ---- the access token -------------------------------------------------------------------------

ACCESS_TOKEN_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_user", {}),
    ("change_password", {"PreviousPassword": PASSWORD, "ProposedPassword": NEW_PASSWORD}),
    ("list_devices", {}),
    ("list_web_authn_credentials", {}),
    ("get_user_auth_factors", {}),
    ("update_user_attributes", {"UserAttributes": [{"Name": "name", "Value": "A"}]}),
    ("verify_user_attribute", {"AttributeName": "email", "Code": "123456"}),
    ("set_user_mfa_preference", {}),
    ("delete_web_authn_credential", {"CredentialId": "AAAA"}),
    ("start_web_authn_registration", {}),
    ("complete_web_authn_registration", {"Credential": {}}),
]


@pytest.mark.parametrize(("method", "kwargs"), ACCESS_TOKEN_CALLS)
def test_a_token_without_the_user_admin_scope_is_refused(
    account: Account, method: str, kwargs: dict[str, Any]
) -> None:
    token = account.double.mint_access_token(
        account.pool_id, account.client_id, "alice", "openid email"
    )
    with pytest.raises(ClientError) as exc:
        getattr(account.boto, method)(AccessToken=token, **kwargs)
    assert code_of(exc) == ("NotAuthorizedException", "Access Token does not have required scopes")


@pytest.mark.parametrize(("method", "kwargs"), ACCESS_TOKEN_CALLS)
def test_a_globally_signed_out_token_is_refused(
    account: Account, method: str, kwargs: dict[str, Any]
) -> None:
    token = account.sign_in()
    account.boto.global_sign_out(AccessToken=token)
    with pytest.raises(ClientError) as exc:
        getattr(account.boto, method)(AccessToken=token, **kwargs)
    assert code_of(exc) == ("NotAuthorizedException", "Access Token has been revoked")


def test_a_scoped_token_with_the_user_admin_scope_works(account: Account) -> None:
    token = account.double.mint_access_token(
        account.pool_id, account.client_id, "alice", "openid aws.cognito.signin.user.admin"
    )
    assert account.boto.get_user(AccessToken=token)["Username"] == "alice"


# ---- ChangePassword ---------------------------------------------------------------------------


def test_change_password_then_only_the_new_one_signs_in(account: Account) -> None:
    token = account.sign_in()
    account.boto.change_password(
        AccessToken=token, PreviousPassword=PASSWORD, ProposedPassword=NEW_PASSWORD
    )
    assert account.sign_in(password=NEW_PASSWORD)
    with pytest.raises(ClientError) as exc:
        account.sign_in(password=PASSWORD)
    assert code_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")
    # Cognito does not end the other sessions on ChangePassword.
    assert account.boto.get_user(AccessToken=token)["Username"] == "alice"


def test_change_password_checks_the_previous_password_and_locks_out(account: Account) -> None:
    token = account.sign_in()
    for _ in range(5):
        with pytest.raises(ClientError) as exc:
            account.boto.change_password(
                AccessToken=token, PreviousPassword="Wrong-Pass-1", ProposedPassword=NEW_PASSWORD
            )
        assert code_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")
    with pytest.raises(ClientError) as exc:
        account.boto.change_password(
            AccessToken=token, PreviousPassword=PASSWORD, ProposedPassword=NEW_PASSWORD
        )
    assert code_of(exc) == ("NotAuthorizedException", "Password attempts exceeded")


def test_change_password_needs_the_previous_password(account: Account) -> None:
    token = account.sign_in()
    with pytest.raises(ClientError) as exc:
        account.boto.change_password(AccessToken=token, ProposedPassword=NEW_PASSWORD)
    assert code_of(exc)[0] == "InvalidParameterException"


@pytest.mark.parametrize(
    ("proposed", "needle"),
    [("Sh0rt!", "long enough"), ("no-upper-9", "uppercase"), ("No-Digits-x", "numeric")],
)
def test_change_password_enforces_the_policy(account: Account, proposed: str, needle: str) -> None:
    token = account.sign_in()
    with pytest.raises(ClientError) as exc:
        account.boto.change_password(
            AccessToken=token, PreviousPassword=PASSWORD, ProposedPassword=proposed
        )
    code, message = code_of(exc)
    assert code == "InvalidPasswordException"
    assert needle in message
    assert account.sign_in(password=PASSWORD)  # unchanged


# ---- UpdateUserAttributes / VerifyUserAttribute ------------------------------------------------


def test_a_new_email_is_unverified_until_its_code(account: Account) -> None:
    token = account.sign_in()
    answer = account.boto.update_user_attributes(
        AccessToken=token, UserAttributes=[{"Name": "email", "Value": "alice@new.example"}]
    )
    (delivery,) = answer["CodeDeliveryDetailsList"]
    assert delivery["AttributeName"] == "email"
    assert delivery["DeliveryMedium"] == "EMAIL"
    assert delivery["Destination"] == "a***@n***"  # masked, of the NEW address
    assert attributes(account, token)["email"] == "alice@new.example"
    assert attributes(account, token)["email_verified"] == "false"
    code = account.double.last_code(account.pool_id, "alice", "EMAIL")
    assert code is not None
    with pytest.raises(ClientError) as exc:
        account.boto.verify_user_attribute(AccessToken=token, AttributeName="email", Code="000000")
    assert code_of(exc)[0] == "CodeMismatchException"
    account.boto.verify_user_attribute(AccessToken=token, AttributeName="email", Code=code)
    assert attributes(account, token)["email_verified"] == "true"
    with pytest.raises(ClientError) as exc:  # a code is used once
        account.boto.verify_user_attribute(AccessToken=token, AttributeName="email", Code=code)
    assert code_of(exc)[0] == "CodeMismatchException"


def test_keep_original_attribute_value_while_the_update_is_pending(account: Account) -> None:
    account.double.set_keep_original_attributes(account.pool_id, ["email"])
    token = account.sign_in()
    account.boto.update_user_attributes(
        AccessToken=token, UserAttributes=[{"Name": "email", "Value": "alice@new.example"}]
    )
    before = attributes(account, token)
    assert before["email"] == "alice@example.com"
    assert before["email_verified"] == "true"
    assert account.double.pending_attributes(account.pool_id, "alice") == {
        "email": "alice@new.example"
    }
    assert account.sign_in("alice@example.com")  # the old alias still signs in
    code = account.double.last_code(account.pool_id, "alice", "EMAIL")
    assert code is not None
    account.boto.verify_user_attribute(AccessToken=token, AttributeName="email", Code=code)
    after = attributes(account, token)
    assert after["email"] == "alice@new.example"
    assert after["email_verified"] == "true"
    assert account.double.pending_attributes(account.pool_id, "alice") == {}
    assert account.sign_in("alice@new.example")


def test_verifying_an_email_another_user_has_is_alias_exists(account: Account) -> None:
    account.double.set_keep_original_attributes(account.pool_id, ["email"])
    token = account.sign_in()
    account.boto.update_user_attributes(
        AccessToken=token, UserAttributes=[{"Name": "email", "Value": "bob@example.com"}]
    )
    code = account.double.last_code(account.pool_id, "alice", "EMAIL")
    assert code is not None
    with pytest.raises(ClientError) as exc:
        account.boto.verify_user_attribute(AccessToken=token, AttributeName="email", Code=code)
    assert code_of(exc)[0] == "AliasExistsException"
    assert attributes(account, token)["email"] == "alice@example.com"


def test_resend_an_attribute_code(account: Account) -> None:
    token = account.sign_in()
    answer = account.boto.get_user_attribute_verification_code(
        AccessToken=token, AttributeName="email"
    )
    assert answer["CodeDeliveryDetails"]["AttributeName"] == "email"
    code = account.double.last_code(account.pool_id, "alice", "EMAIL")
    assert code is not None
    account.boto.verify_user_attribute(AccessToken=token, AttributeName="email", Code=code)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("email_verified", "NotAuthorizedException"),
        ("sub", "NotAuthorizedException"),
        ("favourite_colour", "InvalidParameterException"),
    ],
)
def test_attributes_the_user_may_not_write(account: Account, name: str, code: str) -> None:
    token = account.sign_in()
    with pytest.raises(ClientError) as exc:
        account.boto.update_user_attributes(
            AccessToken=token, UserAttributes=[{"Name": name, "Value": "true"}]
        )
    assert code_of(exc)[0] == code


def test_plain_and_custom_attributes_change_at_once(account: Account) -> None:
    token = account.sign_in()
    answer = account.boto.update_user_attributes(
        AccessToken=token,
        UserAttributes=[
            {"Name": "name", "Value": "Alice B"},
            {"Name": "custom:team", "Value": "x"},
        ],
    )
    assert "CodeDeliveryDetailsList" not in answer
    assert attributes(account, token)["name"] == "Alice B"
    assert attributes(account, token)["custom:team"] == "x"


# ---- passkeys and auth factors ----------------------------------------------------------------


def test_passkeys_list_page_and_delete(account: Account) -> None:
    account.double.set_user_auth(account.pool_id, relying_party_id=RP_ID)
    token = account.sign_in()
    keys = []
    for _ in range(3):
        key = SoftwareAuthenticator(RP_ID)
        options = account.boto.start_web_authn_registration(AccessToken=token)
        account.boto.complete_web_authn_registration(
            AccessToken=token,
            Credential=key.register_response(options["CredentialCreationOptions"]),
        )
        keys.append(key)
    first = account.boto.list_web_authn_credentials(AccessToken=token, MaxResults=2)
    assert len(first["Credentials"]) == 2
    rest = account.boto.list_web_authn_credentials(AccessToken=token, NextToken=first["NextToken"])
    assert "NextToken" not in rest
    listed = first["Credentials"] + rest["Credentials"]
    assert {c["RelyingPartyId"] for c in listed} == {RP_ID}
    assert all(c["FriendlyCredentialName"] and c["CreatedAt"] for c in listed)
    factors = account.boto.get_user_auth_factors(AccessToken=token)
    assert "WEB_AUTHN" in factors["ConfiguredUserAuthFactors"]
    for credential in listed:
        account.boto.delete_web_authn_credential(
            AccessToken=token, CredentialId=credential["CredentialId"]
        )
    assert account.boto.list_web_authn_credentials(AccessToken=token)["Credentials"] == []
    with pytest.raises(ClientError) as exc:
        account.boto.delete_web_authn_credential(
            AccessToken=token, CredentialId=listed[0]["CredentialId"]
        )
    assert code_of(exc)[0] == "ResourceNotFoundException"
    factors = account.boto.get_user_auth_factors(AccessToken=token)
    assert "WEB_AUTHN" not in factors["ConfiguredUserAuthFactors"]


def _register(account: Account, token: str, key: SoftwareAuthenticator, **kw: Any) -> None:
    options = account.boto.start_web_authn_registration(AccessToken=token)
    account.boto.complete_web_authn_registration(
        AccessToken=token,
        Credential=key.register_response(options["CredentialCreationOptions"], **kw),
    )


def test_registration_options_are_cognitos_shape(account: Account) -> None:
    account.double.set_user_auth(account.pool_id, relying_party_id=RP_ID)
    token = account.sign_in()
    _register(account, token, SoftwareAuthenticator(RP_ID))
    options = account.boto.start_web_authn_registration(AccessToken=token)[
        "CredentialCreationOptions"
    ]
    assert options["rp"]["id"] == RP_ID
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["requireResidentKey"] is True
    assert len(options["excludeCredentials"]) == 1  # the passkey already registered
    assert options["user"]["name"] == "alice"


@pytest.mark.parametrize(
    ("origin", "rp_id", "code"),
    [
        ("https://evil.example", RP_ID, "WebAuthnOriginNotAllowedException"),
        ("https://app.example.com.evil.example", RP_ID, "WebAuthnOriginNotAllowedException"),
        (f"https://{RP_ID}", "other.example.com", "WebAuthnRelyingPartyMismatchException"),
    ],
)
def test_registration_from_another_origin_or_relying_party_is_refused(
    account: Account, origin: str, rp_id: str, code: str
) -> None:
    account.double.set_user_auth(account.pool_id, relying_party_id=RP_ID)
    token = account.sign_in()
    options = account.boto.start_web_authn_registration(AccessToken=token)
    options = options["CredentialCreationOptions"]
    key = SoftwareAuthenticator(rp_id, origin=origin)
    with pytest.raises(ClientError) as exc:
        account.boto.complete_web_authn_registration(
            AccessToken=token,
            Credential=key.register_response({**options, "rp": {"id": rp_id}}),
        )
    assert code_of(exc)[0] == code
    assert account.boto.list_web_authn_credentials(AccessToken=token)["Credentials"] == []


def test_a_subdomain_page_may_register_for_its_parent_domain(account: Account) -> None:
    account.double.set_user_auth(account.pool_id, relying_party_id="example.com")
    token = account.sign_in()
    _register(
        account, token, SoftwareAuthenticator("example.com", origin="https://app.example.com")
    )
    (listed,) = account.boto.list_web_authn_credentials(AccessToken=token)["Credentials"]
    assert listed["RelyingPartyId"] == "example.com"


def test_registration_needs_webauthn_and_a_relying_party(account: Account) -> None:
    token = account.sign_in()
    with pytest.raises(ClientError) as exc:  # the pool's first factors lack WEB_AUTHN
        account.boto.start_web_authn_registration(AccessToken=token)
    assert code_of(exc)[0] == "WebAuthnNotEnabledException"
    account.double.set_user_auth(account.pool_id)  # WEB_AUTHN, but no relying party id
    with pytest.raises(ClientError) as exc:
        account.boto.start_web_authn_registration(AccessToken=token)
    assert code_of(exc)[0] == "WebAuthnConfigurationMissingException"


def test_registration_is_completed_by_the_client_that_started_it(
    account: Account,
) -> None:
    account.double.set_user_auth(account.pool_id, relying_party_id=RP_ID)
    other_client, _ = account.double.create_client(account.pool_id)
    token = account.sign_in()
    options = account.boto.start_web_authn_registration(AccessToken=token)
    other = account.double.mint_access_token(
        account.pool_id, other_client, "alice", "aws.cognito.signin.user.admin"
    )
    credential = SoftwareAuthenticator(RP_ID).register_response(
        options["CredentialCreationOptions"]
    )
    with pytest.raises(ClientError) as exc:
        account.boto.complete_web_authn_registration(AccessToken=other, Credential=credential)
    assert code_of(exc)[0] == "WebAuthnClientMismatchException"
    # The registration is still waiting for the client that started it.
    account.boto.complete_web_authn_registration(AccessToken=token, Credential=credential)
    with pytest.raises(ClientError) as exc:  # and each challenge is answered once
        account.boto.complete_web_authn_registration(AccessToken=token, Credential=credential)
    assert code_of(exc)[0] == "WebAuthnChallengeNotFoundException"


def test_the_same_authenticator_twice_and_too_many_passkeys_are_refused(
    account: Account,
) -> None:
    account.double.set_user_auth(account.pool_id, relying_party_id=RP_ID)
    token = account.sign_in()
    key = SoftwareAuthenticator(RP_ID)
    _register(account, token, key)
    with pytest.raises(ClientError) as exc:
        _register(account, token, key)
    assert code_of(exc)[0] == "WebAuthnCredentialNotSupportedException"
    for _ in range(19):
        _register(account, token, SoftwareAuthenticator(RP_ID))
    with pytest.raises(ClientError) as exc:
        account.boto.start_web_authn_registration(AccessToken=token)
    assert code_of(exc)[0] == "LimitExceededException"


def test_one_user_cannot_delete_another_users_passkey(account: Account) -> None:
    key = SoftwareAuthenticator(RP_ID)
    account.double.register_passkey(
        account.pool_id, "bob", key.credential_id, key.public_key, RP_ID
    )
    bob = account.boto.list_web_authn_credentials(AccessToken=account.sign_in("bob"))
    (credential,) = bob["Credentials"]
    with pytest.raises(ClientError) as exc:
        account.boto.delete_web_authn_credential(
            AccessToken=account.sign_in(), CredentialId=credential["CredentialId"]
        )
    assert code_of(exc)[0] == "ResourceNotFoundException"


def test_auth_factors_follow_the_pool_and_the_user(account: Account) -> None:
    token = account.sign_in()
    assert account.boto.get_user_auth_factors(AccessToken=token)["ConfiguredUserAuthFactors"] == [
        "PASSWORD"
    ]
    account.double.set_user_auth(account.pool_id, relying_party_id=RP_ID)
    account.boto.set_user_mfa_preference(
        AccessToken=token, EmailMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    factors = account.boto.get_user_auth_factors(AccessToken=token)
    assert factors["ConfiguredUserAuthFactors"] == ["PASSWORD", "EMAIL_OTP"]
    assert factors["UserMFASettingList"] == ["EMAIL_OTP"]
    assert factors["PreferredMfaSetting"] == "EMAIL_OTP"
