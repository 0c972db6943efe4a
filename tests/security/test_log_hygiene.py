"""Logs never carry passwords, codes, tokens, cookies, SRP values or session ids.

Full sign-in / browse / sign-out flows (and a failed and a throttled sign-in) run with every
logger at DEBUG, including the AWS SDK's; every secret that crossed the wire — taken from the
Cognito double's own requests and answers — is then searched for in everything logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from proxy.logsink import flush_all
from proxy.observe import setup_logging
from proxy.settings import LogSettings
from tests.security.conftest import PASSWORD, USER, stack_for
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import CSRF_FIELD

# Keys whose values are secrets, in Cognito's requests and answers.
SECRET_KEYS = frozenset(
    {
        "PASSWORD",
        "SRP_A",
        "SRP_B",
        "SALT",
        "SECRET_BLOCK",
        "PASSWORD_CLAIM_SECRET_BLOCK",
        "PASSWORD_CLAIM_SIGNATURE",
        "SECRET_HASH",
        "REFRESH_TOKEN",
        "Session",
        "IdToken",
        "AccessToken",
        "RefreshToken",
        "Token",
        "ClientSecret",
    }
)
SDK_LOGGERS = ("botocore", "aiobotocore", "aioboto3", "urllib3", "aiohttp")


def _secrets_in(payload: Any, found: set[str]) -> None:
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key in SECRET_KEYS and isinstance(value, str) and len(value) >= 8:
                found.add(value)
            _secrets_in(value, found)
    elif isinstance(payload, list):
        for item in payload:
            _secrets_in(item, found)


@pytest.fixture
def wire(double: CognitoDouble, monkeypatch: pytest.MonkeyPatch) -> Callable[[], set[str]]:
    """Call it after the flows: every secret value the double received or sent meanwhile."""
    answers: list[dict[str, Any]] = []
    original = double._json_response

    def recording(payload: dict[str, Any], **kw: Any) -> Any:
        answers.append(payload)
        return original(payload, **kw)

    monkeypatch.setattr(double, "_json_response", recording)
    seen = len(double.calls)

    def collect() -> set[str]:
        found: set[str] = {PASSWORD}
        for _, body in double.calls[seen:]:
            _secrets_in(body, found)
        for payload in answers:
            _secrets_in(payload, found)
        return found

    return collect


def _everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        parts.append(json.dumps(record.__dict__, default=repr))
    return "\n".join(parts)


async def _flows(double: CognitoDouble, flow: str, cookies: list[str]) -> None:
    async with stack_for(double, auth_flow=flow) as stack:
        b = stack.browser
        assert (await b.login(USER, "Wrong-password-1!")).status == 401
        throttled = ("TooManyRequestsException", "slow down")
        double.inject_errors = {"InitiateAuth": throttled, "AdminInitiateAuth": throttled}
        try:
            assert (await b.login(USER, PASSWORD)).status == 429
        finally:
            double.inject_errors = {}
        cookies.append(b.cookie("gate-login") or "")
        assert (await b.login(USER, PASSWORD)).status == 303
        session = b.cookie("gate")
        assert session
        cookies.append(session)
        assert (await b.get("/")).status == 200
        assert (await b.get("/_auth/check")).status == 200
        page = await b.get("/_auth/logout")
        token = CSRF_FIELD.search(await page.text())
        assert token
        cookies.append(token.group(1))
        assert (await b.post("/_auth/logout", {"csrf": token.group(1)})).status == 303


def _assert_clean(logged: str, secrets: set[str], cookies: list[str]) -> None:
    assert len(secrets) >= 6, "the flows should have put secrets on the wire"
    leaked = [s[:12] + "..." for s in secrets | {c for c in cookies if c} if s in logged]
    assert not leaked, f"secrets in the logs: {leaked}"


@pytest.mark.parametrize("flow", ["USER_SRP_AUTH", "ADMIN_USER_PASSWORD_AUTH"])
async def test_no_secret_reaches_the_logs_with_everything_at_debug(
    double: CognitoDouble, wire: Callable[[], set[str]], caplog: pytest.LogCaptureFixture, flow: str
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in SDK_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    cookies: list[str] = []
    await _flows(double, flow, cookies)
    assert any(r.name.startswith("proxy") for r in caplog.records)
    _assert_clean(_everything_logged(caplog), wire(), cookies)


@pytest.fixture
def default_logging(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """observe.setup_logging as `cognito-gate serve` runs it (at debug), captured."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {n: logging.getLogger(n).level for n in SDK_LOGGERS}
    setup_logging(LogSettings(level="debug", format="json"))
    root.addHandler(caplog.handler)
    try:
        yield
    finally:
        root.handlers[:], root.level = saved
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def test_no_secret_reaches_the_logs_under_the_default_logging_setup(
    double: CognitoDouble,
    wire: Callable[[], set[str]],
    caplog: pytest.LogCaptureFixture,
    default_logging: None,
) -> None:
    cookies: list[str] = []
    await _flows(double, "USER_SRP_AUTH", cookies)
    assert any(r.name.startswith("proxy") for r in caplog.records)
    _assert_clean(_everything_logged(caplog), wire(), cookies)


async def test_no_secret_reaches_stderr_access_lines_included(
    double: CognitoDouble,
    wire: Callable[[], set[str]],
    capfd: pytest.CaptureFixture[str],
    default_logging: None,
) -> None:
    """What `serve` writes to stderr, the access lines its writer thread queues included."""
    cookies: list[str] = []
    await _flows(double, "USER_SRP_AUTH", cookies)
    flush_all()
    err = capfd.readouterr().err
    access = [json.loads(line) for line in err.splitlines() if '"proxy.access"' in line]
    assert len(access) >= 8  # every request of the flows has its line
    _assert_clean(err, wire(), cookies)
