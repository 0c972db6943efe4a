"""A strict Amazon Cognito user-pool double that speaks the real AWS JSON 1.1 wire protocol.

moto's Cognito accepts any SRP signature and never expires challenge sessions, so it cannot tell a
correct client from a broken one. This double runs an aiohttp server in its own thread (so sync
boto3 clients and async aioboto3 clients in any event loop can reach it), and really checks:

* SRP: the server half of Cognito's SRP-6a variant is implemented here, independently of
  ``proxy/`` (3072-bit RFC 3526 group, SHA-256, HKDF "Caldera Derived Key", HMAC claim signature
  over pool name | USER_ID_FOR_SRP | SECRET_BLOCK | TIMESTAMP, constant-time comparison).
* TIMESTAMP must parse and lie within ``timestamp_skew`` seconds of now; like Cognito the claim is
  verified against the canonical form, so a zero-padded day ("Jul 05") fails the signature.
* Challenge sessions are bound to client, user and challenge, single use, expire after
  ``session_ttl``. For PASSWORD_VERIFIER the SECRET_BLOCK identifies the session, so a client that
  omits ``Session`` (pycognito does, real Cognito accepts it) still works; one that sends it must
  send the right one.
* SECRET_HASH whenever the app client has a secret; refresh tokens are stored and revocable;
  tokens are RS256 JWTs signed with a per-pool key published as JWKS.
* Admin operations must carry a SigV4 ``Authorization`` header scoped to this region and
  ``cognito-idp`` (the signature itself is not recomputed).

Beyond passwords it models every challenge Cognito has, each as strictly:

* SMS_MFA / EMAIL_OTP codes (readable with ``last_code``), single use, a few wrong tries per
  session; SOFTWARE_TOKEN_MFA with RFC 6238 TOTP (±1 step, a step accepted once); SELECT_MFA_TYPE;
  MFA_SETUP through AssociateSoftwareToken / VerifySoftwareToken.
* NEW_PASSWORD_REQUIRED with required attributes and the default password policy.
* CUSTOM_AUTH (optionally SRP first) driven by a handler standing in for the Lambda triggers.
* Device tracking: NewDeviceMetadata, ConfirmDevice, UpdateDeviceStatus, and device SRP
  (DEVICE_SRP_AUTH → DEVICE_PASSWORD_VERIFIER) replacing MFA for remembered devices.
* USER_AUTH: SELECT_CHALLENGE, PASSWORD, PASSWORD_SRP, EMAIL_OTP, SMS_OTP and WEB_AUTHN
  (assertions verified for real: see ``webauthn.py``); passkey registration via the API
  (StartWebAuthnRegistration / CompleteWebAuthnRegistration: one challenge per user, answered
  once, through the client that started it; a page on the relying party id or a subdomain;
  WebAuthnOriginNotAllowed, -RelyingPartyMismatch, -CredentialNotSupported, -ChallengeNotFound,
  -ClientMismatch as Cognito names them; at most 20 passkeys a user).
* SignUp / ConfirmSignUp / ResendConfirmationCode, ForgotPassword / ConfirmForgotPassword.
* The account page's access-token APIs: ChangePassword (previous password with the lockout,
  policy), UpdateUserAttributes / GetUserAttributeVerificationCode / VerifyUserAttribute (a new
  email or phone unverified until its code, or pending with the old value in effect when the
  pool keeps original values: ``set_keep_original_attributes``), ListWebAuthnCredentials /
  DeleteWebAuthnCredential, GetUserAuthFactors. Every access-token API needs the
  aws.cognito.signin.user.admin scope (``mint_access_token`` makes tokens with other scopes).

And Cognito as it changed in 2025-2026:

* Refresh-token rotation per app client (``RefreshTokenRotation``: Feature, RetryGracePeriodSeconds
  0-60): GetTokensFromRefreshToken (ClientSecret, not SECRET_HASH; DeviceKey for device-bound
  sessions) returns a new refresh token only with rotation on, and the old one then works only
  within the grace period (RefreshTokenReuseException after it). With rotation on
  REFRESH_TOKEN_AUTH is not an allowed flow of the client. DescribeUserPoolClient shows it
  (``set_refresh_token_rotation`` stands in for UpdateUserPoolClient, which resets every member
  it is not given).
* Up to two client secrets per app client (AddUserPoolClientSecret / DeleteUserPoolClientSecret,
  and ``add_client_secret`` / ``delete_client_secret`` for tests): either one is accepted.
* Cognito's own lockout: after five wrong passwords a user is locked out for 2^(n-5) seconds (at
  most 15 minutes) and every attempt meanwhile answers "Password attempts exceeded".
* Threat protection (``set_threat_protection``, ``set_risk``, ``add_compromised_password``): a
  risky sign-in is blocked ("Unable to login because of security reasons.") or gets an MFA
  challenge even when the user's MFA is optional and off; a compromised password on the plain
  password flows sets the user to RESET_REQUIRED. The end user's IP is the ContextData one on the
  Admin API, and on the public API the UserContextData one only when the client has a secret and
  EnablePropagateAdditionalUserContextData is on (otherwise Cognito sees the caller's address).
* Issuers: ``issuer_style`` "local", "aws" or "multi_region"
  (``https://issuer-cognito-idp.<region>.amazonaws.com/<pool>``); access tokens minted under
  any style stay valid when the style changes (a pool moving to the multi-Region issuer).

Every challenge session is bound to client, user and challenge, and expires. Where Cognito's
documentation is silent the double makes a plausible choice and says so in a comment.

Errors are HTTP 400 ``{"__type": Code, "message": ...}`` which botocore turns into
``ClientError.response["Error"]["Code"]``. Every request lands in ``calls`` (so ContextData /
UserContextData can be asserted, see ``context_data``) and every rejection in ``failures``
together with the internal reason, so tests can tell *why* a login failed even when Cognito's
public message is deliberately vague.

A new flow or challenge is an entry in one of the three dispatch tables built in
``CognitoDouble.__init__`` (operations, auth flows, challenges); ``_next_step`` is the one place
that decides what follows a verified password.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import socket
import string
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from proxy.devtools.otp import (
    mask_email,
    mask_phone,
    new_code,
    new_totp_secret,
    totp_code,
    totp_matching_step,
)
from proxy.devtools.webauthn import (
    Passkey,
    SoftwareAuthenticator,
    WebAuthnError,
    b64url,
    verify_assertion,
    verify_registration,
)

__all__ = [
    "CognitoDouble",
    "CognitoError",
    "CustomAuthHandler",
    "SoftwareAuthenticator",
    "captcha_challenge",
    "format_timestamp",
    "running_double",
    "totp_code",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# SRP maths (server side). Written from the protocol, not from any client implementation.
# --------------------------------------------------------------------------------------------

# RFC 3526 section 4: 3072-bit MODP group; generator 2.
_N = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
    16,
)
_G = 2
_HKDF_INFO = b"Caldera Derived Key\x01"  # info || counter byte 1: a single HKDF-Expand block


def _pad(n: int) -> bytes:
    """Minimal big-endian two's-complement bytes (Java ``BigInteger.toByteArray``).

    This is what Cognito hashes; clients get there with the "odd length -> prepend 0, high nibble
    >= 8 -> prepend 00" hex padding rule, which yields exactly these bytes.
    """
    return n.to_bytes(n.bit_length() // 8 + 1, "big")


def _sha256(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def _to_int(data: bytes) -> int:
    return int.from_bytes(data, "big")


_K = _to_int(_sha256(_pad(_N), _pad(_G)))


def _srp_x(pool_name: str, user_id: str, password: str, salt: int) -> int:
    inner = _sha256(f"{pool_name}{user_id}:{password}".encode())
    return _to_int(_sha256(_pad(salt), inner))


def _srp_verifier(pool_name: str, user_id: str, password: str, salt: int) -> int:
    return pow(_G, _srp_x(pool_name, user_id, password, salt), _N)


def _srp_hkdf(shared_s: int, u: int) -> bytes:
    prk = hmac.new(_pad(u), _pad(shared_s), hashlib.sha256).digest()
    return hmac.new(prk, _HKDF_INFO, hashlib.sha256).digest()[:16]


# --------------------------------------------------------------------------------------------
# TIMESTAMP ("Tue Jul 10 11:01:00 UTC 2018"). English names spelled out: strftime is locale bound.
# --------------------------------------------------------------------------------------------

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TIMESTAMP_RE = re.compile(
    rf"({'|'.join(_WEEKDAYS)}) ({'|'.join(_MONTHS)}) (\d{{1,2}}) "
    r"(\d{2}):(\d{2}):(\d{2}) UTC (\d{4})"
)


def format_timestamp(moment: datetime) -> str:
    """Cognito's canonical TIMESTAMP form for ``moment`` (UTC, day not zero padded)."""
    moment = moment.astimezone(UTC)
    return (
        f"{_WEEKDAYS[moment.weekday()]} {_MONTHS[moment.month - 1]} {moment.day} "
        f"{moment:%H:%M:%S} UTC {moment.year}"
    )


def _parse_timestamp(text: str) -> datetime | None:
    match = _TIMESTAMP_RE.fullmatch(text)
    if match is None:
        return None
    _, month, day, hour, minute, second, year = match.groups()
    try:
        return datetime(
            int(year),
            _MONTHS.index(month) + 1,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=UTC,
        )
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Errors, constants, state.
# --------------------------------------------------------------------------------------------


class CognitoError(Exception):
    """An AWS error response. ``reason`` is internal detail kept for ``failures``, never sent."""

    def __init__(self, code: str, message: str, *, status: int = 400, reason: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.reason = reason or message


def _not_authorized(message: str, reason: str = "") -> CognitoError:
    return CognitoError("NotAuthorizedException", message, reason=reason)


def _invalid(message: str, reason: str = "") -> CognitoError:
    return CognitoError("InvalidParameterException", message, reason=reason)


_BAD_CREDENTIALS = "Incorrect username or password."
_BLOCKED = "Unable to login because of security reasons."
_ATTEMPTS_EXCEEDED = "Password attempts exceeded"
# Cognito's lockout (developer guide, "User pool authentication flows"): after five failures a
# lockout of 2^(n-5) s, at most about 15 minutes; reset by a successful sign-in after a lockout
# or by 15 minutes without any attempt.
_LOCKOUT_FREE_FAILURES = 5
_LOCKOUT_MAX = 900.0
_LOCKOUT_RESET = 900.0
_MAX_CLIENT_SECRETS = 2
_RISK_LEVELS = ("low", "medium", "high")
_RISK_ACTIONS = frozenset({"BLOCK", "MFA_IF_CONFIGURED", "MFA_REQUIRED", "NO_ACTION"})
_TARGET_PREFIX = "AWSCognitoIdentityProviderService."
_JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
_ACCESS_SCOPE = "aws.cognito.signin.user.admin"

# AuthFlow -> the ExplicitAuthFlows entry that must be on the app client.
_FLOW_PERMISSION = {
    "USER_SRP_AUTH": "ALLOW_USER_SRP_AUTH",
    "USER_PASSWORD_AUTH": "ALLOW_USER_PASSWORD_AUTH",
    "ADMIN_USER_PASSWORD_AUTH": "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ADMIN_NO_SRP_AUTH": "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "REFRESH_TOKEN_AUTH": "ALLOW_REFRESH_TOKEN_AUTH",
    "REFRESH_TOKEN": "ALLOW_REFRESH_TOKEN_AUTH",
    "CUSTOM_AUTH": "ALLOW_CUSTOM_AUTH",
    "USER_AUTH": "ALLOW_USER_AUTH",
}
_PUBLIC_FLOWS = frozenset(_FLOW_PERMISSION) - {"ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"}
_ADMIN_FLOWS = frozenset(_FLOW_PERMISSION) - {"USER_PASSWORD_AUTH"}
# Legacy ExplicitAuthFlows names that Cognito still accepts on CreateUserPoolClient.
_LEGACY_FLOW_NAMES = {
    "ADMIN_NO_SRP_AUTH": "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "CUSTOM_AUTH_FLOW_ONLY": "ALLOW_CUSTOM_AUTH",
    "USER_PASSWORD_AUTH": "ALLOW_USER_PASSWORD_AUTH",
}
_CLIENT_FLOWS = frozenset(_FLOW_PERMISSION.values())
_DEFAULT_CLIENT_FLOWS = frozenset(
    {
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_ADMIN_USER_PASSWORD_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    }
)
_USER_STATUSES = frozenset({"CONFIRMED", "FORCE_CHANGE_PASSWORD", "UNCONFIRMED", "RESET_REQUIRED"})
# Alias attribute -> attribute that must be "true" for the alias to be usable at sign-in.
_ALIAS_VERIFICATION = {
    "email": "email_verified",
    "phone_number": "phone_number_verified",
    "preferred_username": None,
}
_BOOLEAN_CLAIMS = frozenset({"email_verified", "phone_number_verified"})
_SIGV4_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=[a-z0-9;-]+,\s*Signature=[0-9a-f]{64}"
)


@dataclass
class _SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str
    jwk: dict[str, str]


@dataclass
class _Device:
    """A device Cognito tracks for a user (after a sign-in returned NewDeviceMetadata)."""

    key: str
    group_key: str
    created: float
    name: str | None = None
    salt: bytes | None = None  # set by ConfirmDevice (sent back as SALT, in hex)
    verifier: int | None = None
    remembered: bool = False
    last_authenticated: float | None = None
    last_ip: str | None = None

    @property
    def confirmed(self) -> bool:
        return self.verifier is not None


@dataclass
class _PendingCode:
    """A code sent for ForgotPassword or sign-up confirmation (per user and purpose)."""

    code: str
    expires_at: float
    attempts: int = 0


@dataclass
class _User:
    username: str
    sub: str
    password: str
    salt: int
    verifier: int
    attributes: dict[str, str]
    groups: list[str]
    status: str
    enabled: bool = True
    mfa: list[str] = field(default_factory=list)  # enabled MFA types, in _MFA_TYPES order
    preferred_mfa: str | None = None
    totp_secret: str | None = None  # verified (seeded, or VerifySoftwareToken succeeded)
    totp_pending: str | None = None  # associated via AccessToken, not yet verified
    totp_device_name: str | None = None
    totp_last_step: int = -1  # a TOTP step is accepted once (replay of a code fails)
    device_group_key: str = ""
    devices: dict[str, _Device] = field(default_factory=dict)
    passkeys: list[Passkey] = field(default_factory=list)
    codes: dict[str, _PendingCode] = field(default_factory=dict)  # "forgot" / "signup"
    failed_attempts: int = 0  # wrong passwords since the last reset (not "exceeded" answers)
    locked_until: float = 0.0
    last_attempt: float = 0.0


@dataclass(frozen=True)
class _Registration:
    """A StartWebAuthnRegistration waiting for its CompleteWebAuthnRegistration."""

    challenge: bytes
    client_id: str  # the access token's client: Complete must come through the same one
    expires_at: float


@dataclass
class _DeviceTracking:
    challenge_required_on_new_device: bool
    remembered: Literal["always", "user_opt_in"]


@dataclass
class _ThreatProtection:
    """The pool's threat protection (Plus plan) in ENFORCED mode; AUDIT only records."""

    enforced: bool
    actions: dict[str, str]  # risk level -> BLOCK / MFA_IF_CONFIGURED / MFA_REQUIRED / NO_ACTION
    block_compromised: bool
    risks: dict[str, str] = field(default_factory=dict)  # "user:<name>" / "ip:<addr>" -> level
    compromised: set[str] = field(default_factory=set)  # sha256 of known-leaked passwords
    # (username, risk level, action taken, ip seen): what Cognito's event history would show.
    events: list[tuple[str, str, str, str | None]] = field(default_factory=list)


@dataclass
class _AuthEvent:
    """One sign-in attempt as threat protection logs it (AuthEventType): every attempt on a
    pool with threat protection, success or failure, with the risk its model assessed."""

    event_id: str
    pool_id: str
    username: str
    created: float
    response: str  # EventResponse: Pass, Fail, InProgress (a further challenge is pending)
    risk_level: str  # low / medium / high
    decision: str  # RiskDecision: NoRisk, AccountTakeover (the configured action), Block
    ip: str | None
    compromised: bool = False
    challenges: list[tuple[str, str]] = field(default_factory=list)  # (Password|Mfa, result)
    # What Cognito puts in its notification email's one-click links (UpdateAuthEventFeedback).
    feedback_token: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    feedback: tuple[str, str, float] | None = None  # (Valid|Invalid, provider, when)


# handler(username, session_history) -> decision; see ``captcha_challenge``.
CustomAuthHandler = Callable[[str, list[dict[str, Any]]], Mapping[str, Any]]


@dataclass
class _Pool:
    pool_id: str
    key: _SigningKey
    alias_attributes: frozenset[str]
    users: dict[str, _User] = field(default_factory=dict)
    # The double's pools start with MFA OPTIONAL and every factor allowed, so a user seeded with
    # ``mfa=...`` is challenged without further setup (Cognito's own default is OFF).
    mfa_mode: str = "OPTIONAL"
    mfa_factors: tuple[str, ...] = ("SMS_MFA", "EMAIL_OTP", "SOFTWARE_TOKEN_MFA")
    required_attributes: tuple[str, ...] = ()
    custom_auth: CustomAuthHandler | None = None
    device_tracking: _DeviceTracking | None = None
    first_factors: tuple[str, ...] = ("PASSWORD",)  # SignInPolicy.AllowedFirstAuthFactors
    relying_party_id: str | None = None
    allowed_origins: tuple[str, ...] = ()
    user_verification: str = "preferred"
    threat_protection: _ThreatProtection | None = None

    @property
    def name(self) -> str:
        """The part of the pool id after "_": what SRP hashes into x and the claim."""
        return self.pool_id.split("_", 1)[1]


@dataclass
class _ClientSecret:
    secret_id: str  # "<client id>--<epoch milliseconds>", as ClientSecretDescriptorType says
    value: str
    created: float


@dataclass
class _AppClient:
    client_id: str
    pool_id: str
    secrets: list[_ClientSecret]  # at most two, any of them valid (secret rotation)
    flows: frozenset[str]
    rotation: bool = False  # RefreshTokenRotation.Feature == ENABLED
    grace_seconds: int = 0  # RefreshTokenRotation.RetryGracePeriodSeconds
    propagate_user_context: bool = False  # EnablePropagateAdditionalUserContextData
    # ReadAttributes / WriteAttributes; None: every attribute (Cognito's default for a client).
    read_attributes: frozenset[str] | None = None
    write_attributes: frozenset[str] | None = None

    @property
    def secret(self) -> str | None:
        """The oldest secret (the one CreateUserPoolClient returned), None for public clients."""
        return self.secrets[0].value if self.secrets else None


@dataclass
class _Login:
    """One successful sign-in: owns the refresh token and every access token minted from it."""

    origin_jti: str
    pool_id: str
    client_id: str
    username: str
    auth_time: int
    refresh_token: str
    refresh_expires_at: float
    revoked: bool = False
    device_key: str | None = None  # the tracked device this sign-in used or registered


@dataclass
class _RefreshToken:
    """One refresh token of a login; rotation gives a login a chain of them."""

    origin_jti: str
    # Set when rotation replaced this token: it is still accepted until then (grace period).
    valid_until: float | None = None


@dataclass
class _AuthSession:
    session_id: str
    pool_id: str
    client_id: str
    username: str  # internal username (or, for a fake SRP challenge, what was typed)
    challenge: str
    expires_at: float
    state: dict[str, Any] = field(default_factory=dict)
    consumed: bool = False


@dataclass
class _Ctx:
    """One InitiateAuth / RespondToAuthChallenge request, resolved to its pool and client."""

    operation: str  # e.g. "AdminInitiateAuth": handlers can tell IAM-authorised calls apart
    pool: _Pool
    client: _AppClient
    params: dict[str, str]  # AuthParameters or ChallengeResponses
    body: dict[str, Any]
    # DEVICE_KEY the client presented (AuthParameters, or carried by the challenge session).
    device_key: str | None = None
    # The auth event this sign-in is logging (threat protection), carried by its sessions.
    event: str | None = None


_Operation = Callable[[dict[str, Any], Mapping[str, str]], dict[str, Any]]
_Step = Callable[[_Ctx], dict[str, Any]]


def _random_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _required_str(body: Mapping[str, Any], name: str) -> str:
    """A required top-level member, rejected the way AWS's request validation does."""
    value = body.get(name)
    if value is None:
        camel = name[0].lower() + name[1:]
        raise _invalid(
            f"1 validation error detected: Value null at '{camel}' failed to satisfy "
            "constraint: Member must not be null"
        )
    if not isinstance(value, str) or not value:
        raise CognitoError("SerializationException", f"{name} must be a non-empty string")
    return value


def _string_map(body: Mapping[str, Any], name: str) -> dict[str, str]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise CognitoError("SerializationException", f"{name} must be a map of strings")
    return dict(value)


def _param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise _invalid(f"Missing required parameter {name}")
    return value


def _secret_hash(secret: str, username: str, client_id: str) -> str:
    digest = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


_MFA_TYPES = ("SMS_MFA", "EMAIL_OTP", "SOFTWARE_TOKEN_MFA")
_FIRST_FACTORS = ("PASSWORD", "EMAIL_OTP", "SMS_OTP", "WEB_AUTHN")
# AvailableChallenges order; PASSWORD in the pool's factors allows both password challenges.
_USER_AUTH_CHALLENGES = ("PASSWORD", "PASSWORD_SRP", "EMAIL_OTP", "SMS_OTP", "WEB_AUTHN")
# Wrong answers one challenge session tolerates before it is dead (Cognito allows about 3).
_CODE_ATTEMPTS = 3
# Wrong ConfirmForgotPassword / ConfirmSignUp codes before the code is void.
_CONFIRMATION_ATTEMPTS = 5
_FORGOT_CODE_TTL = 3600.0  # Cognito: password reset codes last one hour
_SIGNUP_CODE_TTL = 86400.0  # sign-up confirmation codes: 24 hours
_CODE_MISMATCH = "Invalid code or auth state for the user."
_INVALID_SESSION = "Invalid session for the user."
# The account page's attribute APIs.
_VERIFIABLE_ATTRIBUTES = ("email", "phone_number")
_MAX_PASSKEYS = 20
# A registration that does not verify, by the check that failed (webauthn.WebAuthnError.kind)
# -> Cognito's error code and message; anything else is an InvalidParameterException.
_REGISTRATION_ERRORS = {
    "challenge": ("WebAuthnChallengeNotFoundException", "The challenge does not match."),
    "origin": ("WebAuthnOriginNotAllowedException", "The origin is not allowed."),
    "rp": ("WebAuthnRelyingPartyMismatchException", "The relying party ID does not match."),
    "unsupported": ("WebAuthnCredentialNotSupportedException", "The credential is not supported."),
}
_VERIFY_CODE_TTL = 86400.0  # attribute verification codes: 24 hours, like sign-up codes
_MAX_ATTRIBUTE_VALUE = 2048  # AttributeValueType
# The formats Cognito insists on: an email address, a phone number in E.164 ("+", the country
# code, digits only: no spaces, dashes or brackets), an OIDC birthdate.
_EMAIL_FORMAT = re.compile(r"[^@\s]+@[^@\s]+")
_PHONE_FORMAT = re.compile(r"\+[0-9]{2,15}")
_BIRTHDATE_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}")
_STANDARD_ATTRIBUTES = frozenset(
    {
        "address",
        "birthdate",
        "email",
        "family_name",
        "gender",
        "given_name",
        "locale",
        "middle_name",
        "name",
        "nickname",
        "phone_number",
        "picture",
        "preferred_username",
        "profile",
        "updated_at",
        "website",
        "zoneinfo",
        "sub",
        "email_verified",
        "phone_number_verified",
    }
)
# Not writable through UpdateUserAttributes by the user: sub, and the verified flags (only
# VerifyUserAttribute sets them).
_UNWRITABLE_ATTRIBUTES = frozenset({"sub", "email_verified", "phone_number_verified"})


def _code_mismatch(reason: str) -> CognitoError:
    return CognitoError("CodeMismatchException", _CODE_MISMATCH, reason=reason)


def captcha_challenge(username: str, session_history: list[dict[str, Any]]) -> dict[str, Any]:
    """The default CUSTOM_AUTH handler (a stand-in for the Define/Create/Verify Lambda triggers).

    ``session_history`` is the Lambda event's ``request.session``: dicts with ``challengeName``,
    ``challengeResult`` (and ``challengeMetadata``). Return one of
    ``{"issue_tokens": True}``, ``{"fail": True}``, or
    ``{"challenge_parameters": {...public...}, "answer": "expected answer"}``.
    This one asks "What is 3 + 4?" and allows three wrong answers.
    """
    custom = [h for h in session_history if h.get("challengeName") == "CUSTOM_CHALLENGE"]
    if custom and custom[-1].get("challengeResult"):
        return {"issue_tokens": True}
    if len(custom) >= _CODE_ATTEMPTS:
        return {"fail": True}
    return {
        "challenge_parameters": {"type": "captcha", "question": "What is 3 + 4?"},
        "answer": "7",
    }


# --------------------------------------------------------------------------------------------
# The double.
# --------------------------------------------------------------------------------------------


class CognitoDouble:
    """A running Cognito user-pool endpoint on ``url``. Seed it with the methods below."""

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        issuer_style: Literal["local", "aws", "multi_region"] = "local",
        session_ttl: float = 180.0,
        token_ttl: int = 3600,
        refresh_token_ttl: float = 30 * 86400.0,
        timestamp_skew: float = 300.0,
        prevent_user_existence_errors: bool = True,
        require_admin_sigv4: bool = True,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
    ) -> None:
        """``host``/``port``: where to listen (loopback, a free port). ``public_url``: how
        clients reach it when that differs (a container's service name): ``url``, the token
        issuer and the JWKS URL use it."""
        self.region = region
        # Seconds since the epoch, read for sessions, TIMESTAMP checks and token times.
        # Replace it (e.g. ``lambda: time.time() + 3600``) to move the double through time.
        self.clock = clock
        self.issuer_style = issuer_style
        self.session_ttl = session_ttl
        self.token_ttl = token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self.timestamp_skew = timestamp_skew
        self.prevent_user_existence_errors = prevent_user_existence_errors
        self.require_admin_sigv4 = require_admin_sigv4
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures: list[tuple[str, str, str]] = []  # (operation, error code, reason)
        # Threat protection's sign-in history (AdminListUserAuthEvents), oldest first.
        self._auth_events: list[_AuthEvent] = []
        # ip -> (city, country): what Cognito's geolocation would say of an address.
        self.ip_locations: dict[str, tuple[str, str]] = {}
        # operation -> (error code, message): every call to it fails so, as a throttled or
        # locked-out Cognito would answer. Tests set and clear it.
        self.inject_errors: dict[str, tuple[str, str]] = {}
        # A slow, flaky Cognito for fault tests: operation -> seconds each call waits first, and
        # operation -> share of calls (0..1) answered by one of `flaky_errors` in turn.
        self.inject_latency: dict[str, float] = {}
        self.inject_flaky: dict[str, float] = {}
        self.flaky_errors: tuple[tuple[str, str, int], ...] = (
            ("ThrottlingException", "Rate exceeded", 400),
            ("InternalErrorException", "Internal server error", 500),
        )
        self._flaky_rng = random.Random(18)  # noqa: S311 (a test's dice, not a secret)
        self._flaky_turn = 0

        # Handlers run on the server thread while tests seed from theirs: one lock for all state.
        self._lock = threading.RLock()
        self._pools: dict[str, _Pool] = {}
        self._clients: dict[str, _AppClient] = {}
        self._sessions: dict[str, _AuthSession] = {}
        self._srp_blocks: dict[str, str] = {}  # SECRET_BLOCK -> session id
        self._logins: dict[str, _Login] = {}  # origin_jti -> login
        self._refresh_tokens: dict[str, _RefreshToken] = {}
        # The TCP peer of the request being handled: the address Cognito sees when the public
        # API's UserContextData is not honoured.
        self._peer: str | None = None
        self._fake_key = secrets.token_bytes(32)  # stable fake salts for unknown users
        self._sent: dict[tuple[str, str, str], str] = {}  # (pool, user, channel) -> last code
        # (client, username, device key) -> the DEVICE_SRP_AUTH session a password step opened,
        # for clients (pycognito) that answer DEVICE_SRP_AUTH without Session.
        self._device_srp_pending: dict[tuple[str, str, str], str] = {}
        # (pool, username) -> the StartWebAuthnRegistration in progress
        self._registrations: dict[tuple[str, str], _Registration] = {}
        # The account page's APIs: pool -> attributes kept until verified, (pool, user) -> new
        # values pending, credential id -> ListWebAuthnCredentials' description.
        self._keep_original: dict[str, frozenset[str]] = {}
        self._pending_attributes: dict[tuple[str, str], dict[str, str]] = {}
        self._passkey_meta: dict[bytes, dict[str, Any]] = {}

        self._operations: dict[str, _Operation] = {
            "InitiateAuth": self._op_initiate_auth,
            "AdminInitiateAuth": self._op_admin_initiate_auth,
            "RespondToAuthChallenge": self._op_respond_to_auth_challenge,
            "AdminRespondToAuthChallenge": self._op_admin_respond_to_auth_challenge,
            "RevokeToken": self._op_revoke_token,
            "GlobalSignOut": self._op_global_sign_out,
            "AdminUserGlobalSignOut": self._op_admin_user_global_sign_out,
            "GetUser": self._op_get_user,
            "AssociateSoftwareToken": self._op_associate_software_token,
            "VerifySoftwareToken": self._op_verify_software_token,
            "SetUserMFAPreference": self._op_set_user_mfa_preference,
            "AdminSetUserMFAPreference": self._op_admin_set_user_mfa_preference,
            "SignUp": self._op_sign_up,
            "ConfirmSignUp": self._op_confirm_sign_up,
            "ResendConfirmationCode": self._op_resend_confirmation_code,
            "ForgotPassword": self._op_forgot_password,
            "ConfirmForgotPassword": self._op_confirm_forgot_password,
            "ConfirmDevice": self._op_confirm_device,
            "UpdateDeviceStatus": self._op_update_device_status,
            "ListDevices": self._op_list_devices,
            "ForgetDevice": self._op_forget_device,
            "AdminForgetDevice": self._op_admin_forget_device,
            "StartWebAuthnRegistration": self._op_start_webauthn_registration,
            "CompleteWebAuthnRegistration": self._op_complete_webauthn_registration,
            "GetTokensFromRefreshToken": self._op_get_tokens_from_refresh_token,
            "AddUserPoolClientSecret": self._op_add_user_pool_client_secret,
            "DeleteUserPoolClientSecret": self._op_delete_user_pool_client_secret,
            "DescribeUserPoolClient": self._op_describe_user_pool_client,
            "AdminListUserAuthEvents": self._op_admin_list_user_auth_events,
            "AdminUpdateAuthEventFeedback": self._op_admin_update_auth_event_feedback,
            "UpdateAuthEventFeedback": self._op_update_auth_event_feedback,
        }
        self._operations.update(self._account_operations())
        self._iam_operations = frozenset(
            {
                "AdminInitiateAuth",
                "AdminRespondToAuthChallenge",
                "AdminUserGlobalSignOut",
                "AdminSetUserMFAPreference",
                "AdminForgetDevice",
                "AddUserPoolClientSecret",
                "DeleteUserPoolClientSecret",
                "DescribeUserPoolClient",
                "AdminListUserAuthEvents",
                "AdminUpdateAuthEventFeedback",
            }
        )
        self._auth_flows: dict[str, _Step] = {
            "USER_SRP_AUTH": self._flow_user_srp,
            "USER_PASSWORD_AUTH": self._flow_password,
            "ADMIN_USER_PASSWORD_AUTH": self._flow_password,
            "ADMIN_NO_SRP_AUTH": self._flow_password,
            "REFRESH_TOKEN_AUTH": self._flow_refresh,
            "REFRESH_TOKEN": self._flow_refresh,
            "CUSTOM_AUTH": self._flow_custom,
            "USER_AUTH": self._flow_user_auth,
        }
        self._challenges: dict[str, _Step] = {
            "PASSWORD_VERIFIER": self._challenge_password_verifier,
            "NEW_PASSWORD_REQUIRED": self._challenge_new_password,
            "SMS_MFA": self._challenge_sms_mfa,
            "EMAIL_OTP": self._challenge_email_otp,
            "SMS_OTP": self._challenge_sms_otp,
            "SOFTWARE_TOKEN_MFA": self._challenge_software_token_mfa,
            "SELECT_MFA_TYPE": self._challenge_select_mfa_type,
            "MFA_SETUP": self._challenge_mfa_setup,
            "CUSTOM_CHALLENGE": self._challenge_custom,
            "DEVICE_SRP_AUTH": self._challenge_device_srp_auth,
            "DEVICE_PASSWORD_VERIFIER": self._challenge_device_password_verifier,
            "SELECT_CHALLENGE": self._challenge_select_challenge,
            "WEB_AUTHN": self._challenge_web_authn,
        }

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(128)
        bound = self._sock.getsockname()[1]
        self.url = (public_url or f"http://{host}:{bound}").rstrip("/")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="cognito-double", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._startup_error is not None or self._loop is None:
            self._sock.close()
            raise RuntimeError("Cognito double failed to start") from self._startup_error

    # ---- lifecycle ----------------------------------------------------------------------

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_post("/", self._handle_api)
        app.router.add_get("/{pool_id}/.well-known/jwks.json", self._handle_jwks)
        app.router.add_get("/{pool_id}/.well-known/openid-configuration", self._handle_discovery)
        runner = web.AppRunner(app, access_log=None)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, self._sock).start())
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def stop(self) -> None:
        """Stop serving and join the server thread. Idempotent."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=30)
        self._sock.close()

    def __enter__(self) -> CognitoDouble:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- seeding and inspection API --------------------------------------------------------

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client`` / ``aioboto3.Session().client`` (dummy keys)."""
        return {
            "endpoint_url": self.url,
            "region_name": self.region,
            "aws_access_key_id": "AKIDCOGNITODOUBLE",
            "aws_secret_access_key": "cognito-double-secret",
        }

    def create_pool(
        self, *, pool_id: str | None = None, alias_attributes: Iterable[str] = ("email",)
    ) -> str:
        """Create a user pool and its RS256 signing key; returns an id like us-east-1_AbCdEf123."""
        if pool_id is None:
            suffix = _random_string(string.ascii_letters + string.digits, 9)
            pool_id = f"{self.region}_{suffix}"
        elif not re.fullmatch(r"[\w-]+_[0-9a-zA-Z]+", pool_id):
            raise ValueError(f"not a user pool id: {pool_id!r}")
        aliases = frozenset(alias_attributes)
        if not aliases <= _ALIAS_VERIFICATION.keys():
            raise ValueError(f"unsupported alias attributes: {sorted(aliases)}")
        key = self._new_signing_key()
        with self._lock:
            if pool_id in self._pools:
                raise ValueError(f"pool {pool_id} already exists")
            self._pools[pool_id] = _Pool(pool_id, key, aliases)
        return pool_id

    def create_client(
        self,
        pool_id: str,
        *,
        secret: bool = False,
        flows: set[str] | None = None,
        refresh_token_rotation: bool = False,
        retry_grace_period_seconds: int = 0,
        propagate_user_context: bool = False,
    ) -> tuple[str, str | None]:
        """Create an app client; ``flows`` takes ExplicitAuthFlows names with or without ALLOW_.

        Default flows: USER_SRP_AUTH, USER_PASSWORD_AUTH, ADMIN_USER_PASSWORD_AUTH. Refresh is
        always allowed, as in Cognito, except that with ``refresh_token_rotation`` the client
        cannot have ALLOW_REFRESH_TOKEN_AUTH (see ``set_refresh_token_rotation``).
        ``propagate_user_context`` is EnablePropagateAdditionalUserContextData.
        Returns ``(client_id, client_secret or None)``.
        """
        allowed = set(_DEFAULT_CLIENT_FLOWS)
        if flows is not None:
            allowed = {"ALLOW_REFRESH_TOKEN_AUTH"}
            for name in flows:
                normal = _LEGACY_FLOW_NAMES.get(name) or (
                    name if name.startswith("ALLOW_") else f"ALLOW_{name}"
                )
                if normal not in _CLIENT_FLOWS:
                    raise ValueError(f"unknown auth flow {name!r}")
                allowed.add(normal)
        client = _AppClient(
            client_id=_random_string(string.ascii_lowercase + string.digits, 26),
            pool_id=pool_id,
            secrets=[],
            flows=frozenset(allowed),
            propagate_user_context=propagate_user_context,
        )
        if secret:
            client.secrets.append(self._new_client_secret(client, None))
        with self._lock:
            self._pool_or_value_error(pool_id)
            self._clients[client.client_id] = client
        self.set_refresh_token_rotation(
            client.client_id, refresh_token_rotation, retry_grace_period_seconds
        )
        return client.client_id, client.secret

    def set_client_attributes(
        self,
        client_id: str,
        *,
        read: Sequence[str] | None = None,
        write: Sequence[str] | None = None,
    ) -> None:
        """UpdateUserPoolClient's ReadAttributes / WriteAttributes: GetUser shows only the
        readable ones (and sub), UpdateUserAttributes refuses any other than the writable ones
        ("A client attempted to write unauthorized attribute"). None: all of them."""
        with self._lock:
            client = self._app_client(client_id)
            client.read_attributes = None if read is None else frozenset(read)
            client.write_attributes = None if write is None else frozenset(write)

    def set_refresh_token_rotation(
        self, client_id: str, enabled: bool, retry_grace_period_seconds: int = 0
    ) -> None:
        """Like UpdateUserPoolClient's RefreshTokenRotation (Feature, RetryGracePeriodSeconds).

        Cognito documents rotation as incompatible with REFRESH_TOKEN_AUTH ("you must disable
        this authentication flow in your app client"), so turning it on takes
        ALLOW_REFRESH_TOKEN_AUTH off the client, and turning it off puts it back.
        """
        if not 0 <= retry_grace_period_seconds <= 60:
            raise ValueError("RetryGracePeriodSeconds must be between 0 and 60")
        with self._lock:
            client = self._clients.get(client_id)
            if client is None:
                raise ValueError(f"no app client {client_id}")
            client.rotation = enabled
            client.grace_seconds = retry_grace_period_seconds
            refresh = {"ALLOW_REFRESH_TOKEN_AUTH"}
            client.flows = client.flows - refresh if enabled else client.flows | refresh

    def add_client_secret(self, client_id: str, value: str | None = None) -> tuple[str, str]:
        """Like AddUserPoolClientSecret: returns ``(ClientSecretId, secret value)``."""
        with self._lock:
            client = self._clients.get(client_id)
            if client is None:
                raise ValueError(f"no app client {client_id}")
            try:
                added = self._add_client_secret(client, value)
            except CognitoError as exc:
                raise ValueError(exc.message) from None
            return added.secret_id, added.value

    def delete_client_secret(self, client_id: str, secret_id: str) -> None:
        """Like DeleteUserPoolClientSecret (the last secret cannot be deleted)."""
        with self._lock:
            client = self._clients.get(client_id)
            if client is None:
                raise ValueError(f"no app client {client_id}")
            try:
                self._delete_client_secret(client, secret_id)
            except CognitoError as exc:
                raise ValueError(exc.message) from None

    def client_secrets(self, client_id: str) -> list[tuple[str, str]]:
        """``(ClientSecretId, value)`` of each secret of the client, oldest first."""
        with self._lock:
            client = self._clients.get(client_id)
            if client is None:
                raise ValueError(f"no app client {client_id}")
            return [(s.secret_id, s.value) for s in client.secrets]

    def _new_client_secret(self, client: _AppClient, value: str | None) -> _ClientSecret:
        now = self.clock()
        millis = int(now * 1000)
        taken = {s.secret_id for s in client.secrets}
        while f"{client.client_id}--{millis}" in taken:  # two secrets within a millisecond
            millis += 1
        return _ClientSecret(
            secret_id=f"{client.client_id}--{millis}",
            value=value or _random_string(string.ascii_lowercase + string.digits, 52),
            created=now,
        )

    def _add_client_secret(self, client: _AppClient, value: str | None) -> _ClientSecret:
        if value is not None and not re.fullmatch(r"[\w+]{24,64}", value):
            raise _invalid("ClientSecret must be 24 to 64 characters of [\\w+]")
        if not client.secrets:
            raise _invalid(f"App client {client.client_id} is not a confidential client")
        if len(client.secrets) >= _MAX_CLIENT_SECRETS:
            raise CognitoError(
                "LimitExceededException",
                f"App client {client.client_id} already has {_MAX_CLIENT_SECRETS} secrets",
            )
        added = self._new_client_secret(client, value)
        client.secrets.append(added)
        return added

    @staticmethod
    def _delete_client_secret(client: _AppClient, secret_id: str) -> None:
        match = [s for s in client.secrets if s.secret_id == secret_id]
        if not match:
            raise CognitoError("ResourceNotFoundException", f"Client secret {secret_id} not found")
        if len(client.secrets) == 1:
            raise _invalid("The last client secret of an app client cannot be deleted")
        client.secrets.remove(match[0])

    def set_threat_protection(
        self,
        pool_id: str,
        *,
        mode: Literal["ENFORCED", "AUDIT", "OFF"] = "ENFORCED",
        low: str = "NO_ACTION",
        medium: str = "MFA_IF_CONFIGURED",
        high: str = "BLOCK",
        block_compromised_credentials: bool = True,
    ) -> None:
        """Like SetRiskConfiguration + UserPoolAddOns: the action per adaptive-authentication
        risk level (BLOCK, MFA_IF_CONFIGURED, MFA_REQUIRED, NO_ACTION) and whether a compromised
        password blocks sign-in. AUDIT records ``risk_events`` and acts on nothing."""
        actions = {"low": low, "medium": medium, "high": high}
        if not set(actions.values()) <= _RISK_ACTIONS:
            raise ValueError(f"risk actions must be among {sorted(_RISK_ACTIONS)}")
        if mode not in ("ENFORCED", "AUDIT", "OFF"):
            raise ValueError("mode must be ENFORCED, AUDIT or OFF")
        with self._lock:
            pool = self._pool_or_value_error(pool_id)
            if mode == "OFF":
                pool.threat_protection = None
                return
            old = pool.threat_protection
            pool.threat_protection = _ThreatProtection(
                enforced=mode == "ENFORCED",
                actions=actions,
                block_compromised=block_compromised_credentials,
                risks=dict(old.risks) if old else {},
                compromised=set(old.compromised) if old else set(),
            )

    def set_risk(
        self,
        pool_id: str,
        level: Literal["low", "medium", "high"] | None,
        *,
        username: str | None = None,
        ip_address: str | None = None,
    ) -> None:
        """What Cognito's risk model would conclude for sign-ins by ``username`` or from
        ``ip_address`` (the address Cognito sees: see the module docstring). None clears it.
        The highest level that applies wins."""
        if level is not None and level not in _RISK_LEVELS:
            raise ValueError(f"level must be one of {_RISK_LEVELS}")
        if (username is None) == (ip_address is None):
            raise ValueError("give exactly one of username and ip_address")
        key = f"user:{username}" if username is not None else f"ip:{ip_address}"
        with self._lock:
            protection = self._threat_protection_or_value_error(pool_id)
            if level is None:
                protection.risks.pop(key, None)
            else:
                protection.risks[key] = level

    def add_compromised_password(self, pool_id: str, password: str) -> None:
        """A password Cognito's compromised-credentials list knows."""
        with self._lock:
            self._threat_protection_or_value_error(pool_id).compromised.add(
                hashlib.sha256(password.encode()).hexdigest()
            )

    def risk_events(self, pool_id: str) -> list[tuple[str, str, str, str | None]]:
        """``(username, risk level, action, ip address seen)`` of each assessed sign-in."""
        with self._lock:
            protection = self._threat_protection_or_value_error(pool_id)
            return list(protection.events)

    def _threat_protection_or_value_error(self, pool_id: str) -> _ThreatProtection:
        protection = self._pool_or_value_error(pool_id).threat_protection
        if protection is None:
            raise ValueError(f"threat protection is off for {pool_id}: set_threat_protection()")
        return protection

    def add_user(
        self,
        pool_id: str,
        username: str,
        password: str,
        *,
        attributes: dict[str, str] | None = None,
        groups: list[str] | None = None,
        status: str = "CONFIRMED",
        enabled: bool = True,
        mfa: Sequence[Literal["SMS_MFA", "EMAIL_OTP", "SOFTWARE_TOKEN_MFA"]] = (),
        preferred_mfa: str | None = None,
        totp_secret: str | None = None,
    ) -> str:
        """Add a user; returns its ``sub``.

        A user with an ``email`` can sign in with it (alias) once ``email_verified`` is "true",
        which is filled in for you unless you pass it, as AdminCreateUser setups usually do
        (likewise ``phone_number_verified`` for a ``phone_number``).

        ``mfa`` enables MFA types (SMS_MFA needs ``attributes["phone_number"]``, EMAIL_OTP an
        ``email``); SOFTWARE_TOKEN_MFA without ``totp_secret`` gets a fresh secret, readable with
        ``totp_secret()``. Several types and no ``preferred_mfa`` → SELECT_MFA_TYPE at sign-in.
        """
        if status not in _USER_STATUSES:
            raise ValueError(f"status must be one of {sorted(_USER_STATUSES)}")
        attrs = dict(attributes or {})
        if "email" in attrs:
            attrs.setdefault("email_verified", "true")
        if "phone_number" in attrs:
            attrs.setdefault("phone_number_verified", "true")
        unknown = set(mfa) - set(_MFA_TYPES)
        if unknown:
            raise ValueError(f"unknown MFA types {sorted(unknown)}; use {_MFA_TYPES}")
        if "SMS_MFA" in mfa and "phone_number" not in attrs:
            raise ValueError("SMS_MFA needs attributes['phone_number']")
        if "EMAIL_OTP" in mfa and "email" not in attrs:
            raise ValueError("EMAIL_OTP needs attributes['email']")
        if preferred_mfa is not None and preferred_mfa not in mfa:
            raise ValueError("preferred_mfa must be one of the user's mfa types")
        if "SOFTWARE_TOKEN_MFA" in mfa and totp_secret is None:
            totp_secret = new_totp_secret()
        sub = str(uuid.uuid4())
        attrs.pop("sub", None)
        with self._lock:
            pool = self._pool_or_value_error(pool_id)
            if username in pool.users:
                raise ValueError(f"user {username!r} already exists in {pool_id}")
            for alias in self._usable_aliases(pool, attrs):
                if self._find_user(pool, alias) is not None:
                    raise ValueError(f"alias {alias!r} already belongs to another user")
            salt = secrets.randbits(128)
            pool.users[username] = _User(
                username=username,
                sub=sub,
                password=password,
                salt=salt,
                verifier=_srp_verifier(pool.name, username, password, salt),
                attributes=attrs,
                groups=list(groups or []),
                status=status,
                enabled=enabled,
                mfa=[m for m in _MFA_TYPES if m in mfa],
                preferred_mfa=preferred_mfa,
                totp_secret=totp_secret,
                device_group_key="-" + _random_string(string.ascii_letters + string.digits, 9),
            )
        return sub

    def set_password(
        self, pool_id: str, username: str, password: str, *, permanent: bool = True
    ) -> None:
        """Like AdminSetUserPassword: non-permanent leaves the user in FORCE_CHANGE_PASSWORD."""
        with self._lock:
            user = self._user_or_value_error(pool_id, username)
            self._store_password(self._pools[pool_id], user, password)
            user.status = "CONFIRMED" if permanent else "FORCE_CHANGE_PASSWORD"

    def set_user_enabled(self, pool_id: str, username: str, enabled: bool) -> None:
        """Like AdminDisableUser / AdminEnableUser."""
        with self._lock:
            self._user_or_value_error(pool_id, username).enabled = enabled

    def user_info(self, pool_id: str, username: str) -> dict[str, Any]:
        """A snapshot of a user's stored state, for assertions."""
        with self._lock:
            user = self._user_or_value_error(pool_id, username)
            return {
                "username": user.username,
                "sub": user.sub,
                "status": user.status,
                "enabled": user.enabled,
                "attributes": dict(user.attributes),
                "groups": list(user.groups),
                "mfa": list(user.mfa),
                "preferred_mfa": user.preferred_mfa,
                "passkeys": len(user.passkeys),
            }

    def set_pool_mfa(
        self,
        pool_id: str,
        mode: Literal["OFF", "ON", "OPTIONAL"],
        *,
        factors: Sequence[str] = ("SOFTWARE_TOKEN_MFA",),
    ) -> None:
        """Like SetUserPoolMfaConfig. ON + a user without MFA → MFA_SETUP at sign-in."""
        if mode not in ("OFF", "ON", "OPTIONAL"):
            raise ValueError("mode must be OFF, ON or OPTIONAL")
        if not set(factors) <= set(_MFA_TYPES):
            raise ValueError(f"factors must be among {_MFA_TYPES}")
        with self._lock:
            pool = self._pool_or_value_error(pool_id)
            pool.mfa_mode = mode
            pool.mfa_factors = tuple(f for f in _MFA_TYPES if f in factors)

    def set_required_attributes(self, pool_id: str, names: Sequence[str]) -> None:
        """Attributes the pool requires: NEW_PASSWORD_REQUIRED asks for the missing ones."""
        with self._lock:
            self._pool_or_value_error(pool_id).required_attributes = tuple(names)

    def set_custom_auth(self, pool_id: str, handler: CustomAuthHandler | None) -> None:
        """Install the CUSTOM_AUTH decision handler (see ``captcha_challenge``)."""
        with self._lock:
            self._pool_or_value_error(pool_id).custom_auth = handler

    def set_device_tracking(
        self,
        pool_id: str,
        *,
        challenge_required_on_new_device: bool = True,
        remembered: Literal["always", "user_opt_in"] = "user_opt_in",
    ) -> None:
        """Like the pool's DeviceConfiguration.

        ``challenge_required_on_new_device``: a remembered device signs in with device SRP
        instead of MFA (when False, devices are tracked but MFA is still asked).
        ``remembered="always"``: ConfirmDevice remembers at once (UserConfirmationNecessary
        false); ``"user_opt_in"``: UpdateDeviceStatus(remembered) is needed.
        """
        if remembered not in ("always", "user_opt_in"):
            raise ValueError("remembered must be 'always' or 'user_opt_in'")
        with self._lock:
            self._pool_or_value_error(pool_id).device_tracking = _DeviceTracking(
                challenge_required_on_new_device, remembered
            )

    def set_user_auth(
        self,
        pool_id: str,
        allowed_first_auth_factors: Sequence[str] = (
            "PASSWORD",
            "EMAIL_OTP",
            "SMS_OTP",
            "WEB_AUTHN",
        ),
        *,
        relying_party_id: str | None = None,
        allowed_origins: Sequence[str] = (),
        user_verification: Literal["required", "preferred"] = "preferred",
    ) -> None:
        """Like SignInPolicy + WebAuthnConfiguration, for the USER_AUTH (choice-based) flow.

        The app client still needs ALLOW_USER_AUTH. WebAuthn origins accepted:
        ``https://<rpId>`` plus ``allowed_origins`` (e.g. ``http://localhost:8080`` for tests).
        """
        if not set(allowed_first_auth_factors) <= set(_FIRST_FACTORS):
            raise ValueError(f"factors must be among {_FIRST_FACTORS}")
        with self._lock:
            pool = self._pool_or_value_error(pool_id)
            pool.first_factors = tuple(allowed_first_auth_factors)
            pool.relying_party_id = relying_party_id
            pool.allowed_origins = tuple(allowed_origins)
            pool.user_verification = user_verification

    def register_passkey(
        self,
        pool_id: str,
        username: str,
        credential_id: bytes,
        public_key: ec.EllipticCurvePublicKey,
        rp_id: str,
        *,
        user_handle: bytes | None = None,
    ) -> None:
        """Seed a WebAuthn credential (e.g. a ``SoftwareAuthenticator``'s) for a user."""
        with self._lock:
            user = self._user_or_value_error(pool_id, username)
            passkey = Passkey(credential_id, public_key, rp_id, 0, user_handle)
            user.passkeys.append(passkey)
            self._note_passkey(passkey, None)

    def last_code(
        self, pool_id: str, username: str, channel: Literal["SMS", "EMAIL"]
    ) -> str | None:
        """The last code the double "sent" this user over ``channel`` (MFA, OTP sign-in,
        ForgotPassword, sign-up confirmation), or None."""
        with self._lock:
            return self._sent.get((pool_id, username, channel))

    def totp_secret(self, pool_id: str, username: str) -> str | None:
        """The user's verified TOTP secret (seeded, or set by AssociateSoftwareToken+Verify)."""
        with self._lock:
            return self._user_or_value_error(pool_id, username).totp_secret

    def devices(self, pool_id: str, username: str) -> list[dict[str, Any]]:
        """Snapshot of the user's tracked devices, for assertions."""
        with self._lock:
            user = self._user_or_value_error(pool_id, username)
            return [
                {
                    "key": d.key,
                    "group_key": d.group_key,
                    "name": d.name,
                    "confirmed": d.confirmed,
                    "remembered": d.remembered,
                    "last_ip": d.last_ip,
                }
                for d in user.devices.values()
            ]

    def context_data(self, operation: str) -> list[dict[str, Any] | None]:
        """ContextData (Admin* calls) or UserContextData (public calls) of each call, oldest
        first: what the proxy told Cognito about the end user (IpAddress, headers...)."""
        return [
            body.get("ContextData") or body.get("UserContextData")
            for body in self.calls_to(operation)
        ]

    def issuer(self, pool_id: str) -> str:
        """The ``iss`` of tokens minted now (``issuer_style`` may change while running)."""
        return self._issuers(pool_id)[self.issuer_style]

    def _issuers(self, pool_id: str) -> dict[str, str]:
        return {
            "local": f"{self.url}/{pool_id}",
            "aws": f"https://cognito-idp.{self.region}.amazonaws.com/{pool_id}",
            # Multi-Region replication (2026): one issuer for the pool in every Region.
            "multi_region": f"https://issuer-cognito-idp.{self.region}.amazonaws.com/{pool_id}",
        }

    def jwks_url(self, pool_id: str) -> str:
        return f"{self.url}/{pool_id}/.well-known/jwks.json"

    def calls_to(self, operation: str) -> list[dict[str, Any]]:
        """Request bodies of every call to ``operation``, oldest first."""
        return [body for name, body in list(self.calls) if name == operation]

    # ---- HTTP layer -----------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(_TARGET_PREFIX) if target.startswith(_TARGET_PREFIX) else ""
        raw = await request.read()
        try:
            try:
                body = json.loads(raw) if raw else {}
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                self.calls.append((operation or target, {}))
                raise CognitoError("SerializationException", "Request body is not JSON") from exc
            if not isinstance(body, dict):
                raise CognitoError("SerializationException", "Request body must be a JSON object")
            self.calls.append((operation or target, body))
            handler = self._operations.get(operation)
            if handler is None:
                raise CognitoError(
                    "UnknownOperationException", "", reason=f"unknown X-Amz-Target {target!r}"
                )
            injected = self.inject_errors.get(operation)
            if injected is not None:
                raise CognitoError(injected[0], injected[1], reason="injected by the test")
            delay = self.inject_latency.get(operation)
            if delay:
                await asyncio.sleep(delay)
            if self._flaky_rng.random() < self.inject_flaky.get(operation, 0.0):
                self._flaky_turn += 1
                code, message, status = self.flaky_errors[self._flaky_turn % len(self.flaky_errors)]
                raise CognitoError(code, message, status=status, reason="injected: flaky Cognito")
            if operation in self._iam_operations and self.require_admin_sigv4:
                self._check_sigv4(request.headers.get("Authorization", ""))
            with self._lock:
                self._peer = request.remote
                result = handler(body, request.headers)
        except CognitoError as err:
            self.failures.append((operation or target, err.code, err.reason))
            return self._json_response(
                {"__type": err.code, "message": err.message},
                status=err.status,
                extra={"x-amzn-ErrorType": f"{err.code}:"},
            )
        except Exception:
            # A bug in the double: report it loudly instead of letting botocore retry silently.
            detail = traceback.format_exc()
            log.error("cognito double crashed handling %s:\n%s", operation, detail)
            self.failures.append((operation, "InternalErrorException", detail))
            return self._json_response(
                {"__type": "InternalErrorException", "message": "Internal error in test double"},
                status=500,
            )
        return self._json_response(result)

    @staticmethod
    def _json_response(
        payload: dict[str, Any], *, status: int = 200, extra: Mapping[str, str] | None = None
    ) -> web.Response:
        headers = {"Content-Type": _JSON_CONTENT_TYPE, "x-amzn-RequestId": str(uuid.uuid4())}
        headers.update(extra or {})
        return web.Response(body=json.dumps(payload).encode(), status=status, headers=headers)

    async def _handle_jwks(self, request: web.Request) -> web.Response:
        with self._lock:
            pool = self._pools.get(request.match_info["pool_id"])
            if pool is None:
                return web.json_response({"message": "User pool does not exist"}, status=404)
            return web.json_response({"keys": [dict(pool.key.jwk)]})

    async def _handle_discovery(self, request: web.Request) -> web.Response:
        pool_id = request.match_info["pool_id"]
        with self._lock:
            if pool_id not in self._pools:
                return web.json_response({"message": "User pool does not exist"}, status=404)
        return web.json_response(
            {
                "issuer": self.issuer(pool_id),
                "jwks_uri": self.jwks_url(pool_id),
                "id_token_signing_alg_values_supported": ["RS256"],
                "subject_types_supported": ["public"],
            }
        )

    def _check_sigv4(self, authorization: str) -> None:
        if not authorization:
            raise CognitoError(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
                reason="IAM operation without SigV4 Authorization header",
            )
        match = _SIGV4_RE.match(authorization)
        if match is None:
            raise CognitoError(
                "IncompleteSignatureException", "Authorization header is not a SigV4 signature"
            )
        if match["region"] != self.region:
            raise CognitoError(
                "InvalidSignatureException",
                "Credential should be scoped to a valid region. ",
                reason=f"credential scoped to {match['region']}, double runs {self.region}",
            )
        if match["service"] != "cognito-idp":
            raise CognitoError(
                "InvalidSignatureException",
                "Credential should be scoped to correct service: 'cognito-idp'. ",
            )

    # ---- lookups --------------------------------------------------------------------------

    def _pool_or_value_error(self, pool_id: str) -> _Pool:
        pool = self._pools.get(pool_id)
        if pool is None:
            raise ValueError(f"no user pool {pool_id}")
        return pool

    def _user_or_value_error(self, pool_id: str, username: str) -> _User:
        user = self._pool_or_value_error(pool_id).users.get(username)
        if user is None:
            raise ValueError(f"no user {username!r} in {pool_id}")
        return user

    def _pool(self, pool_id: str) -> _Pool:
        pool = self._pools.get(pool_id)
        if pool is None:
            raise CognitoError("ResourceNotFoundException", f"User pool {pool_id} does not exist.")
        return pool

    def _app_client(self, client_id: str, pool_id: str | None = None) -> _AppClient:
        client = self._clients.get(client_id)
        if client is None or (pool_id is not None and client.pool_id != pool_id):
            raise CognitoError(
                "ResourceNotFoundException", f"User pool client {client_id} does not exist."
            )
        return client

    @staticmethod
    def _usable_aliases(pool: _Pool, attributes: Mapping[str, str]) -> list[str]:
        """Alias values this user can sign in with (emails lower-cased: they match any case)."""
        aliases = []
        for name in pool.alias_attributes:
            value = attributes.get(name)
            verified_by = _ALIAS_VERIFICATION[name]
            if value and (verified_by is None or attributes.get(verified_by) == "true"):
                aliases.append(value.lower() if name == "email" else value)
        return aliases

    def _find_user(self, pool: _Pool, name: str) -> _User | None:
        """By username, else by a verified alias."""
        user = pool.users.get(name)
        if user is not None:
            return user
        for candidate in pool.users.values():
            aliases = self._usable_aliases(pool, candidate.attributes)
            if name in aliases or ("@" in name and name.lower() in aliases):
                return candidate
        return None

    def _admin_user(self, body: Mapping[str, Any]) -> tuple[_Pool, _User]:
        """The pool and user an Admin call names (UserPoolId, Username or a verified alias)."""
        pool = self._pool(_required_str(body, "UserPoolId"))
        user = self._find_user(pool, _required_str(body, "Username"))
        if user is None:
            raise CognitoError("UserNotFoundException", "User does not exist.")
        return pool, user

    def _store_password(self, pool: _Pool, user: _User, password: str) -> None:
        user.password = password
        user.salt = secrets.randbits(128)
        user.verifier = _srp_verifier(pool.name, user.username, password, user.salt)

    # ---- SECRET_HASH ----------------------------------------------------------------------

    @staticmethod
    def _check_secret_hash(
        client: _AppClient, usernames: Iterable[str], provided: str | None
    ) -> None:
        if not client.secrets:
            if provided is not None:
                raise _invalid(
                    f"App client {client.client_id} is not configured for secret but "
                    "secret hash was received"
                )
            return
        if not provided:
            raise _not_authorized(
                f"Client {client.client_id} is configured with secret but SECRET_HASH was not "
                "received"
            )
        expected = [
            _secret_hash(secret.value, name, client.client_id)
            for secret in client.secrets
            for name in usernames
        ]
        # Evaluate every candidate so timing does not depend on which one matched.
        if not any([_same(provided, candidate) for candidate in expected]):
            raise _not_authorized(f"Unable to verify secret hash for client {client.client_id}")

    # ---- operations -----------------------------------------------------------------------

    def _op_initiate_auth(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        client = self._app_client(_required_str(body, "ClientId"))
        return self._initiate(body, "InitiateAuth", self._pools[client.pool_id], client)

    def _op_admin_initiate_auth(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        return self._initiate(body, "AdminInitiateAuth", *self._admin_auth_client(body))

    def _admin_auth_client(self, body: Mapping[str, Any]) -> tuple[_Pool, _AppClient]:
        """The pool and app client of AdminInitiateAuth / AdminRespondToAuthChallenge: the
        client must belong to the named pool, and ContextData, when sent, must be well formed."""
        pool = self._pool(_required_str(body, "UserPoolId"))
        client = self._app_client(_required_str(body, "ClientId"), pool.pool_id)
        self._check_context_data(body.get("ContextData"))
        return pool, client

    def _initiate(
        self, body: dict[str, Any], operation: str, pool: _Pool, client: _AppClient
    ) -> dict[str, Any]:
        admin = operation.startswith("Admin")
        flow = _required_str(body, "AuthFlow")
        if flow not in _FLOW_PERMISSION:
            raise _invalid(
                f"1 validation error detected: Value '{flow}' at 'authFlow' failed to satisfy "
                f"constraint: Member must satisfy enum value set: {sorted(_FLOW_PERMISSION)}"
            )
        if flow not in (_ADMIN_FLOWS if admin else _PUBLIC_FLOWS):
            raise _invalid("Initiate Auth method not supported.")
        if _FLOW_PERMISSION[flow] not in client.flows:
            raise _invalid(f"{flow} flow not enabled for this client")
        handler = self._auth_flows.get(flow)
        if handler is None:
            raise _invalid(f"{flow} is not implemented by the Cognito test double")
        params = _string_map(body, "AuthParameters")
        self._check_user_context_data(body.get("UserContextData"))
        return handler(_Ctx(operation, pool, client, params, body, params.get("DEVICE_KEY")))

    def _op_respond_to_auth_challenge(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        client = self._app_client(_required_str(body, "ClientId"))
        return self._respond(body, "RespondToAuthChallenge", self._pools[client.pool_id], client)

    def _op_admin_respond_to_auth_challenge(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        return self._respond(body, "AdminRespondToAuthChallenge", *self._admin_auth_client(body))

    def _respond(
        self, body: dict[str, Any], operation: str, pool: _Pool, client: _AppClient
    ) -> dict[str, Any]:
        name = _required_str(body, "ChallengeName")
        handler = self._challenges.get(name)
        if handler is None:
            raise _invalid(f"Challenge {name} is not supported by the Cognito test double")
        params = _string_map(body, "ChallengeResponses")
        self._check_user_context_data(body.get("UserContextData"))
        return handler(_Ctx(operation, pool, client, params, body, params.get("DEVICE_KEY")))

    def _op_revoke_token(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        token = _required_str(body, "Token")
        client = self._app_client(_required_str(body, "ClientId"))
        if not self._client_secret_ok(client, body.get("ClientSecret")):
            raise CognitoError(
                "UnauthorizedException",
                "Client authentication failed",
                reason="RevokeToken without the right ClientSecret",
            )
        record = self._refresh_tokens.get(token)
        if record is None:
            if token.count(".") == 2:  # a JWT: an id/access token, not a refresh token
                raise CognitoError("UnsupportedTokenTypeException", "Unsupported token type")
            return {}  # RFC 7009: revoking an unknown token is not an error
        # Any token of a rotation chain revokes the whole login (every token it issued).
        login = self._logins[record.origin_jti]
        if login.client_id != client.client_id:
            raise CognitoError(
                "UnauthorizedException",
                "Token was not issued to this client",
                reason=f"refresh token belongs to client {login.client_id}",
            )
        login.revoked = True
        return {}

    def _client_secret_ok(self, client: _AppClient, provided: Any) -> bool:
        """A ClientSecret parameter (RevokeToken, GetTokensFromRefreshToken): any current
        secret of a confidential client; a public client must send none."""
        if not client.secrets:
            if provided is not None:
                raise _invalid(f"Client {client.client_id} is not configured with a secret")
            return True
        if not isinstance(provided, str):
            return False
        return any([_same(provided, secret.value) for secret in client.secrets])

    def _op_get_tokens_from_refresh_token(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        token = _required_str(body, "RefreshToken")
        client = self._app_client(_required_str(body, "ClientId"))
        pool = self._pools[client.pool_id]
        provided = body.get("ClientSecret")
        if not self._client_secret_ok(client, provided):
            message = (
                f"Client {client.client_id} is configured with secret but ClientSecret was not "
                "received"
                if provided is None
                else f"Unable to verify client secret for client {client.client_id}"
            )
            raise _not_authorized(message)
        device_key = body.get("DeviceKey")
        if device_key is not None and not isinstance(device_key, str):
            raise CognitoError("SerializationException", "DeviceKey must be a string")
        _string_map(body, "ClientMetadata")
        login, user, record = self._refresh_login(pool, client, token)
        self._check_refresh(login, user, record, device_key, rotating_operation=True)
        if not client.rotation:
            return {"AuthenticationResult": self._mint_tokens(pool, client, user, login)}
        # Rotation: a new refresh token for the same login; the presented one stays usable for
        # the grace period from its first replacement (a retry after a lost answer), then
        # RefreshTokenReuseException. Cognito does not document what a retry inside the grace
        # period returns: the double issues yet another new refresh token, and the one the
        # first call returned stays valid too.
        now = self.clock()
        if record.valid_until is None:
            record.valid_until = now + client.grace_seconds
        login.refresh_token = secrets.token_urlsafe(384)
        self._refresh_tokens[login.refresh_token] = _RefreshToken(login.origin_jti)
        # The login's expiry bounds every token of the chain (a replacement runs out when the
        # token it replaced would have).
        result = self._mint_tokens(pool, client, user, login, with_refresh=True)
        return {"AuthenticationResult": result}

    def _op_add_user_pool_client_secret(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool = self._pool(_required_str(body, "UserPoolId"))
        client = self._app_client(_required_str(body, "ClientId"), pool.pool_id)
        value = body.get("ClientSecret")
        if value is not None and not isinstance(value, str):
            raise CognitoError("SerializationException", "ClientSecret must be a string")
        added = self._add_client_secret(client, value)
        descriptor: dict[str, Any] = {
            "ClientSecretId": added.secret_id,
            "ClientSecretCreateDate": added.created,
        }
        if value is None:  # only a secret Cognito generated is sent back
            descriptor["ClientSecretValue"] = added.value
        return {"ClientSecretDescriptor": descriptor}

    def _op_delete_user_pool_client_secret(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool = self._pool(_required_str(body, "UserPoolId"))
        client = self._app_client(_required_str(body, "ClientId"), pool.pool_id)
        self._delete_client_secret(client, _required_str(body, "ClientSecretId"))
        return {}

    def _op_describe_user_pool_client(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """The members of UserPoolClientType the double models (the rest are not sent)."""
        pool = self._pool(_required_str(body, "UserPoolId"))
        client = self._app_client(_required_str(body, "ClientId"), pool.pool_id)
        described: dict[str, Any] = {
            "UserPoolId": pool.pool_id,
            "ClientId": client.client_id,
            "ExplicitAuthFlows": sorted(client.flows),
            "PreventUserExistenceErrors": "ENABLED"
            if self.prevent_user_existence_errors
            else "LEGACY",
            "EnableTokenRevocation": True,
            "EnablePropagateAdditionalUserContextData": client.propagate_user_context,
            "RefreshTokenRotation": {
                "Feature": "ENABLED" if client.rotation else "DISABLED",
                "RetryGracePeriodSeconds": client.grace_seconds,
            },
        }
        if client.secret is not None:
            described["ClientSecret"] = client.secret
        return {"UserPoolClient": described}

    def _op_global_sign_out(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
        self._revoke_user(pool, user)
        return {}

    def _op_admin_user_global_sign_out(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, user = self._admin_user(body)
        self._revoke_user(pool, user)
        return {}

    def _op_get_user(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        _, user, login = self._verify_access_token(_required_str(body, "AccessToken"))
        readable = self._clients[login.client_id].read_attributes
        attributes = [{"Name": "sub", "Value": user.sub}]
        attributes += [
            {"Name": k, "Value": v}
            for k, v in user.attributes.items()
            if readable is None or k in readable
        ]
        result: dict[str, Any] = {"Username": user.username, "UserAttributes": attributes}
        if user.mfa:
            result["UserMFASettingList"] = list(user.mfa)
        if user.preferred_mfa:
            result["PreferredMfaSetting"] = user.preferred_mfa
        return result

    @staticmethod
    def _check_context_data(context: Any) -> None:
        """ContextData is only recorded (via ``calls``), but its shape is checked."""
        if context is None:
            return
        required = ("IpAddress", "ServerName", "ServerPath", "HttpHeaders")
        if not isinstance(context, dict) or any(k not in context for k in required):
            raise _invalid(f"ContextData must contain {', '.join(required)}")
        headers = context["HttpHeaders"]
        if not isinstance(headers, list) or not all(
            isinstance(h, dict) and set(h) <= {"headerName", "headerValue"} for h in headers
        ):
            raise _invalid("ContextData.HttpHeaders must be a list of headerName/headerValue")

    @staticmethod
    def _check_user_context_data(context: Any) -> None:
        """UserContextData is only recorded (via ``calls``), but its shape is checked."""
        if context is None:
            return
        if not isinstance(context, dict) or not set(context) <= {"IpAddress", "EncodedData"}:
            raise _invalid("UserContextData may contain only IpAddress and EncodedData")
        if not all(isinstance(v, str) for v in context.values()):
            raise _invalid("UserContextData values must be strings")

    # ---- TOTP association and MFA preferences ----------------------------------------------

    def _setup_session(self, body: Mapping[str, Any], stage: str) -> _AuthSession:
        """An MFA_SETUP session at ``stage``, found by Session alone (these calls carry no
        ClientId); not yet marked used."""
        session_id = _required_str(body, "Session")
        session = self._sessions.get(session_id)
        if session is None or session.challenge != "MFA_SETUP" or session.consumed:
            raise _not_authorized(_INVALID_SESSION, reason="no live MFA_SETUP session")
        if self.clock() > session.expires_at:
            raise _not_authorized(
                "Invalid session for the user, session is expired.", reason="session expired"
            )
        if session.state.get("stage") != stage:
            raise _not_authorized(
                _INVALID_SESSION, reason=f"MFA_SETUP session at {session.state.get('stage')}"
            )
        return session

    def _follow_session(self, session: _AuthSession, state: dict[str, Any]) -> _AuthSession:
        """A fresh MFA_SETUP session continuing ``session`` (which is spent)."""
        session.consumed = True
        follow = _AuthSession(
            session_id=secrets.token_urlsafe(192),
            pool_id=session.pool_id,
            client_id=session.client_id,
            username=session.username,
            challenge="MFA_SETUP",
            expires_at=self.clock() + self.session_ttl,
            state={**session.state, **state},
        )
        self._sessions[follow.session_id] = follow
        return follow

    def _op_associate_software_token(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        secret = new_totp_secret()
        if body.get("AccessToken") is not None:
            _, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
            user.totp_pending = secret
            return {"SecretCode": secret}
        # Associating again before verifying replaces the secret, as in Cognito.
        try:
            session = self._setup_session(body, "new")
        except CognitoError:
            session = self._setup_session(body, "associated")
        follow = self._follow_session(session, {"stage": "associated", "secret": secret})
        return {"SecretCode": secret, "Session": follow.session_id}

    def _op_verify_software_token(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        code = _required_str(body, "UserCode")
        if not re.fullmatch(r"[0-9]{6}", code):  # SoftwareTokenMFAUserCodeType
            raise _invalid(
                "1 validation error detected: Value at 'userCode' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: [0-9]+ and length 6"
            )
        device_name = body.get("FriendlyDeviceName")
        if device_name is not None and not isinstance(device_name, str):
            raise CognitoError("SerializationException", "FriendlyDeviceName must be a string")
        mismatch = CognitoError("EnableSoftwareTokenMFAException", "Code mismatch")
        if body.get("AccessToken") is not None:
            _, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
            if user.totp_pending is None:
                raise _invalid("User has not associated a software token", reason="no pending")
            step = totp_matching_step(user.totp_pending, code, self.clock())
            if step is None:
                raise mismatch
            # Verified only: SetUserMFAPreference enables it (the double's reading of the docs).
            user.totp_secret, user.totp_pending = user.totp_pending, None
            user.totp_device_name = device_name
            user.totp_last_step = step
            return {"Status": "SUCCESS"}
        session = self._setup_session(body, "associated")
        step = totp_matching_step(session.state["secret"], code, self.clock())
        if step is None:
            session.state["attempts"] = session.state.get("attempts", 0) + 1
            if session.state["attempts"] >= _CODE_ATTEMPTS:
                session.consumed = True
            mismatch.reason = "wrong TOTP code during MFA_SETUP"
            raise mismatch
        follow = self._follow_session(
            session, {"stage": "verified", "step": step, "device_name": device_name}
        )
        return {"Status": "SUCCESS", "Session": follow.session_id}

    def _op_set_user_mfa_preference(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        _, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
        self._apply_mfa_preference(user, body)
        return {}

    def _op_admin_set_user_mfa_preference(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        _, user = self._admin_user(body)
        self._apply_mfa_preference(user, body)
        return {}

    def _apply_mfa_preference(self, user: _User, body: Mapping[str, Any]) -> None:
        settings_names = {
            "SMSMfaSettings": "SMS_MFA",
            "EmailMfaSettings": "EMAIL_OTP",
            "SoftwareTokenMfaSettings": "SOFTWARE_TOKEN_MFA",
        }
        enabled = set(user.mfa)
        preferred = user.preferred_mfa
        for member, kind in settings_names.items():
            settings = body.get(member)
            if settings is None:
                continue
            if not isinstance(settings, dict):
                raise CognitoError("SerializationException", f"{member} must be an object")
            if settings.get("Enabled") is True:
                if kind == "SMS_MFA" and not user.attributes.get("phone_number"):
                    raise _invalid("User does not have a phone number for SMS MFA")
                if kind == "EMAIL_OTP" and not user.attributes.get("email"):
                    raise _invalid("User does not have an email for email MFA")
                if kind == "SOFTWARE_TOKEN_MFA" and user.totp_secret is None:
                    raise _invalid("User has not verified software token mfa")
                enabled.add(kind)
            elif settings.get("Enabled") is False:
                enabled.discard(kind)
                preferred = None if preferred == kind else preferred
            if settings.get("PreferredMfa") is True:
                if kind not in enabled:
                    raise _invalid(f"{kind} must be enabled to be preferred")
                preferred = kind
        user.mfa = [m for m in _MFA_TYPES if m in enabled]
        user.preferred_mfa = preferred

    # ---- sign-up and forgotten passwords ------------------------------------------------------

    def _public_user(self, body: Mapping[str, Any]) -> tuple[_Pool, _AppClient, str, _User | None]:
        """ClientId, Username and SecretHash of a public user operation, checked."""
        client = self._app_client(_required_str(body, "ClientId"))
        pool = self._pools[client.pool_id]
        username = _required_str(body, "Username")
        user = self._find_user(pool, username)
        provided = body.get("SecretHash")
        names = [username] + ([user.username] if user else [])
        self._check_secret_hash(client, names, provided if isinstance(provided, str) else None)
        return pool, client, username, user

    def _deliver(
        self, pool: _Pool, user: _User, purpose: str, ttl: float, *, verified_only: bool
    ) -> dict[str, str] | None:
        """Send a ``purpose`` code by email (else SMS); returns CodeDeliveryDetails."""
        for attribute, channel in (("email", "EMAIL"), ("phone_number", "SMS")):
            usable = (
                self._verified(user, attribute) if verified_only else user.attributes.get(attribute)
            )
            if usable:
                code = self._send_code(pool, user, channel)
                user.codes[purpose] = _PendingCode(code, self.clock() + ttl)
                return {
                    "Destination": self._delivery_parameters(user, channel)[
                        "CODE_DELIVERY_DESTINATION"
                    ],
                    "DeliveryMedium": channel,
                    "AttributeName": attribute,
                }
        return None

    @staticmethod
    def _fake_delivery(username: str) -> dict[str, str]:
        # Prevent-user-existence: look like a delivery, send nothing.
        address = username if "@" in username else f"{username}@example.com"
        return {
            "Destination": mask_email(address),
            "DeliveryMedium": "EMAIL",
            "AttributeName": "email",
        }

    def _check_confirmation(self, user: _User, purpose: str, code: str) -> None:
        pending = user.codes.get(purpose)
        if pending is None:
            raise CognitoError(
                "CodeMismatchException",
                "Invalid verification code provided, please try again.",
                reason=f"no {purpose} code outstanding",
            )
        if self.clock() > pending.expires_at:
            del user.codes[purpose]
            raise CognitoError(
                "ExpiredCodeException", "Invalid code provided, please request a code again."
            )
        if not _same(code, pending.code):
            pending.attempts += 1
            if pending.attempts >= _CONFIRMATION_ATTEMPTS:
                del user.codes[purpose]
                raise CognitoError(
                    "LimitExceededException", "Attempt limit exceeded, please try after some time."
                )
            raise CognitoError(
                "CodeMismatchException", "Invalid verification code provided, please try again."
            )

    def _op_sign_up(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        pool, _, username, user = self._public_user(body)
        password = _required_str(body, "Password")
        if user is not None:
            raise CognitoError("UsernameExistsException", "User already exists")
        self._check_password_policy(password)
        raw = body.get("UserAttributes") or []
        if not isinstance(raw, list) or not all(
            isinstance(a, dict)
            and isinstance(a.get("Name"), str)
            and isinstance(a.get("Value"), str)
            for a in raw
        ):
            raise CognitoError("SerializationException", "UserAttributes must be Name/Value pairs")
        attributes = {a["Name"]: a["Value"] for a in raw}
        if {"email_verified", "phone_number_verified", "sub"} & attributes.keys():
            # Only a delivered code (or an admin) may verify an attribute.
            raise _not_authorized("A client attempted to write unauthorized attribute")
        if "email" in attributes:
            attributes.setdefault("email_verified", "false")
        if "phone_number" in attributes:
            attributes.setdefault("phone_number_verified", "false")
        try:
            sub = self.add_user(
                pool.pool_id, username, password, attributes=attributes, status="UNCONFIRMED"
            )
        except ValueError as exc:  # a seeding rule the request broke: a client error, not a 500
            raise _invalid(str(exc)) from None
        new_user = pool.users[username]
        details = self._deliver(pool, new_user, "signup", _SIGNUP_CODE_TTL, verified_only=False)
        result: dict[str, Any] = {"UserConfirmed": False, "UserSub": sub}
        if details is not None:
            result["CodeDeliveryDetails"] = details
        return result

    def _op_confirm_sign_up(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        _, _, _, user = self._public_user(body)
        code = _required_str(body, "ConfirmationCode")
        if user is None:
            if not self.prevent_user_existence_errors:
                raise CognitoError("UserNotFoundException", "User does not exist.")
            raise CognitoError(
                "CodeMismatchException", "Invalid verification code provided, please try again."
            )
        if user.status != "UNCONFIRMED":
            raise _not_authorized(f"User cannot be confirmed. Current status is {user.status}")
        self._check_confirmation(user, "signup", code)
        del user.codes["signup"]
        user.status = "CONFIRMED"
        for attribute in ("email", "phone_number"):  # the delivery proved the first one
            if user.attributes.get(attribute):
                user.attributes[f"{attribute}_verified"] = "true"
                break
        return {}

    def _op_resend_confirmation_code(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, _, username, user = self._public_user(body)
        if user is None:
            if not self.prevent_user_existence_errors:
                raise CognitoError("UserNotFoundException", "User does not exist.")
            return {"CodeDeliveryDetails": self._fake_delivery(username)}
        if user.status != "UNCONFIRMED":
            raise _invalid("User is already confirmed.")
        details = self._deliver(pool, user, "signup", _SIGNUP_CODE_TTL, verified_only=False)
        if details is None:
            raise _invalid("User has no email or phone_number to send a code to")
        return {"CodeDeliveryDetails": details}

    def _op_forgot_password(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        self._check_user_context_data(body.get("UserContextData"))
        pool, _, username, user = self._public_user(body)
        if user is None:
            if not self.prevent_user_existence_errors:
                raise CognitoError("UserNotFoundException", "User does not exist.")
            return {"CodeDeliveryDetails": self._fake_delivery(username)}
        if not user.enabled:
            raise _not_authorized("User is disabled.")
        no_target = _invalid(
            "Cannot reset password for the user as there is no registered/verified email or "
            "phone_number"
        )
        if user.status == "UNCONFIRMED":
            raise no_target
        if user.status == "FORCE_CHANGE_PASSWORD":
            # An invited user has only a temporary password: it must sign in and change it.
            raise _not_authorized("User password cannot be reset in the current state.")
        details = self._deliver(pool, user, "forgot", _FORGOT_CODE_TTL, verified_only=True)
        if details is None:
            raise no_target
        return {"CodeDeliveryDetails": details}

    def _op_confirm_forgot_password(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        self._check_user_context_data(body.get("UserContextData"))
        pool, _, _, user = self._public_user(body)
        code = _required_str(body, "ConfirmationCode")
        password = _required_str(body, "Password")
        if user is None:
            if not self.prevent_user_existence_errors:
                raise CognitoError("UserNotFoundException", "User does not exist.")
            raise CognitoError(
                "CodeMismatchException", "Invalid verification code provided, please try again."
            )
        # Policy first: a rejected password leaves the code usable for another try.
        self._check_password_policy(password)
        self._check_confirmation(user, "forgot", code)
        del user.codes["forgot"]
        self._store_password(pool, user, password)
        user.status = "CONFIRMED"
        return {}

    # ---- devices --------------------------------------------------------------------------

    def _token_device(self, body: Mapping[str, Any]) -> tuple[_Pool, _User, _Login, _Device]:
        pool, user, login = self._verify_access_token(_required_str(body, "AccessToken"))
        device = user.devices.get(_required_str(body, "DeviceKey"))
        if device is None:
            raise CognitoError("ResourceNotFoundException", "Device does not exist.")
        return pool, user, login, device

    def _op_confirm_device(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, _, login, device = self._token_device(body)
        tracking = pool.device_tracking
        if tracking is None:
            raise _invalid("Device tracking is not enabled for this user pool")
        if login.device_key != device.key:
            # The access token must come from the sign-in that reported this device.
            raise _invalid("Invalid device key given.", reason="token is from another device")
        config = body.get("DeviceSecretVerifierConfig")
        try:
            if not isinstance(config, dict):
                raise ValueError
            verifier = base64.b64decode(config["PasswordVerifier"], validate=True)
            salt = base64.b64decode(config["Salt"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise _invalid(
                "DeviceSecretVerifierConfig needs base64 PasswordVerifier and Salt"
            ) from None
        if not verifier or not salt:
            raise _invalid("DeviceSecretVerifierConfig needs base64 PasswordVerifier and Salt")
        name = body.get("DeviceName")
        device.verifier = _to_int(verifier)
        device.salt = salt
        device.name = name if isinstance(name, str) else None
        device.remembered = tracking.remembered == "always"
        return {"UserConfirmationNecessary": tracking.remembered == "user_opt_in"}

    def _op_update_device_status(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        _, _, _, device = self._token_device(body)
        status = body.get("DeviceRememberedStatus")
        if status not in ("remembered", "not_remembered"):
            raise _invalid("DeviceRememberedStatus must be remembered or not_remembered")
        if not device.confirmed:
            raise _invalid("Device is not confirmed")
        device.remembered = status == "remembered"
        return {}

    @staticmethod
    def _device_type(device: _Device) -> dict[str, Any]:
        attributes = [
            {"Name": "device_status", "Value": "valid"},
            {
                "Name": "dev:device_remembered_status",
                "Value": "remembered" if device.remembered else "not_remembered",
            },
        ]
        if device.name:
            attributes.append({"Name": "device_name", "Value": device.name})
        if device.last_ip:
            attributes.append({"Name": "last_ip_used", "Value": device.last_ip})
        return {
            "DeviceKey": device.key,
            "DeviceAttributes": attributes,
            "DeviceCreateDate": device.created,
            "DeviceLastModifiedDate": device.created,
            "DeviceLastAuthenticatedDate": device.last_authenticated or device.created,
        }

    def _op_list_devices(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        _, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
        return {"Devices": [self._device_type(d) for d in user.devices.values() if d.confirmed]}

    def _op_forget_device(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        # Cognito lets AccessToken be omitted; the double requires it (it has no other way to
        # know the caller).
        _, user, _, device = self._token_device(body)
        del user.devices[device.key]
        return {}

    def _op_admin_forget_device(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        _, user = self._admin_user(body)
        if user.devices.pop(_required_str(body, "DeviceKey"), None) is None:
            raise CognitoError("ResourceNotFoundException", "Device does not exist.")
        return {}

    # ---- passkey registration ------------------------------------------------------------------

    def _webauthn_rp(self, pool: _Pool) -> str:
        if "WEB_AUTHN" not in pool.first_factors:
            raise CognitoError("WebAuthnNotEnabledException", "WebAuthn is not enabled.")
        if pool.relying_party_id is None:
            raise CognitoError(
                "WebAuthnConfigurationMissingException",
                "WebAuthn relying party is not configured (set_user_auth(relying_party_id=...)).",
            )
        return pool.relying_party_id

    def _op_start_webauthn_registration(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, user, login = self._verify_access_token(_required_str(body, "AccessToken"))
        rp_id = self._webauthn_rp(pool)
        self._check_passkey_room(user)
        challenge = secrets.token_bytes(32)
        # One registration in progress per user: a new Start replaces the last one's challenge.
        self._registrations[(pool.pool_id, user.username)] = _Registration(
            challenge, login.client_id, self.clock() + self.session_ttl
        )
        options = {
            "challenge": b64url(challenge),
            "rp": {"id": rp_id, "name": rp_id},
            "user": {
                "id": b64url(user.sub.encode()),
                "name": user.username,
                "displayName": user.attributes.get("email", user.username),
            },
            # Cognito also offers RS256 (-257); the double verifies ES256 only, so it offers that.
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
            "timeout": int(self.session_ttl * 1000),
            "excludeCredentials": [
                {"type": "public-key", "id": b64url(p.credential_id)} for p in user.passkeys
            ],
            "authenticatorSelection": {
                "requireResidentKey": True,
                "residentKey": "required",
                "userVerification": pool.user_verification,
            },
        }
        return {"CredentialCreationOptions": options}

    @staticmethod
    def _check_passkey_room(user: _User) -> None:
        # Cognito's reference lists LimitExceededException for both calls without a number;
        # the double caps a user's passkeys at _MAX_PASSKEYS (a plausible choice).
        if len(user.passkeys) >= _MAX_PASSKEYS:
            raise CognitoError(
                "LimitExceededException",
                f"The user has the maximum number of passkeys ({_MAX_PASSKEYS}).",
            )

    def _op_complete_webauthn_registration(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, user, login = self._verify_access_token(_required_str(body, "AccessToken"))
        rp_id = self._webauthn_rp(pool)
        credential = body.get("Credential")
        if not isinstance(credential, dict):
            raise _invalid("Credential must be a RegistrationResponseJSON document")
        key = (pool.pool_id, user.username)
        pending = self._registrations.get(key)
        if pending is None or self.clock() > pending.expires_at:
            self._registrations.pop(key, None)
            raise CognitoError(
                "WebAuthnChallengeNotFoundException", "No WebAuthn registration in progress."
            )
        if pending.client_id != login.client_id:
            raise CognitoError(
                "WebAuthnClientMismatchException",
                "The access token is for another client than StartWebAuthnRegistration's.",
                reason=f"started by {pending.client_id}, completed by {login.client_id}",
            )
        del self._registrations[key]  # one answer per challenge, right or wrong
        try:
            passkey = verify_registration(
                credential,
                challenge=pending.challenge,
                rp_id=rp_id,
                # A page on the rpId or any of its subdomains (over https), and the test
                # origins given to set_user_auth.
                origins=(f"https://{rp_id}", f"https://*.{rp_id}", *pool.allowed_origins),
                require_user_verification=pool.user_verification == "required",
                user_handle=user.sub.encode(),
            )
        except WebAuthnError as exc:
            code, message = _REGISTRATION_ERRORS.get(
                exc.kind, ("InvalidParameterException", "Invalid credential.")
            )
            raise CognitoError(code, message, reason=f"WebAuthn registration: {exc}") from None
        if any(p.credential_id == passkey.credential_id for p in user.passkeys):
            raise CognitoError(
                "WebAuthnCredentialNotSupportedException", "Credential already registered."
            )
        self._check_passkey_room(user)
        user.passkeys.append(passkey)
        self._note_passkey(passkey, credential)
        return {}

    # ---- auth flows -----------------------------------------------------------------------

    def _flow_user_srp(self, ctx: _Ctx) -> dict[str, Any]:
        username = _param(ctx.params, "USERNAME")
        self._check_secret_hash(ctx.client, [username], ctx.params.get("SECRET_HASH"))
        return self._srp_challenge(ctx, username, _param(ctx.params, "SRP_A"))

    @staticmethod
    def _srp_start(srp_a_hex: str, verifier: int) -> tuple[int, bytes]:
        """The server half of SRP: returns (B, the HKDF key both sides derive)."""
        try:
            big_a = int(srp_a_hex, 16)
        except ValueError:
            raise _invalid("SRP_A is not a hexadecimal number") from None
        if big_a % _N == 0:
            raise _invalid("SRP_A is 0 modulo N", reason="client sent A = 0 mod N")
        while True:
            small_b = secrets.randbits(256)
            big_b = (_K * verifier + pow(_G, small_b, _N)) % _N
            u = _to_int(_sha256(_pad(big_a), _pad(big_b)))
            if big_b != 0 and u != 0:
                break
        shared_s = pow(big_a * pow(verifier, u, _N) % _N, small_b, _N)
        return big_b, _srp_hkdf(shared_s, u)

    def _srp_challenge(
        self, ctx: _Ctx, username: str, srp_a_hex: str, *, custom: bool = False
    ) -> dict[str, Any]:
        """PASSWORD_VERIFIER for ``username`` (USER_SRP_AUTH, CUSTOM_AUTH with SRP_A, or
        USER_AUTH's PASSWORD_SRP)."""
        user = self._find_user(ctx.pool, username)
        if user is None:
            if not self.prevent_user_existence_errors:
                raise CognitoError("UserNotFoundException", "User does not exist.")
            # Cognito answers unknown users with a plausible challenge that can never verify.
            user_id = username
            seed = hmac.new(self._fake_key, f"{ctx.pool.pool_id}\0{username}".encode(), "sha256")
            salt = _to_int(seed.digest()[:16])
            verifier = pow(_G, _to_int(seed.digest()), _N)
        else:
            if not user.enabled:
                raise _not_authorized("User is disabled.")
            user_id, salt, verifier = user.username, user.salt, user.verifier

        big_b, hkdf_key = self._srp_start(srp_a_hex, verifier)
        secret_block = base64.b64encode(secrets.token_bytes(192)).decode()
        session = self._new_session(
            ctx,
            username=user_id,
            challenge="PASSWORD_VERIFIER",
            state={
                "secret_block": secret_block,
                "hkdf": hkdf_key,
                "known_user": user is not None,
                "custom": custom,
            },
        )
        self._srp_blocks[secret_block] = session.session_id
        return {
            "ChallengeName": "PASSWORD_VERIFIER",
            "Session": session.session_id,
            "ChallengeParameters": {
                "SALT": format(salt, "x"),
                "SRP_B": format(big_b, "x"),
                "SECRET_BLOCK": secret_block,
                "USERNAME": user_id,
                "USER_ID_FOR_SRP": user_id,
            },
        }

    def _flow_password(self, ctx: _Ctx) -> dict[str, Any]:
        username = _param(ctx.params, "USERNAME")
        password = _param(ctx.params, "PASSWORD")
        self._check_secret_hash(ctx.client, [username], ctx.params.get("SECRET_HASH"))
        user = self._find_user(ctx.pool, username)
        if user is None:
            if not self.prevent_user_existence_errors:
                raise CognitoError("UserNotFoundException", "User does not exist.")
            raise _not_authorized(_BAD_CREDENTIALS, reason=f"no user {username!r}")
        if not user.enabled:
            raise _not_authorized("User is disabled.")
        self._check_password(user, password, ctx)
        self._check_compromised(ctx, user, password)
        return self._next_step(ctx, user)

    # ---- Cognito's lockout and compromised credentials ------------------------------------

    def _check_lockout(self, user: _User) -> None:
        """Refuse any password attempt while the user is locked out (even a right one)."""
        now = self.clock()
        if user.failed_attempts and now - user.last_attempt >= _LOCKOUT_RESET:
            user.failed_attempts = 0  # 15 minutes without an attempt: back to the start
            user.locked_until = 0.0
        user.last_attempt = now
        if now < user.locked_until:
            raise _not_authorized(
                _ATTEMPTS_EXCEEDED,
                reason=f"{user.username} locked out for {user.locked_until - now:.1f}s more",
            )

    def _wrong_password(self, user: _User, reason: str, ctx: _Ctx | None = None) -> CognitoError:
        """A wrong password: counted toward the lockout, and logged as a failed sign-in (when
        ``ctx`` is a sign-in)."""
        if ctx is not None:
            self._log_event(ctx, user, "Fail", [("Password", "Failure")])
        user.failed_attempts += 1
        if user.failed_attempts >= _LOCKOUT_FREE_FAILURES:
            lockout = min(2.0 ** (user.failed_attempts - _LOCKOUT_FREE_FAILURES), _LOCKOUT_MAX)
            user.locked_until = self.clock() + lockout
        return _not_authorized(_BAD_CREDENTIALS, reason=reason)

    @staticmethod
    def _right_password(user: _User) -> None:
        user.failed_attempts = 0
        user.locked_until = 0.0

    def _check_password(self, user: _User, password: str, ctx: _Ctx | None = None) -> None:
        self._check_lockout(user)
        if not _same(password, user.password):
            raise self._wrong_password(user, f"wrong password for {user.username}", ctx)
        self._right_password(user)

    def _check_compromised(self, ctx: _Ctx, user: _User, password: str) -> None:
        """Plain password flows only: with SRP Cognito never sees the password."""
        protection = ctx.pool.threat_protection
        if protection is None:
            return
        if hashlib.sha256(password.encode()).hexdigest() not in protection.compromised:
            return
        action = "BLOCK" if protection.enforced and protection.block_compromised else "NO_ACTION"
        protection.events.append((user.username, "compromised", action, self._risk_ip(ctx)))
        if action == "BLOCK":
            self._log_event(
                ctx, user, "Fail", [("Password", "Success")], decision="Block", compromised=True
            )
            # "When Amazon Cognito blocks sign-in for a user, it sets the user's UserStatus to
            # RESET_REQUIRED": this and every later sign-in answer PasswordResetRequired.
            user.status = "RESET_REQUIRED"
            self._check_status(user)

    # ---- adaptive authentication ----------------------------------------------------------

    def _risk_ip(self, ctx: _Ctx) -> str | None:
        """The end user's address as Cognito sees it for this request."""
        if ctx.operation.startswith("Admin"):
            return self._client_ip({"ContextData": ctx.body.get("ContextData")}) or self._peer
        if ctx.client.secrets and ctx.client.propagate_user_context:
            return self._client_ip({"UserContextData": ctx.body.get("UserContextData")}) or (
                self._peer
            )
        return self._peer

    def _assess_risk(self, ctx: _Ctx, user: _User) -> str:
        """The action threat protection takes on this sign-in (NO_ACTION when off)."""
        protection = ctx.pool.threat_protection
        if protection is None:
            return "NO_ACTION"
        ip = self._risk_ip(ctx)
        found = [protection.risks.get(f"user:{user.username}"), protection.risks.get(f"ip:{ip}")]
        levels = [level for level in found if level is not None]
        level = max(levels, key=_RISK_LEVELS.index) if levels else "low"
        action = protection.actions[level] if protection.enforced else "NO_ACTION"
        protection.events.append((user.username, level, action, ip))
        decision = {"NO_ACTION": "NoRisk", "BLOCK": "Block"}.get(action, "AccountTakeover")
        password = "PASSWORD" in ctx.params or ctx.body.get("ChallengeName") == "PASSWORD_VERIFIER"
        self._log_event(
            ctx,
            user,
            "Fail" if action == "BLOCK" else "InProgress",
            [("Password", "Success")] if password else [],
            decision=decision,
            level=level,
        )
        return action

    def _risk_level(self, ctx: _Ctx, user: _User) -> str:
        protection = ctx.pool.threat_protection
        if protection is None:
            return "low"
        ip = self._risk_ip(ctx)
        found = [protection.risks.get(f"user:{user.username}"), protection.risks.get(f"ip:{ip}")]
        levels = [level for level in found if level is not None]
        return max(levels, key=_RISK_LEVELS.index) if levels else "low"

    def _log_event(
        self,
        ctx: _Ctx,
        user: _User,
        response: str,
        challenges: list[tuple[str, str]],
        *,
        decision: str = "NoRisk",
        level: str | None = None,
        compromised: bool = False,
    ) -> None:
        """Start this sign-in's auth event, or update the one its session carries: threat
        protection logs every attempt (nothing without it)."""
        if ctx.pool.threat_protection is None:
            return
        event = self._event(ctx.event) if ctx.event else None
        if event is None or event.username != user.username:
            event = _AuthEvent(
                event_id=str(uuid.uuid4()),
                pool_id=ctx.pool.pool_id,
                username=user.username,
                created=self.clock(),
                response=response,
                risk_level=level or self._risk_level(ctx, user),
                decision=decision,
                ip=self._risk_ip(ctx),
            )
            self._auth_events.append(event)
            ctx.event = event.event_id
        event.response = response
        event.challenges.extend(challenges)
        event.compromised = event.compromised or compromised
        if level is not None:
            event.risk_level = level
        if decision != "NoRisk":
            event.decision = decision

    def _event(self, event_id: str) -> _AuthEvent | None:
        return next((e for e in self._auth_events if e.event_id == event_id), None)

    def _risk_mfa(self, ctx: _Ctx, user: _User, action: str) -> dict[str, Any] | None:
        """The MFA challenge adaptive authentication asks for a user who would get none.

        A factor the user has (enabled, or a verified phone/email the pool allows as a factor,
        or a TOTP secret) is used; MFA_REQUIRED without any blocks the sign-in.
        """
        if action not in ("MFA_IF_CONFIGURED", "MFA_REQUIRED"):
            return None
        pool = ctx.pool
        usable = [m for m in user.mfa if m in pool.mfa_factors]
        if not usable:
            if "SMS_MFA" in pool.mfa_factors and self._verified(user, "phone_number"):
                usable = ["SMS_MFA"]
            elif "EMAIL_OTP" in pool.mfa_factors and self._verified(user, "email"):
                usable = ["EMAIL_OTP"]
            elif "SOFTWARE_TOKEN_MFA" in pool.mfa_factors and user.totp_secret:
                usable = ["SOFTWARE_TOKEN_MFA"]
        if pool.mfa_mode == "OFF" or not usable:
            if action == "MFA_REQUIRED":
                raise _not_authorized(_BLOCKED, reason="risk MFA required, no factor usable")
            return None
        chosen = user.preferred_mfa if user.preferred_mfa in usable else usable[0]
        return self._mfa_challenge(ctx, user, chosen)

    def _flow_refresh(self, ctx: _Ctx) -> dict[str, Any]:
        token = _param(ctx.params, "REFRESH_TOKEN")
        login, user, record = self._refresh_login(ctx.pool, ctx.client, token)
        # Cognito hashes the internal username here; accept it or the sub.
        names = [user.username, user.sub]
        self._check_secret_hash(ctx.client, names, ctx.params.get("SECRET_HASH"))
        self._check_refresh(login, user, record, ctx.params.get("DEVICE_KEY"))
        return {
            "ChallengeParameters": {},
            "AuthenticationResult": self._mint_tokens(ctx.pool, ctx.client, user, login),
        }

    def _refresh_login(
        self, pool: _Pool, client: _AppClient, token: str
    ) -> tuple[_Login, _User, _RefreshToken]:
        record = self._refresh_tokens.get(token)
        login = self._logins.get(record.origin_jti) if record else None
        if record is None or login is None or login.client_id != client.client_id:
            raise _not_authorized("Invalid Refresh Token", reason="unknown or foreign token")
        user = pool.users.get(login.username)
        if user is None:
            raise _not_authorized("Invalid Refresh Token", reason="user no longer exists")
        return login, user, record

    def _check_refresh(
        self,
        login: _Login,
        user: _User,
        record: _RefreshToken,
        device_key: str | None,
        *,
        rotating_operation: bool = False,
    ) -> None:
        """Revocation, rotation, expiry, the user, and the device the tokens belong to."""
        if login.revoked:
            raise _not_authorized("Refresh Token has been revoked")
        if record.valid_until is not None and self.clock() > record.valid_until:
            if rotating_operation:
                raise CognitoError(
                    "RefreshTokenReuseException",
                    "The refresh token has been rotated and its grace period is over.",
                )
            raise _not_authorized("Invalid Refresh Token", reason="token replaced by rotation")
        if self.clock() > login.refresh_expires_at:
            raise _not_authorized("Refresh Token has expired")
        if not user.enabled:
            raise _not_authorized("User is disabled.")
        if login.device_key is not None:
            # With device tracking the tokens are linked to one device (AWS blog "Tracking and
            # remembering devices"; GetTokensFromRefreshToken: "You must provide the confirmed
            # device key"): refresh needs its key, a device confirmed with ConfirmDevice, and
            # fails once the device is forgotten.
            device = user.devices.get(login.device_key)
            presented = device_key or ""
            if device is None or not device.confirmed or not _same(presented, device.key):
                reason = (
                    "device forgotten"
                    if device is None
                    else "device not confirmed"
                    if not device.confirmed
                    else "DEVICE_KEY missing or not the token's device"
                )
                raise _not_authorized("Invalid Refresh Token", reason=reason)

    # ---- what follows a first factor ------------------------------------------------------

    @staticmethod
    def _check_status(user: _User) -> None:
        if user.status == "UNCONFIRMED":
            raise CognitoError("UserNotConfirmedException", "User is not confirmed.")
        if user.status == "RESET_REQUIRED":
            raise CognitoError(
                "PasswordResetRequiredException", "Password reset required for the user"
            )

    def _next_step(self, ctx: _Ctx, user: _User) -> dict[str, Any]:
        """What follows a verified password: a further challenge, or tokens.

        Order: account status, NEW_PASSWORD_REQUIRED, device SRP for a remembered device
        (which replaces MFA), MFA (MFA_SETUP, SELECT_MFA_TYPE, SMS_MFA, EMAIL_OTP,
        SOFTWARE_TOKEN_MFA), then tokens.
        """
        self._check_status(user)
        risk_action = self._assess_risk(ctx, user)
        if risk_action == "BLOCK":
            raise _not_authorized(_BLOCKED, reason="threat protection blocked a risky sign-in")
        if user.status == "FORCE_CHANGE_PASSWORD":
            session = self._new_session(
                ctx, username=user.username, challenge="NEW_PASSWORD_REQUIRED"
            )
            hidden = {"email_verified", "phone_number_verified"}
            visible = {k: v for k, v in user.attributes.items() if k not in hidden}
            missing = [
                f"userAttributes.{name}"
                for name in ctx.pool.required_attributes
                if not user.attributes.get(name)
            ]
            return {
                "ChallengeName": "NEW_PASSWORD_REQUIRED",
                "Session": session.session_id,
                "ChallengeParameters": {
                    "USER_ID_FOR_SRP": user.username,
                    "requiredAttributes": json.dumps(missing),
                    "userAttributes": json.dumps(visible),
                },
            }
        device = self._remembered_device(ctx, user)
        if device is not None:
            session = self._new_session(
                ctx,
                username=user.username,
                challenge="DEVICE_SRP_AUTH",
                state={"device_key": device.key},
            )
            key = (ctx.client.client_id, user.username, device.key)
            self._device_srp_pending[key] = session.session_id
            return {
                "ChallengeName": "DEVICE_SRP_AUTH",
                "Session": session.session_id,
                "ChallengeParameters": {},
            }
        mfa = self._mfa_step(ctx, user) or self._risk_mfa(ctx, user, risk_action)
        if mfa is not None:
            return mfa
        return self._issue(ctx, user)

    def _remembered_device(self, ctx: _Ctx, user: _User) -> _Device | None:
        tracking = ctx.pool.device_tracking
        if tracking is None or not ctx.device_key:
            return None
        device = user.devices.get(ctx.device_key)
        # Docs: with ChallengeRequiredOnNewDevice false, remembering a device does not replace
        # MFA; the double then skips device SRP altogether (the docs do not say more).
        if device is None or not device.confirmed or not device.remembered:
            return None
        return device if tracking.challenge_required_on_new_device else None

    def _mfa_step(self, ctx: _Ctx, user: _User) -> dict[str, Any] | None:
        pool = ctx.pool
        if pool.mfa_mode == "OFF":
            return None
        enabled = [m for m in user.mfa if m in pool.mfa_factors]
        if not enabled and pool.mfa_mode == "ON":
            # Required MFA and none set up: a verified phone or email the pool accepts as a
            # factor is used as is (as Cognito does); otherwise the user must set up TOTP.
            if "SMS_MFA" in pool.mfa_factors and self._verified(user, "phone_number"):
                enabled = ["SMS_MFA"]
            elif "EMAIL_OTP" in pool.mfa_factors and self._verified(user, "email"):
                enabled = ["EMAIL_OTP"]
            elif "SOFTWARE_TOKEN_MFA" in pool.mfa_factors:
                # Only TOTP can be set up through MFA_SETUP in the double.
                session = self._new_session(
                    ctx, username=user.username, challenge="MFA_SETUP", state={"stage": "new"}
                )
                return {
                    "ChallengeName": "MFA_SETUP",
                    "Session": session.session_id,
                    "ChallengeParameters": {"MFAS_CAN_SETUP": '["SOFTWARE_TOKEN_MFA"]'},
                }
            else:
                raise _not_authorized(
                    "User has no MFA method and none can be set up.",
                    reason="pool MFA is ON but no factor is usable for this user",
                )
        if not enabled:
            return None
        if user.preferred_mfa in enabled:
            chosen = user.preferred_mfa
        elif len(enabled) == 1:
            chosen = enabled[0]
        else:
            session = self._new_session(
                ctx,
                username=user.username,
                challenge="SELECT_MFA_TYPE",
                state={"choices": enabled},
            )
            return {
                "ChallengeName": "SELECT_MFA_TYPE",
                "Session": session.session_id,
                "ChallengeParameters": {"MFAS_CAN_CHOOSE": json.dumps(enabled)},
            }
        return self._mfa_challenge(ctx, user, chosen)

    def _mfa_challenge(
        self, ctx: _Ctx, user: _User, kind: str, *, first_factor: bool = False
    ) -> dict[str, Any]:
        """Send (or, for TOTP, expect) a code: SMS_MFA, EMAIL_OTP, SOFTWARE_TOKEN_MFA, SMS_OTP."""
        state: dict[str, Any] = {"attempts": 0, "first_factor": first_factor}
        parameters: dict[str, str] = {}
        if kind == "SOFTWARE_TOKEN_MFA":
            if user.totp_device_name:
                parameters["FRIENDLY_DEVICE_NAME"] = user.totp_device_name
        else:
            channel = "EMAIL" if kind == "EMAIL_OTP" else "SMS"
            state["code"] = self._send_code(ctx.pool, user, channel)
            parameters = self._delivery_parameters(user, channel)
        session = self._new_session(ctx, username=user.username, challenge=kind, state=state)
        return {
            "ChallengeName": kind,
            "Session": session.session_id,
            "ChallengeParameters": parameters,
        }

    @staticmethod
    def _verified(user: _User, attribute: str) -> bool:
        return bool(user.attributes.get(attribute)) and (
            user.attributes.get(f"{attribute}_verified") == "true"
        )

    def _send_code(self, pool: _Pool, user: _User, channel: str) -> str:
        """ "Deliver" a fresh code: ``last_code`` reads it, nothing leaves the process."""
        code = new_code()
        self._sent[(pool.pool_id, user.username, channel)] = code
        return code

    @staticmethod
    def _delivery_parameters(user: _User, channel: str) -> dict[str, str]:
        if channel == "EMAIL":
            destination = mask_email(user.attributes.get("email", ""))
        else:
            destination = mask_phone(user.attributes.get("phone_number", ""))
        return {
            "CODE_DELIVERY_DELIVERY_MEDIUM": channel,
            "CODE_DELIVERY_DESTINATION": destination,
        }

    def _issue(self, ctx: _Ctx, user: _User) -> dict[str, Any]:
        """Tokens for a completed sign-in, plus NewDeviceMetadata when a new device is tracked."""
        tracking = ctx.pool.device_tracking
        device_key: str | None = None
        new_device: dict[str, str] | None = None
        if tracking is not None:
            known = user.devices.get(ctx.device_key) if ctx.device_key else None
            now = self.clock()
            if known is None:
                known = _Device(
                    key=f"{self.region}_{uuid.uuid4()}",
                    group_key=user.device_group_key,
                    created=now,
                )
                user.devices[known.key] = known
                new_device = {"DeviceKey": known.key, "DeviceGroupKey": known.group_key}
            known.last_authenticated = now
            known.last_ip = self._client_ip(ctx.body)
            device_key = known.key
        login = self._new_login(ctx, user, device_key)
        if ctx.event is not None:
            answered_mfa = ctx.body.get("ChallengeName") in (*_MFA_TYPES, "SMS_OTP")
            self._log_event(ctx, user, "Pass", [("Mfa", "Success")] if answered_mfa else [])
        result = self._mint_tokens(ctx.pool, ctx.client, user, login, with_refresh=True)
        if new_device is not None:
            result["NewDeviceMetadata"] = new_device
        return {"ChallengeParameters": {}, "AuthenticationResult": result}

    @staticmethod
    def _client_ip(body: Mapping[str, Any]) -> str | None:
        for name in ("ContextData", "UserContextData"):
            context = body.get(name)
            if isinstance(context, dict) and isinstance(context.get("IpAddress"), str):
                return str(context["IpAddress"])
        return None

    # ---- challenge sessions ---------------------------------------------------------------

    def _new_session(
        self,
        ctx: _Ctx,
        *,
        username: str,
        challenge: str,
        state: dict[str, Any] | None = None,
    ) -> _AuthSession:
        full_state = {"device_key": ctx.device_key, **(state or {})}
        if ctx.event is not None:
            full_state["event"] = ctx.event
        session = _AuthSession(
            session_id=secrets.token_urlsafe(192),
            pool_id=ctx.pool.pool_id,
            client_id=ctx.client.client_id,
            username=username,
            challenge=challenge,
            expires_at=self.clock() + self.session_ttl,
            state=full_state,
        )
        self._sessions[session.session_id] = session
        return session

    def _live_session(self, ctx: _Ctx, session_id: str | None, challenge: str) -> _AuthSession:
        """The live session for this client and challenge (not yet marked used)."""
        session = self._sessions.get(session_id) if session_id else None
        if session is None:
            raise _not_authorized(_INVALID_SESSION, reason="unknown session")
        if session.consumed:
            raise _not_authorized(
                "Invalid session for the user, session can only be used once.",
                reason="session replayed",
            )
        if self.clock() > session.expires_at:
            raise _not_authorized(
                "Invalid session for the user, session is expired.", reason="session expired"
            )
        if session.client_id != ctx.client.client_id or session.challenge != challenge:
            raise _not_authorized(
                _INVALID_SESSION,
                reason=f"session is for {session.challenge} on client {session.client_id}",
            )
        if session.state.get("device_key"):
            ctx.device_key = session.state["device_key"]
        if session.state.get("event"):
            ctx.event = session.state["event"]
        return session

    def _claim_session(self, ctx: _Ctx, session_id: str | None, challenge: str) -> _AuthSession:
        """Return the live session for this client and challenge, marking it used."""
        session = self._live_session(ctx, session_id, challenge)
        session.consumed = True
        return session

    def _session_user(
        self, ctx: _Ctx, challenge: str, *, consume: bool = True
    ) -> tuple[_AuthSession, _User]:
        """The challenge's session (``Session`` required) and its user, who must be the one
        named by the response's USERNAME (a session from user A never signs in user B)."""
        username = _param(ctx.params, "USERNAME")
        session = self._live_session(ctx, _required_str(ctx.body, "Session"), challenge)
        self._check_secret_hash(
            ctx.client, [username, session.username], ctx.params.get("SECRET_HASH")
        )
        user = ctx.pool.users.get(session.username)
        if user is None or self._find_user(ctx.pool, username) is not user:
            raise _not_authorized(
                _INVALID_SESSION,
                reason=f"USERNAME {username!r} is not the session's user {session.username!r}",
            )
        if not user.enabled:
            raise _not_authorized("User is disabled.")
        if consume:
            session.consumed = True
        return session, user

    def _mfa_failed(
        self, ctx: _Ctx, user: _User, session: _AuthSession, reason: str
    ) -> CognitoError:
        """A wrong code: the sign-in's auth event says so (Fail, unless a later code passes)."""
        self._log_event(ctx, user, "Fail", [("Mfa", "Failure")])
        return self._wrong_answer(session, reason)

    @staticmethod
    def _wrong_answer(session: _AuthSession, reason: str) -> CognitoError:
        """Count a wrong code: the same session may try again until _CODE_ATTEMPTS."""
        session.state["attempts"] = session.state.get("attempts", 0) + 1
        if session.state["attempts"] >= _CODE_ATTEMPTS:
            session.consumed = True
            return _not_authorized(_INVALID_SESSION, reason=f"{reason}; too many attempts")
        return _code_mismatch(reason)

    # ---- SRP challenges -------------------------------------------------------------------

    def _verify_claim(
        self, session: _AuthSession, *, prefix: bytes, timestamp: str, signature: str
    ) -> bool:
        """Check TIMESTAMP and the HMAC claim over prefix | SECRET_BLOCK | TIMESTAMP."""
        moment = _parse_timestamp(timestamp)
        if moment is None:
            raise _invalid("TIMESTAMP format should be EEE MMM d HH:mm:ss z yyyy in english.")
        if abs(self.clock() - moment.timestamp()) > self.timestamp_skew:
            raise _not_authorized(_BAD_CREDENTIALS, reason=f"stale TIMESTAMP {timestamp!r}")
        # Verify against the canonical TIMESTAMP, as Cognito does: "Jul 05" cannot verify.
        message = (
            prefix
            + base64.b64decode(session.state["secret_block"])
            + format_timestamp(moment).encode()
        )
        expected = hmac.new(session.state["hkdf"], message, hashlib.sha256).digest()
        try:
            claimed = base64.b64decode(signature, validate=True)
        except binascii.Error:
            claimed = b""
        return hmac.compare_digest(claimed, expected)

    def _challenge_password_verifier(self, ctx: _Ctx) -> dict[str, Any]:
        username = _param(ctx.params, "USERNAME")
        secret_block = _param(ctx.params, "PASSWORD_CLAIM_SECRET_BLOCK")
        signature = _param(ctx.params, "PASSWORD_CLAIM_SIGNATURE")
        timestamp = _param(ctx.params, "TIMESTAMP")
        self._check_secret_hash(ctx.client, [username], ctx.params.get("SECRET_HASH"))

        session_id = ctx.body.get("Session") or self._srp_blocks.get(secret_block)
        session = self._claim_session(ctx, session_id, "PASSWORD_VERIFIER")
        if not _same(secret_block, session.state["secret_block"]):
            raise _not_authorized(_BAD_CREDENTIALS, reason="SECRET_BLOCK is not this session's")
        if username != session.username:
            raise _not_authorized(
                _BAD_CREDENTIALS,
                reason=f"USERNAME {username!r} is not USER_ID_FOR_SRP {session.username!r}",
            )
        known = session.state["known_user"]
        user = ctx.pool.users.get(session.username) if known else None
        if user is not None:
            self._check_lockout(user)  # the password is judged here, so is the lockout
        prefix = ctx.pool.name.encode() + session.username.encode()
        valid = self._verify_claim(session, prefix=prefix, timestamp=timestamp, signature=signature)
        if not known:
            raise _not_authorized(_BAD_CREDENTIALS, reason="unknown user")
        if user is None:
            raise _not_authorized(_BAD_CREDENTIALS, reason="user deleted mid-login")
        if not valid:
            raise self._wrong_password(user, "bad SRP signature", ctx)
        self._right_password(user)
        if not user.enabled:
            raise _not_authorized("User is disabled.")
        if session.state.get("custom"):
            self._check_status(user)
            history = [
                {"challengeName": "SRP_A", "challengeResult": True, "challengeMetadata": ""},
                {
                    "challengeName": "PASSWORD_VERIFIER",
                    "challengeResult": True,
                    "challengeMetadata": "",
                },
            ]
            return self._custom_step(ctx, user, history)
        return self._next_step(ctx, user)

    def _challenge_device_srp_auth(self, ctx: _Ctx) -> dict[str, Any]:
        username = _param(ctx.params, "USERNAME")
        device_key = _param(ctx.params, "DEVICE_KEY")
        srp_a = _param(ctx.params, "SRP_A")
        user = self._find_user(ctx.pool, username)
        names = [username] + ([user.username] if user else [])
        self._check_secret_hash(ctx.client, names, ctx.params.get("SECRET_HASH"))
        if user is None:
            raise _not_authorized(_INVALID_SESSION, reason=f"no user {username!r}")
        # pycognito answers without Session; the pending session the password step opened for
        # exactly this client, user and device stands in for it (like SECRET_BLOCK does).
        pending_key = (ctx.client.client_id, user.username, device_key)
        session_id = ctx.body.get("Session") or self._device_srp_pending.get(pending_key)
        session = self._claim_session(ctx, session_id, "DEVICE_SRP_AUTH")
        self._device_srp_pending.pop(pending_key, None)
        if session.username != user.username or session.state.get("device_key") != device_key:
            raise _not_authorized(
                _INVALID_SESSION, reason="DEVICE_SRP_AUTH session is for another user or device"
            )
        device = user.devices.get(device_key)
        if device is None or device.verifier is None or device.salt is None:
            raise CognitoError("ResourceNotFoundException", "Device does not exist.")
        big_b, hkdf_key = self._srp_start(srp_a, device.verifier)
        secret_block = base64.b64encode(secrets.token_bytes(192)).decode()
        verifier_session = self._new_session(
            ctx,
            username=user.username,
            challenge="DEVICE_PASSWORD_VERIFIER",
            state={"secret_block": secret_block, "hkdf": hkdf_key, "device_key": device_key},
        )
        self._srp_blocks[secret_block] = verifier_session.session_id
        return {
            "ChallengeName": "DEVICE_PASSWORD_VERIFIER",
            "Session": verifier_session.session_id,
            "ChallengeParameters": {
                "SRP_B": format(big_b, "x"),
                "SALT": device.salt.hex(),
                "SECRET_BLOCK": secret_block,
                "USERNAME": user.username,
                "DEVICE_KEY": device_key,
            },
        }

    def _challenge_device_password_verifier(self, ctx: _Ctx) -> dict[str, Any]:
        username = _param(ctx.params, "USERNAME")
        secret_block = _param(ctx.params, "PASSWORD_CLAIM_SECRET_BLOCK")
        signature = _param(ctx.params, "PASSWORD_CLAIM_SIGNATURE")
        timestamp = _param(ctx.params, "TIMESTAMP")
        device_key = _param(ctx.params, "DEVICE_KEY")
        session_id = ctx.body.get("Session") or self._srp_blocks.get(secret_block)
        session = self._claim_session(ctx, session_id, "DEVICE_PASSWORD_VERIFIER")
        self._check_secret_hash(
            ctx.client, [username, session.username], ctx.params.get("SECRET_HASH")
        )
        user = ctx.pool.users.get(session.username)
        if (
            user is None
            or self._find_user(ctx.pool, username) is not user
            or not _same(secret_block, session.state["secret_block"])
            or device_key != session.state["device_key"]
        ):
            raise _not_authorized(_BAD_CREDENTIALS, reason="session, user or device mismatch")
        device = user.devices.get(device_key)
        if device is None or not device.confirmed:
            raise _not_authorized(_BAD_CREDENTIALS, reason="device forgotten mid-login")
        prefix = (device.group_key + device.key).encode()
        if not self._verify_claim(session, prefix=prefix, timestamp=timestamp, signature=signature):
            raise _not_authorized(_BAD_CREDENTIALS, reason="bad device SRP signature")
        if not user.enabled:
            raise _not_authorized("User is disabled.")
        ctx.device_key = device_key
        return self._issue(ctx, user)

    # ---- NEW_PASSWORD_REQUIRED --------------------------------------------------------------

    def _challenge_new_password(self, ctx: _Ctx) -> dict[str, Any]:
        new_password = _param(ctx.params, "NEW_PASSWORD")
        session, user = self._session_user(ctx, "NEW_PASSWORD_REQUIRED", consume=False)
        # Checked before the session is used: a rejected answer leaves the user able to retry.
        self._check_password_policy(new_password)
        given = {
            key.removeprefix("userAttributes."): value
            for key, value in ctx.params.items()
            if key.startswith("userAttributes.")
        }
        missing = [
            name
            for name in ctx.pool.required_attributes
            if not (given.get(name) or user.attributes.get(name))
        ]
        if missing:
            raise _invalid(f"Invalid attributes given, {', '.join(missing)} is missing")
        session.consumed = True
        user.attributes.update(given)
        self._store_password(ctx.pool, user, new_password)
        user.status = "CONFIRMED"
        return self._next_step(ctx, user)

    # ---- MFA challenges -------------------------------------------------------------------

    def _answer_code(self, ctx: _Ctx, challenge: str, response_key: str) -> dict[str, Any]:
        code = _param(ctx.params, response_key)
        session, user = self._session_user(ctx, challenge, consume=False)
        if challenge == "SOFTWARE_TOKEN_MFA":
            step = (
                totp_matching_step(user.totp_secret, code, self.clock())
                if user.totp_secret
                else None
            )
            if step is None:
                raise self._mfa_failed(ctx, user, session, "wrong TOTP code")
            if step <= user.totp_last_step:
                raise self._mfa_failed(ctx, user, session, "TOTP code already used")
            user.totp_last_step = step
        elif not _same(code, session.state["code"]):
            raise self._mfa_failed(ctx, user, session, f"wrong {challenge} code")
        session.consumed = True
        if session.state.get("first_factor"):
            self._check_status(user)
        return self._issue(ctx, user)

    def _challenge_sms_mfa(self, ctx: _Ctx) -> dict[str, Any]:
        return self._answer_code(ctx, "SMS_MFA", "SMS_MFA_CODE")

    def _challenge_email_otp(self, ctx: _Ctx) -> dict[str, Any]:
        # Both the EMAIL_OTP second factor and USER_AUTH's EMAIL_OTP first factor.
        return self._answer_code(ctx, "EMAIL_OTP", "EMAIL_OTP_CODE")

    def _challenge_sms_otp(self, ctx: _Ctx) -> dict[str, Any]:
        return self._answer_code(ctx, "SMS_OTP", "SMS_OTP_CODE")

    def _challenge_software_token_mfa(self, ctx: _Ctx) -> dict[str, Any]:
        return self._answer_code(ctx, "SOFTWARE_TOKEN_MFA", "SOFTWARE_TOKEN_MFA_CODE")

    def _challenge_select_mfa_type(self, ctx: _Ctx) -> dict[str, Any]:
        answer = _param(ctx.params, "ANSWER")
        session, user = self._session_user(ctx, "SELECT_MFA_TYPE", consume=False)
        if answer not in session.state["choices"]:
            raise _invalid(f"{answer} is not one of MFAS_CAN_CHOOSE")
        session.consumed = True
        return self._mfa_challenge(ctx, user, answer)

    def _challenge_mfa_setup(self, ctx: _Ctx) -> dict[str, Any]:
        session, user = self._session_user(ctx, "MFA_SETUP", consume=False)
        if session.state.get("stage") != "verified":
            raise _not_authorized(
                _INVALID_SESSION, reason="MFA_SETUP answered before VerifySoftwareToken"
            )
        session.consumed = True
        user.totp_secret = session.state["secret"]
        user.totp_device_name = session.state.get("device_name")
        user.totp_last_step = max(user.totp_last_step, session.state["step"])
        if "SOFTWARE_TOKEN_MFA" not in user.mfa:
            user.mfa = [m for m in _MFA_TYPES if m in {*user.mfa, "SOFTWARE_TOKEN_MFA"}]
        user.preferred_mfa = user.preferred_mfa or "SOFTWARE_TOKEN_MFA"
        return self._issue(ctx, user)

    # ---- CUSTOM_AUTH --------------------------------------------------------------------------

    def _flow_custom(self, ctx: _Ctx) -> dict[str, Any]:
        username = _param(ctx.params, "USERNAME")
        self._check_secret_hash(ctx.client, [username], ctx.params.get("SECRET_HASH"))
        if ctx.pool.custom_auth is None:
            raise _not_authorized("Custom auth lambda trigger is not configured for the user pool.")
        if ctx.params.get("CHALLENGE_NAME") == "SRP_A":
            return self._srp_challenge(ctx, username, _param(ctx.params, "SRP_A"), custom=True)
        user = self._find_user(ctx.pool, username)
        if user is None:
            if not self.prevent_user_existence_errors:
                raise CognitoError("UserNotFoundException", "User does not exist.")
            raise _not_authorized(_BAD_CREDENTIALS, reason=f"no user {username!r}")
        if not user.enabled:
            raise _not_authorized("User is disabled.")
        return self._custom_step(ctx, user, [])

    def _custom_step(self, ctx: _Ctx, user: _User, history: list[dict[str, Any]]) -> dict[str, Any]:
        """Ask the handler (Define/Create Auth Challenge stand-in) what comes next."""
        handler = ctx.pool.custom_auth
        if handler is None:
            raise _not_authorized("Custom auth lambda trigger is not configured for the user pool.")
        decision = handler(user.username, [dict(h) for h in history])
        if decision.get("fail"):
            raise _not_authorized(_BAD_CREDENTIALS, reason="custom auth handler failed sign-in")
        if decision.get("issue_tokens"):
            self._check_status(user)
            return self._issue(ctx, user)
        parameters = decision.get("challenge_parameters", {})
        answer = decision.get("answer")
        if (
            not isinstance(answer, str)
            or not isinstance(parameters, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in parameters.items())
        ):
            raise CognitoError(
                "InvalidLambdaResponseException",
                "Invalid lambda response",
                reason=f"custom auth handler returned {decision!r}",
            )
        session = self._new_session(
            ctx,
            username=user.username,
            challenge="CUSTOM_CHALLENGE",
            state={"answer": answer, "history": history},
        )
        return {
            "ChallengeName": "CUSTOM_CHALLENGE",
            "Session": session.session_id,
            "ChallengeParameters": {**parameters, "USERNAME": user.username},
        }

    def _challenge_custom(self, ctx: _Ctx) -> dict[str, Any]:
        answer = _param(ctx.params, "ANSWER")
        session, user = self._session_user(ctx, "CUSTOM_CHALLENGE")
        result = _same(answer, session.state["answer"])
        history = [
            *session.state["history"],
            {
                "challengeName": "CUSTOM_CHALLENGE",
                "challengeResult": result,
                "challengeMetadata": "",
            },
        ]
        return self._custom_step(ctx, user, history)

    # ---- USER_AUTH (choice-based sign-in) ---------------------------------------------------

    def _user_auth_choices(self, pool: _Pool, user: _User | None) -> list[str]:
        """AvailableChallenges for this user. An unknown user is offered the password
        challenges only (the double's choice; Cognito's exact behaviour is undocumented)."""
        allowed = pool.first_factors
        choices = ["PASSWORD", "PASSWORD_SRP"] if "PASSWORD" in allowed else []
        if user is not None:
            if "EMAIL_OTP" in allowed and self._verified(user, "email"):
                choices.append("EMAIL_OTP")
            if "SMS_OTP" in allowed and self._verified(user, "phone_number"):
                choices.append("SMS_OTP")
            if "WEB_AUTHN" in allowed and user.passkeys:
                choices.append("WEB_AUTHN")
        return choices

    def _flow_user_auth(self, ctx: _Ctx) -> dict[str, Any]:
        username = _param(ctx.params, "USERNAME")
        self._check_secret_hash(ctx.client, [username], ctx.params.get("SECRET_HASH"))
        user = self._find_user(ctx.pool, username)
        if user is None and not self.prevent_user_existence_errors:
            raise CognitoError("UserNotFoundException", "User does not exist.")
        if user is not None and not user.enabled:
            raise _not_authorized("User is disabled.")
        choices = self._user_auth_choices(ctx.pool, user)
        preferred = ctx.params.get("PREFERRED_CHALLENGE")
        if preferred is not None and preferred not in _USER_AUTH_CHALLENGES:
            raise _invalid(f"PREFERRED_CHALLENGE must be one of {list(_USER_AUTH_CHALLENGES)}")
        if preferred in choices:
            return self._first_factor(ctx, user, username, preferred)
        # No (usable) preference: let the user choose.
        session = self._new_session(
            ctx,
            username=user.username if user else username,
            challenge="SELECT_CHALLENGE",
            state={"choices": choices, "known_user": user is not None},
        )
        return {
            "ChallengeName": "SELECT_CHALLENGE",
            "Session": session.session_id,
            "ChallengeParameters": {},
            "AvailableChallenges": choices,
        }

    def _challenge_select_challenge(self, ctx: _Ctx) -> dict[str, Any]:
        username = _param(ctx.params, "USERNAME")
        answer = _param(ctx.params, "ANSWER")
        session = self._live_session(ctx, _required_str(ctx.body, "Session"), "SELECT_CHALLENGE")
        user = ctx.pool.users.get(session.username) if session.state["known_user"] else None
        self._check_secret_hash(
            ctx.client, [username, session.username], ctx.params.get("SECRET_HASH")
        )
        same_user = (
            self._find_user(ctx.pool, username) is user
            if user is not None
            else username == session.username
        )
        if not same_user:
            raise _not_authorized(_INVALID_SESSION, reason="USERNAME is not the session's user")
        if answer not in session.state["choices"]:
            raise _invalid(f"{answer} is not one of the AvailableChallenges")
        session.consumed = True
        return self._first_factor(ctx, user, username, answer)

    def _first_factor(
        self, ctx: _Ctx, user: _User | None, username: str, factor: str
    ) -> dict[str, Any]:
        if factor == "PASSWORD_SRP":
            return self._srp_challenge(ctx, username, _param(ctx.params, "SRP_A"))
        if factor == "PASSWORD":
            password = _param(ctx.params, "PASSWORD")
            if user is None:
                raise _not_authorized(_BAD_CREDENTIALS, reason=f"no user {username!r}")
            self._check_password(user, password, ctx)
            return self._next_step(ctx, user)
        if user is None:  # not offered to unknown users; kept as a guard
            raise _not_authorized(_BAD_CREDENTIALS, reason=f"no user {username!r}")
        if factor in ("EMAIL_OTP", "SMS_OTP"):
            return self._mfa_challenge(ctx, user, factor, first_factor=True)
        # WEB_AUTHN
        rp_id = ctx.pool.relying_party_id or user.passkeys[0].rp_id
        challenge = secrets.token_bytes(32)
        options = {
            "challenge": b64url(challenge),
            "timeout": int(self.session_ttl * 1000),
            "rpId": rp_id,
            "allowCredentials": [
                {"type": "public-key", "id": b64url(p.credential_id)}
                for p in user.passkeys
                if p.rp_id == rp_id
            ],
            "userVerification": ctx.pool.user_verification,
        }
        session = self._new_session(
            ctx,
            username=user.username,
            challenge="WEB_AUTHN",
            state={"challenge": challenge, "rp_id": rp_id},
        )
        return {
            "ChallengeName": "WEB_AUTHN",
            "Session": session.session_id,
            "ChallengeParameters": {"CREDENTIAL_REQUEST_OPTIONS": json.dumps(options)},
        }

    def _challenge_web_authn(self, ctx: _Ctx) -> dict[str, Any]:
        credential = _param(ctx.params, "CREDENTIAL")
        # One assertion per challenge: a failed one is not a typo, so the session is spent.
        session, user = self._session_user(ctx, "WEB_AUTHN")
        rp_id = session.state["rp_id"]
        try:
            passkey, count = verify_assertion(
                credential,
                challenge=session.state["challenge"],
                rp_id=rp_id,
                origins=(f"https://{rp_id}", *ctx.pool.allowed_origins),
                passkeys=user.passkeys,
                require_user_verification=ctx.pool.user_verification == "required",
            )
        except WebAuthnError as exc:
            raise _not_authorized(_BAD_CREDENTIALS, reason=f"WebAuthn: {exc}") from None
        passkey.sign_count = count
        self._check_status(user)
        return self._issue(ctx, user)

    @staticmethod
    def _check_password_policy(password: str) -> None:
        """Cognito's default policy: 8+ characters with upper, lower, digit and symbol."""
        problems = [
            (len(password) >= 8, "Password not long enough"),
            (any(c.isupper() for c in password), "Password must have uppercase characters"),
            (any(c.islower() for c in password), "Password must have lowercase characters"),
            (any(c.isdigit() for c in password), "Password must have numeric characters"),
            (any(not c.isalnum() for c in password), "Password must have symbol characters"),
        ]
        for ok, message in problems:
            if not ok:
                raise CognitoError(
                    "InvalidPasswordException", f"Password does not conform to policy: {message}"
                )

    # ---- tokens ---------------------------------------------------------------------------

    @staticmethod
    def _new_signing_key() -> _SigningKey:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        kid = base64.b64encode(hashlib.sha256(der).digest()).decode()
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        public = {"alg": "RS256", "e": jwk["e"], "kid": kid, "kty": "RSA", "n": jwk["n"]}
        return _SigningKey(private_key, kid, {**public, "use": "sig"})

    def _new_login(self, ctx: _Ctx, user: _User, device_key: str | None = None) -> _Login:
        login = _Login(
            origin_jti=str(uuid.uuid4()),
            pool_id=ctx.pool.pool_id,
            client_id=ctx.client.client_id,
            username=user.username,
            auth_time=int(self.clock()),
            refresh_token=secrets.token_urlsafe(384),
            refresh_expires_at=self.clock() + self.refresh_token_ttl,
            device_key=device_key,
        )
        self._logins[login.origin_jti] = login
        self._refresh_tokens[login.refresh_token] = _RefreshToken(login.origin_jti)
        return login

    def _mint_tokens(
        self,
        pool: _Pool,
        client: _AppClient,
        user: _User,
        login: _Login,
        *,
        with_refresh: bool = False,
    ) -> dict[str, Any]:
        now = int(self.clock())
        common: dict[str, Any] = {"sub": user.sub}
        if user.groups:
            common["cognito:groups"] = list(user.groups)
        common |= {
            "iss": self.issuer(pool.pool_id),
            "origin_jti": login.origin_jti,
            "event_id": str(uuid.uuid4()),
            "auth_time": login.auth_time,
            "iat": now,
            "exp": now + self.token_ttl,
        }
        attribute_claims: dict[str, Any] = {
            name: (value == "true") if name in _BOOLEAN_CLAIMS else value
            for name, value in user.attributes.items()
        }
        id_claims = {
            **common,
            **attribute_claims,
            "cognito:username": user.username,
            "aud": client.client_id,
            "token_use": "id",
            "jti": str(uuid.uuid4()),
        }
        access_claims = {
            **common,
            "client_id": client.client_id,
            "token_use": "access",
            "scope": _ACCESS_SCOPE,
            "jti": str(uuid.uuid4()),
            "username": user.username,
        }
        if login.device_key is not None:
            access_claims["device_key"] = login.device_key
        result: dict[str, Any] = {
            "AccessToken": self._sign(pool, access_claims),
            "ExpiresIn": self.token_ttl,
            "TokenType": "Bearer",
            "IdToken": self._sign(pool, id_claims),
        }
        if with_refresh:
            result["RefreshToken"] = login.refresh_token
        return result

    @staticmethod
    def _sign(pool: _Pool, claims: dict[str, Any]) -> str:
        # Cognito's JOSE header carries only kid and alg.
        return jwt.encode(
            claims,
            pool.key.private_key,
            algorithm="RS256",
            headers={"kid": pool.key.kid, "typ": None},
        )

    def _verify_access_token(self, token: str) -> tuple[_Pool, _User, _Login]:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise _not_authorized("Invalid Access Token", reason="not a JWT") from None
        issuer = unverified.get("iss")
        pool = next(
            (p for p in self._pools.values() if issuer in self._issuers(p.pool_id).values()),
            None,
        )
        if pool is None or kid != pool.key.kid:
            raise _not_authorized("Invalid Access Token", reason=f"unknown issuer/kid {issuer}")
        try:
            claims = jwt.decode(
                token,
                pool.key.private_key.public_key(),
                algorithms=["RS256"],
                issuer=issuer,
                options={
                    "require": ["exp", "iat", "sub", "token_use", "origin_jti", "username"],
                    "verify_exp": False,  # checked below against the double's clock
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise _not_authorized("Invalid Access Token", reason=str(exc)) from None
        if self.clock() >= claims["exp"]:
            raise _not_authorized("Access Token has expired")
        if claims["token_use"] != "access":  # noqa: S105 - a claim value, not a secret
            raise _not_authorized("Invalid Access Token", reason="not an access token")
        self._check_user_admin_scope(claims)
        login = self._logins.get(claims["origin_jti"])
        if login is None or login.revoked:
            raise _not_authorized("Access Token has been revoked")
        user = pool.users.get(claims["username"])
        if user is None or user.sub != claims["sub"]:
            raise CognitoError("UserNotFoundException", "User does not exist.")
        if not user.enabled:
            raise _not_authorized("User is disabled.")
        return pool, user, login

    def _revoke_user(self, pool: _Pool, user: _User) -> None:
        for login in self._logins.values():
            if login.pool_id == pool.pool_id and login.username == user.username:
                login.revoked = True

    # ---- the account page's access-token APIs ----------------------------------------------
    # ChangePassword, UpdateUserAttributes / VerifyUserAttribute / GetUserAttributeVerificationCode,
    # ListWebAuthnCredentials / DeleteWebAuthnCredential, GetUserAuthFactors. Each takes the
    # access token through ``_verify_access_token`` (signature, expiry, revocation, global
    # sign-out, the aws.cognito.signin.user.admin scope).

    def _account_operations(self) -> dict[str, _Operation]:
        return {
            "ChangePassword": self._op_change_password,
            "UpdateUserAttributes": self._op_update_user_attributes,
            "VerifyUserAttribute": self._op_verify_user_attribute,
            "GetUserAttributeVerificationCode": self._op_get_user_attribute_verification_code,
            "ListWebAuthnCredentials": self._op_list_webauthn_credentials,
            "DeleteWebAuthnCredential": self._op_delete_webauthn_credential,
            "GetUserAuthFactors": self._op_get_user_auth_factors,
        }

    def set_keep_original_attributes(self, pool_id: str, names: Sequence[str]) -> None:
        """UserAttributeUpdateSettings.AttributesRequireVerificationBeforeUpdate: a new email /
        phone_number is pending until VerifyUserAttribute; the old one stays in effect."""
        unknown = set(names) - set(_VERIFIABLE_ATTRIBUTES)
        if unknown:
            raise ValueError(f"only {_VERIFIABLE_ATTRIBUTES} can wait for verification")
        with self._lock:
            self._pool_or_value_error(pool_id)
            self._keep_original[pool_id] = frozenset(names)

    def pending_attributes(self, pool_id: str, username: str) -> dict[str, str]:
        """New values waiting for VerifyUserAttribute (keep-original pools only)."""
        with self._lock:
            self._user_or_value_error(pool_id, username)
            return dict(self._pending_attributes.get((pool_id, username), {}))

    def mint_access_token(self, pool_id: str, client_id: str, username: str, scope: str) -> str:
        """An access token of a fresh login with ``scope`` (as the Hosted UI's /oauth2/token
        would issue for an app client asking for only some scopes)."""
        with self._lock:
            pool = self._pool_or_value_error(pool_id)
            client = self._app_client(client_id, pool_id)
            user = self._user_or_value_error(pool_id, username)
            ctx = _Ctx("InitiateAuth", pool, client, {}, {})
            login = self._new_login(ctx, user)
            now = int(self.clock())
            claims = {
                "sub": user.sub,
                "iss": self.issuer(pool_id),
                "origin_jti": login.origin_jti,
                "event_id": str(uuid.uuid4()),
                "auth_time": login.auth_time,
                "iat": now,
                "exp": now + self.token_ttl,
                "client_id": client_id,
                "token_use": "access",
                "scope": scope,
                "jti": str(uuid.uuid4()),
                "username": user.username,
            }
            return self._sign(pool, claims)

    @staticmethod
    def _check_user_admin_scope(claims: Mapping[str, Any]) -> None:
        """Every access-token API of the user (GetUser, ChangePassword, ListDevices, ...) needs
        aws.cognito.signin.user.admin; OAuth tokens issued for other scopes alone are refused."""
        scope = claims.get("scope")
        if not isinstance(scope, str) or _ACCESS_SCOPE not in scope.split():
            raise _not_authorized(
                "Access Token does not have required scopes", reason=f"scope {scope!r}"
            )

    def _op_change_password(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
        proposed = _required_str(body, "ProposedPassword")
        previous = body.get("PreviousPassword")
        if user.status == "RESET_REQUIRED":
            raise CognitoError(
                "PasswordResetRequiredException", "Password reset required for the user"
            )
        # Every user of the double has a password, so PreviousPassword is required (Cognito
        # lets passwordless-only users omit it).
        if not isinstance(previous, str) or not previous:
            raise _invalid("PreviousPassword is required", reason="no PreviousPassword")
        self._check_lockout(user)
        if not _same(previous, user.password):
            raise self._wrong_password(user, f"ChangePassword: wrong password for {user.username}")
        self._right_password(user)
        self._check_password_policy(proposed)
        self._store_password(pool, user, proposed)
        return {}

    @staticmethod
    def _check_attribute_value(pool: _Pool, name: str, value: str) -> None:
        """What Cognito checks of a value before it writes it (InvalidParameterException)."""
        if len(value) > _MAX_ATTRIBUTE_VALUE:
            raise _invalid(f"user.{name}: String must be no longer than 2048 characters")
        if not value and name in pool.required_attributes:
            raise _invalid(f"user.{name}: The attribute is required")
        if value and name == "email" and not _EMAIL_FORMAT.fullmatch(value):
            raise _invalid("Invalid email address format.")
        if value and name == "phone_number" and not _PHONE_FORMAT.fullmatch(value):
            raise _invalid("Invalid phone number format.")
        if value and name == "birthdate" and not _BIRTHDATE_FORMAT.fullmatch(value):
            raise _invalid("user.birthdate: Birthdate must be 10 characters YYYY-MM-DD")

    def _attribute_list(self, body: Mapping[str, Any]) -> dict[str, str]:
        entries = body.get("UserAttributes")
        if not isinstance(entries, list):
            raise _invalid("UserAttributes must be a list")
        result: dict[str, str] = {}
        for entry in entries:
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("Name"), str)
                or not isinstance(entry.get("Value", ""), str)
            ):
                raise CognitoError("SerializationException", "UserAttributes entries need Name")
            name, value = entry["Name"], entry.get("Value", "")
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("custom:"):
                raise _invalid(f"user.{name}: Attribute does not exist in the schema.")
            if name in _UNWRITABLE_ATTRIBUTES:
                raise _not_authorized(
                    "A client attempted to write unauthorized attribute", reason=f"writes {name}"
                )
            result[name] = value
        return result

    def _op_update_user_attributes(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, user, login = self._verify_access_token(_required_str(body, "AccessToken"))
        changes = self._attribute_list(body)
        writable = self._clients[login.client_id].write_attributes
        for name, value in changes.items():
            if writable is not None and name not in writable:
                raise _not_authorized(
                    "A client attempted to write unauthorized attribute",
                    reason=f"client may not write {name}",
                )
            self._check_attribute_value(pool, name, value)
        keep = self._keep_original.get(pool.pool_id, frozenset())
        pending = self._pending_attributes.setdefault((pool.pool_id, user.username), {})
        deliveries: list[dict[str, str]] = []
        for name, value in changes.items():
            if name in _VERIFIABLE_ATTRIBUTES and value == user.attributes.get(name):
                pending.pop(name, None)  # setting the current value back cancels a pending one
                continue
            if name in _VERIFIABLE_ATTRIBUTES and value:
                deliveries.append(self._attribute_code(pool, user, name, value))
                if name in keep:
                    pending[name] = value  # the old value and its _verified stay in effect
                    continue
                user.attributes[f"{name}_verified"] = "false"
            if value:
                user.attributes[name] = value
            else:
                user.attributes.pop(name, None)
        return {"CodeDeliveryDetailsList": deliveries} if deliveries else {}

    def _attribute_code(self, pool: _Pool, user: _User, name: str, value: str) -> dict[str, str]:
        """Send a verification code to ``value`` (the new address, pending or not)."""
        channel = "EMAIL" if name == "email" else "SMS"
        code = self._send_code(pool, user, channel)
        user.codes[f"verify:{name}"] = _PendingCode(code, self.clock() + _VERIFY_CODE_TTL)
        destination = mask_email(value) if name == "email" else mask_phone(value)
        return {"Destination": destination, "DeliveryMedium": channel, "AttributeName": name}

    def _verifiable(self, body: Mapping[str, Any]) -> str:
        name = _required_str(body, "AttributeName")
        if name not in _VERIFIABLE_ATTRIBUTES:
            raise _invalid(f"Attribute {name} cannot be verified")
        return name

    def _op_get_user_attribute_verification_code(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
        name = self._verifiable(body)
        pending = self._pending_attributes.get((pool.pool_id, user.username), {})
        value = pending.get(name) or user.attributes.get(name)
        if not value:
            raise _invalid(f"User does not have a value for the attribute: {name}")
        return {"CodeDeliveryDetails": self._attribute_code(pool, user, name, value)}

    def _op_verify_user_attribute(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
        name = self._verifiable(body)
        code = _required_str(body, "Code")
        self._check_confirmation(user, f"verify:{name}", code)
        pending = self._pending_attributes.get((pool.pool_id, user.username), {})
        value = pending.get(name, user.attributes.get(name))
        if value and name in pool.alias_attributes:
            owner = self._find_user(pool, value)
            if owner is not None and owner is not user:
                raise CognitoError(
                    "AliasExistsException", "An account with the given email already exists."
                )
        del user.codes[f"verify:{name}"]
        if value:
            user.attributes[name] = value
        pending.pop(name, None)
        user.attributes[f"{name}_verified"] = "true"
        return {}

    def _note_passkey(self, passkey: Passkey, credential: Mapping[str, Any] | None) -> None:
        """What ListWebAuthnCredentials reports beyond the key: when, which kind, a name."""
        response = credential.get("response") if credential else None
        transports = response.get("transports") if isinstance(response, dict) else None
        attachment = credential.get("authenticatorAttachment") if credential else None
        self._passkey_meta[passkey.credential_id] = {
            "CreatedAt": self.clock(),
            "AuthenticatorTransports": [t for t in transports or [] if isinstance(t, str)],
            # Cognito names a passkey after its authenticator (AAGUID); the double has no
            # AAGUID table, so it says which kind it is.
            "FriendlyCredentialName": (
                "Security key" if attachment == "cross-platform" else "Passkey"
            ),
            **({"AuthenticatorAttachment": attachment} if isinstance(attachment, str) else {}),
        }

    def _op_list_webauthn_credentials(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        _, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
        limit = body.get("MaxResults", 20)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 20:
            raise _invalid("MaxResults must be an integer from 0 to 20")
        start = 0
        token = body.get("NextToken")
        if token is not None:
            if not isinstance(token, str) or not token.isdigit() or int(token) > len(user.passkeys):
                raise _invalid("Invalid NextToken")
            start = int(token)
        page = user.passkeys[start : start + limit]
        result: dict[str, Any] = {
            "Credentials": [
                {
                    "CredentialId": b64url(p.credential_id),
                    "RelyingPartyId": p.rp_id,
                    **self._passkey_meta.setdefault(
                        p.credential_id,
                        {
                            "CreatedAt": self.clock(),
                            "AuthenticatorTransports": [],
                            "FriendlyCredentialName": "Passkey",
                        },
                    ),
                }
                for p in page
            ]
        }
        if start + limit < len(user.passkeys):
            result["NextToken"] = str(start + limit)
        return result

    def _op_delete_webauthn_credential(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        _, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
        wanted = _required_str(body, "CredentialId")
        for passkey in user.passkeys:
            if _same(b64url(passkey.credential_id), wanted):
                user.passkeys.remove(passkey)
                self._passkey_meta.pop(passkey.credential_id, None)
                return {}
        raise CognitoError("ResourceNotFoundException", "Credential not found.")

    def _op_get_user_auth_factors(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
        factors = ["PASSWORD"]  # every user of the double has one
        if "EMAIL_OTP" in pool.first_factors and self._verified(user, "email"):
            factors.append("EMAIL_OTP")
        if "SMS_OTP" in pool.first_factors and self._verified(user, "phone_number"):
            factors.append("SMS_OTP")
        if "WEB_AUTHN" in pool.first_factors and user.passkeys:
            factors.append("WEB_AUTHN")
        result: dict[str, Any] = {"Username": user.username, "ConfiguredUserAuthFactors": factors}
        if user.mfa:
            result["UserMFASettingList"] = list(user.mfa)
        if user.preferred_mfa:
            result["PreferredMfaSetting"] = user.preferred_mfa
        return result

    # ---- threat protection's event history --------------------------------------------------

    def auth_events(self, pool_id: str, username: str) -> list[dict[str, Any]]:
        """The user's auth events as AdminListUserAuthEvents lists them (newest first), each
        with the ``FeedbackToken`` Cognito would put in its notification email."""
        with self._lock:
            user = self._user_or_value_error(pool_id, username)
            return [
                {**self._event_type(e), "FeedbackToken": e.feedback_token}
                for e in reversed(self._auth_events)
                if e.pool_id == pool_id and e.username == user.username
            ]

    def _event_type(self, event: _AuthEvent) -> dict[str, Any]:
        """AuthEventType, exactly the members botocore's model has."""
        context: dict[str, str] = {}
        if event.ip:
            context["IpAddress"] = event.ip
            city, country = self.ip_locations.get(event.ip, ("", ""))
            if city:
                context["City"] = city
            if country:
                context["Country"] = country
        result: dict[str, Any] = {
            "EventId": event.event_id,
            "EventType": "SignIn",
            "CreationDate": event.created,
            "EventResponse": event.response,
            "EventRisk": {
                "RiskDecision": event.decision,
                "RiskLevel": event.risk_level.capitalize(),
                "CompromisedCredentialsDetected": event.compromised,
            },
            "ChallengeResponses": [
                {"ChallengeName": name, "ChallengeResponse": answer}
                for name, answer in event.challenges
            ],
            "EventContextData": context,
        }
        if event.feedback is not None:
            value, provider, moment = event.feedback
            result["EventFeedback"] = {
                "FeedbackValue": value,
                "Provider": provider,
                "FeedbackDate": moment,
            }
        return result

    def _events_user(self, body: Mapping[str, Any]) -> tuple[_Pool, _User]:
        """The pool and user of an event-history call; threat protection must be on."""
        pool = self._pool(_required_str(body, "UserPoolId"))
        user = self._find_user(pool, _required_str(body, "Username"))
        if user is None:
            raise CognitoError("UserNotFoundException", "User does not exist.")
        if pool.threat_protection is None:
            raise CognitoError(
                "UserPoolAddOnNotEnabledException",
                "Threat protection is not enabled for this user pool.",
            )
        return pool, user

    def _op_admin_list_user_auth_events(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, user = self._events_user(body)
        limit = body.get("MaxResults", 0)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 60:
            raise _invalid("MaxResults must be an integer from 0 to 60")
        limit = limit or 60  # 0 or absent: 60 events
        mine = [
            e
            for e in reversed(self._auth_events)
            if e.pool_id == pool.pool_id and e.username == user.username
        ]
        start = 0
        token = body.get("NextToken")
        if token is not None:
            if not isinstance(token, str) or not token.isdigit() or int(token) >= len(mine):
                raise _invalid("Invalid NextToken")
            start = int(token)
        result: dict[str, Any] = {
            "AuthEvents": [self._event_type(e) for e in mine[start : start + limit]]
        }
        if start + limit < len(mine):
            result["NextToken"] = str(start + limit)
        return result

    def _feedback_event(self, pool: _Pool, user: _User, body: Mapping[str, Any]) -> _AuthEvent:
        event_id = _required_str(body, "EventId")
        if not re.fullmatch(r"[\w+-]{1,50}", event_id):
            raise _invalid(
                "1 validation error detected: Value at 'eventId' failed to satisfy constraint"
            )
        value = _required_str(body, "FeedbackValue")
        if value not in ("Valid", "Invalid"):
            raise _invalid(
                "1 validation error detected: Value at 'feedbackValue' failed to satisfy "
                "constraint: Member must satisfy enum value set: [Valid, Invalid]"
            )
        event = self._event(event_id)
        # Another user's event is as unknown as one that never was.
        if event is None or event.pool_id != pool.pool_id or event.username != user.username:
            raise CognitoError("ResourceNotFoundException", "Auth event not found.")
        return event

    def _op_admin_update_auth_event_feedback(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, user = self._events_user(body)
        event = self._feedback_event(pool, user, body)
        event.feedback = (body["FeedbackValue"], "Admin", self.clock())
        return {}

    def _op_update_auth_event_feedback(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """The email's one-click link: no IAM, no access token, only the event's
        FeedbackToken, which Cognito never returns from any API."""
        pool, user = self._events_user(body)
        token = _required_str(body, "FeedbackToken")
        event = self._feedback_event(pool, user, body)
        if not _same(token, event.feedback_token):
            raise _not_authorized("Invalid feedback token.", reason="FeedbackToken mismatch")
        event.feedback = (body["FeedbackValue"], "User", self.clock())
        return {}


@contextmanager
def running_double(**options: Any) -> Iterator[CognitoDouble]:
    """Start a ``CognitoDouble`` (options as its constructor) and stop it on exit.

    As a pytest fixture::

        @pytest.fixture
        def cognito() -> Iterator[CognitoDouble]:
            with running_double() as double:
                yield double
    """
    double = CognitoDouble(**options)
    try:
        yield double
    finally:
        double.stop()
