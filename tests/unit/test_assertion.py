"""The signed identity assertion: claims, key id, reuse window, key loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, KeySet

from proxy.gate.assertion import AssertionSigner, load_or_generate_key
from proxy.settings import ConfigError, load_settings

CLAIMS: dict[str, Any] = {
    "sub": "u-1",
    "cognito:username": "carol",
    "cognito:groups": ["admins", 7, "staff"],
    "email": "carol@corp.example",
    "email_verified": True,
    "token_use": "id",
    "aud": "cognito-client-id",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def signer(clock: Clock, ttl: int = 60) -> AssertionSigner:
    key = ec.generate_private_key(ec.SECP256R1())
    return AssertionSigner(key, issuer="https://gate.example", ttl=ttl, clock=clock)


def decode(s: AssertionSigner, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(s.jwks())  # type: ignore[arg-type]
    claims: dict[str, Any] = jose_jwt.decode(token, keys, algorithms=["ES256"]).claims
    return claims


def test_claims_are_the_identity_and_nothing_of_the_cognito_token() -> None:
    clock = Clock()
    s = signer(clock)
    claims = decode(s, s.assertion(CLAIMS, audience="app", cache_key="t1"))
    assert claims.pop("jti")
    assert claims == {
        "iss": "https://gate.example",
        "aud": "app",
        "sub": "u-1",
        "username": "carol",
        "groups": ["admins", "staff"],
        "email": "carol@corp.example",
        "email_verified": True,
        "iat": 1_800_000_000,
        "exp": 1_800_000_060,
    }


def test_kid_is_the_rfc7638_thumbprint_and_jwks_holds_no_private_part() -> None:
    s = signer(Clock())
    (jwk,) = s.jwks()["keys"]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert jwk["kid"] == ECKey.import_key(jwk).thumbprint()


def test_an_assertion_is_reused_for_a_quarter_of_its_life_then_renewed() -> None:
    clock = Clock()
    s = signer(clock, ttl=60)
    first = s.assertion(CLAIMS, audience="app", cache_key="t1")
    clock.now += 14
    assert s.assertion(CLAIMS, audience="app", cache_key="t1") == first
    assert s.assertion(CLAIMS, audience="other", cache_key="t1") != first  # per audience
    assert s.assertion(CLAIMS, audience="app", cache_key="t2") != first  # per session tokens
    clock.now += 1
    renewed = s.assertion(CLAIMS, audience="app", cache_key="t1")
    assert renewed != first
    assert decode(s, renewed)["exp"] == int(clock.now) + 60


def test_key_file_is_loaded_and_must_be_p256(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "gate.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    loaded = load_or_generate_key(pem)
    assert loaded.public_key().public_numbers() == key.public_key().public_numbers()
    assert isinstance(load_or_generate_key(None), ec.EllipticCurvePrivateKey)


BASE: dict[str, Any] = {
    "upstream": {"url": "http://127.0.0.1:3000"},
    "cognito": {"user_pool_id": "eu-west-1_AbC123xyZ", "client_id": "c"},
    "cookie": {"secret": "s" * 40},
}


def _pem(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a key", "not a readable, unencrypted PEM private key"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "EC P-256"),
        (_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "EC P-256"),
    ],
)
def test_a_bad_key_file_is_a_config_error_naming_the_setting(
    tmp_path: Path, content: bytes, message: str
) -> None:
    pem = tmp_path / "k.pem"
    pem.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_settings(overrides={**BASE, "assertion": {"enabled": True, "key_file": str(pem)}})
    assert "GATE_ASSERTION_KEY_FILE" in str(info.value) and message in str(info.value)
