"""CUSTOM_AUTH end to end: SRP first, then the Lambda's CUSTOM_CHALLENGE on the generic page or
on the operator's own ``custom_<type>.html``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy.devtools.cognito_double import CognitoDouble, captcha_challenge
from tests.support.challenges import FlowBrowser, Page, flow_browser, pool_kwargs
from tests.support.stack import Upstream

PASSWORD = "Custom-user-pass-1!"


@pytest.fixture(autouse=True)
def _restore_clock(double: CognitoDouble) -> Iterator[None]:
    yield
    double.clock = time.time


def _seed(double: CognitoDouble, upstream: Upstream, **extra: Any) -> dict[str, Any]:
    pool = double.create_pool()
    double.set_custom_auth(pool, captcha_challenge)
    client_id, secret = double.create_client(
        pool, secret=True, flows={"CUSTOM_AUTH", "USER_SRP_AUTH"}
    )
    double.add_user(pool, "cora", PASSWORD, attributes={"email": "cora@example.com"})
    return pool_kwargs(double, pool, client_id, secret) | {
        "upstream_url": upstream.url,
        "auth_flow": "CUSTOM_AUTH",
        **extra,
    }


async def _challenge(browser: FlowBrowser, lang: str | None = None) -> Page:
    first = await browser.sign_in("cora", PASSWORD, lang=lang)
    assert first.status == 303, first.doc.text[:300]
    page = await browser.follow(first)
    assert page.status == 200
    return page


async def test_custom_challenge_on_the_generic_page_after_srp(
    double: CognitoDouble, upstream: Upstream
) -> None:
    async with flow_browser(**_seed(double, upstream)) as browser:
        page = await _challenge(browser)
        assert "What is 3 + 4?" in page.doc.text
        assert page.doc.input("answer")["autocomplete"] == "one-time-code"
        assert "cora" not in page.doc.text  # USERNAME is not a public parameter

        wrong = await browser.answer(page, {"answer": "8"})
        assert wrong.status == 303 and wrong.location == "/_auth/challenge"
        again = await browser.follow(wrong)
        assert again.status == 400
        assert "That answer was not accepted. Please try again." in again.doc.text
        assert "What is 3 + 4?" in again.doc.text

        done = await browser.answer(again, {"answer": "7", "username": "mallory"})
        assert done.status == 303 and done.location == "/"
        assert (await browser.get("/")).status == 200
        assert upstream.last_headers["X-Forwarded-User"] == "cora"
    start = double.calls_to("InitiateAuth")[-1]
    assert start["AuthFlow"] == "CUSTOM_AUTH"
    assert start["AuthParameters"]["CHALLENGE_NAME"] == "SRP_A"
    answers = [
        c
        for c in double.calls_to("RespondToAuthChallenge")
        if c["ChallengeName"] == "CUSTOM_CHALLENGE"
    ]
    assert [a["ChallengeResponses"]["ANSWER"] for a in answers[-2:]] == ["8", "7"]
    assert all(a["ChallengeResponses"]["USERNAME"] == "cora" for a in answers)


async def test_too_many_wrong_answers_restart_the_sign_in(
    double: CognitoDouble, upstream: Upstream
) -> None:
    async with flow_browser(**_seed(double, upstream)) as browser:
        page = await _challenge(browser)
        for _ in range(3):
            result = await browser.answer(page, {"answer": "nope"})
            if result.status != 303:
                break
            page = await browser.follow(result)
        assert result.status == 400
        assert "We could not verify you. Please sign in again." in result.doc.text
        assert result.doc.find("input", name="password")


async def test_expired_custom_challenge_restarts(double: CognitoDouble, upstream: Upstream) -> None:
    async with flow_browser(**_seed(double, upstream)) as browser:
        page = await _challenge(browser)
        double.clock = lambda: time.time() + 600
        late = await browser.answer(page, {"answer": "7"})
        assert late.status == 400
        assert "Your sign-in took too long. Please start again." in late.doc.text


async def test_operator_template_for_a_custom_challenge_type(
    double: CognitoDouble, upstream: Upstream, tmp_path: Path
) -> None:
    (tmp_path / "custom_captcha.html").write_text(
        '{% extends "builtin/custom_challenge.html" %}'
        '{% block content %}<p id="mine">Operator captcha: {{ question }}</p>'
        '<form method="post" action="{{ action }}">'
        '<input type="hidden" name="csrf" value="{{ csrf_token }}">'
        '<input name="answer" autocomplete="off"></form>{% endblock %}'
    )
    kw = _seed(double, upstream, ui={"templates_dir": str(tmp_path)})
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser)
        assert page.doc.find("p", id="mine")
        assert "Operator captcha: What is 3 + 4?" in page.doc.text
        done = await browser.answer(page, {"answer": "7"})
        assert done.status == 303 and done.location == "/"


async def test_custom_challenge_page_in_japanese(double: CognitoDouble, upstream: Upstream) -> None:
    async with flow_browser(**_seed(double, upstream)) as browser:
        page = await _challenge(browser, lang="ja")
        assert "もう 1 つの手順" in page.doc.text and "回答" in page.doc.text


async def test_custom_auth_without_a_password_goes_straight_to_the_challenge(
    double: CognitoDouble, upstream: Upstream
) -> None:
    async with flow_browser(**_seed(double, upstream)) as browser:
        login = await browser.open("/_auth/login")
        assert "required" not in login.doc.input("password")  # optional with CUSTOM_AUTH
        first = await browser.submit("/_auth/login", {"username": "cora"}, csrf=login.doc.csrf())
        assert first.status == 303 and first.location == "/_auth/challenge"
        page = await browser.follow(first)
        assert "What is 3 + 4?" in page.doc.text
        done = await browser.answer(page, {"answer": "7"})
        assert done.status == 303 and done.location == "/"
    start = double.calls_to("InitiateAuth")[-1]
    assert start["AuthFlow"] == "CUSTOM_AUTH" and "SRP_A" not in start["AuthParameters"]
