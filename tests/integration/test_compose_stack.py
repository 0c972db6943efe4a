# ruff: noqa: ASYNC109  (drives real processes)
"""docker-compose.yml without Docker: its services' commands and environment, run as local
processes (hostnames mapped to 127.0.0.1 ports), give a working sign-in as the README says."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from proxy.demo import DEMO_USERS, free_port
from tests.support.redis_server import RedisProcess
from tests.support.stack import Browser

ROOT = Path(__file__).resolve().parents[2]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "proxy", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _until(predicate: Any, what: str, logs: list[Path], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}:\n" + "\n".join(p.read_text()[-2000:] for p in logs))


async def test_compose_services_sign_in_alice_and_show_her_headers(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    cognito_port, app_port, proxy_port = free_port(), free_port(), free_port()
    hosts = {
        "http://cognito:4566": f"http://127.0.0.1:{cognito_port}",
        "http://demo-app:3000": f"http://127.0.0.1:{app_port}",
        "redis://redis:6379/0": redis_server.url,
        "0.0.0.0:4566": f"127.0.0.1:{cognito_port}",
        "0.0.0.0:3000": f"127.0.0.1:{app_port}",
        "/shared/": f"{tmp_path}/",
    }

    def local(value: str) -> str:
        for compose_name, here in hosts.items():
            value = value.replace(compose_name, here)
        return value

    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("GATE_", "AWS_"))}
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"{name}.log" for name in ("cognito", "demo-app", "proxy")]
    try:
        cognito = compose["cognito"]
        env = {**base_env, **{k: str(v) for k, v in cognito.get("environment", {}).items()}}
        procs.append(_start([local(a) for a in cognito["command"]], env, logs[0]))
        app = compose["demo-app"]
        procs.append(_start([local(a) for a in app["command"]], base_env, logs[1]))
        env_file = tmp_path / "cognito.env"

        async def seeded() -> bool:
            return env_file.exists()

        await _until(seeded, "the local Cognito never wrote its env file", logs)
        # What the proxy's entrypoint does: source the env file, then serve.
        proxy = compose["proxy"]
        assert "/shared/cognito.env" in " ".join(proxy["entrypoint"])
        env = {**base_env}
        for name, value in proxy["environment"].items():
            env[name] = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", local(str(value)))  # defaults
        for line in env_file.read_text().splitlines():
            name, _, value = line.partition("=")
            env[name] = local(value)
        env["GATE_LISTEN"] = f"127.0.0.1:{proxy_port}"
        env["GATE_METRICS_LISTEN"] = "off"
        procs.append(_start(["serve"], env, logs[2]))
        base = f"http://127.0.0.1:{proxy_port}"

        async def ready() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(base + "/_auth/readyz") as resp,
                ):
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await _until(ready, "the proxy never became ready", logs)
        alice = DEMO_USERS[0]
        browser = Browser(base)
        try:
            assert (await browser.login(alice.username, alice.password)).status == 303
            page = await browser.get("/")
            assert page.status == 200
            text = await page.text()
            assert "Hello, alice" in text
            assert "alice@example.com" in text
        finally:
            await browser.close()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
