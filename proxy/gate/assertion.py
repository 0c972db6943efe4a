"""Signed identity assertions: a short-lived ES256 JWT the upstream can verify on its own.

Identity headers are trustworthy only when the app cannot be reached except through the proxy.
When it can (a shared network, a second ingress), the app verifies this JWT instead: signed by the
proxy's own P-256 key, public keys published at ``/_auth/jwks.json``, valid for ``ttl`` seconds,
with ``aud`` naming the upstream it was made for (so it cannot be replayed to another one).

Claims: ``iss``, ``aud``, ``sub``, ``username`` (``cognito:username``), ``email`` and
``email_verified`` (when present), ``groups`` (``cognito:groups``, a list, possibly empty),
``iat``, ``exp``, ``jti``. The key id is the RFC 7638 thumbprint of the public key.

Signing costs tens of microseconds, so one assertion per (session tokens, audience) is reused for
a quarter of its lifetime: the upstream always receives one with at least 3/4 of ``ttl`` left.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["AssertionSigner", "load_or_generate_key"]

log = logging.getLogger("proxy.gate")

_CACHE_SIZE = 10_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_or_generate_key(key_file: Path | None) -> ec.EllipticCurvePrivateKey:
    """The PEM P-256 key in ``key_file``; a fresh one (with a warning) when none is configured."""
    if key_file is None:
        log.warning(
            "assertion.key_file is not set: signing assertions with a key generated at start. "
            "It changes on every restart and differs between replicas; set "
            "GATE_ASSERTION_KEY_FILE to one shared key when running more than one."
        )
        return ec.generate_private_key(ec.SECP256R1())
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    # Checked by the settings validator already; this guards other callers.
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{key_file}: must be an EC P-256 key")
    return key


class AssertionSigner:
    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        *,
        issuer: str,
        ttl: int,
        clock: Any = time.time,
    ) -> None:
        self._key = key
        self._issuer = issuer
        self._ttl = ttl
        self._reuse = ttl / 4
        self._clock = clock
        numbers = key.public_key().public_numbers()
        self.public_jwk: dict[str, str] = {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
        # RFC 7638: SHA-256 over the required members, lexicographic order, no whitespace.
        canonical = json.dumps(self.public_jwk, sort_keys=True, separators=(",", ":"))
        self.kid = _b64(hashlib.sha256(canonical.encode()).digest())
        self._cache: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()

    def jwks(self) -> dict[str, Any]:
        """The JWK Set for ``/_auth/jwks.json``."""
        return {"keys": [{**self.public_jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def assertion(self, claims: Mapping[str, Any], *, audience: str, cache_key: str) -> str:
        """A signed assertion for these (verified ID token) claims, reused while fresh enough.

        ``cache_key`` must change whenever ``claims`` may (the session's ID token does).
        """
        now = self._clock()
        key = (audience, cache_key)
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self._reuse:
            return hit[1]
        token = self._sign(claims, audience, now)
        self._cache[key] = (now, token)
        self._cache.move_to_end(key)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return token

    def _sign(self, claims: Mapping[str, Any], audience: str, now: float) -> str:
        iat = int(now)
        payload: dict[str, Any] = {
            "iss": self._issuer,
            "aud": audience,
            "sub": claims.get("sub"),
            "username": claims.get("cognito:username"),
            "groups": [g for g in claims.get("cognito:groups") or [] if isinstance(g, str)],
            "iat": iat,
            "exp": iat + self._ttl,
            "jti": secrets.token_urlsafe(12),
        }
        for name in ("email", "email_verified"):
            if name in claims:
                payload[name] = claims[name]
        return jwt.encode(
            payload, self._key, algorithm="ES256", headers={"kid": self.kid, "typ": "JWT"}
        )
