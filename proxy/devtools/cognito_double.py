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

Errors are HTTP 400 ``{"__type": Code, "message": ...}`` which botocore turns into
``ClientError.response["Error"]["Code"]``. Every request lands in ``calls`` and every rejection
in ``failures`` together with the internal reason, so tests can tell *why* a login failed even
when Cognito's public message is deliberately vague.

Adding MFA, CUSTOM_AUTH, device SRP or USER_AUTH later means adding entries to the three dispatch
tables built in ``CognitoDouble.__init__`` (operations, auth flows, challenges) and, for
second-factor challenges, a branch in ``_next_step``, the one place that decides what follows a
successful first factor.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import socket
import string
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["CognitoDouble", "CognitoError", "running_double"]

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


@dataclass
class _Pool:
    pool_id: str
    key: _SigningKey
    alias_attributes: frozenset[str]
    users: dict[str, _User] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The part of the pool id after "_": what SRP hashes into x and the claim."""
        return self.pool_id.split("_", 1)[1]


@dataclass
class _AppClient:
    client_id: str
    pool_id: str
    secret: str | None
    flows: frozenset[str]


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


# --------------------------------------------------------------------------------------------
# The double.
# --------------------------------------------------------------------------------------------


class CognitoDouble:
    """A running Cognito user-pool endpoint on ``url``. Seed it with the methods below."""

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        issuer_style: Literal["local", "aws"] = "local",
        session_ttl: float = 180.0,
        token_ttl: int = 3600,
        refresh_token_ttl: float = 30 * 86400.0,
        timestamp_skew: float = 300.0,
        prevent_user_existence_errors: bool = True,
        require_admin_sigv4: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
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

        # Handlers run on the server thread while tests seed from theirs: one lock for all state.
        self._lock = threading.RLock()
        self._pools: dict[str, _Pool] = {}
        self._clients: dict[str, _AppClient] = {}
        self._sessions: dict[str, _AuthSession] = {}
        self._srp_blocks: dict[str, str] = {}  # SECRET_BLOCK -> session id
        self._logins: dict[str, _Login] = {}  # origin_jti -> login
        self._refresh_tokens: dict[str, str] = {}  # refresh token -> origin_jti
        self._fake_key = secrets.token_bytes(32)  # stable fake salts for unknown users

        self._operations: dict[str, _Operation] = {
            "InitiateAuth": self._op_initiate_auth,
            "AdminInitiateAuth": self._op_admin_initiate_auth,
            "RespondToAuthChallenge": self._op_respond_to_auth_challenge,
            "AdminRespondToAuthChallenge": self._op_admin_respond_to_auth_challenge,
            "RevokeToken": self._op_revoke_token,
            "GlobalSignOut": self._op_global_sign_out,
            "AdminUserGlobalSignOut": self._op_admin_user_global_sign_out,
            "GetUser": self._op_get_user,
        }
        self._iam_operations = frozenset(
            {"AdminInitiateAuth", "AdminRespondToAuthChallenge", "AdminUserGlobalSignOut"}
        )
        self._auth_flows: dict[str, _Step] = {
            "USER_SRP_AUTH": self._flow_user_srp,
            "USER_PASSWORD_AUTH": self._flow_password,
            "ADMIN_USER_PASSWORD_AUTH": self._flow_password,
            "ADMIN_NO_SRP_AUTH": self._flow_password,
            "REFRESH_TOKEN_AUTH": self._flow_refresh,
            "REFRESH_TOKEN": self._flow_refresh,
        }
        self._challenges: dict[str, _Step] = {
            "PASSWORD_VERIFIER": self._challenge_password_verifier,
            "NEW_PASSWORD_REQUIRED": self._challenge_new_password,
        }

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
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
        self, pool_id: str, *, secret: bool = False, flows: set[str] | None = None
    ) -> tuple[str, str | None]:
        """Create an app client; ``flows`` takes ExplicitAuthFlows names with or without ALLOW_.

        Default flows: USER_SRP_AUTH, USER_PASSWORD_AUTH, ADMIN_USER_PASSWORD_AUTH. Refresh is
        always allowed, as in Cognito. Returns ``(client_id, client_secret or None)``.
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
            secret=_random_string(string.ascii_lowercase + string.digits, 52) if secret else None,
            flows=frozenset(allowed),
        )
        with self._lock:
            self._pool_or_value_error(pool_id)
            self._clients[client.client_id] = client
        return client.client_id, client.secret

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
    ) -> str:
        """Add a user; returns its ``sub``.

        A user with an ``email`` can sign in with it (alias) once ``email_verified`` is "true",
        which is filled in for you unless you pass it, as AdminCreateUser setups usually do.
        """
        if status not in _USER_STATUSES:
            raise ValueError(f"status must be one of {sorted(_USER_STATUSES)}")
        attrs = dict(attributes or {})
        if "email" in attrs:
            attrs.setdefault("email_verified", "true")
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
            }

    def issuer(self, pool_id: str) -> str:
        if self.issuer_style == "aws":
            return f"https://cognito-idp.{self.region}.amazonaws.com/{pool_id}"
        return f"{self.url}/{pool_id}"

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
            if operation in self._iam_operations and self.require_admin_sigv4:
                self._check_sigv4(request.headers.get("Authorization", ""))
            with self._lock:
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

    def _store_password(self, pool: _Pool, user: _User, password: str) -> None:
        user.password = password
        user.salt = secrets.randbits(128)
        user.verifier = _srp_verifier(pool.name, user.username, password, user.salt)

    # ---- SECRET_HASH ----------------------------------------------------------------------

    @staticmethod
    def _check_secret_hash(
        client: _AppClient, usernames: Iterable[str], provided: str | None
    ) -> None:
        if client.secret is None:
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
        expected = [_secret_hash(client.secret, name, client.client_id) for name in usernames]
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
        pool = self._pool(_required_str(body, "UserPoolId"))
        client = self._app_client(_required_str(body, "ClientId"), pool.pool_id)
        self._check_context_data(body.get("ContextData"))
        return self._initiate(body, "AdminInitiateAuth", pool, client)

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
        return handler(_Ctx(operation, pool, client, params, body))

    def _op_respond_to_auth_challenge(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        client = self._app_client(_required_str(body, "ClientId"))
        return self._respond(body, "RespondToAuthChallenge", self._pools[client.pool_id], client)

    def _op_admin_respond_to_auth_challenge(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool = self._pool(_required_str(body, "UserPoolId"))
        client = self._app_client(_required_str(body, "ClientId"), pool.pool_id)
        self._check_context_data(body.get("ContextData"))
        return self._respond(body, "AdminRespondToAuthChallenge", pool, client)

    def _respond(
        self, body: dict[str, Any], operation: str, pool: _Pool, client: _AppClient
    ) -> dict[str, Any]:
        name = _required_str(body, "ChallengeName")
        handler = self._challenges.get(name)
        if handler is None:
            raise _invalid(f"Challenge {name} is not supported by the Cognito test double")
        params = _string_map(body, "ChallengeResponses")
        return handler(_Ctx(operation, pool, client, params, body))

    def _op_revoke_token(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        token = _required_str(body, "Token")
        client = self._app_client(_required_str(body, "ClientId"))
        provided = body.get("ClientSecret")
        if client.secret is None:
            if provided is not None:
                raise _invalid(f"Client {client.client_id} is not configured with a secret")
        elif not isinstance(provided, str) or not _same(provided, client.secret):
            raise CognitoError(
                "UnauthorizedException",
                "Client authentication failed",
                reason="RevokeToken without the right ClientSecret",
            )
        origin_jti = self._refresh_tokens.get(token)
        if origin_jti is None:
            if token.count(".") == 2:  # a JWT: an id/access token, not a refresh token
                raise CognitoError("UnsupportedTokenTypeException", "Unsupported token type")
            return {}  # RFC 7009: revoking an unknown token is not an error
        login = self._logins[origin_jti]
        if login.client_id != client.client_id:
            raise CognitoError(
                "UnauthorizedException",
                "Token was not issued to this client",
                reason=f"refresh token belongs to client {login.client_id}",
            )
        login.revoked = True
        return {}

    def _op_global_sign_out(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
        self._revoke_user(pool, user)
        return {}

    def _op_admin_user_global_sign_out(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        pool = self._pool(_required_str(body, "UserPoolId"))
        user = self._find_user(pool, _required_str(body, "Username"))
        if user is None:
            raise CognitoError("UserNotFoundException", "User does not exist.")
        self._revoke_user(pool, user)
        return {}

    def _op_get_user(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        _, user, _ = self._verify_access_token(_required_str(body, "AccessToken"))
        attributes = [{"Name": "sub", "Value": user.sub}]
        attributes += [{"Name": k, "Value": v} for k, v in user.attributes.items()]
        return {"Username": user.username, "UserAttributes": attributes}

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

    # ---- auth flows -----------------------------------------------------------------------

    def _flow_user_srp(self, ctx: _Ctx) -> dict[str, Any]:
        username = _param(ctx.params, "USERNAME")
        srp_a_hex = _param(ctx.params, "SRP_A")
        self._check_secret_hash(ctx.client, [username], ctx.params.get("SECRET_HASH"))
        try:
            big_a = int(srp_a_hex, 16)
        except ValueError:
            raise _invalid("SRP_A is not a hexadecimal number") from None
        if big_a % _N == 0:
            raise _invalid("SRP_A is 0 modulo N", reason="client sent A = 0 mod N")

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

        while True:
            small_b = secrets.randbits(256)
            big_b = (_K * verifier + pow(_G, small_b, _N)) % _N
            u = _to_int(_sha256(_pad(big_a), _pad(big_b)))
            if big_b != 0 and u != 0:
                break
        shared_s = pow(big_a * pow(verifier, u, _N) % _N, small_b, _N)
        secret_block = base64.b64encode(secrets.token_bytes(192)).decode()
        session = self._new_session(
            ctx,
            username=user_id,
            challenge="PASSWORD_VERIFIER",
            state={
                "secret_block": secret_block,
                "hkdf": _srp_hkdf(shared_s, u),
                "known_user": user is not None,
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
        if not _same(password, user.password):
            raise _not_authorized(_BAD_CREDENTIALS, reason=f"wrong password for {user.username}")
        return self._next_step(ctx, user)

    def _flow_refresh(self, ctx: _Ctx) -> dict[str, Any]:
        token = _param(ctx.params, "REFRESH_TOKEN")
        origin_jti = self._refresh_tokens.get(token)
        login = self._logins.get(origin_jti) if origin_jti else None
        if login is None or login.client_id != ctx.client.client_id:
            raise _not_authorized("Invalid Refresh Token", reason="unknown or foreign token")
        user = ctx.pool.users.get(login.username)
        if user is None:
            raise _not_authorized("Invalid Refresh Token", reason="user no longer exists")
        # Cognito hashes the internal username here; accept it or the sub.
        names = [user.username, user.sub]
        self._check_secret_hash(ctx.client, names, ctx.params.get("SECRET_HASH"))
        if login.revoked:
            raise _not_authorized("Refresh Token has been revoked")
        if self.clock() > login.refresh_expires_at:
            raise _not_authorized("Refresh Token has expired")
        if not user.enabled:
            raise _not_authorized("User is disabled.")
        return {
            "ChallengeParameters": {},
            "AuthenticationResult": self._mint_tokens(ctx.pool, ctx.client, user, login),
        }

    def _next_step(self, ctx: _Ctx, user: _User) -> dict[str, Any]:
        """What follows a verified first factor: a further challenge, or tokens.

        MFA (SMS_MFA, SOFTWARE_TOKEN_MFA, MFA_SETUP, SELECT_MFA_TYPE) belongs here too.
        """
        if user.status == "UNCONFIRMED":
            raise CognitoError("UserNotConfirmedException", "User is not confirmed.")
        if user.status == "RESET_REQUIRED":
            raise CognitoError(
                "PasswordResetRequiredException", "Password reset required for the user"
            )
        if user.status == "FORCE_CHANGE_PASSWORD":
            session = self._new_session(
                ctx, username=user.username, challenge="NEW_PASSWORD_REQUIRED"
            )
            visible = {k: v for k, v in user.attributes.items() if k != "email_verified"}
            return {
                "ChallengeName": "NEW_PASSWORD_REQUIRED",
                "Session": session.session_id,
                "ChallengeParameters": {
                    "USER_ID_FOR_SRP": user.username,
                    "requiredAttributes": "[]",
                    "userAttributes": json.dumps(visible),
                },
            }
        login = self._new_login(ctx, user)
        return {
            "ChallengeParameters": {},
            "AuthenticationResult": self._mint_tokens(
                ctx.pool, ctx.client, user, login, with_refresh=True
            ),
        }

    # ---- challenges -----------------------------------------------------------------------

    def _new_session(
        self,
        ctx: _Ctx,
        *,
        username: str,
        challenge: str,
        state: dict[str, Any] | None = None,
    ) -> _AuthSession:
        session = _AuthSession(
            session_id=secrets.token_urlsafe(192),
            pool_id=ctx.pool.pool_id,
            client_id=ctx.client.client_id,
            username=username,
            challenge=challenge,
            expires_at=self.clock() + self.session_ttl,
            state=state or {},
        )
        self._sessions[session.session_id] = session
        return session

    def _claim_session(self, ctx: _Ctx, session_id: str | None, challenge: str) -> _AuthSession:
        """Return the live session for this client and challenge, marking it used."""
        session = self._sessions.get(session_id) if session_id else None
        if session is None:
            raise _not_authorized("Invalid session for the user.", reason="unknown session")
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
                "Invalid session for the user.",
                reason=f"session is for {session.challenge} on client {session.client_id}",
            )
        session.consumed = True
        return session

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

        moment = _parse_timestamp(timestamp)
        if moment is None:
            raise _invalid("TIMESTAMP format should be EEE MMM d HH:mm:ss z yyyy in english.")
        if abs(self.clock() - moment.timestamp()) > self.timestamp_skew:
            raise _not_authorized(_BAD_CREDENTIALS, reason=f"stale TIMESTAMP {timestamp!r}")

        # Verify against the canonical TIMESTAMP, as Cognito does: "Jul 05" cannot verify.
        message = (
            ctx.pool.name.encode()
            + session.username.encode()
            + base64.b64decode(session.state["secret_block"])
            + format_timestamp(moment).encode()
        )
        expected = hmac.new(session.state["hkdf"], message, hashlib.sha256).digest()
        try:
            claimed = base64.b64decode(signature, validate=True)
        except binascii.Error:
            claimed = b""
        if not hmac.compare_digest(claimed, expected) or not session.state["known_user"]:
            reason = "unknown user" if not session.state["known_user"] else "bad SRP signature"
            raise _not_authorized(_BAD_CREDENTIALS, reason=reason)

        user = ctx.pool.users.get(session.username)
        if user is None:
            raise _not_authorized(_BAD_CREDENTIALS, reason="user deleted mid-login")
        if not user.enabled:
            raise _not_authorized("User is disabled.")
        return self._next_step(ctx, user)

    def _challenge_new_password(self, ctx: _Ctx) -> dict[str, Any]:
        username = _param(ctx.params, "USERNAME")
        new_password = _param(ctx.params, "NEW_PASSWORD")
        session_id = _required_str(ctx.body, "Session")
        self._check_secret_hash(ctx.client, [username], ctx.params.get("SECRET_HASH"))
        # Before claiming the session: a rejected password must leave the user able to retry.
        self._check_password_policy(new_password)
        session = self._claim_session(ctx, session_id, "NEW_PASSWORD_REQUIRED")
        user = ctx.pool.users.get(session.username)
        if user is None or self._find_user(ctx.pool, username) is not user:
            raise _not_authorized(_BAD_CREDENTIALS, reason="USERNAME is not the session's user")
        for key, value in ctx.params.items():
            if key.startswith("userAttributes."):
                user.attributes[key.removeprefix("userAttributes.")] = value
        self._store_password(ctx.pool, user, new_password)
        user.status = "CONFIRMED"
        return self._next_step(ctx, user)

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

    def _new_login(self, ctx: _Ctx, user: _User) -> _Login:
        login = _Login(
            origin_jti=str(uuid.uuid4()),
            pool_id=ctx.pool.pool_id,
            client_id=ctx.client.client_id,
            username=user.username,
            auth_time=int(self.clock()),
            refresh_token=secrets.token_urlsafe(384),
            refresh_expires_at=self.clock() + self.refresh_token_ttl,
        )
        self._logins[login.origin_jti] = login
        self._refresh_tokens[login.refresh_token] = login.origin_jti
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
        pool = next((p for p in self._pools.values() if self.issuer(p.pool_id) == issuer), None)
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
