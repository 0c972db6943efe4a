"""The built image, run as users run it (issue 17). Not part of `make test`: `make image-test`
builds the image first (deploy/image/image-test.sh), then runs this file by name.

One podman network holds three containers of the same image: the strict Cognito double
(``cognito-gate local-cognito``), the demo app, and the proxy, started with the flags and the
five variables of the README's ``docker run`` quick start. A browser-like client signs in
through the published port and the app sees the identity headers; SIGTERM lets an in-flight
request finish and the container exits 0.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from proxy.demo import DEMO_USERS, free_port
from tests.image.podman import IMAGE, logs, podman, require_image, wait_until
from tests.support.stack import Browser

ROOT = Path(__file__).resolve().parents[2]
COOKIE_SECRET = "image-test-cookie-secret-0123456789-abcdefghij"


def readme_docker_run() -> tuple[list[str], dict[str, str]]:
    """The README's `docker run` quick start: its flags (before the image) and -e variables."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^docker run (.*?)\n```", text, re.M | re.S)
    assert block, "README.md has no `docker run` quick start"
    words = shlex.split(block.group(1).replace("\\\n", " "), comments=True)
    flags: list[str] = []
    env: dict[str, str] = {}
    it = iter(words)
    for word in it:
        if word == "-e":
            name, _, value = next(it).partition("=")
            env[name] = value
        elif word.startswith("-"):
            flags.append(word)
            if word in ("-p", "--publish", "--name"):
                flags.append(next(it))
        else:
            break  # the image
    return flags, env


@dataclass
class Stack:
    name: str
    base: str

    @property
    def proxy(self) -> str:
        return f"{self.name}-proxy"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_image()
    name = f"cg-smoke-{secrets.token_hex(3)}"
    shared = tmp_path_factory.mktemp("shared")
    shared.chmod(0o777)  # the double (uid 10001) writes its env file here
    port = free_port()
    podman("network", "create", name)
    try:
        common = ["run", "-d", "--network", name, "--read-only", "--cap-drop=all"]
        podman(
            *common,
            "--name",
            f"{name}-cognito",
            "--network-alias",
            "cognito",
            "-v",
            f"{shared}:/shared",
            IMAGE,
            "local-cognito",
            "--listen=0.0.0.0:4566",
            "--public-url=http://cognito:4566",
            "--env-file=/shared/cognito.env",
        )
        podman(
            *common,
            "--name",
            f"{name}-app",
            "--network-alias",
            "demo-app",
            IMAGE,
            "demo-app",
            "--listen=0.0.0.0:3000",
        )
        env_file = shared / "cognito.env"
        wait_until(env_file.exists, "the double wrote no env file:\n" + logs(f"{name}-cognito"))

        flags, readme_env = readme_docker_run()
        ours = {
            "GATE_UPSTREAM_URL": "http://demo-app:3000",
            "GATE_SESSION_STORE_URL": "memory://",
            "GATE_COOKIE_SECRET": COOKIE_SECRET,
        }
        written = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        env = {k: ours.get(k) or written[k] for k in readme_env}
        # The double is not AWS: where it is, what signs its tokens, and the client's secret.
        env |= {k: v for k, v in written.items() if k not in env}
        env |= {"GATE_COOKIE_SECURE": "false", "GATE_DRAIN_SECONDS": "10"}
        publish = [f for f in flags if re.fullmatch(r"[\d.:]*8080:8080", f)]
        assert publish, f"the README's docker run publishes no 8080: {flags}"
        flags = [f for f in flags if f not in publish and f not in ("-p", "--publish")]
        podman(
            "run",
            "-d",
            "--network",
            name,
            "--name",
            f"{name}-proxy",
            "--health-interval=disable",  # no systemd timers here: `podman healthcheck run`
            *[f for f in flags if f != "--rm"],  # kept: its exit code is read after SIGTERM
            "-p",
            f"127.0.0.1:{port}:8080",
            *[a for k, v in env.items() for a in ("-e", f"{k}={v}")],
            IMAGE,
        )
        stack = Stack(name, f"http://127.0.0.1:{port}")

        def ready() -> bool:
            return podman("healthcheck", "run", stack.proxy, check=False).returncode == 0

        wait_until(ready, "the proxy never became healthy:\n" + logs(stack.proxy))
        yield stack
    finally:
        for suffix in ("proxy", "app", "cognito"):
            podman("rm", "-f", "-t", "0", f"{name}-{suffix}", check=False)
        podman("network", "rm", "-f", name, check=False)


def test_readme_docker_run_has_the_five_required_variables_and_a_read_only_root() -> None:
    flags, env = readme_docker_run()
    assert set(env) == {
        "GATE_UPSTREAM_URL",
        "GATE_COGNITO_USER_POOL_ID",
        "GATE_COGNITO_CLIENT_ID",
        "GATE_SESSION_STORE_URL",
        "GATE_COOKIE_SECRET",
    }
    assert "--read-only" in flags


def test_image_metadata() -> None:
    require_image()
    inspected = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert config["StopSignal"] == "SIGTERM"
    # Only a --format docker build keeps it.
    assert "/_auth/healthz" in " ".join(inspected["Healthcheck"]["Test"])
    assert config["Entrypoint"] == ["cognito-gate"] and config["Cmd"] == ["serve"]
    labels = config["Labels"]
    for key in ("title", "description", "licenses", "version", "revision"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    print(f"image {IMAGE}: {inspected['Size'] / 1e6:.0f} MB")


def test_no_build_tools_and_gmpy2_and_uvloop_import() -> None:
    require_image()
    probe = (
        "for t in gcc cc c++ make pip pip3 apt-get; do command -v $t >/dev/null && "
        'echo has:$t; done; python3 -c \'import gmpy2, uvloop; print("gmpy2", "uvloop")\''
    )
    done = podman("run", "--rm", "--read-only", "--entrypoint", "sh", IMAGE, "-c", probe)
    found = done.stdout.split()
    # apt-get and dpkg stay (they are Debian's base); compilers and pip do not.
    assert [t for t in found if t.startswith("has:") and t != "has:apt-get"] == [], found
    assert "gmpy2" in found and "uvloop" in found


def test_runs_as_10001_with_a_read_only_root_and_is_healthy(stack: Stack) -> None:
    state = json.loads(podman("inspect", stack.proxy).stdout)[0]
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert podman("exec", stack.proxy, "id", "-u").stdout.strip() == "10001"
    refused = podman("exec", stack.proxy, "touch", "/opt/cognito-gate/x", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    assert podman("healthcheck", "run", stack.proxy).returncode == 0
    assert "Read-only file system" not in logs(stack.proxy)


async def test_sign_in_through_the_container_reaches_the_app_with_identity_headers(
    stack: Stack,
) -> None:
    alice = DEMO_USERS[0]
    browser = Browser(stack.base)
    try:
        resp = await browser.login(alice.username, alice.password)
        assert resp.status == 303, logs(stack.proxy)[-2000:]
        page = await browser.get("/")
        assert page.status == 200 and "Hello, alice" in await page.text()
        who = await browser.get("/api/whoami")
        headers = await who.json()
        assert headers["X-Forwarded-User"] == "alice"
        assert headers["X-Forwarded-Email"] == alice.email
        assert set(headers["X-Forwarded-Groups"].split(",")) == set(alice.groups)
    finally:
        await browser.close()


async def test_sigterm_lets_an_in_flight_request_finish_and_exits_0(stack: Stack) -> None:
    alice = DEMO_USERS[0]
    browser = Browser(stack.base)
    try:
        assert (await browser.login(alice.username, alice.password)).status == 303
        slow = asyncio.create_task(browser.get("/api/slow?seconds=3"))
        await asyncio.sleep(1)
        started = time.monotonic()
        podman("kill", "--signal", "TERM", stack.proxy)
        resp = await asyncio.wait_for(slow, 15)
        assert resp.status == 200 and (await resp.json()) == {"slept": 3.0}
        code = podman("wait", stack.proxy, timeout=30).stdout.strip()
        took = time.monotonic() - started
        assert code == "0", logs(stack.proxy)[-3000:]
        assert took < 10 + 5 + 5, took  # GATE_DRAIN_SECONDS + the 5 s for the rest, + slack
    finally:
        await browser.close()
