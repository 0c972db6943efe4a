# ruff: noqa: ASYNC251  (drives podman-compose, blocking on purpose)
"""docker-compose.yml as users run it (issue 17): `podman-compose up` with the Debian Redis
override, a sign-in through the proxy, then Redis killed (SIGKILL, no chance to save) and
started again: the session is still there, from the append-only file. Run by
`make image-test` after image_smoke.py, by name.

podman-compose does not wait for ``depends_on: condition: service_healthy`` on podman 4.3, so
this test waits for the proxy's readiness itself (and the proxy's entrypoint waits for the local
Cognito's env file).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from proxy.demo import DEMO_USERS, free_port
from tests.image.podman import IMAGE, podman, require_image, wait_until
from tests.support.stack import Browser

ROOT = Path(__file__).resolve().parents[2]
FILES = ["-f", "docker-compose.yml", "-f", "docker-compose.debian-redis.yml"]


@dataclass
class Compose:
    project: str
    base: str
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).parent / "podman-compose"
        assert exe.exists(), "podman-compose missing: pip install -e '.[dev]'"
        done = subprocess.run(
            [str(exe), "-p", self.project, *FILES, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"podman-compose {args}:\n{done.stdout}\n{done.stderr}"
        return done

    def container(self, service: str) -> str:
        found = podman(
            "ps",
            "-a",
            "-q",
            "--filter",
            f"label=io.podman.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        ).stdout.split()
        assert len(found) == 1, (service, found)
        return found[0]

    def logs(self, service: str) -> str:
        done = podman("logs", self.container(service), check=False)
        return (done.stdout + done.stderr)[-3000:]


def _ready(base: str) -> bool:
    done = subprocess.run(
        ["python3", "-c", f"import urllib.request; urllib.request.urlopen('{base}/_auth/readyz')"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture(scope="module")
def compose() -> Iterator[Compose]:
    require_image()
    port = free_port()
    env = {
        **os.environ,
        "COGNITO_GATE_PORT": str(port),
        "COGNITO_GATE_METRICS_PORT": str(free_port()),
        # Every request asks Redis: what survives is Redis's, not a replica's memory.
        "GATE_SESSION_CACHE_TTL": "0",
    }
    stack = Compose(f"cgcompose{secrets.token_hex(3)}", f"http://127.0.0.1:{port}", env)
    try:
        # The gate's three services use the image image_smoke.py tested (the same Dockerfile;
        # podman-compose would build it once per service, in parallel, from scratch).
        podman("tag", IMAGE, "localhost/cognito-gate:local")
        stack.run("build", "redis")
        stack.run("up", "-d", "--no-build")
        wait_until(
            lambda: _ready(stack.base),
            "the compose proxy never became ready:\n" + stack.logs("proxy"),
            timeout=90,
        )
        yield stack
    finally:
        # Never `check`: tear down as much as is there, volumes included.
        exe = Path(sys.executable).parent / "podman-compose"
        subprocess.run(
            [str(exe), "-p", stack.project, *FILES, "down", "-v", "-t", "2"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )


async def test_a_session_survives_redis_killed_and_restarted(compose: Compose) -> None:
    alice = DEMO_USERS[0]
    browser = Browser(compose.base)
    try:
        signed_in = await browser.login(alice.username, alice.password)
        assert signed_in.status == 303, compose.logs("proxy")
        page = await browser.get("/")
        assert page.status == 200 and "Hello, alice" in await page.text()
        redis = compose.container("redis")
        config = podman("exec", redis, "redis-cli", "config", "get", "appendonly").stdout
        assert config.split() == ["appendonly", "yes"]

        time.sleep(1.5)  # appendfsync everysec: on disk within a second
        podman("kill", "--signal", "KILL", redis)
        podman("start", redis)
        wait_until(lambda: _ready(compose.base), "not ready after the Redis restart", 60)

        keys = podman("exec", redis, "redis-cli", "--scan", "--pattern", "gate:s:*").stdout
        assert keys.split(), "no session in Redis after the restart"
        again = await browser.get("/")
        assert again.status == 200, compose.logs("proxy")
        assert "Hello, alice" in await again.text()
    finally:
        await browser.close()


async def test_a_stranger_is_sent_to_sign_in(compose: Compose) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(compose.base + "/", allow_redirects=False, headers=Browser.HTML) as resp,
    ):
        assert resp.status in (302, 303)
        assert "/_auth/login" in resp.headers["Location"]
