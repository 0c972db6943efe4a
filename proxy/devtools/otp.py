"""One-time codes for the Cognito double: RFC 6238 TOTP, random delivery codes, masked destinations.

Written from the RFCs; the double's tests check these against an independent implementation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time

__all__ = ["mask_email", "mask_phone", "new_code", "new_totp_secret", "totp_code", "totp_step"]

TOTP_PERIOD = 30
TOTP_DIGITS = 6


def new_totp_secret() -> str:
    """A base32 secret like AssociateSoftwareToken's SecretCode (160 bits, no padding)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _b32decode(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def _hotp(key: bytes, counter: int, digits: int = TOTP_DIGITS) -> str:
    """RFC 4226 HOTP with SHA-1 and dynamic truncation."""
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp_step(at: float | None = None) -> int:
    """The RFC 6238 time step (30 s) containing ``at`` (default: now)."""
    return int((time.time() if at is None else at) // TOTP_PERIOD)


def totp_code(secret: str, at: float | None = None) -> str:
    """The 6-digit TOTP code for base32 ``secret`` at ``at`` (default: now)."""
    return _hotp(_b32decode(secret), totp_step(at))


def totp_matching_step(secret: str, code: str, at: float, *, window: int = 1) -> int | None:
    """The time step within ``window`` steps of ``at`` whose code is ``code``, else None.

    Every candidate is computed and compared in constant time, so timing says nothing.
    """
    try:
        key = _b32decode(secret)
    except ValueError:
        return None
    now = totp_step(at)
    found = None
    for step in range(now - window, now + window + 1):
        if hmac.compare_digest(_hotp(key, step).encode(), code.encode()):
            found = step
    return found


def new_code(digits: int = 6) -> str:
    """A random numeric code, as Cognito sends by SMS or email."""
    return "".join(secrets.choice("0123456789") for _ in range(digits))


def mask_phone(phone: str) -> str:
    """ "+15555551234" → "+*******1234", as Cognito shows CODE_DELIVERY_DESTINATION."""
    return phone[:1] + "*" * max(len(phone) - 5, 0) + phone[-4:]


def mask_email(email: str) -> str:
    """ "alice@example.com" → "a***@e***", as Cognito shows CODE_DELIVERY_DESTINATION."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain[:1]}***"
