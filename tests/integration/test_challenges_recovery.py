"""Forgot password, PasswordResetRequiredException and UserNotConfirmedException end to end."""

from __future__ import annotations

from typing import Any

from proxy.devtools.cognito_double import CognitoDouble
from tests.support.challenges import flow_browser, pool_kwargs
from tests.support.stack import Upstream

OLD = "Old-password-1!"
NEW = "New-password-2026!"


def _seed(double: CognitoDouble, upstream: Upstream, status: str = "CONFIRMED") -> dict[str, Any]:
    pool = double.create_pool()
    client_id, secret = double.create_client(pool, secret=True)
    double.add_user(pool, "rita", OLD, attributes={"email": "rita@example.com"}, status=status)
    return pool_kwargs(double, pool, client_id, secret) | {"upstream_url": upstream.url}


async def test_forgot_password_resets_it_in_our_pages(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream)
    async with flow_browser(**kw) as browser:
        login = await browser.open("/_auth/login")
        assert login.doc.find("a", href="/_auth/forgot")
        forgot = await browser.open("/_auth/forgot")
        assert forgot.status == 200
        assert forgot.doc.input("username")["autocomplete"] == "username"
        sent = await browser.answer(forgot, {"username": "rita"}, path="/_auth/forgot")
        assert sent.status == 303 and sent.location == "/_auth/forgot/confirm"
        reset = await browser.follow(sent)
        assert "r***@e***" in reset.doc.text or "***" in reset.doc.text
        assert reset.doc.input("code")["autocomplete"] == "one-time-code"
        assert reset.doc.input("new_password")["autocomplete"] == "new-password"
        code = double.last_code(kw["pool_id"], "rita", "EMAIL")
        assert code

        wrong = await browser.answer(
            reset,
            {
                "code": "000000" if code != "000000" else "111111",
                "new_password": NEW,
                "confirm_password": NEW,
            },
            path="/_auth/forgot/confirm",
        )
        assert wrong.status == 400 and "That code is incorrect" in wrong.doc.text
        weak = await browser.answer(
            wrong,
            {"code": code, "new_password": "weakpass", "confirm_password": "weakpass"},
            path="/_auth/forgot/confirm",
        )
        assert weak.status == 400 and "needs an uppercase letter" in weak.doc.text
        # The username comes from the stored state, not from the form.
        done = await browser.answer(
            weak,
            {"code": code, "new_password": NEW, "confirm_password": NEW, "username": "mallory"},
            path="/_auth/forgot/confirm",
        )
        assert done.status == 303 and done.location == "/_auth/login?notice=password_changed"
        notice = await browser.follow(done)
        assert "Your password has been changed. Please sign in." in notice.doc.text
        assert double.calls_to("ConfirmForgotPassword")[-1]["Username"] == "rita"

        signed = await browser.sign_in("rita", NEW)
        assert signed.status == 303 and signed.location == "/"
    for body in double.calls_to("ForgotPassword") + double.calls_to("ConfirmForgotPassword"):
        assert body["UserContextData"]["IpAddress"] == "127.0.0.1"


async def test_forgot_password_for_an_unknown_user_looks_the_same(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream)
    async with flow_browser(**kw) as browser:
        forgot = await browser.open("/_auth/forgot")
        known = await browser.answer(forgot, {"username": "rita"}, path="/_auth/forgot")
        forgot = await browser.open("/_auth/forgot")
        unknown = await browser.answer(forgot, {"username": "nobody"}, path="/_auth/forgot")
        assert known.status == unknown.status == 303
        assert known.location == unknown.location
        page = await browser.follow(unknown)
        assert page.status == 200 and "If the account exists" in page.doc.text


async def test_password_reset_required_leads_into_the_reset(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream, status="RESET_REQUIRED")
    async with flow_browser(**kw) as browser:
        first = await browser.sign_in("rita", OLD)
        assert first.status == 303 and first.location == "/_auth/forgot"
        forgot = await browser.follow(first)
        assert "You need to reset your password before you can sign in." in forgot.doc.text
        assert forgot.doc.input("username")["value"] == "rita"
        sent = await browser.answer(forgot, {"username": "rita"}, path="/_auth/forgot")
        reset = await browser.follow(sent)
        code = double.last_code(kw["pool_id"], "rita", "EMAIL")
        assert code
        done = await browser.answer(
            reset,
            {"code": code, "new_password": NEW, "confirm_password": NEW},
            path="/_auth/forgot/confirm",
        )
        assert done.status == 303
        assert (await browser.sign_in("rita", NEW)).status == 303


async def test_unconfirmed_user_confirms_with_the_code_then_signs_in(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream, status="UNCONFIRMED")
    async with flow_browser(**kw) as browser:
        first = await browser.sign_in("rita", OLD)
        assert first.status == 303 and first.location == "/_auth/confirm"
        page = await browser.follow(first)
        assert "Confirm your account" in page.doc.text
        assert page.doc.input("code")["autocomplete"] == "one-time-code"

        resent = await browser.answer(page, {"action": "resend"}, path="/_auth/confirm")
        assert resent.status == 200 and "We sent a new code to" in resent.doc.text
        code = double.last_code(kw["pool_id"], "rita", "EMAIL")
        assert code

        wrong = await browser.answer(
            resent, {"code": "000000" if code != "000000" else "111111"}, path="/_auth/confirm"
        )
        assert wrong.status == 400 and "That code is incorrect" in wrong.doc.text
        done = await browser.answer(
            wrong, {"code": code, "username": "mallory"}, path="/_auth/confirm"
        )
        assert done.status == 303 and done.location == "/_auth/login?notice=confirmed"
        assert double.calls_to("ConfirmSignUp")[-1]["Username"] == "rita"
        assert (await browser.sign_in("rita", OLD)).status == 303
    assert double.user_info(kw["pool_id"], "rita")["status"] == "CONFIRMED"


async def test_recovery_pages_in_japanese(double: CognitoDouble, upstream: Upstream) -> None:
    kw = _seed(double, upstream, status="UNCONFIRMED")
    async with flow_browser(**kw) as browser:
        forgot = await browser.open("/_auth/forgot?lang=ja")
        assert "パスワードをお忘れですか?" in forgot.doc.text
        sent = await browser.submit(
            "/_auth/forgot?lang=ja", {"username": "rita"}, csrf=forgot.doc.csrf()
        )
        assert sent.location == "/_auth/forgot/confirm?lang=ja"
        reset = await browser.follow(sent)
        assert (
            "新しいパスワードの設定" in reset.doc.text and "パスワードをリセット" in reset.doc.text
        )
        first = await browser.sign_in("rita", OLD, lang="ja")
        assert first.location == "/_auth/confirm?lang=ja"
        page = await browser.follow(first)
        assert "アカウントの確認" in page.doc.text and "新しいコードを送信" in page.doc.text


async def test_recovery_post_without_a_flow_restarts(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream)
    async with flow_browser(**kw) as browser:
        resp = await browser.post("/_auth/forgot/confirm", {"csrf": "x", "code": "123456"})
        assert resp.status == 400
        resp = await browser.get("/_auth/forgot/confirm")
        assert resp.status in (303, 400)
