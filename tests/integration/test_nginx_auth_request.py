"""The shipped nginx example (config/nginx-auth-request.conf) in front of an app, for real.

Runs Debian's nginx (nginx-light) as a child process on free loopback ports with the example
file included verbatim apart from its three addresses, cognito-gate answering /_auth/check,
and a recording upstream. CI installs nginx (.ci/run); a missing nginx fails, it never skips.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from proxy.demo import free_port
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import (
    CSRF_FIELD,
    Browser,
    Upstream,
    proxy_settings,
    running_proxy,
)

pytestmark = pytest.mark.integration

PASSWORD = "Nginx-pass-1!"
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "nginx-auth-request.conf"
HTML = {"Accept": "text/html"}


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        pytest.fail("nginx is not installed: `apt-get install nginx-light` (CI's .ci/run does)")
    return found


def site_config(nginx_port: int, gate_port: int, app_port: int) -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    for placeholder, value in (
        ("listen 8080;", f"listen 127.0.0.1:{nginx_port};"),
        ("127.0.0.1:4180", f"127.0.0.1:{gate_port}"),
        ("127.0.0.1:3000", f"127.0.0.1:{app_port}"),
    ):
        assert placeholder in text, f"the example no longer contains {placeholder!r}"
        text = text.replace(placeholder, value)
    return text


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start listening")


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, _ = double.create_client(pool_id)
    double.add_user(
        pool_id, "nina", PASSWORD, attributes={"email": "nina@example.com"}, groups=["staff"]
    )
    return {
        "pool_id": pool_id,
        "client_id": client_id,
        "endpoint_url": double.url,
        "jwks_url": double.jwks_url(pool_id),
        "issuer": double.issuer(pool_id),
    }


@contextmanager
def running_nginx(site_conf: str, port: int) -> Iterator[None]:
    """nginx in the foreground with its pid, logs and temp files in a private directory."""
    binary = nginx_binary()
    workdir = Path(tempfile.mkdtemp(prefix="test-nginx-"))
    temp = workdir / "tmp"
    temp.mkdir()
    (workdir / "site.conf").write_text(site_conf)
    (workdir / "nginx.conf").write_text(
        f"""
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {workdir}/site.conf;
}}
"""
    )
    log = workdir / "stderr.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-e", "stderr"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        _wait_for_port(port, proc, log)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)  # nginx: fast shutdown
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def site(pool: dict[str, Any], upstream: Upstream) -> AsyncIterator[str]:
    """nginx (example config) → app, asking cognito-gate; yields nginx's base URL."""
    # The gate here only answers /_auth/*; its own upstream setting is never used.
    async with running_proxy(proxy_settings(upstream_url=upstream.url, **pool)) as gate:
        nginx_port = free_port()
        conf = site_config(
            nginx_port, int(gate.rsplit(":", 1)[1]), int(upstream.url.rsplit(":", 1)[1])
        )
        with running_nginx(conf, nginx_port):
            yield f"http://127.0.0.1:{nginx_port}"


async def test_nginx_lets_a_signed_in_user_through_with_identity_headers(
    site: str, upstream: Upstream
) -> None:
    browser = Browser(site)
    try:
        first = await browser.get("/reports?year=2026", headers=HTML)
        assert first.status == 302
        assert first.headers["Location"].endswith("/_auth/login?rd=/reports?year=2026")
        assert upstream.seen == []

        assert (await browser.login("nina", PASSWORD, rd="/reports")).status == 303
        page = await browser.get("/reports?year=2026")
        assert page.status == 200
        assert await page.text() == "upstream saw GET /reports?year=2026"
        headers = upstream.last_headers
        assert headers["X-Forwarded-User"] == "nina"
        assert headers["X-Forwarded-Email"] == "nina@example.com"
        assert headers["X-Forwarded-Groups"] == "staff"
        assert "X-Auth-Request-User" not in headers
        assert "Cookie" in headers  # the app's own cookies still reach it

        posted = await browser.http.post(
            site + "/reports", data=b"x=1", headers={"Content-Type": "text/plain"}
        )
        assert posted.status == 200
        assert upstream.seen[-1]["method"] == "POST" and upstream.seen[-1]["body"] == b"x=1"
    finally:
        await browser.close()


async def test_nginx_turns_away_everyone_else(site: str, upstream: Upstream) -> None:
    stranger = Browser(site)
    try:
        # No cookie, a forged identity header, a forged session cookie: all sent to sign in.
        for headers, cookies in (
            ({}, {}),
            ({"X-Forwarded-User": "nina", "X-Auth-Request-User": "nina"}, {}),
            ({}, {"gate": "A" * 65 + "A." + "B" * 21 + "A"}),
        ):
            stranger.http.cookie_jar.clear()
            if cookies:
                stranger.http.cookie_jar.update_cookies(cookies, URL(site))
            answer = await stranger.get("/secret", headers={**HTML, **headers})
            assert answer.status == 302
            assert "/_auth/login?rd=/secret" in answer.headers["Location"]
        # The check endpoint itself is internal to nginx.
        assert (await stranger.get("/_auth/check")).status == 404
        assert upstream.seen == []
    finally:
        await stranger.close()


async def test_after_logout_nginx_sends_the_browser_to_sign_in_again(
    site: str, upstream: Upstream
) -> None:
    browser = Browser(site)
    try:
        assert (await browser.login("nina", PASSWORD)).status == 303
        assert (await browser.get("/")).status == 200
        page = await browser.get("/_auth/logout")
        token = CSRF_FIELD.search(await page.text())
        assert token
        answer = await browser.post("/_auth/logout", {"csrf": token.group(1)})
        assert answer.status == 303
        assert (await browser.get("/")).status == 302
    finally:
        await browser.close()
