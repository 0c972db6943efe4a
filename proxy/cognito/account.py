"""The account page's Cognito calls: the user's own access-token APIs (public, no IAM).

Each takes the session's access token; Cognito refuses it when it expired, was revoked or
signed out globally, or lacks the aws.cognito.signin.user.admin scope: ``AccessTokenRejected``.
The sign-in history (AdminListUserAuthEvents, AdminUpdateAuthEventFeedback) is the exception:
Admin API calls with IAM credentials, for the username of the session itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from proxy.cognito.client import CognitoClient
from proxy.cognito.errors import BadCredentials, CodeMismatch, CognitoError


class AccessTokenRejected(CognitoError):
    """Cognito no longer accepts this session's access token: the session is over."""


@dataclass(frozen=True, slots=True)
class RememberedDevice:
    """One device Cognito tracks for the user (ListDevices' DeviceType)."""

    key: str
    name: str
    last_ip: str
    last_signed_in: float | None  # epoch seconds
    # dev:device_remembered_status: a device that is only tracked (the user said "no" to
    # remembering it) still asks for the second factor. Absent: taken as remembered.
    remembered: bool = True


@dataclass(frozen=True, slots=True)
class RegisteredPasskey:
    """One of the user's passkeys (ListWebAuthnCredentials' WebAuthnCredentialDescription)."""

    credential_id: str
    name: str  # Cognito's FriendlyCredentialName, from the authenticator's make
    attachment: str  # "platform", "cross-platform" or "" (not reported)
    transports: tuple[str, ...]
    created: float | None  # epoch seconds


def _epoch(value: Any) -> float | None:
    # botocore parses Cognito's timestamps into datetimes.
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """One entry of the user's sign-in history (AdminListUserAuthEvents' AuthEventType), as
    threat protection logged it. Strings are Cognito's enumeration values ("" when absent)."""

    event_id: str
    kind: str  # EventType: SignIn, SignUp, ForgotPassword, PasswordChange, ResendCode
    created: float | None
    result: str  # EventResponse: Pass, Fail, InProgress
    risk_level: str  # Low, Medium, High
    risk_decision: str  # NoRisk, AccountTakeover, Block
    compromised: bool
    ip: str
    city: str
    country: str
    feedback: str  # EventFeedback.FeedbackValue: Valid, Invalid


class AddOnNotEnabled(CognitoError):
    """The pool has no threat protection: Cognito keeps no sign-in history."""


def _text(value: Any, limit: int = 256) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _member(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


def _auth_event(raw: Any) -> AuthEvent | None:
    if not isinstance(raw, dict) or not _text(raw.get("EventId")):
        return None
    risk = _member(raw, "EventRisk")
    context = _member(raw, "EventContextData")
    feedback = _member(raw, "EventFeedback")
    return AuthEvent(
        event_id=_text(raw["EventId"], 50),
        kind=_text(raw.get("EventType")),
        created=_epoch(raw.get("CreationDate")),
        result=_text(raw.get("EventResponse")),
        risk_level=_text(risk.get("RiskLevel")),
        risk_decision=_text(risk.get("RiskDecision")),
        compromised=risk.get("CompromisedCredentialsDetected") is True,
        ip=_text(context.get("IpAddress")),
        city=_text(context.get("City")),
        country=_text(context.get("Country")),
        feedback=_text(feedback.get("FeedbackValue")),
    )


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """The pool's password policy (PasswordPolicyType), as configured for the proxy."""

    min_length: int = 8
    require_lowercase: bool = True
    require_uppercase: bool = True
    require_numbers: bool = True
    require_symbols: bool = True


# Cognito's symbol characters (developer guide, "Password requirements"); a space counts when
# it is neither first nor last.
SYMBOLS = frozenset("^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+-")


def unmet_rules(policy: PasswordPolicy, password: str) -> list[str]:
    """The rules ``password`` breaks, as i18n keys (the ones Cognito's own refusals map to)."""
    inner_space = " " in password.strip(" ")
    broken = [
        (len(password) >= policy.min_length, "error.password_policy.length"),
        (
            not policy.require_uppercase or any(c.isupper() for c in password),
            "error.password_policy.upper",
        ),
        (
            not policy.require_lowercase or any(c.islower() for c in password),
            "error.password_policy.lower",
        ),
        (
            not policy.require_numbers or any(c.isdigit() for c in password),
            "error.password_policy.digit",
        ),
        (
            not policy.require_symbols or inner_space or any(c in SYMBOLS for c in password),
            "error.password_policy.symbol",
        ),
    ]
    return [key for ok, key in broken if not ok]


class AttributeNotWritable(CognitoError):
    """The app client may not write this attribute (its WriteAttributes leave it out): an
    operator's setting names an attribute the pool's client does not allow."""


class AttributeRefused(CognitoError):
    """Cognito refused an attribute's value (InvalidParameterException: its format, its length
    in the pool's schema, a required attribute left blank, an attribute not in the schema)."""


class AliasTaken(CognitoError):
    """AliasExistsException: another account already signs in with this email or phone."""


@dataclass(frozen=True, slots=True)
class CodeDelivery:
    """Where Cognito sent a verification code (CodeDeliveryDetailsType), masked by Cognito."""

    attribute: str
    medium: str  # EMAIL / SMS
    destination: str


def _delivery(details: Any) -> CodeDelivery | None:
    if not isinstance(details, dict):
        return None
    return CodeDelivery(
        attribute=str(details.get("AttributeName") or ""),
        medium=str(details.get("DeliveryMedium") or ""),
        destination=str(details.get("Destination") or ""),
    )


# ---- sign-in methods: MFA factors (GetUser, TOTP enrolment, SetUserMFAPreference) -----------

# The MFA factors, in the order the account page lists them, and SetUserMFAPreference's
# member for each.
MFA_FACTORS = ("SOFTWARE_TOKEN_MFA", "SMS_MFA", "EMAIL_OTP")
_PREFERENCE_MEMBER = {
    "SOFTWARE_TOKEN_MFA": "SoftwareTokenMfaSettings",
    "SMS_MFA": "SMSMfaSettings",
    "EMAIL_OTP": "EmailMfaSettings",
}


@dataclass(frozen=True, slots=True)
class MfaSettings:
    """What GetUser says of the user's MFA: the factors on, the preferred one, and whether
    the phone number and email (where SMS and email codes go) are verified."""

    enabled: tuple[str, ...]
    preferred: str | None
    phone_verified: bool
    email_verified: bool


def attributes_of(answer: dict[str, Any]) -> dict[str, str]:
    """GetUser's UserAttributes by name."""
    return {
        str(a.get("Name")): str(a.get("Value") or "")
        for a in answer.get("UserAttributes") or []
        if isinstance(a, dict) and a.get("Name")
    }


def mfa_of(answer: dict[str, Any]) -> MfaSettings:
    """GetUser's word on MFA: UserMFASettingList, PreferredMfaSetting, and whether the phone
    number and email are verified."""
    attributes = attributes_of(answer)
    listed = answer.get("UserMFASettingList") or []
    preferred = answer.get("PreferredMfaSetting")
    return MfaSettings(
        enabled=tuple(f for f in MFA_FACTORS if f in listed),
        preferred=preferred if preferred in MFA_FACTORS else None,
        phone_verified=bool(attributes.get("phone_number"))
        and attributes.get("phone_number_verified") == "true",
        email_verified=bool(attributes.get("email")) and attributes.get("email_verified") == "true",
    )


def _token_refused(exc: CognitoError) -> bool:
    # The one place the account calls read Cognito's message: a refused access token and a
    # wrong previous password share NotAuthorizedException.
    return exc.code == "NotAuthorizedException" and "access token" in exc.detail.lower()


class AccountApi:
    def __init__(self, client: CognitoClient) -> None:
        self._client = client

    async def _call(self, operation: str, access_token: str, **kwargs: object) -> dict[str, Any]:
        try:
            return await self._client.user_api(operation, AccessToken=access_token, **kwargs)
        except BadCredentials as exc:
            if _token_refused(exc):
                raise AccessTokenRejected(exc.code, exc.detail) from None
            raise

    async def change_password(self, access_token: str, previous: str, proposed: str) -> None:
        """ChangePassword. BadCredentials: the previous password is wrong (or Cognito's
        lockout: PasswordAttemptsExceeded); InvalidPassword: the pool's policy refused it."""
        await self._call(
            "change_password", access_token, PreviousPassword=previous, ProposedPassword=proposed
        )

    async def list_devices(self, access_token: str) -> list[RememberedDevice]:
        """ListDevices, every page of it (60 per page, Cognito's maximum)."""
        devices: list[RememberedDevice] = []
        token: str | None = None
        for _ in range(50):  # a bound: Cognito keeps few devices per user
            extra: dict[str, object] = {"Limit": 60}
            if token:
                extra["PaginationToken"] = token
            answer = await self._call("list_devices", access_token, **extra)
            for device in answer.get("Devices") or []:
                attributes = {
                    a.get("Name"): a.get("Value", "") for a in device.get("DeviceAttributes") or []
                }
                devices.append(
                    RememberedDevice(
                        key=str(device.get("DeviceKey", "")),
                        name=str(attributes.get("device_name") or ""),
                        last_ip=str(attributes.get("last_ip_used") or ""),
                        last_signed_in=_epoch(device.get("DeviceLastAuthenticatedDate")),
                        remembered=attributes.get("dev:device_remembered_status")
                        != "not_remembered",
                    )
                )
            token = answer.get("PaginationToken")
            if not token:
                break
        return devices

    async def _admin(self, operation: str, **kwargs: object) -> dict[str, Any]:
        try:
            return await self._client.admin_api(operation, **kwargs)
        except CognitoError as exc:
            if exc.code == "UserPoolAddOnNotEnabledException":
                raise AddOnNotEnabled(exc.code, exc.detail) from None
            raise

    async def auth_events(self, username: str, limit: int = 20) -> list[AuthEvent]:
        """AdminListUserAuthEvents: the user's most recent sign-ins, newest first (one page).
        ``username`` is Cognito's own (the session's), never anything a form said."""
        answer = await self._admin(
            "admin_list_user_auth_events", Username=username, MaxResults=limit
        )
        events = (_auth_event(raw) for raw in answer.get("AuthEvents") or [])
        return [event for event in events if event is not None]

    async def report_auth_event(self, username: str, event_id: str) -> None:
        """AdminUpdateAuthEventFeedback with FeedbackValue Invalid ("this wasn't me") for one
        of ``username``'s events; Cognito refuses (ResourceNotFound) another user's event."""
        await self._admin(
            "admin_update_auth_event_feedback",
            Username=username,
            EventId=event_id,
            FeedbackValue="Invalid",
        )

    async def forget_device(self, access_token: str, device_key: str) -> None:
        await self._call("forget_device", access_token, DeviceKey=device_key)

    async def get_user_answer(self, access_token: str) -> dict[str, Any]:
        """GetUser as Cognito answered it: read with ``attributes_of`` and ``mfa_of`` (the
        account page asks once per page, however many sections read it)."""
        return await self._call("get_user", access_token)

    async def get_user(self, access_token: str) -> dict[str, str]:
        """GetUser: the user's attributes the app client may read, by name."""
        return attributes_of(await self.get_user_answer(access_token))

    async def update_attributes(
        self, access_token: str, changes: dict[str, str]
    ) -> list[CodeDelivery]:
        """UpdateUserAttributes (a blank value deletes the attribute). Where a new email or
        phone number needs its code, Cognito says where it sent it. AttributeNotWritable,
        AttributeRefused, AliasTaken as above."""
        try:
            answer = await self._call(
                "update_user_attributes",
                access_token,
                UserAttributes=[{"Name": k, "Value": v} for k, v in changes.items()],
            )
        except CognitoError as exc:
            raise _attribute_error(exc) from None
        sent = [_delivery(d) for d in answer.get("CodeDeliveryDetailsList") or []]
        return [d for d in sent if d is not None]

    async def send_attribute_code(self, access_token: str, name: str) -> CodeDelivery | None:
        """GetUserAttributeVerificationCode: a new code for ``name`` (to its pending value
        when one waits for verification)."""
        try:
            answer = await self._call(
                "get_user_attribute_verification_code", access_token, AttributeName=name
            )
        except CognitoError as exc:
            raise _attribute_error(exc) from None
        return _delivery(answer.get("CodeDeliveryDetails"))

    async def verify_attribute(self, access_token: str, name: str, code: str) -> None:
        """VerifyUserAttribute: CodeMismatch / ExpiredCode for a wrong or old code; AliasTaken
        when another account verified that value meanwhile."""
        try:
            await self._call("verify_user_attribute", access_token, AttributeName=name, Code=code)
        except CognitoError as exc:
            raise _attribute_error(exc) from None

    # -- sign-in methods: MFA factors ----------------------------------------------------

    async def mfa_settings(self, access_token: str) -> MfaSettings:
        return mfa_of(await self.get_user_answer(access_token))

    async def associate_software_token(self, access_token: str) -> str:
        """AssociateSoftwareToken with the access token: a new secret, pending until
        VerifySoftwareToken (associating again replaces the pending one)."""
        answer = await self._call("associate_software_token", access_token)
        secret = answer.get("SecretCode")
        if not isinstance(secret, str) or not secret:
            raise CognitoError("InternalErrorException", "AssociateSoftwareToken: no SecretCode")
        return secret

    async def verify_software_token(self, access_token: str, code: str) -> None:
        """VerifySoftwareToken with the access token. CodeMismatch: a wrong code."""
        answer = await self._call("verify_software_token", access_token, UserCode=code)
        if answer.get("Status") != "SUCCESS":
            raise CodeMismatch("CodeMismatchException", "VerifySoftwareToken: not SUCCESS")

    async def set_mfa_preference(
        self, access_token: str, factor: str, *, enabled: bool, preferred: bool = False
    ) -> None:
        """SetUserMFAPreference for one factor (the others are left as they are)."""
        member = _PREFERENCE_MEMBER[factor]
        await self._call(
            "set_user_mfa_preference",
            access_token,
            **{member: {"Enabled": enabled, "PreferredMfa": preferred and enabled}},
        )

    # -- passkeys (WebAuthn) -------------------------------------------------------------------

    async def start_passkey_registration(self, access_token: str) -> dict[str, Any]:
        """StartWebAuthnRegistration: the CredentialCreationOptions (JSON) for
        ``navigator.credentials.create``, its challenge pending at Cognito for this user."""
        answer = await self._call("start_web_authn_registration", access_token)
        options = answer.get("CredentialCreationOptions")
        if not isinstance(options, dict) or not isinstance(options.get("challenge"), str):
            raise CognitoError("InvalidResponse", "CredentialCreationOptions without a challenge")
        return options

    async def complete_passkey_registration(
        self, access_token: str, credential: dict[str, Any]
    ) -> None:
        """CompleteWebAuthnRegistration with the browser's RegistrationResponseJSON."""
        await self._call("complete_web_authn_registration", access_token, Credential=credential)

    async def list_passkeys(self, access_token: str) -> list[RegisteredPasskey]:
        """ListWebAuthnCredentials, every page of it (20 per page, Cognito's maximum)."""
        passkeys: list[RegisteredPasskey] = []
        token: str | None = None
        for _ in range(50):  # a bound: Cognito keeps few passkeys per user
            extra: dict[str, object] = {"MaxResults": 20}
            if token:
                extra["NextToken"] = token
            answer = await self._call("list_web_authn_credentials", access_token, **extra)
            for item in answer.get("Credentials") or []:
                transports = item.get("AuthenticatorTransports") or []
                passkeys.append(
                    RegisteredPasskey(
                        credential_id=str(item.get("CredentialId", "")),
                        name=str(item.get("FriendlyCredentialName") or ""),
                        attachment=str(item.get("AuthenticatorAttachment") or ""),
                        transports=tuple(str(t) for t in transports),
                        created=_epoch(item.get("CreatedAt")),
                    )
                )
            token = answer.get("NextToken")
            if not token:
                break
        return passkeys

    async def delete_passkey(self, access_token: str, credential_id: str) -> None:
        """DeleteWebAuthnCredential. Misconfigured (ResourceNotFound): not this user's."""
        await self._call("delete_web_authn_credential", access_token, CredentialId=credential_id)


def _attribute_error(exc: CognitoError) -> CognitoError:
    """The attribute calls' refusals as their own types (the rest as they came)."""
    if isinstance(exc, AccessTokenRejected):
        return exc
    if exc.code == "NotAuthorizedException" and "attribute" in exc.detail.lower():
        # "A client attempted to write unauthorized attribute"
        return AttributeNotWritable(exc.code, exc.detail)
    if exc.code == "InvalidParameterException":
        return AttributeRefused(exc.code, exc.detail)
    if exc.code == "AliasExistsException":
        return AliasTaken(exc.code, exc.detail)
    return exc
