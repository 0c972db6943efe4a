"""A challenge we have no page for, or an answer with neither tokens nor a challenge: a clear error
page and a log line, never a crash. Cognito is the strict double; only the one answer under test
is replaced, at the client's boundary."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from proxy.cognito.client import AuthResult, Challenge, CognitoClient
from proxy.cognito.errors import CognitoError
from proxy.devtools.cognito_double import CognitoDouble
from tests.support.challenges import flow_browser, pool_kwargs
from tests.support.stack import Upstream

PASSWORD = "Unknown-step-1!"


def _seed(double: CognitoDouble, upstream: Upstream) -> dict[str, Any]:
    pool = double.create_pool()
    client_id, secret = double.create_client(pool, secret=True)
    double.add_user(pool, "una", PASSWORD, status="FORCE_CHANGE_PASSWORD")
    return pool_kwargs(double, pool, client_id, secret) | {"upstream_url": upstream.url}


async def test_unknown_challenge_shows_an_error_page_and_logs_it(
    double: CognitoDouble,
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def new_kind_of_step(self: CognitoClient, *args: Any, **kw: Any) -> AuthResult:
        return AuthResult(challenge=Challenge("FANCY_NEW_CHALLENGE", "session", {}))

    monkeypatch.setattr(CognitoClient, "password_login", new_kind_of_step)
    caplog.set_level(logging.ERROR, logger="proxy.auth")
    async with flow_browser(**_seed(double, upstream)) as browser:
        first = await browser.sign_in("una", PASSWORD)
        assert first.status == 303
        page = await browser.follow(first)
        assert page.status == 502
        assert "This sign-in step cannot be completed here." in page.doc.text
        posted = await browser.post("/_auth/challenge", {"csrf": "x"})
        assert posted.status in (403, 502)
    assert "FANCY_NEW_CHALLENGE" in caplog.text


async def test_answer_with_neither_tokens_nor_challenge_is_an_error_page(
    double: CognitoDouble,
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def empty(self: CognitoClient, *args: Any, **kw: Any) -> AuthResult:
        raise CognitoError("EmptyAnswer", "neither tokens nor a challenge")

    caplog.set_level(logging.ERROR, logger="proxy.auth")
    async with flow_browser(**_seed(double, upstream)) as browser:
        page = await browser.follow(await browser.sign_in("una", PASSWORD))
        monkeypatch.setattr(CognitoClient, "respond", empty)
        new = "Brand-new-pass-1!"
        result = await browser.answer(page, {"new_password": new, "confirm_password": new})
        assert result.status == 502
        assert "Something went wrong" in result.doc.text
    assert "EmptyAnswer" in caplog.text
