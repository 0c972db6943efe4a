# ruff: noqa: ASYNC109, ASYNC110, ASYNC220, ASYNC240  (drives a real process; blocking is brief)
"""`cognito-gate serve` as a real process: SIGTERM drains (readiness 503, in-flight requests
finish, WebSockets close with 1001, exit 0); `--workers N` shares one port."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from proxy.demo import free_port
from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import RedisProcess
from tests.support.stack import COOKIE_SECRET, Browser, echo_ws, serving

PASSWORD = "Shutdown-pass-1!"
SLOW = 1.5


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, str]:
    pool_id = double.create_pool()
    client_id, _ = double.create_client(pool_id, secret=False)
    double.add_user(pool_id, "fay", PASSWORD)
    return {
        "GATE_COGNITO_USER_POOL_ID": pool_id,
        "GATE_COGNITO_CLIENT_ID": client_id,
        "GATE_COGNITO_ENDPOINT_URL": double.url,
        "GATE_COGNITO_JWKS_URL": double.jwks_url(pool_id),
        "GATE_COGNITO_ISSUER": double.issuer(pool_id),
    }


@asynccontextmanager
async def slow_upstream() -> AsyncIterator[str]:
    """/slow answers after SLOW seconds; /ws is a WebSocket that echoes."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW)
        return web.Response(text="finally")

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_get("/ws", echo_ws)
    app.router.add_get("/{tail:.*}", _ok)
    async with serving(app) as url:
        yield url


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], base: str, metrics: str, log: Path) -> None:
        self.proc, self.base, self.metrics, self.log = proc, base, metrics, log


@asynccontextmanager
async def serve(
    env_extra: dict[str, str], tmp_path: Path, args: tuple[str, ...] = ()
) -> AsyncIterator[Served]:
    port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    env.update(
        {
            "GATE_LISTEN": f"127.0.0.1:{port}",
            "GATE_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
            "GATE_COOKIE_SECRET": COOKIE_SECRET,
            "GATE_COOKIE_SECURE": "false",
            "GATE_LOG_FORMAT": "json",
            "GATE_DRAIN_SECONDS": "10",
            **env_extra,
        }
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, proc, log)
        yield Served(proc, base, f"http://127.0.0.1:{metrics_port}/metrics", log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


async def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                async with http.get(base + "/_auth/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("proxy never became ready:\n" + log.read_text())


async def wait_ok(url: str, served: Served) -> None:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered:\n" + served.log.read_text())


async def readyz(base: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(base + "/_auth/readyz") as resp:
        return resp.status


async def exit_code(proc: subprocess.Popen[bytes], timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    code = proc.poll()
    assert code is not None, "the proxy did not exit"
    return code


async def test_sigterm_fails_readiness_finishes_in_flight_requests_closes_websockets_1001(
    pool: dict[str, str], tmp_path: Path
) -> None:
    async with slow_upstream() as upstream:
        env = {"GATE_UPSTREAM_URL": upstream, **pool}
        async with serve(env, tmp_path) as served:
            browser = Browser(served.base)
            try:
                assert (await browser.login("fay", PASSWORD)).status == 303
                async with browser.http.get(served.metrics) as resp:
                    assert resp.status == 200
                    assert 'gate_requests_total{route="login",status="303"} 1.0' in (
                        await resp.text()
                    )
                sock = await browser.http.ws_connect(served.base + "/ws")
                await sock.send_str("hello")
                assert (await sock.receive()).data == "hello"
                slow = asyncio.ensure_future(browser.get("/slow"))
                # Plain HTTP too (no Connection: upgrade): the drain must wait for it.
                not_ws = asyncio.ensure_future(
                    browser.get("/slow", headers={"Upgrade": "websocket"})
                )
                await asyncio.sleep(0.3)  # the slow requests are now in flight

                started = time.monotonic()
                served.proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.2)
                assert await readyz(served.base) == 503  # the Service stops routing here
                answer = await slow
                assert answer.status == 200
                assert await answer.text() == "finally"
                answer = await not_ws
                assert answer.status == 200
                assert await answer.text() == "finally"
                closing = await asyncio.wait_for(sock.receive(), 10)
                assert closing.type == aiohttp.WSMsgType.CLOSE
                assert closing.data == 1001
                await sock.close()
                assert await exit_code(served.proc) == 0
                # It waited for the slow request, not the whole 10 s drain window.
                assert time.monotonic() - started < 8
            finally:
                await browser.close()
    text = served.log.read_text()
    assert "draining: readiness now fails; 2 request(s) in flight" in text
    assert PASSWORD not in text


async def test_workers_share_the_port_and_all_exit_0_on_sigterm(
    pool: dict[str, str], tmp_path: Path, redis_server: RedisProcess
) -> None:
    async with slow_upstream() as upstream:
        env = {"GATE_UPSTREAM_URL": upstream, "GATE_SESSION_STORE_URL": redis_server.url, **pool}
        async with serve(env, tmp_path, ("--workers", "2")) as served:
            children = _children(served.proc.pid)
            assert len(children) == 2
            # Each worker serves its own metrics on the metrics port + its index: both are up.
            port = int(served.metrics.rsplit(":", 1)[1].split("/")[0])
            for index in (0, 1):
                await wait_ok(f"http://127.0.0.1:{port + index}/metrics", served)
            browser = Browser(served.base)
            try:
                assert (await browser.login("fay", PASSWORD)).status == 303
                # New connections land on either worker; the shared store serves them all.
                for _ in range(6):
                    fresh = Browser(served.base)
                    fresh.http.cookie_jar.update_cookies({"gate": browser.cookie("gate") or ""})
                    try:
                        assert (await fresh.get("/app")).status == 200
                    finally:
                        await fresh.close()
            finally:
                await browser.close()
            served.proc.send_signal(signal.SIGTERM)
            assert await exit_code(served.proc) == 0, served.log.read_text()[-3000:]
            assert all(not Path(f"/proc/{pid}").exists() for pid in children)


def _children(pid: int) -> list[int]:
    deadline = time.monotonic() + 5
    found: list[int] = []
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
        )
        found = [int(x) for x in out.stdout.split()]
        if len(found) >= 2:
            break
        time.sleep(0.1)
    return found


def test_workers_refuse_a_memory_store(tmp_path: Path, pool: dict[str, Any]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    env.update(pool)
    env.update({"GATE_UPSTREAM_URL": "http://127.0.0.1:9", "GATE_COOKIE_SECRET": COOKIE_SECRET})
    done = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "GATE_WORKERS > 1 needs a shared session store" in done.stderr


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_sigterm_loses_no_access_line(pool: dict[str, str], tmp_path: Path, fmt: str) -> None:
    """Access lines are queued for a writer thread (proxy/logsink.py): every request answered
    before SIGTERM, and the one in flight when it came, has its line in the log at exit."""
    count = 300
    async with slow_upstream() as upstream:
        env = {"GATE_UPSTREAM_URL": upstream, "GATE_LOG_FORMAT": fmt, **pool}
        async with serve(env, tmp_path) as served:
            browser = Browser(served.base)
            try:
                assert (await browser.login("fay", PASSWORD)).status == 303
                for i in range(count):
                    assert (await browser.get(f"/line-{i}")).status == 200
                slow = asyncio.ensure_future(browser.get("/slow"))
                await asyncio.sleep(0.3)  # in flight
                served.proc.send_signal(signal.SIGTERM)
                assert (await slow).status == 200
                assert await exit_code(served.proc) == 0
            finally:
                await browser.close()
    text = served.log.read_text()
    if fmt == "json":
        import json

        records = [json.loads(line) for line in text.splitlines() if '"proxy.access"' in line]
        paths = [record["path"] for record in records]
    else:
        paths = [
            line.split("proxy.access: ", 1)[1].split(" ")[1]
            for line in text.splitlines()
            if "proxy.access: " in line
        ]
    ours = [p for p in paths if p.startswith(("/line-", "/slow"))]
    assert ours == [f"/line-{i}" for i in range(count)] + ["/slow"], text[-2000:]
