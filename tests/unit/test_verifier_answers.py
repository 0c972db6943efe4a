"""What the Cognito client answers to PASSWORD_VERIFIER and DEVICE_PASSWORD_VERIFIER: the claim
signed by proxy/cognito/srp.py for the right name, with the device key where it belongs, and a
challenge missing its SRP values refused as BadSrpChallenge (never a crash, never sent).

The API below the client is a script of Cognito's answers (no botocore, no double); the claim
maths itself is proven against reference clients in test_srp.py, and the whole exchange
against the strict double in the integration suites.
"""

from __future__ import annotations

from typing import Any

import pytest

from proxy.cognito import srp
from proxy.cognito.client import CognitoClient, Device
from proxy.cognito.errors import CognitoError
from proxy.settings import CognitoSettings

POOL = "us-east-1_Example"
TIMESTAMP = "Tue Jul 1 11:01:00 UTC 2025"
SECRET = srp.secret_from_small_a(0x1234_5678_9ABC)
SRP_B = f"{pow(srp.G, 987_654_321, srp.N):x}"
SALT = "a1b2c3d4"
BLOCK = "c2VjcmV0IGJsb2Nr"  # base64 of "secret block"
DEVICE = Device("us-east-1_dev-1", "grp-1", "device-password")
TOKENS = {"AuthenticationResult": {"IdToken": "i", "AccessToken": "a", "ExpiresIn": 3600}}


def verifier(name: str, **params: str) -> dict[str, Any]:
    return {"ChallengeName": name, "Session": f"{name}-session", "ChallengeParameters": params}


PASSWORD_VERIFIER = verifier(
    "PASSWORD_VERIFIER", SRP_B=SRP_B, SALT=SALT, SECRET_BLOCK=BLOCK, USER_ID_FOR_SRP="u-1"
)


class Script:
    """Stands below CognitoClient._call: Cognito's answers in turn, and what it was sent."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        self.sent.append((operation, kwargs))
        return self.answers.pop(0)

    def responses(self, challenge: str) -> dict[str, str]:
        found = [
            k["ChallengeResponses"] for _, k in self.sent if k.get("ChallengeName") == challenge
        ]
        assert len(found) == 1, self.sent
        return dict(found[0])


def client(script: Script, monkeypatch: pytest.MonkeyPatch) -> CognitoClient:
    monkeypatch.setattr(srp, "new_client_secret", lambda: SECRET)
    monkeypatch.setattr(srp, "cognito_timestamp", lambda: TIMESTAMP)
    c = CognitoClient(CognitoSettings(user_pool_id=POOL, client_id="client-1"))
    monkeypatch.setattr(c, "_call", script)
    return c


def password_claim(password: str = "pw") -> str:
    return srp.password_claim_signature(
        pool_id=POOL,
        user_id_for_srp="u-1",
        password=password,
        secret=SECRET,
        srp_b_hex=SRP_B,
        salt_hex=SALT,
        secret_block_b64=BLOCK,
        timestamp=TIMESTAMP,
    )


async def test_the_password_claim_is_signed_for_cognitos_own_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = Script(PASSWORD_VERIFIER, TOKENS)
    result = await client(script, monkeypatch).password_login("ann@example.com", "pw")
    assert result.tokens is not None
    assert result.user_id == "u-1"
    assert script.responses("PASSWORD_VERIFIER") == {
        "USERNAME": "u-1",
        "PASSWORD_CLAIM_SECRET_BLOCK": BLOCK,
        "PASSWORD_CLAIM_SIGNATURE": password_claim(),
        "TIMESTAMP": TIMESTAMP,
    }


async def test_a_remembered_device_answers_both_verifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script(
        PASSWORD_VERIFIER,
        verifier("DEVICE_SRP_AUTH", USERNAME="u-1"),
        verifier("DEVICE_PASSWORD_VERIFIER", SRP_B=SRP_B, SALT=SALT, SECRET_BLOCK=BLOCK),
        TOKENS,
    )
    result = await client(script, monkeypatch).password_login("ann", "pw", device=DEVICE)
    assert result.tokens is not None
    assert script.responses("PASSWORD_VERIFIER")["DEVICE_KEY"] == DEVICE.device_key
    assert script.responses("DEVICE_PASSWORD_VERIFIER") == {
        "USERNAME": "u-1",
        "DEVICE_KEY": DEVICE.device_key,
        "PASSWORD_CLAIM_SECRET_BLOCK": BLOCK,
        "PASSWORD_CLAIM_SIGNATURE": srp.device_password_claim_signature(
            device_group_key=DEVICE.device_group_key,
            device_key=DEVICE.device_key,
            device_password=DEVICE.device_password,
            secret=SECRET,
            srp_b_hex=SRP_B,
            salt_hex=SALT,
            secret_block_b64=BLOCK,
            timestamp=TIMESTAMP,
        ),
        "TIMESTAMP": TIMESTAMP,
    }


BROKEN = [
    ("no SRP_B", {"SALT": SALT, "SECRET_BLOCK": BLOCK, "USER_ID_FOR_SRP": "u-1"}),
    ("no SALT", {"SRP_B": SRP_B, "SECRET_BLOCK": BLOCK, "USER_ID_FOR_SRP": "u-1"}),
    ("no SECRET_BLOCK", {"SRP_B": SRP_B, "SALT": SALT, "USER_ID_FOR_SRP": "u-1"}),
    ("no USER_ID_FOR_SRP", {"SRP_B": SRP_B, "SALT": SALT, "SECRET_BLOCK": BLOCK}),
    (
        "B = 0 mod N",
        {"SRP_B": f"{srp.N:x}", "SALT": SALT, "SECRET_BLOCK": BLOCK, "USER_ID_FOR_SRP": "u"},
    ),
    (
        "a secret block that is no base64",
        {"SRP_B": SRP_B, "SALT": SALT, "SECRET_BLOCK": "%%", "USER_ID_FOR_SRP": "u"},
    ),
    (
        "SRP_B that is no hex",
        {"SRP_B": "xyz", "SALT": SALT, "SECRET_BLOCK": BLOCK, "USER_ID_FOR_SRP": "u"},
    ),
]


@pytest.mark.parametrize("params", [p for _, p in BROKEN], ids=[n for n, _ in BROKEN])
async def test_a_broken_password_verifier_is_refused_unanswered(
    params: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = Script(verifier("PASSWORD_VERIFIER", **params))
    with pytest.raises(CognitoError) as refused:
        await client(script, monkeypatch).password_login("ann", "pw")
    assert refused.value.code == "BadSrpChallenge"
    assert [op for op, _ in script.sent] == ["initiate_auth"]  # nothing answered


@pytest.mark.parametrize("missing", ["SRP_B", "SALT", "SECRET_BLOCK"])
async def test_a_broken_device_verifier_is_refused_unanswered(
    missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {"SRP_B": SRP_B, "SALT": SALT, "SECRET_BLOCK": BLOCK}
    del params[missing]
    script = Script(
        PASSWORD_VERIFIER,
        verifier("DEVICE_SRP_AUTH", USERNAME="u-1"),
        verifier("DEVICE_PASSWORD_VERIFIER", **params),
    )
    with pytest.raises(CognitoError) as refused:
        await client(script, monkeypatch).password_login("ann", "pw", device=DEVICE)
    assert refused.value.code == "BadSrpChallenge"
    assert "DEVICE_PASSWORD_VERIFIER" not in [k.get("ChallengeName") for _, k in script.sent]
