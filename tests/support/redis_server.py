"""A private, throwaway redis-server per test: its own free port, no persistence.

Use the `redis_server` fixture (import it into a test module or conftest), or call
`start_redis_server()` directly for other scopes or to restart on the same port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from proxy.demo import free_port

__all__ = ["RedisProcess", "redis_server", "start_redis_server"]


@dataclass
class RedisProcess:
    port: int
    pid: int
    _proc: subprocess.Popen[bytes] = field(repr=False)
    _workdir: str = field(repr=False)
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def stop(self) -> None:
        """SIGTERM this server (by PID) and wait for it to exit; idempotent."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its socket but answers nothing (a hung Redis)."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


def _answers_ping(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis_server(
    port: int | None = None,
    *,
    startup_timeout: float = 10.0,
    extra_args: Sequence[str] = (),
    bind: str = "127.0.0.1",
    wrap: Sequence[str] = (),
) -> RedisProcess:
    """Start redis-server on `bind` (`port`, or a free one) and wait until it answers PING.

    `extra_args` are more redis-server options (e.g. ``("--maxmemory", "4mb")``); `wrap` is a
    command prefix to run it under (e.g. ``("ip", "netns", "exec", "ns")``).

    Retries on another port if a free port was raced away; raises RuntimeError on failure.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
    attempts = 1 if port is not None else 3
    last_output = ""
    for _ in range(attempts):
        chosen = port if port is not None else free_port()
        workdir = tempfile.mkdtemp(prefix="test-redis-")
        log_path = os.path.join(workdir, "redis.log")
        args = [
            binary,
            "--port", str(chosen),
            "--bind", bind,
            "--save", "",
            "--appendonly", "no",
            "--dir", workdir,
            "--logfile", log_path,
            *extra_args,
        ]  # fmt: skip
        proc = subprocess.Popen([*wrap, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers_ping(chosen, bind):
                return RedisProcess(chosen, proc.pid, proc, workdir, bind)
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        try:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                last_output = f.read()[-2000:]
        except OSError:
            pass
        shutil.rmtree(workdir, ignore_errors=True)
    raise RuntimeError(f"redis-server did not start on 127.0.0.1:\n{last_output}")


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    """A fresh, empty redis-server for one test, stopped afterwards."""
    server = start_redis_server()
    try:
        yield server
    finally:
        server.stop()
