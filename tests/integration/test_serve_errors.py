"""`cognito-gate serve` on a port that is taken: one line naming the setting and address, exit 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from proxy.demo import free_port
from tests.support.stack import COOKIE_SECRET


@contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port some other process already listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _serve(listen: str, metrics: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    env.update(
        {
            "GATE_LISTEN": listen,
            "GATE_METRICS_LISTEN": metrics,
            "GATE_UPSTREAM_URL": "http://127.0.0.1:9",
            "GATE_COGNITO_USER_POOL_ID": "us-east-1_Taken",
            "GATE_COGNITO_CLIENT_ID": "client",
            "GATE_COGNITO_ENDPOINT_URL": "http://127.0.0.1:9",
            "GATE_COOKIE_SECRET": COOKIE_SECRET,
            "GATE_COOKIE_SECURE": "false",
            "GATE_LOG_FORMAT": "text",
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "proxy", "serve"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("setting", ["GATE_LISTEN", "GATE_METRICS_LISTEN"])
def test_a_taken_port_is_one_line_and_exit_2(setting: str) -> None:
    with taken_port() as port:
        taken = f"127.0.0.1:{port}"
        free = f"127.0.0.1:{free_port()}"
        listen, metrics = (taken, free) if setting == "GATE_LISTEN" else (free, taken)
        done = _serve(listen, metrics)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if "cannot listen" in line]
    assert lines == [f"cognito-gate: {setting}: cannot listen on {taken}: Address already in use"]
