"""The tests compute TOTP codes themselves (tests/support/totp.py); pin that to RFC 6238."""

from __future__ import annotations

import base64

import pytest

from tests.support.totp import totp

# RFC 6238 appendix B, SHA-1 key "12345678901234567890", 8 digits.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(
    ("at", "code"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1234567890, "89005924"),
        (20000000000, "65353130"),
    ],
)
def test_totp_matches_rfc_6238_vectors(at: int, code: str) -> None:
    assert totp(RFC_SECRET, at=at, digits=8) == code


def test_totp_accepts_the_secret_as_apps_show_it() -> None:
    grouped = " ".join(RFC_SECRET[i : i + 4] for i in range(0, len(RFC_SECRET), 4)).lower()
    assert totp(grouped, at=59) == totp(RFC_SECRET, at=59) == "287082"
