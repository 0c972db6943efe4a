"""Verify Cognito ID and access tokens (RS256 JWTs) against the user pool's JWKS.

``TokenVerifier.verify`` runs a fixed list of checks, in order, each a small function with its
own error type, so the list can be read top to bottom and checked against the spec:

1. ``check_header``       the header parses                       ``MalformedToken``
2. ``check_alg``          ``alg`` is RS256                         ``AlgorithmNotAllowed``
3. ``check_no_crit``      no ``crit`` header                       ``UnsupportedCritical``
4. ``check_kid``          ``kid`` is a non-empty string            ``MalformedToken``
5. ``JwksCache.get_jwk``  the kid is published                     ``UnknownKeyId``
6. ``check_key_usable``   JWK is RSA, use "sig", alg RS256/absent  ``KeyNotUsableForSignature``
7. ``check_signature``    RS256 signature                          ``InvalidSignature``
8. ``check_issuer``       ``iss`` equals the pool, exactly         ``IssuerMismatch``
9. ``check_token_use``    ``token_use`` is "id" / "access"         ``TokenUseMismatch``
10. ``check_audience``    ``aud`` (id) / ``client_id`` (access)    ``AudienceMismatch``
11. ``check_expiry``      ``exp`` > now - leeway                   ``Expired``
12. ``check_not_before``  ``nbf``, ``iat`` <= now + leeway         ``NotYetValid``

A required claim that is absent raises ``MissingClaim``; one of the wrong JSON type for a date
raises ``MalformedToken``.

The header parameters ``jku``, ``x5u``, ``jwk`` and ``x5c`` are never read: the only keys
trusted are the ones fetched from the configured JWKS URL.

Error messages never contain token content (not even the ``kid``), so they are safe to log.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

__all__ = [
    "MAX_JWKS_BYTES",
    "MAX_TOKEN_LENGTH",
    "AlgorithmNotAllowed",
    "AudienceMismatch",
    "Expired",
    "InvalidSignature",
    "IssuerMismatch",
    "Jwk",
    "JwksCache",
    "JwksUnavailable",
    "KeyNotUsableForSignature",
    "MalformedToken",
    "MissingClaim",
    "NotYetValid",
    "TokenError",
    "TokenUseMismatch",
    "TokenVerifier",
    "UnknownKeyId",
    "UnsupportedCritical",
    "check_alg",
    "check_audience",
    "check_expiry",
    "check_header",
    "check_issuer",
    "check_key_usable",
    "check_kid",
    "check_no_crit",
    "check_not_before",
    "check_signature",
    "check_token_use",
]

_log = logging.getLogger(__name__)

ALLOWED_ALG: Final = "RS256"
# Cognito tokens are a few KiB even with many groups; the cap bounds parsing work per request.
MAX_TOKEN_LENGTH: Final = 32 * 1024
MAX_JWKS_BYTES: Final = 1024 * 1024
_MIN_RSA_BITS: Final = 2048
_MAX_KID_LENGTH: Final = 256
_B64URL = re.compile(r"[A-Za-z0-9_-]*")

# Module-level so tests can move time without sleeping.
_wall_clock = time.time
_monotonic = time.monotonic


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class TokenError(Exception):
    """Base class. The message is safe to log: it never contains token content."""


class MalformedToken(TokenError):
    pass


class AlgorithmNotAllowed(TokenError):
    pass


class UnsupportedCritical(TokenError):
    pass


class UnknownKeyId(TokenError):
    pass


class KeyNotUsableForSignature(TokenError):
    pass


class InvalidSignature(TokenError):
    pass


class IssuerMismatch(TokenError):
    pass


class TokenUseMismatch(TokenError):
    pass


class AudienceMismatch(TokenError):
    pass


class Expired(TokenError):
    pass


class NotYetValid(TokenError):
    pass


class MissingClaim(TokenError):
    pass


class JwksUnavailable(TokenError):
    """The JWKS could not be fetched: a service problem (503), not a bad token (401)."""


# --------------------------------------------------------------------------------------------
# JWKS
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Jwk:
    """One published key. ``key`` is None when the JWK could not be turned into an RSA key."""

    kid: str
    kty: object
    use: object
    alg: object
    key: RSAPublicKey | None
    problem: str | None = None


def check_key_usable(jwk: Jwk) -> RSAPublicKey:
    """The JWK may verify RS256 signatures: RSA, ``use`` "sig", ``alg`` absent or RS256."""
    if jwk.problem is not None:
        raise KeyNotUsableForSignature(f"JWK unusable: {jwk.problem}")
    if jwk.kty != "RSA":
        raise KeyNotUsableForSignature("JWK kty is not RSA")
    if jwk.use != "sig":
        raise KeyNotUsableForSignature('JWK use is not "sig"')
    if jwk.alg is not None and jwk.alg != ALLOWED_ALG:
        raise KeyNotUsableForSignature("JWK alg is not RS256")
    if jwk.key is None:
        raise KeyNotUsableForSignature("JWK has no RSA public key")
    if jwk.key.key_size < _MIN_RSA_BITS:
        raise KeyNotUsableForSignature(f"JWK RSA key shorter than {_MIN_RSA_BITS} bits")
    return jwk.key


def _parse_jwk(raw: Mapping[str, Any]) -> Jwk:
    kid = raw["kid"]
    kty, use, alg = raw.get("kty"), raw.get("use"), raw.get("alg")
    if kty != "RSA":
        return Jwk(kid, kty, use, alg, None)
    if "d" in raw:
        # A published private key means anyone can sign: refuse it rather than strip it.
        return Jwk(kid, kty, use, alg, None, "JWKS publishes private key material")
    n, e = raw.get("n"), raw.get("e")
    if not isinstance(n, str) or not isinstance(e, str):
        return Jwk(kid, kty, use, alg, None, "RSA parameters missing")
    try:
        # Only the public members go in, so nothing private is ever reconstructed.
        key = RSAAlgorithm.from_jwk({"kty": "RSA", "n": n, "e": e})
    except (jwt.PyJWTError, ValueError, TypeError):
        return Jwk(kid, kty, use, alg, None, "RSA parameters invalid")
    if not isinstance(key, RSAPublicKey):  # pragma: no cover - from_jwk without "d"
        return Jwk(kid, kty, use, alg, None, "not an RSA public key")
    return Jwk(kid, kty, use, alg, key)


def _parse_jwks(body: bytes) -> dict[str, Jwk]:
    """``{"keys": [...]}`` → JWKs by kid. Keys without a string kid cannot be selected: skipped."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as err:
        raise JwksUnavailable("JWKS is not valid JSON") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise JwksUnavailable('JWKS is not an object with a "keys" list')
    keys: dict[str, Jwk] = {}
    for raw in doc["keys"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("kid"), str) or not raw["kid"]:
            continue
        kid = raw["kid"]
        if kid in keys:
            # Which of two same-kid keys was meant is unknowable: fail closed on both.
            keys[kid] = Jwk(kid, raw.get("kty"), raw.get("use"), raw.get("alg"), None, "dup kid")
            continue
        keys[kid] = _parse_jwk(raw)
    if not any(_usable(jwk) for jwk in keys.values()):
        # Swapping in a set without signing keys would log everyone out; treat it as a failure.
        raise JwksUnavailable("JWKS has no usable RS256 signing key")
    return keys


def _usable(jwk: Jwk) -> bool:
    try:
        check_key_usable(jwk)
    except KeyNotUsableForSignature:
        return False
    return True


class JwksCache:
    """The pool's signing keys, fetched from ``url`` and cached by kid.

    An unknown kid triggers at most one refetch, shared by all callers waiting at that moment,
    and then none until ``min_refetch_interval`` seconds have passed since the last attempt,
    so spraying random kids costs the JWKS endpoint at most one request per interval.
    A successful fetch replaces the whole set (a key stays accepted while it is published);
    a failed one keeps the current set.
    """

    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 3.0,
        min_refetch_interval: float = 30.0,
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be > 0")
        if not min_refetch_interval >= 0:
            raise ValueError("min_refetch_interval must be >= 0")
        self._url = url
        self._session = session
        self._owns_session = session is None
        self._timeout = timeout
        self._min_refetch_interval = min_refetch_interval
        self._keys: dict[str, Jwk] = {}
        self._loaded = False
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._closed = False
        self.fetch_count = 0  # attempts, for metrics and tests

    @property
    def loaded(self) -> bool:
        """True once a fetch has succeeded."""
        return self._loaded

    async def load(self) -> None:
        """Fetch now, regardless of the refetch interval. Raises ``JwksUnavailable``."""
        await self._refresh(force=True)

    async def get_jwk(self, kid: str) -> Jwk:
        """The published JWK for ``kid``, refetching once if it is unknown."""
        jwk = self._keys.get(kid)
        if jwk is not None:
            return jwk
        await self._refresh(force=False)
        jwk = self._keys.get(kid)
        if jwk is None:
            raise UnknownKeyId("kid not in JWKS")
        return jwk

    async def get_key(self, kid: str) -> RSAPublicKey:
        """The RSA public key for ``kid``; ``UnknownKeyId`` / ``KeyNotUsableForSignature``."""
        return check_key_usable(await self.get_jwk(kid))

    async def close(self) -> None:
        self._closed = True
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _refresh(self, *, force: bool) -> None:
        task = self._inflight
        if task is None:
            if not force and self._rate_limited():
                if not self._loaded:
                    raise JwksUnavailable("JWKS not loaded and refetch is rate-limited")
                raise UnknownKeyId("kid not in JWKS; refetch rate-limited")
            self._last_attempt = _monotonic()
            self.fetch_count += 1
            task = self._inflight = asyncio.create_task(self._fetch_and_swap())
            task.add_done_callback(_consume_exception)
        # Shielded: a caller that is cancelled (client went away) must not cancel the fetch
        # the other callers are waiting on.
        await asyncio.shield(task)

    def _rate_limited(self) -> bool:
        last = self._last_attempt
        return last is not None and _monotonic() - last < self._min_refetch_interval

    async def _fetch_and_swap(self) -> None:
        try:
            keys = _parse_jwks(await self._fetch())
        except JwksUnavailable as err:
            _log.warning("JWKS fetch from %s failed: %s", self._url, err)
            raise
        finally:
            if self._inflight is asyncio.current_task():
                self._inflight = None
        self._keys = keys  # one assignment: readers see the old set or the new one
        self._loaded = True

    async def _fetch(self) -> bytes:
        if self._closed:
            raise JwksUnavailable("JWKS cache is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.get(
                    self._url,
                    allow_redirects=False,  # a redirect could point anywhere: a failure
                    timeout=aiohttp.ClientTimeout(total=self._timeout),
                    headers={"Accept": "application/json"},
                ) as resp:
                    if resp.status != 200:
                        raise JwksUnavailable(f"JWKS answered HTTP {resp.status}")
                    if (resp.content_length or 0) > MAX_JWKS_BYTES:
                        raise JwksUnavailable("JWKS body too large")
                    body = bytearray()
                    async for chunk in resp.content.iter_chunked(64 * 1024):
                        body += chunk
                        if len(body) > MAX_JWKS_BYTES:
                            raise JwksUnavailable("JWKS body too large")
                    return bytes(body)
        # RuntimeError: the caller's session was closed; ValueError/OSError: bad URL, sockets.
        except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError, ValueError) as err:
            raise JwksUnavailable(f"JWKS request failed: {type(err).__name__}") from err


def _consume_exception(task: asyncio.Task[None]) -> None:
    # Callers may all have gone away; the failure is already logged.
    if not task.cancelled():
        task.exception()


# --------------------------------------------------------------------------------------------
# Checks. Each takes plain values, raises its own error, and returns what the next one needs.
# --------------------------------------------------------------------------------------------


def check_header(token: object) -> dict[str, Any]:
    """Compact JWS, three base64url segments, header a JSON object."""
    if not isinstance(token, str):
        raise MalformedToken("token is not a string")
    if len(token) > MAX_TOKEN_LENGTH:
        raise MalformedToken("token too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedToken("token does not have three segments")
    segment = parts[0]
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise MalformedToken("header is not base64url")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        raise MalformedToken("header is not JSON") from None
    if not isinstance(header, dict):
        raise MalformedToken("header is not a JSON object")
    return header


def check_alg(header: Mapping[str, Any]) -> None:
    """RS256 only: rejects "none", HS256 (key confusion), ES256 and anything else."""
    if header.get("alg") != ALLOWED_ALG:
        raise AlgorithmNotAllowed("alg is not RS256")


def check_no_crit(header: Mapping[str, Any]) -> None:
    """We implement no JWS extensions, so any ``crit`` makes the token unprocessable."""
    if "crit" in header:
        raise UnsupportedCritical("crit header present")


def check_kid(header: Mapping[str, Any]) -> str:
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > _MAX_KID_LENGTH:
        raise MalformedToken("kid missing or invalid")
    return kid


# Claim checks are ours (so each has its own error): PyJWT only verifies the signature.
_SIGNATURE_ONLY = jwt.PyJWT(
    options={
        "verify_signature": True,
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": False,
        "verify_iss": False,
        "verify_sub": False,
        "verify_jti": False,
        "require": [],
        "enforce_minimum_key_length": True,
    }
)


def check_signature(token: str, key: RSAPublicKey) -> dict[str, Any]:
    """RS256 signature with the JWKS key; returns the claims (a JSON object)."""
    try:
        claims = _SIGNATURE_ONLY.decode(token, key, algorithms=[ALLOWED_ALG])
    except jwt.InvalidSignatureError:
        raise InvalidSignature("signature does not verify") from None
    except jwt.InvalidKeyError:
        raise KeyNotUsableForSignature("key rejected for RS256") from None
    except jwt.InvalidAlgorithmError:  # pragma: no cover - check_alg ran first
        raise AlgorithmNotAllowed("alg is not RS256") from None
    except jwt.PyJWTError:
        raise MalformedToken("token segments or claims are not valid") from None
    if not isinstance(claims, dict):  # pragma: no cover - PyJWT guarantees an object
        raise MalformedToken("claims are not a JSON object")
    return claims


def check_issuer(claims: Mapping[str, Any], issuer: str | Collection[str]) -> None:
    """Exact string equality with one of the accepted issuers (a pool moving to the
    multi-Region issuer has two): a prefix or a trailing-slash variant is another issuer."""
    if "iss" not in claims:
        raise MissingClaim("iss missing")
    iss = claims["iss"]
    accepted = (issuer,) if isinstance(issuer, str) else issuer
    if not isinstance(iss, str) or iss not in accepted:
        raise IssuerMismatch("iss is not the user pool")


def check_token_use(claims: Mapping[str, Any], token_use: Literal["id", "access"]) -> None:
    if "token_use" not in claims:
        raise MissingClaim("token_use missing")
    if claims["token_use"] != token_use:
        raise TokenUseMismatch(f"token_use is not {token_use}")


_AUDIENCE_CLAIM: Final = {"id": "aud", "access": "client_id"}


def check_audience(
    claims: Mapping[str, Any], token_use: Literal["id", "access"], client_ids: frozenset[str]
) -> None:
    """ID tokens carry the app client in ``aud``; access tokens in ``client_id``."""
    name = _AUDIENCE_CLAIM[token_use]
    if name not in claims:
        raise MissingClaim(f"{name} missing")
    value = claims[name]
    # RFC 7519 allows aud to be a list; access-token client_id is always a single string.
    values = value if name == "aud" and isinstance(value, list) else [value]
    if not any(isinstance(v, str) and v in client_ids for v in values):
        raise AudienceMismatch(f"{name} is not an allowed app client")


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedToken(f"{name} is not a NumericDate")
    return float(value)


def check_expiry(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    if "exp" not in claims:
        raise MissingClaim("exp missing")
    if not _numeric_date(claims, "exp") > now - leeway:
        raise Expired("token expired")


def check_not_before(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    """``nbf`` (optional) and ``iat`` (required) must not be in the future beyond the leeway."""
    if "nbf" in claims and not _numeric_date(claims, "nbf") <= now + leeway:
        raise NotYetValid("nbf in the future")
    if "iat" not in claims:
        raise MissingClaim("iat missing")
    if not _numeric_date(claims, "iat") <= now + leeway:
        raise NotYetValid("iat in the future")


class TokenVerifier:
    """Verifies Cognito tokens of one user pool for a set of app clients."""

    def __init__(
        self,
        *,
        issuer: str | Collection[str],
        client_ids: Collection[str],
        jwks: JwksCache,
        leeway: float = 30.0,
    ) -> None:
        issuers = (issuer,) if isinstance(issuer, str) else tuple(issuer)
        if not issuers or not all(isinstance(i, str) and i for i in issuers):
            raise ValueError("issuer must not be empty")
        if isinstance(client_ids, str):
            # A str is a Collection[str]: "in" would become a substring test.
            raise TypeError("client_ids must be a collection of strings, not a string")
        ids = frozenset(client_ids)
        if not ids or not all(isinstance(c, str) and c for c in ids):
            raise ValueError("client_ids must be non-empty strings")
        if not 0 <= leeway <= 60:
            raise ValueError("leeway must be between 0 and 60 seconds")
        self._issuers = frozenset(issuers)
        self._client_ids = ids
        self._jwks = jwks
        self._leeway = float(leeway)

    async def verify(self, token: str, *, token_use: Literal["id", "access"]) -> dict[str, Any]:
        """Run every check in order; returns the claims or raises a ``TokenError``."""
        if token_use not in ("id", "access"):
            raise ValueError("token_use must be 'id' or 'access'")
        header = check_header(token)
        check_alg(header)
        check_no_crit(header)
        kid = check_kid(header)
        key = check_key_usable(await self._jwks.get_jwk(kid))
        claims = check_signature(token, key)
        check_issuer(claims, self._issuers)
        check_token_use(claims, token_use)
        check_audience(claims, token_use, self._client_ids)
        now = _wall_clock()
        check_expiry(claims, now, self._leeway)
        check_not_before(claims, now, self._leeway)
        return claims
