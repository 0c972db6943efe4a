"""Operators can see what the proxy does: metrics, one log line per request, audit events."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from proxy.demo import free_port
from proxy.observe import JsonFormatter, Metrics, metrics_app
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import (
    Browser,
    Upstream,
    cognito_kwargs,
    proxy_settings,
    running_proxy,
)

PASSWORD = "Observe-pass-1!"


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, "erin", PASSWORD, attributes={"email": "erin@example.com"})
    return cognito_kwargs(double, pool_id, client_id, secret)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.formatter_ = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def json(self, logger: str) -> list[dict[str, Any]]:
        return [json.loads(self.formatter_.format(r)) for r in self.records if r.name == logger]


@pytest.fixture
def logs() -> Iterator[Captured]:
    handler = Captured()
    loggers = [logging.getLogger("proxy.access"), logging.getLogger("proxy.audit")]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    yield handler
    for lg in loggers:
        lg.removeHandler(handler)


def request_ids(upstream: Upstream) -> list[str]:
    return [v for k, v in upstream.seen[-1]["all_headers"] if k.lower() == "x-request-id"]


async def scrape(metrics: Metrics) -> str:
    """GET /metrics from the metrics listener, as Prometheus would."""
    runner = web.AppRunner(metrics_app(metrics), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/metrics") as resp,
        ):
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            return await resp.text()
    finally:
        await runner.cleanup()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample line in the exposition text (0 if absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{want}}}" if labels else name):
            return float(value)
    return 0.0


async def test_metrics_count_requests_logins_cognito_calls_and_upstream_time(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    metrics = Metrics()
    settings = proxy_settings(upstream_url=upstream.url, **pool)
    async with running_proxy(settings, metrics) as base:
        browser = Browser(base)
        try:
            bad = await browser.login("erin", "wrong-password-1!")
            assert bad.status == 401
            assert (await browser.login("erin", PASSWORD)).status == 303
            for _ in range(3):
                assert (await browser.get("/app")).status == 200
            assert (await browser.get("/api", headers={"Accept": "application/json"})).status == 200
        finally:
            await browser.close()
        anonymous = Browser(base)
        try:
            assert (await anonymous.get("/app")).status == 302
        finally:
            await anonymous.close()
    text = await scrape(metrics)
    assert sample(text, "gate_requests_total", route="proxy", status="200") == 4
    assert sample(text, "gate_requests_total", route="proxy", status="302") == 1
    assert sample(text, "gate_requests_total", route="login", status="303") == 1
    assert sample(text, "gate_requests_total", route="login", status="401") == 1
    assert sample(text, "gate_auth_events_total", event="login.success", reason="") == 1
    assert (
        sample(text, "gate_auth_events_total", event="login.failure", reason="bad_credentials") == 1
    )
    # SRP: InitiateAuth then RespondToAuthChallenge, per login attempt.
    assert sample(text, "gate_cognito_requests_total", operation="initiate_auth", outcome="ok") == 2
    assert (
        sample(
            text,
            "gate_cognito_requests_total",
            operation="respond_to_auth_challenge",
            outcome="NotAuthorizedException",
        )
        == 1
    )
    assert sample(text, "gate_cognito_request_seconds_count", operation="initiate_auth") == 2
    # Upstream time and proxy overhead are measured separately, once per forwarded request.
    assert sample(text, "gate_upstream_response_seconds_count") == 4
    assert sample(text, "gate_proxy_overhead_seconds_count") == 4
    assert sample(text, "gate_requests_in_flight") == 0
    assert sample(text, "gate_websockets_active") == 0


async def test_one_json_access_line_per_request_with_a_request_id_forwarded_upstream(
    pool: dict[str, Any], upstream: Upstream, logs: Captured
) -> None:
    settings = proxy_settings(upstream_url=upstream.url, **pool)
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("erin", PASSWORD)).status == 303
            logs.records.clear()
            ok = await browser.get("/page?code=SECRET123", headers={"X-Request-Id": "lb-abc.1_2"})
            assert ok.status == 200
            assert request_ids(upstream) == ["lb-abc.1_2"]
            # A malformed id is not passed on: the proxy makes its own.
            await browser.get("/page", headers={"X-Request-Id": "bad id\twith junk"})
            forwarded = request_ids(upstream)
            assert len(forwarded) == 1
            assert forwarded[0] != "bad id\twith junk"
            assert len(forwarded[0]) == 32
        finally:
            await browser.close()
    lines = logs.json("proxy.access")
    assert len(lines) == 2
    first = lines[0]
    assert first["request_id"] == "lb-abc.1_2"
    assert first["method"] == "GET"
    assert first["path"] == "/page"  # no query string: it may carry secrets
    assert first["route"] == "proxy"
    assert first["status"] == 200
    assert first["duration_ms"] >= first["upstream_ms"] >= 0
    assert first["client_ip"] == "127.0.0.1"
    assert first["user"]  # the user's sub
    assert len(first["session"]) < 20  # a fingerprint, not the cookie
    assert lines[1]["request_id"] == forwarded[0]
    rendered = json.dumps(lines)
    assert "SECRET123" not in rendered
    assert browser.cookie("gate") is None or browser.cookie("gate") not in rendered


async def test_audit_stream_records_login_failure_success_and_logout(
    pool: dict[str, Any], upstream: Upstream, logs: Captured
) -> None:
    settings = proxy_settings(upstream_url=upstream.url, **pool)
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            await browser.login("erin", "wrong-password-1!")
            await browser.login("erin", PASSWORD)
            cookie = browser.cookie("gate")
            page = await browser.get("/_auth/logout")
            from tests.integration.test_session_lifecycle import page_csrf

            await browser.post("/_auth/logout", {"csrf": page_csrf(await page.text())})
        finally:
            await browser.close()
    events = logs.json("proxy.audit")
    assert [e["event"] for e in events] == ["login.failure", "login.success", "logout"]
    assert events[0]["reason"] == "bad_credentials"
    assert events[0]["ip"] == "127.0.0.1"
    assert events[1]["user"] == events[2]["user"]
    assert events[1]["session"] == events[2]["session"]
    rendered = json.dumps(events)
    assert PASSWORD not in rendered and "wrong-password" not in rendered
    assert cookie and cookie not in rendered
