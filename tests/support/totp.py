"""RFC 6238 TOTP as an authenticator app computes it: the tests' ONE helper.

Written independently of the double's ``proxy/devtools/otp.py`` on purpose, so the double's
codes are checked against a second implementation (pinned to the RFC's vectors in
tests/unit/test_totp_helper.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import struct
import time


def totp(secret: str, at: float | None = None, *, step: int = 30, digits: int = 6) -> str:
    """The code for base32 ``secret`` at ``at`` (default now); spaces and case as apps show it."""
    clean = secret.replace(" ", "").upper()
    key = base64.b32decode(clean + "=" * (-len(clean) % 8))
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


async def previous_step(margin: float = 10.0, *, step: int = 30) -> float:
    """A time in the step before now, for a test that needs distinct codes in order (this one,
    then now's, then the next step's): the verifier takes one step either side of its clock, so
    the previous step's code fails once a step boundary passes before it arrives (a loaded CI
    machine took seconds). Waits out the last ``margin`` seconds of a step first."""
    left = step - time.time() % step
    if left < margin:
        await asyncio.sleep(left + 0.05)
    return time.time() - step
