"""MFA end to end through our pages: SMS_MFA, EMAIL_OTP, SOFTWARE_TOKEN_MFA, SELECT_MFA_TYPE and
MFA_SETUP (TOTP enrolment with the QR code rendered by the proxy), against the strict double."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from proxy.auth import qr
from proxy.devtools.cognito_double import CognitoDouble
from tests.support.challenges import FlowBrowser, Page, flow_browser, pool_kwargs
from tests.support.stack import Upstream
from tests.support.totp import totp

PASSWORD = "Mfa-user-pass-1!"


@pytest.fixture(autouse=True)
def _restore_clock(double: CognitoDouble) -> Iterator[None]:
    yield
    double.clock = time.time


ALL_FACTORS = ("SMS_MFA", "EMAIL_OTP", "SOFTWARE_TOKEN_MFA")


def _pool(
    double: CognitoDouble,
    upstream: Upstream,
    *,
    mode: str = "OPTIONAL",
    flow: str = "USER_SRP_AUTH",
    factors: tuple[str, ...] = ALL_FACTORS,
) -> dict[str, Any]:
    pool = double.create_pool()
    double.set_pool_mfa(pool, mode, factors=factors)  # type: ignore[arg-type]
    client_id, secret = double.create_client(pool, secret=True)
    return pool_kwargs(double, pool, client_id, secret) | {
        "upstream_url": upstream.url,
        "auth_flow": flow,
    }


def _add(double: CognitoDouble, kw: dict[str, Any], username: str, **options: Any) -> None:
    double.add_user(
        kw["pool_id"],
        username,
        PASSWORD,
        attributes={"email": f"{username}@example.com", "phone_number": "+815012345678"},
        **options,
    )


def _code(double: CognitoDouble, kw: dict[str, Any], username: str, kind: str) -> str:
    if kind == "SOFTWARE_TOKEN_MFA":
        secret = double.totp_secret(kw["pool_id"], username)
        assert secret
        return totp(secret)
    channel = "SMS" if kind == "SMS_MFA" else "EMAIL"
    code = double.last_code(kw["pool_id"], username, channel)  # type: ignore[arg-type]
    assert code, f"the double sent no {channel} code"
    return code


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


async def _challenge(browser: FlowBrowser, username: str, lang: str | None = None) -> Page:
    first = await browser.sign_in(username, PASSWORD, lang=lang)
    assert first.status == 303, first.doc.text[:300]
    assert first.location is not None and first.location.startswith("/_auth/challenge")
    page = await browser.follow(first)
    assert page.status == 200, page.doc.text[:300]
    return page


def _assert_code_input(page: Page) -> None:
    code = page.doc.input("code")
    assert code["autocomplete"] == "one-time-code"
    assert code["inputmode"] == "numeric"


@pytest.mark.parametrize(
    ("kind", "shown"),
    [
        ("SMS_MFA", "Enter the code we sent to your phone"),
        ("EMAIL_OTP", "Enter the code we sent to your email"),
        ("SOFTWARE_TOKEN_MFA", "Enter the 6-digit code from your authenticator app."),
    ],
)
async def test_mfa_code_with_a_wrong_try_then_the_right_one_signs_in(
    double: CognitoDouble, upstream: Upstream, kind: str, shown: str
) -> None:
    kw = _pool(double, upstream)
    _add(double, kw, "mika", mfa=(kind,))
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser, "mika")
        assert shown in page.doc.text
        if kind != "SOFTWARE_TOKEN_MFA":
            # Where the code went, masked by Cognito (CODE_DELIVERY_DESTINATION).
            assert "*" in page.doc.text
        _assert_code_input(page)
        code = _code(double, kw, "mika", kind)

        wrong = await browser.answer(page, {"code": _wrong(code)})
        assert wrong.status == 400
        assert "That code is incorrect. Please try again." in wrong.doc.text
        assert wrong.doc.input("code")["aria-invalid"] == "true"

        done = await browser.answer(wrong, {"code": code, "username": "mallory"})
        assert done.status == 303 and done.location == "/"
        assert (await browser.get("/")).status == 200
        assert upstream.last_headers["X-Forwarded-User"] == "mika"
    answers = double.calls_to("RespondToAuthChallenge")
    assert answers[-1]["ChallengeName"] == kind
    assert answers[-1]["ChallengeResponses"]["USERNAME"] == "mika"


async def test_mfa_on_the_admin_api_sends_context_data_on_every_call(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _pool(double, upstream, flow="ADMIN_USER_PASSWORD_AUTH")
    _add(double, kw, "adam", mfa=("SMS_MFA",))
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser, "adam")
        code = _code(double, kw, "adam", "SMS_MFA")
        done = await browser.answer(page, {"code": code})
        assert done.status == 303
    admin_calls = [
        body
        for name, body in double.calls
        if name.startswith("Admin") and body.get("UserPoolId") == kw["pool_id"]
    ]
    assert {b.get("ChallengeName", "start") for b in admin_calls} >= {"start", "SMS_MFA"}
    for body in admin_calls:
        context = body["ContextData"]
        assert context["IpAddress"] == "127.0.0.1"
        assert context["ServerName"].startswith("127.0.0.1:")
        names = {h["headerName"] for h in context["HttpHeaders"]}
        assert "User-Agent" in names and "Cookie" not in names


async def test_mfa_code_after_the_cognito_session_expired_restarts_the_login(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _pool(double, upstream)
    _add(double, kw, "tess", mfa=("SOFTWARE_TOKEN_MFA",))
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser, "tess")
        code = _code(double, kw, "tess", "SOFTWARE_TOKEN_MFA")
        double.clock = lambda: time.time() + 600
        late = await browser.answer(page, {"code": code})
        assert late.status == 400
        assert "Your sign-in took too long. Please start again." in late.doc.text
        assert late.doc.find("input", name="password")
        assert browser.cookie("gate") is None


async def test_too_many_wrong_codes_restart_the_sign_in(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _pool(double, upstream)
    _add(double, kw, "tim", mfa=("SMS_MFA",))
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser, "tim")
        wrong = _wrong(_code(double, kw, "tim", "SMS_MFA"))
        for _ in range(2):
            page = await browser.answer(page, {"code": wrong})
            assert page.status == 400 and "That code is incorrect" in page.doc.text
        last = await browser.answer(page, {"code": wrong})
        assert last.status == 400
        assert "We could not verify you. Please sign in again." in last.doc.text
        assert last.doc.find("input", name="password")
        assert browser.cookie("gate") is None


async def test_malformed_code_is_refused_without_asking_cognito(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _pool(double, upstream)
    _add(double, kw, "mo", mfa=("SOFTWARE_TOKEN_MFA",))
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser, "mo")
        before = len(double.calls_to("RespondToAuthChallenge"))
        bad = await browser.answer(page, {"code": "<script>"})
        assert bad.status == 400
        assert "<script>" not in bad.html
        assert len(double.calls_to("RespondToAuthChallenge")) == before


async def test_mfa_page_in_japanese(double: CognitoDouble, upstream: Upstream) -> None:
    kw = _pool(double, upstream)
    _add(double, kw, "yui", mfa=("SMS_MFA",))
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser, "yui", lang="ja")
        assert "2 段階認証" in page.doc.text
        assert "お使いの電話" in page.doc.text
        wrong = await browser.submit(
            "/_auth/challenge?lang=ja", {"code": "000001"}, csrf=page.doc.csrf()
        )
        assert "コードが正しくありません。" in wrong.doc.text


# --- SELECT_MFA_TYPE --------------------------------------------------------------------------


async def test_select_mfa_type_then_the_chosen_factor(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _pool(double, upstream)
    _add(double, kw, "sam", mfa=("SMS_MFA", "SOFTWARE_TOKEN_MFA"))
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser, "sam")
        assert "Choose how to verify" in page.doc.text
        choices = {a["value"] for a in page.doc.find("input", type="radio")}
        assert choices == {"SMS_MFA", "SOFTWARE_TOKEN_MFA"}
        assert "Authenticator app" in page.doc.text and "Text message (SMS)" in page.doc.text

        bogus = await browser.answer(page, {"choice": "EMAIL_OTP"})
        assert bogus.status == 400
        assert "Please fill in all required fields." in bogus.doc.text

        chosen = await browser.answer(bogus, {"choice": "SOFTWARE_TOKEN_MFA"})
        assert chosen.status == 303 and chosen.location == "/_auth/challenge"
        code_page = await browser.follow(chosen)
        assert "authenticator app" in code_page.doc.text
        done = await browser.answer(
            code_page, {"code": _code(double, kw, "sam", "SOFTWARE_TOKEN_MFA")}
        )
        assert done.status == 303 and done.location == "/"
    select = [
        c
        for c in double.calls_to("RespondToAuthChallenge")
        if c["ChallengeName"] == "SELECT_MFA_TYPE"
    ]
    assert select[-1]["ChallengeResponses"]["ANSWER"] == "SOFTWARE_TOKEN_MFA"


async def test_select_mfa_type_in_japanese(double: CognitoDouble, upstream: Upstream) -> None:
    kw = _pool(double, upstream)
    _add(double, kw, "sora", mfa=("SMS_MFA", "EMAIL_OTP"))
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser, "sora", lang="ja")
        assert "確認方法の選択" in page.doc.text and "メール" in page.doc.text


async def test_select_mfa_type_after_expiry_restarts(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _pool(double, upstream)
    _add(double, kw, "seb", mfa=("SMS_MFA", "SOFTWARE_TOKEN_MFA"))
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser, "seb")
        double.clock = lambda: time.time() + 600
        late = await browser.answer(page, {"choice": "SMS_MFA"})
        assert late.status == 400
        assert "Your sign-in took too long" in late.doc.text


# --- MFA_SETUP ----------------------------------------------------------------------------------


def _secret_from(page: Page) -> str:
    img = [a for t, a in page.doc.tags if t == "img" and (a.get("src") or "").startswith("data:")]
    assert len(img) == 1 and img[0]["alt"]
    src = img[0]["src"] or ""
    assert src.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(src.split(",", 1)[1])
    assert svg.startswith(b"<svg") and b"<script" not in svg
    secret = page.doc.find("code", id="totp-secret")
    assert secret
    text = page.html.split('id="totp-secret">', 1)[1].split("<", 1)[0].strip()
    return text


async def test_totp_enrolment_in_our_page_with_a_server_rendered_qr(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _pool(double, upstream, mode="ON", factors=("SOFTWARE_TOKEN_MFA",))
    _add(double, kw, "erin")
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser, "erin")
        assert "Set up your authenticator app" in page.doc.text
        _assert_code_input(page)
        secret = _secret_from(page)
        # The QR code is exactly the otpauth URI for this secret, issued by the product name.
        uri = qr.otpauth_uri(issuer="Sign in", account="erin", secret=secret)
        assert qr.svg_data_uri(uri) in page.html
        parsed = urlsplit(uri)
        assert parsed.scheme == "otpauth" and parse_qs(parsed.query)["secret"] == [secret]

        # Reloading the page keeps the same secret (no second AssociateSoftwareToken).
        again = await browser.open("/_auth/challenge")
        assert _secret_from(again) == secret
        assert len([c for c in double.calls_to("AssociateSoftwareToken")]) >= 1

        wrong = await browser.answer(again, {"code": _wrong(totp(secret))})
        assert wrong.status == 400
        assert "That code is incorrect" in wrong.doc.text
        assert _secret_from(wrong) == secret

        done = await browser.answer(wrong, {"code": totp(secret)})
        assert done.status == 303 and done.location == "/", done.doc.text[:300]
        assert (await browser.get("/")).status == 200
    assert double.totp_secret(kw["pool_id"], "erin") == secret

    # The next sign-in asks for the app's code (the next one: a used code is not taken again).
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser, "erin")
        assert "authenticator app" in page.doc.text
        done = await browser.answer(page, {"code": totp(secret, time.time() + 30)})
        assert done.status == 303


async def test_totp_enrolment_page_in_japanese_and_expiry(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _pool(double, upstream, mode="ON", factors=("SOFTWARE_TOKEN_MFA",))
    _add(double, kw, "kenji")
    async with flow_browser(**kw) as browser:
        page = await _challenge(browser, "kenji", lang="ja")
        assert "認証アプリの設定" in page.doc.text
        secret = _secret_from(page)
        double.clock = lambda: time.time() + 600
        late = await browser.submit(
            "/_auth/challenge?lang=ja", {"code": totp(secret)}, csrf=page.doc.csrf()
        )
        assert late.status == 400
        assert "最初からやり直してください" in late.doc.text
