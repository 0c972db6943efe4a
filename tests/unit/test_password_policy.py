"""The account page's password policy check (the rules Cognito's PasswordPolicyType names)."""

from __future__ import annotations

import pytest

from proxy.cognito.account import PasswordPolicy, unmet_rules
from proxy.settings import Settings

DEFAULT = PasswordPolicy()


@pytest.mark.parametrize(
    ("password", "unmet"),
    [
        ("Correct-horse-9", []),
        ("Sh0rt!", ["error.password_policy.length"]),
        ("correct-horse-9", ["error.password_policy.upper"]),
        ("CORRECT-HORSE-9", ["error.password_policy.lower"]),
        ("Correct-horse-x", ["error.password_policy.digit"]),
        ("Correcthorse9", ["error.password_policy.symbol"]),
        ("Correct horse9", []),  # an inner space is a symbol to Cognito
        (" Correcthorse9", ["error.password_policy.symbol"]),  # a leading one is not
    ],
)
def test_default_policy(password: str, unmet: list[str]) -> None:
    assert unmet_rules(DEFAULT, password) == unmet


def test_relaxed_policy() -> None:
    policy = PasswordPolicy(min_length=6, require_symbols=False, require_uppercase=False)
    assert unmet_rules(policy, "abcde9") == []
    assert unmet_rules(policy, "abcd9") == ["error.password_policy.length"]


def test_the_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "GATE_ACCOUNT_PASSWORD_POLICY", '{"min_length": 12, "require_symbols": false}'
    )
    settings = Settings(
        upstream={"url": "http://127.0.0.1:9"},
        cognito={"user_pool_id": "eu-west-1_AbC123xyZ", "client_id": "c"},
        cookie={"secret": "x" * 32},
    )
    assert settings.account.password_policy.min_length == 12
    assert settings.account.password_policy.require_symbols is False
    assert settings.account.enabled is True
