"""NEW_PASSWORD_REQUIRED end to end: browser → proxy → strict Cognito double → session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from proxy.devtools.cognito_double import CognitoDouble
from tests.support.challenges import flow_browser, pool_kwargs
from tests.support.stack import Upstream

TEMPORARY = "Temporary-pass-1!"
NEW = "Brand-new-pass-2026!"


@pytest.fixture(autouse=True)
def _restore_clock(double: CognitoDouble) -> Iterator[None]:
    yield
    double.clock = time.time


def _seed(double: CognitoDouble, upstream: Upstream, flow: str = "USER_SRP_AUTH") -> dict[str, Any]:
    pool = double.create_pool()
    client_id, secret = double.create_client(pool, secret=True)
    double.add_user(
        pool,
        "nina",
        TEMPORARY,
        attributes={"email": "nina@example.com"},
        status="FORCE_CHANGE_PASSWORD",
    )
    return pool_kwargs(double, pool, client_id, secret) | {
        "upstream_url": upstream.url,
        "auth_flow": flow,
    }


@pytest.mark.parametrize("flow", ["USER_SRP_AUTH", "ADMIN_USER_PASSWORD_AUTH"])
async def test_new_password_is_set_in_our_page_and_signs_the_user_in(
    double: CognitoDouble, upstream: Upstream, flow: str
) -> None:
    kw = _seed(double, upstream, flow)
    async with flow_browser(**kw) as browser:
        first = await browser.sign_in("nina", TEMPORARY)
        assert first.status == 303 and first.location == "/_auth/challenge"
        page = await browser.follow(first)
        assert page.status == 200
        assert "Choose a new password" in page.doc.text
        for name in ("new_password", "confirm_password"):
            field = page.doc.input(name)
            assert field["type"] == "password"
            assert field["autocomplete"] == "new-password"
        # A hidden "username" smuggled into the form is ignored: the stored one is sent.
        done = await browser.answer(
            page, {"new_password": NEW, "confirm_password": NEW, "username": "mallory"}
        )
        assert done.status == 303 and done.location == "/"
        assert (await browser.get("/")).status == 200
        assert upstream.last_headers["X-Forwarded-User"] == "nina"

    operation = (
        "AdminRespondToAuthChallenge" if flow.startswith("ADMIN") else "RespondToAuthChallenge"
    )
    answer = double.calls_to(operation)[-1]
    assert answer["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    assert answer["ChallengeResponses"]["USERNAME"] == "nina"
    if flow.startswith("ADMIN"):
        assert answer["ContextData"]["IpAddress"] == "127.0.0.1"
        assert answer["ContextData"]["ServerPath"] == "/_auth/challenge"
    assert double.user_info(kw["pool_id"], "nina")["status"] == "CONFIRMED"


async def test_mismatched_or_weak_password_stays_on_the_page_until_a_good_one(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream)
    async with flow_browser(**kw) as browser:
        page = await browser.follow(await browser.sign_in("nina", TEMPORARY))

        mismatch = await browser.answer(page, {"new_password": NEW, "confirm_password": NEW + "x"})
        assert mismatch.status == 400
        assert "The passwords do not match." in mismatch.doc.text
        assert mismatch.doc.input("new_password")["aria-invalid"] == "true"

        weak = await browser.answer(
            mismatch, {"new_password": "short", "confirm_password": "short"}
        )
        assert weak.status == 400
        assert "That password is too short." in weak.doc.text
        assert "value" not in weak.doc.input("new_password")  # never echoed

        done = await browser.answer(weak, {"new_password": NEW, "confirm_password": NEW})
        assert done.status == 303 and done.location == "/"


async def test_expired_cognito_session_restarts_the_login_with_a_friendly_message(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream)
    async with flow_browser(**kw) as browser:
        page = await browser.follow(await browser.sign_in("nina", TEMPORARY))
        double.clock = lambda: time.time() + 600  # Cognito's 3-minute Session is long gone
        late = await browser.answer(page, {"new_password": NEW, "confirm_password": NEW})
        assert late.status == 400
        assert "Your sign-in took too long. Please start again." in late.doc.text
        assert late.doc.find("input", name="password")  # the login form again
        double.clock = time.time
        # The password was not changed; signing in again leads to the same step.
        again = await browser.sign_in("nina", TEMPORARY)
        assert again.status == 303 and again.location == "/_auth/challenge"


async def test_new_password_page_in_japanese(double: CognitoDouble, upstream: Upstream) -> None:
    kw = _seed(double, upstream)
    async with flow_browser(**kw) as browser:
        first = await browser.sign_in("nina", TEMPORARY, lang="ja")
        assert first.location == "/_auth/challenge?lang=ja"
        page = await browser.follow(first)
        assert "新しいパスワードの設定" in page.doc.text
        assert page.doc.tags[0] == ("html", {"lang": "ja"})
        mismatch = await browser.submit(
            "/_auth/challenge?lang=ja",
            {"new_password": NEW, "confirm_password": "other"},
            csrf=page.doc.csrf(),
        )
        assert "パスワードが一致しません。" in mismatch.doc.text


async def test_challenge_page_without_a_sign_in_goes_to_login(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream)
    async with flow_browser(**kw) as browser:
        resp = await browser.get("/_auth/challenge")
        assert resp.status == 303 and resp.headers["Location"] == "/_auth/login"
        # A post without any sign-in in progress: the login form with a message, not a 500.
        resp = await browser.post("/_auth/challenge", {"csrf": "x", "code": "123456"})
        assert resp.status == 400


async def test_challenge_answer_needs_the_flow_csrf_token_and_same_origin(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream)
    async with flow_browser(**kw) as browser:
        page = await browser.follow(await browser.sign_in("nina", TEMPORARY))
        answer = {"new_password": NEW, "confirm_password": NEW}
        forged = await browser.submit("/_auth/challenge", answer, csrf="forged")
        assert forged.status == 403
        cross = await browser.post(
            "/_auth/challenge",
            {"csrf": page.doc.csrf(), **answer},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert cross.status == 403
        assert double.user_info(kw["pool_id"], "nina")["status"] == "FORCE_CHANGE_PASSWORD"
        done = await browser.answer(page, answer)
        assert done.status == 303
