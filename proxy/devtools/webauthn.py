"""WebAuthn (passkey) checks for the Cognito double, and a software authenticator for tests.

Relying-party verification follows WebAuthn Level 3 §7.1 (registration, "none" attestation only)
and §7.2 (authentication, ES256 only): clientDataJSON type, challenge and origin; rpIdHash; the
user-present flag (and user-verified when required); the signature; a growing signCount.
A minimal CBOR codec covers what attestation objects and COSE keys use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "Passkey",
    "SoftwareAuthenticator",
    "WebAuthnError",
    "b64url",
    "b64url_decode",
    "verify_assertion",
    "verify_registration",
]

_FLAG_UP = 0x01
_FLAG_UV = 0x04
_FLAG_AT = 0x40


class WebAuthnError(Exception):
    """A credential that does not verify; the message says which check failed and ``kind``
    which family of check: "malformed", "challenge", "origin", "rp" (rpIdHash or the
    credential's relying party), "unsupported" (algorithm, attestation format, user
    verification) or "signature" (the proof itself: signature, counter, user handle)."""

    def __init__(self, message: str, kind: str = "malformed") -> None:
        super().__init__(message)
        self.kind = kind


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str):
        raise WebAuthnError("expected a base64url string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise WebAuthnError("not base64url") from exc


# ---- minimal CBOR (RFC 8949): unsigned/negative ints, byte/text strings, arrays, maps ---------


def cbor_encode(value: Any) -> bytes:
    def head(major: int, n: int) -> bytes:
        if n < 24:
            return bytes([major << 5 | n])
        for info, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
            if n < 1 << (8 * struct.calcsize(fmt)):
                return bytes([major << 5 | info]) + struct.pack(fmt, n)
        raise ValueError("integer too large for CBOR")

    if isinstance(value, bool) or value is None:
        raise ValueError("booleans and null are not needed here")
    if isinstance(value, int):
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode()
        return head(3, len(raw)) + raw
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(cbor_encode(v) for v in value)
    if isinstance(value, dict):
        items = b"".join(cbor_encode(k) + cbor_encode(v) for k, v in value.items())
        return head(5, len(value)) + items
    raise ValueError(f"cannot CBOR-encode {type(value).__name__}")


def cbor_decode(data: bytes) -> tuple[Any, int]:
    """Decode one item from ``data``; returns (item, bytes consumed)."""

    def item(pos: int, depth: int) -> tuple[Any, int]:
        if depth > 16 or pos >= len(data):
            raise WebAuthnError("malformed CBOR")
        major, info = data[pos] >> 5, data[pos] & 0x1F
        pos += 1
        if info < 24:
            n = info
        elif info in (24, 25, 26, 27):
            size = 1 << (info - 24)
            if pos + size > len(data):
                raise WebAuthnError("malformed CBOR")
            n = int.from_bytes(data[pos : pos + size], "big")
            pos += size
        else:
            raise WebAuthnError("unsupported CBOR item")
        if major == 0:
            return n, pos
        if major == 1:
            return -1 - n, pos
        if major in (2, 3):
            if pos + n > len(data):
                raise WebAuthnError("malformed CBOR")
            raw = data[pos : pos + n]
            return (bytes(raw) if major == 2 else raw.decode()), pos + n
        if major == 4:
            out = []
            for _ in range(n):
                value, pos = item(pos, depth + 1)
                out.append(value)
            return out, pos
        if major == 5:
            mapping = {}
            for _ in range(n):
                key, pos = item(pos, depth + 1)
                value, pos = item(pos, depth + 1)
                mapping[key] = value
            return mapping, pos
        raise WebAuthnError("unsupported CBOR major type")

    return item(0, 0)


# ---- COSE ES256 keys ------------------------------------------------------------------------


def cose_from_public_key(key: ec.EllipticCurvePublicKey) -> bytes:
    numbers = key.public_numbers()
    return cbor_encode(
        {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
    )


def public_key_from_cose(data: bytes) -> ec.EllipticCurvePublicKey:
    cose, _ = cbor_decode(data)
    if not isinstance(cose, dict) or cose.get(1) != 2 or cose.get(3) != -7 or cose.get(-1) != 1:
        raise WebAuthnError("only ES256 (EC2, P-256) credentials are supported", "unsupported")
    x, y = cose.get(-2), cose.get(-3)
    if not (isinstance(x, bytes) and isinstance(y, bytes) and len(x) == len(y) == 32):
        raise WebAuthnError("malformed COSE key")
    try:
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
    except ValueError as exc:
        raise WebAuthnError("COSE key is not on P-256") from exc


# ---- relying-party checks ---------------------------------------------------------------------


@dataclass
class Passkey:
    """A registered credential as the relying party stores it."""

    credential_id: bytes
    public_key: ec.EllipticCurvePublicKey
    rp_id: str
    sign_count: int = 0
    user_handle: bytes | None = None


def _client_data(encoded: str, *, kind: str, challenge: bytes, origins: Iterable[str]) -> bytes:
    raw = b64url_decode(encoded)
    try:
        client = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebAuthnError("clientDataJSON is not JSON") from exc
    if not isinstance(client, dict) or client.get("type") != kind:
        raise WebAuthnError(f"clientDataJSON.type is not {kind}")
    sent = client.get("challenge")
    if not isinstance(sent, str) or not hmac.compare_digest(b64url_decode(sent), challenge):
        raise WebAuthnError("clientDataJSON.challenge is not this session's challenge", "challenge")
    if not _origin_allowed(client.get("origin"), origins):
        raise WebAuthnError(f"origin {client.get('origin')!r} is not allowed", "origin")
    return raw


_HTTPS_ORIGIN = re.compile(r"https://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::\d{1,5})?")


def _origin_allowed(origin: object, allowed: Iterable[str]) -> bool:
    """``origin`` is one of ``allowed``; an entry ``https://*.example.com`` stands for every
    https subdomain of example.com (WebAuthn lets a subdomain's page use its parent as rpId)."""
    if not isinstance(origin, str):
        return False
    for entry in allowed:
        if entry.startswith("https://*."):
            parent = entry.removeprefix("https://*.")
            host = _HTTPS_ORIGIN.fullmatch(origin)
            if host and host[1].endswith("." + parent):
                return True
        elif origin == entry:
            return True
    return False


def _authenticator_data(raw: bytes, *, rp_id: str, require_uv: bool) -> tuple[int, int]:
    if len(raw) < 37:
        raise WebAuthnError("authenticatorData too short")
    if not hmac.compare_digest(raw[:32], hashlib.sha256(rp_id.encode()).digest()):
        raise WebAuthnError("rpIdHash is not sha256(rpId)", "rp")
    flags = raw[32]
    if not flags & _FLAG_UP:
        raise WebAuthnError("user-present flag not set", "unsupported")
    if require_uv and not flags & _FLAG_UV:
        raise WebAuthnError(
            "user-verified flag not set but verification is required", "unsupported"
        )
    return flags, struct.unpack(">I", raw[33:37])[0]


def _credential_object(credential: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(credential, str):
        try:
            credential = json.loads(credential)
        except json.JSONDecodeError as exc:
            raise WebAuthnError("CREDENTIAL is not JSON") from exc
    if not isinstance(credential, Mapping) or credential.get("type") != "public-key":
        raise WebAuthnError("credential type is not public-key")
    if not isinstance(credential.get("response"), Mapping):
        raise WebAuthnError("credential has no response")
    return credential


def verify_assertion(
    credential: str | Mapping[str, Any],
    *,
    challenge: bytes,
    rp_id: str,
    origins: Iterable[str],
    passkeys: Iterable[Passkey],
    require_user_verification: bool,
) -> tuple[Passkey, int]:
    """Check an AuthenticationResponseJSON; returns (the passkey used, its new signCount).

    The caller stores the new signCount only once the whole sign-in step succeeds.
    """
    cred = _credential_object(credential)
    response = cred["response"]
    raw_id = b64url_decode(str(cred.get("rawId") or cred.get("id") or ""))
    passkey = next((p for p in passkeys if hmac.compare_digest(p.credential_id, raw_id)), None)
    if passkey is None:
        raise WebAuthnError("credential id is not registered for this user")
    if passkey.rp_id != rp_id:
        raise WebAuthnError("credential belongs to another relying party", "rp")
    client_raw = _client_data(
        str(response.get("clientDataJSON", "")),
        kind="webauthn.get",
        challenge=challenge,
        origins=origins,
    )
    auth_data = b64url_decode(str(response.get("authenticatorData", "")))
    _, count = _authenticator_data(auth_data, rp_id=rp_id, require_uv=require_user_verification)
    signature = b64url_decode(str(response.get("signature", "")))
    try:
        passkey.public_key.verify(
            signature,
            auth_data + hashlib.sha256(client_raw).digest(),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        raise WebAuthnError("assertion signature does not verify", "signature") from None
    handle = response.get("userHandle")
    if (
        handle
        and passkey.user_handle is not None
        and not hmac.compare_digest(b64url_decode(str(handle)), passkey.user_handle)
    ):
        raise WebAuthnError("userHandle is not the credential's user", "signature")
    # §7.2 step 21: a counter that does not grow signals a cloned authenticator.
    if (count or passkey.sign_count) and count <= passkey.sign_count:
        raise WebAuthnError(
            f"signCount {count} did not grow past {passkey.sign_count}", "signature"
        )
    return passkey, count


def verify_registration(
    credential: str | Mapping[str, Any],
    *,
    challenge: bytes,
    rp_id: str,
    origins: Iterable[str],
    require_user_verification: bool,
    user_handle: bytes | None,
) -> Passkey:
    """Check a RegistrationResponseJSON with "none" attestation; returns the new passkey."""
    cred = _credential_object(credential)
    response = cred["response"]
    _client_data(
        str(response.get("clientDataJSON", "")),
        kind="webauthn.create",
        challenge=challenge,
        origins=origins,
    )
    attestation, _ = cbor_decode(b64url_decode(str(response.get("attestationObject", ""))))
    if not isinstance(attestation, dict) or attestation.get("fmt") != "none":
        raise WebAuthnError("only 'none' attestation is supported", "unsupported")
    auth_data = attestation.get("authData")
    if not isinstance(auth_data, bytes):
        raise WebAuthnError("attestationObject has no authData")
    flags, count = _authenticator_data(auth_data, rp_id=rp_id, require_uv=require_user_verification)
    if not flags & _FLAG_AT or len(auth_data) < 55:
        raise WebAuthnError("authData carries no attested credential")
    id_len = struct.unpack(">H", auth_data[53:55])[0]
    credential_id = auth_data[55 : 55 + id_len]
    if len(credential_id) != id_len or b64url_decode(str(cred.get("rawId", ""))) != credential_id:
        raise WebAuthnError("credential id does not match authData")
    public_key = public_key_from_cose(auth_data[55 + id_len :])
    return Passkey(credential_id, public_key, rp_id, count, user_handle)


# ---- a software authenticator for tests and the demo --------------------------------------------


class SoftwareAuthenticator:
    """An ES256 passkey in memory that answers WebAuthn ceremonies like a browser would.

    ``origin`` defaults to ``https://<rp_id>``. ``register_response`` answers
    StartWebAuthnRegistration's CredentialCreationOptions; ``assertion`` answers a WEB_AUTHN
    challenge's CREDENTIAL_REQUEST_OPTIONS and returns the CREDENTIAL JSON string.
    """

    def __init__(
        self, rp_id: str, *, origin: str | None = None, user_handle: bytes | None = None
    ) -> None:
        self.rp_id = rp_id
        self.origin = origin or f"https://{rp_id}"
        self.user_handle = user_handle
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(16)
        self.sign_count = 0

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def _auth_data(self, rp_id: str, flags: int, extra: bytes = b"") -> bytes:
        self.sign_count += 1
        return (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([flags])
            + struct.pack(">I", self.sign_count)
            + extra
        )

    @staticmethod
    def _client_json(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin}).encode()

    def register_response(
        self, creation_options: Mapping[str, Any], *, origin: str | None = None
    ) -> dict[str, Any]:
        """A RegistrationResponseJSON ("none" attestation) for ``creation_options``."""
        rp_id = str(creation_options.get("rp", {}).get("id") or self.rp_id)
        user = creation_options.get("user", {})
        if user.get("id"):
            self.user_handle = b64url_decode(str(user["id"]))
        attested = (
            bytes(16)  # AAGUID
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + cose_from_public_key(self.public_key)
        )
        auth_data = self._auth_data(rp_id, _FLAG_UP | _FLAG_UV | _FLAG_AT, attested)
        client = self._client_json(
            "webauthn.create", str(creation_options["challenge"]), origin or self.origin
        )
        attestation = cbor_encode({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def assertion(
        self,
        request_options: str | Mapping[str, Any],
        *,
        origin: str | None = None,
        user_verified: bool = True,
    ) -> str:
        """The CREDENTIAL (AuthenticationResponseJSON, as a JSON string) for these options."""
        options = (
            json.loads(request_options) if isinstance(request_options, str) else request_options
        )
        rp_id = str(options.get("rpId") or self.rp_id)
        flags = _FLAG_UP | (_FLAG_UV if user_verified else 0)
        auth_data = self._auth_data(rp_id, flags)
        client = self._client_json("webauthn.get", str(options["challenge"]), origin or self.origin)
        signature = self.private_key.sign(
            auth_data + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256())
        )
        response: dict[str, Any] = {
            "clientDataJSON": b64url(client),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if self.user_handle is not None:
            response["userHandle"] = b64url(self.user_handle)
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": response,
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )
