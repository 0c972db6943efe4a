"""Cognito's threat protection through the proxy (issue 15.3), against the strict double.

A blocked sign-in is a page of its own (en, ja) and an audit event, never the wrong-password
words, and Cognito is not asked again; the risk-driven MFA challenge is answered like any MFA;
a compromised password leads to the forgot-password flow with a message saying why.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from proxy.devtools.cognito_double import CognitoDouble
from tests.support.challenges import flow_browser, pool_kwargs
from tests.support.stack import Upstream

USER = "tess"
PASSWORD = "Correct-Horse-9"
BLOCKED_EN = "This sign-in was blocked for security reasons."
BLOCKED_JA = "セキュリティ上の理由により、このサインインはブロックされました。"


def _seed(double: CognitoDouble, upstream: Upstream, **settings: Any) -> dict[str, Any]:
    pool = double.create_pool()
    client_id, secret = double.create_client(pool, secret=True)
    double.add_user(pool, USER, PASSWORD, attributes={"email": "tess@example.com"})
    double.set_threat_protection(pool)
    return pool_kwargs(double, pool, client_id, secret) | {"upstream_url": upstream.url} | settings


def _cognito_calls(double: CognitoDouble, client_id: str) -> int:
    return sum(1 for _, body in double.calls if body.get("ClientId") == client_id)


@pytest.mark.parametrize(
    "flow", ["USER_SRP_AUTH", "USER_PASSWORD_AUTH", "ADMIN_USER_PASSWORD_AUTH"]
)
async def test_a_blocked_sign_in_shows_the_security_page_and_is_not_retried(
    double: CognitoDouble, upstream: Upstream, caplog: pytest.LogCaptureFixture, flow: str
) -> None:
    kw = _seed(double, upstream, auth_flow=flow)
    double.set_risk(kw["pool_id"], "high", username=USER)
    async with flow_browser(**kw) as browser:
        login = await browser.open("/_auth/login")
        before = _cognito_calls(double, kw["client_id"])
        with caplog.at_level(logging.INFO, logger="proxy.audit"):
            page = await browser.submit(
                "/_auth/login", {"username": USER, "password": PASSWORD}, csrf=login.doc.csrf()
            )
        assert page.status == 403
        assert BLOCKED_EN in page.doc.text
        assert "Incorrect username or password." not in page.doc.text
        assert browser.cookie("gate") is None
        # One sign-in's worth of calls (SRP: InitiateAuth + PASSWORD_VERIFIER), none again.
        expected = 2 if flow == "USER_SRP_AUTH" else 1
        assert _cognito_calls(double, kw["client_id"]) - before == expected
        blocked = [r for r in caplog.records if r.getMessage().startswith("login.blocked")]
        assert len(blocked) == 1
        assert "threat_protection" in blocked[0].getMessage()
        ja = await browser.sign_in(USER, PASSWORD, lang="ja")
        assert ja.status == 403 and BLOCKED_JA in ja.doc.text
    assert double.risk_events(kw["pool_id"])[-1][:3] == (USER, "high", "BLOCK")
    assert not upstream.seen


async def test_a_blocked_sign_in_is_not_counted_as_a_wrong_password(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream, regulation={"user_max_failures": 2})
    double.set_risk(kw["pool_id"], "high", username=USER)
    async with flow_browser(**kw) as browser:
        for _ in range(3):
            assert (await browser.sign_in(USER, PASSWORD)).status == 403
        double.set_risk(kw["pool_id"], None, username=USER)  # the risk is gone: signs in
        assert (await browser.sign_in(USER, PASSWORD)).status == 303


async def test_the_risk_mfa_challenge_is_answered_like_any_mfa(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream)
    double.set_risk(kw["pool_id"], "medium", username=USER)  # MFA_IF_CONFIGURED
    async with flow_browser(**kw) as browser:
        step = await browser.sign_in(USER, PASSWORD)
        assert step.status == 303 and step.location == "/_auth/challenge"
        page = await browser.follow(step)
        assert page.status == 200
        code = double.last_code(kw["pool_id"], USER, "EMAIL")
        assert code
        done = await browser.answer(page, {"code": code})
        assert done.status == 303
        assert browser.cookie("gate") is not None
        assert (await browser.open("/")).status == 200
    assert upstream.last_headers["X-Forwarded-User"] == USER


async def test_a_compromised_password_leads_to_the_forgot_password_flow(
    double: CognitoDouble, upstream: Upstream
) -> None:
    # Cognito checks compromised credentials only where it sees the password (not SRP).
    kw = _seed(double, upstream, auth_flow="USER_PASSWORD_AUTH")
    double.add_compromised_password(kw["pool_id"], PASSWORD)
    async with flow_browser(**kw) as browser:
        step = await browser.sign_in(USER, PASSWORD)
        assert step.status == 303 and step.location == "/_auth/forgot"
        forgot = await browser.follow(step)
        assert "You need to reset your password before you can sign in." in forgot.doc.text
        assert "data breach" in forgot.doc.text
        sent = await browser.answer(forgot, {"username": USER}, path="/_auth/forgot")
        assert sent.status == 303
        reset = await browser.follow(sent)
        code = double.last_code(kw["pool_id"], USER, "EMAIL")
        assert code
        new = "Fresh-Unique-Pass-2026!"
        done = await browser.answer(
            reset,
            {"code": code, "new_password": new, "confirm_password": new},
            path="/_auth/forgot/confirm",
        )
        assert done.status == 303
        assert (await browser.sign_in(USER, new)).status == 303
