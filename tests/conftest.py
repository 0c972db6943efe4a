"""Suite-wide setup: no test may reach AWS or read the developer's own configuration."""

from __future__ import annotations

import os
from typing import Any

import pytest

from proxy.eventloop import choice_from_env, loop_factory, resolve

# Fixtures shared across test packages: `redis_server` (a private redis-server per test),
# `double` (the strict Cognito double, per module) and `upstream` (a recording app, per test).
pytest_plugins = ["tests.support.redis_server", "tests.support.fixtures"]

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


# The test stack runs on the loop `serve` would pick (GATE_SERVER_EVENT_LOOP, default auto:
# uvloop where it installs), read before `no_gate_env` clears the GATE_* variables.
_LOOP_CHOICE = choice_from_env()


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Any]:
    return {resolve(_LOOP_CHOICE): loop_factory(_LOOP_CHOICE)}
