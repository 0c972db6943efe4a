"""`cognito-gate serve` keeps what it built at start out of the cyclic GC's full collections."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

import pytest
from aiohttp import web

from proxy import __main__ as cli


def test_serve_freezes_startup_objects_after_the_app_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {
        "GATE_UPSTREAM_URL": "http://127.0.0.1:9",
        "GATE_COGNITO_USER_POOL_ID": "us-east-1_Test123",
        "GATE_COGNITO_CLIENT_ID": "client",
        "GATE_COOKIE_SECRET": "x" * 40,
    }.items():
        monkeypatch.setenv(key, value)
    served: list[web.Application] = []

    def run_app(app: web.Application, **kw: Any) -> None:
        served.append(app)

    monkeypatch.setattr(web, "run_app", run_app)
    cli._serve(argparse.Namespace(config=None))
    (app,) = served
    # Last: after the app's own startup (cleanup contexts: Cognito client, pools) has run.
    assert list(app.on_startup)[-1] is cli.freeze_startup_objects


def test_freezing_moves_existing_objects_out_of_collection() -> None:
    # In a child process: freezing the test runner's own heap would outlive this test.
    code = (
        "import asyncio, gc\n"
        "from proxy.__main__ import freeze_startup_objects\n"
        "asyncio.run(freeze_startup_objects(None))\n"
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
