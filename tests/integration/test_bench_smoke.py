"""`bench/run.py --smoke` works end to end: every server starts, signs in, answers, and stops.

Uses wrk and nginx when installed; without wrk the bench falls back to its Python load
generator, so nothing here is skipped. The numbers themselves are not asserted (they depend on
the machine), only that the cognito-gate rows report real, non-zero throughput.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120
ROW = re.compile(r"^\| (?P<target>cognito-gate[^|]*?) \| (?P<rps>[\d,.]+) \|", re.MULTILINE)


@pytest.mark.timeout(TIMEOUT + 30)
def test_bench_smoke_reports_cognito_gate_throughput() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a hung run is killed with its children
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"bench --smoke took over {TIMEOUT}s\n{out}\n{err[-3000:]}")

    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err[-3000:]}"
    rows = {m["target"]: float(m["rps"].replace(",", "")) for m in ROW.finditer(out)}
    for row in (
        "cognito-gate hot (Redis store, cache on)",
        "cognito-gate, Redis on every request",
        "cognito-gate unauthenticated (401)",
    ):
        assert row in rows, out
    assert "| minimal aiohttp proxy |" in out
    assert "Go floor (ReverseProxy + sealed cookie)" in out  # measured, or n/a without `go`
    assert "hot path vs Go floor" in out or "`go` not installed" in out
    assert "Bearer token" in out  # measured, or n/a with the reason
    assert all(rps > 0 for rps in rows.values()), out
    assert "direct upstream" in out
    assert "RSS after its runs" in out


@pytest.mark.timeout(TIMEOUT + 30)
def test_soak_smoke_streams_with_flat_memory_and_holds_connections() -> None:
    # A small version of bench/soak.py: 64 MB each way, 200 keep-alive, 50 WebSockets.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    argv = [sys.executable, str(ROOT / "bench" / "soak.py"), "--bytes", str(64 * 1024 * 1024)]
    argv += ["--keepalive", "200", "--websockets", "50", "--hold", "0.5"]
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"soak smoke took over {TIMEOUT}s\n{out}\n{err[-3000:]}")
    lines = {
        line.split("  ", 1)[1].split(" ")[0]: line for line in out.splitlines() if "  " in line
    }
    # Idle RSS is reported but not asserted: it depends on the libraries installed.
    for check in ("download", "upload", "200", "50"):
        assert check in lines, out + err[-3000:]
        assert lines[check].startswith("PASS"), out
