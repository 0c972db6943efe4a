"""Suite-wide setup: no test may reach AWS or read the developer's own configuration."""

from __future__ import annotations

import os

import pytest

# Fixtures shared across test packages (e.g. `redis_server`: a private redis-server per test).
pytest_plugins = ["tests.support.redis_server"]

# The Admin APIs are signed; the local Cognito (moto, the strict double) accepts any credentials.
for _key, _value in (
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_SESSION_TOKEN", "testing"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
):
    os.environ[_key] = _value
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(autouse=True)
def no_gate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """GATE_* variables from the shell would override the settings a test builds."""
    for key in list(os.environ):
        if key.startswith("GATE_"):
            monkeypatch.delenv(key)
