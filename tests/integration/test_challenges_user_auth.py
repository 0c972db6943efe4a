"""Passwordless USER_AUTH end to end: SELECT_CHALLENGE, password (SRP), EMAIL_OTP, SMS_OTP and
WEB_AUTHN passkeys. The passkey is a software authenticator producing exactly the credential
JSON that static/webauthn.js posts after navigator.credentials.get."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from proxy.devtools.cognito_double import CognitoDouble
from proxy.devtools.webauthn import SoftwareAuthenticator
from tests.support.challenges import FlowBrowser, Page, flow_browser, pool_kwargs
from tests.support.stack import Upstream

PASSWORD = "User-auth-pass-1!"
RP_ID = "gate.example"


@pytest.fixture(autouse=True)
def _restore_clock(double: CognitoDouble) -> Iterator[None]:
    yield
    double.clock = time.time


def _seed(double: CognitoDouble, upstream: Upstream, flow_origin: str = "") -> dict[str, Any]:
    pool = double.create_pool()
    client_id, secret = double.create_client(pool, secret=True, flows={"USER_AUTH"})
    double.add_user(
        pool,
        "pia",
        PASSWORD,
        attributes={"email": "pia@example.com", "phone_number": "+815011112222"},
    )
    return pool_kwargs(double, pool, client_id, secret) | {
        "upstream_url": upstream.url,
        "auth_flow": "USER_AUTH",
    }


async def _select(browser: FlowBrowser, lang: str | None = None) -> Page:
    q = f"?lang={lang}" if lang else ""
    login = await browser.open(f"/_auth/login{q}")
    assert not login.doc.find("input", name="password")  # the factor comes next
    first = await browser.submit(f"/_auth/login{q}", {"username": "pia"}, csrf=login.doc.csrf())
    assert first.status == 303, first.doc.text[:300]
    page = await browser.follow(first)
    assert page.status == 200
    return page


async def test_select_challenge_with_password_uses_srp(
    double: CognitoDouble, upstream: Upstream
) -> None:
    double_kw = _seed(double, upstream)
    double.set_user_auth(double_kw["pool_id"], ("PASSWORD", "EMAIL_OTP", "SMS_OTP"))
    async with flow_browser(**double_kw) as browser:
        page = await _select(browser)
        assert page.doc.input("password")["autocomplete"] == "current-password"
        assert {b["value"] for b in page.doc.find("button", name="choice")} == {
            "EMAIL_OTP",
            "SMS_OTP",
        }

        wrong = await browser.answer(page, {"choice": "PASSWORD_SRP", "password": "not-it-1!A"})
        assert wrong.status == 400
        assert "Incorrect username or password." in wrong.doc.text

        page = await _select(browser)
        done = await browser.answer(page, {"choice": "PASSWORD_SRP", "password": PASSWORD})
        assert done.status == 303 and done.location == "/", done.doc.text[:300]
        assert (await browser.get("/")).status == 200
    select = [
        c
        for c in double.calls_to("RespondToAuthChallenge")
        if c["ChallengeName"] == "SELECT_CHALLENGE"
    ]
    assert select[-1]["ChallengeResponses"]["ANSWER"] == "PASSWORD_SRP"
    assert "PASSWORD" not in select[-1]["ChallengeResponses"]  # the password never left


@pytest.mark.parametrize(("factor", "channel"), [("EMAIL_OTP", "EMAIL"), ("SMS_OTP", "SMS")])
async def test_one_time_code_as_first_factor(
    double: CognitoDouble, upstream: Upstream, factor: str, channel: str
) -> None:
    kw = _seed(double, upstream)
    double.set_user_auth(kw["pool_id"], ("PASSWORD", "EMAIL_OTP", "SMS_OTP"))
    async with flow_browser(**kw) as browser:
        page = await _select(browser)
        chosen = await browser.answer(page, {"choice": factor})
        assert chosen.status == 303 and chosen.location == "/_auth/challenge"
        code_page = await browser.follow(chosen)
        assert code_page.doc.input("code")["autocomplete"] == "one-time-code"
        code = double.last_code(kw["pool_id"], "pia", channel)  # type: ignore[arg-type]
        assert code
        wrong = await browser.answer(
            code_page, {"code": "000000" if code != "000000" else "111111"}
        )
        assert wrong.status == 400 and "That code is incorrect" in wrong.doc.text
        done = await browser.answer(wrong, {"code": code})
        assert done.status == 303 and done.location == "/"


async def _passkey_page(
    double: CognitoDouble, upstream: Upstream
) -> AsyncIterator[tuple[FlowBrowser, Page, SoftwareAuthenticator, dict[str, Any]]]:
    kw = _seed(double, upstream)
    async with flow_browser(**kw) as browser:
        double.set_user_auth(
            kw["pool_id"],
            ("PASSWORD", "WEB_AUTHN"),
            relying_party_id=RP_ID,
            allowed_origins=(browser.base,),
        )
        key = SoftwareAuthenticator(RP_ID, origin=browser.base)
        double.register_passkey(kw["pool_id"], "pia", key.credential_id, key.public_key, RP_ID)
        page = await _select(browser)
        chosen = await browser.answer(page, {"choice": "WEB_AUTHN"})
        assert chosen.status == 303
        passkey = await browser.follow(chosen)
        assert passkey.status == 200
        yield browser, passkey, key, kw


def _options(page: Page) -> dict[str, Any]:
    form = page.doc.find("form", id="webauthn-form")[0]
    return json.loads(form["data-webauthn-options"] or "")


async def test_passkey_sign_in_through_the_webauthn_page(
    double: CognitoDouble, upstream: Upstream
) -> None:
    async for browser, page, key, _ in _passkey_page(double, upstream):
        assert "Sign in with a passkey" in page.doc.text
        ja = await browser.open("/_auth/challenge?lang=ja")
        assert "パスキーでサインイン" in ja.doc.text and "パスキーには JavaScript" in ja.html
        scripts = [a["src"] for t, a in page.doc.tags if t == "script"]
        assert any(s and "/webauthn.js" in s for s in scripts)
        assert page.doc.find("noscript") or "Passkeys need JavaScript" in page.html
        options = _options(page)
        assert options["rpId"] == RP_ID
        # What webauthn.js posts after navigator.credentials.get():
        done = await browser.answer(page, {"credential": key.assertion(options)})
        assert done.status == 303 and done.location == "/", done.doc.text[:300]
        assert (await browser.get("/")).status == 200


async def test_the_webauthn_script_is_served_from_our_static_path(
    double: CognitoDouble, upstream: Upstream
) -> None:
    async with flow_browser(**_seed(double, upstream)) as browser:
        resp = await browser.get("/_auth/static/webauthn.js")
        assert resp.status == 200
        assert "navigator.credentials.get" in await resp.text()


async def test_a_wrong_passkey_is_refused_and_the_sign_in_restarts(
    double: CognitoDouble, upstream: Upstream
) -> None:
    async for browser, page, _, _ in _passkey_page(double, upstream):
        stranger = SoftwareAuthenticator(RP_ID, origin=browser.base)
        refused = await browser.answer(page, {"credential": stranger.assertion(_options(page))})
        assert refused.status == 400
        assert "We could not verify you. Please sign in again." in refused.doc.text
        assert refused.doc.find("input", name="username")
        assert browser.cookie("gate") is None


async def test_garbage_credential_stays_on_the_page(
    double: CognitoDouble, upstream: Upstream
) -> None:
    async for browser, page, key, _ in _passkey_page(double, upstream):
        bad = await browser.answer(page, {"credential": "{not json"})
        assert bad.status == 400
        assert "The passkey could not be used" in bad.doc.text
        done = await browser.answer(bad, {"credential": key.assertion(_options(bad))})
        assert done.status == 303


async def test_expired_passkey_challenge_restarts(
    double: CognitoDouble, upstream: Upstream
) -> None:
    async for browser, page, key, _ in _passkey_page(double, upstream):
        double.clock = lambda: time.time() + 600
        late = await browser.answer(page, {"credential": key.assertion(_options(page))})
        assert late.status == 400
        assert "Your sign-in took too long" in late.doc.text


async def test_user_auth_pages_in_japanese(double: CognitoDouble, upstream: Upstream) -> None:
    kw = _seed(double, upstream)
    double.set_user_auth(kw["pool_id"], ("PASSWORD", "EMAIL_OTP"))
    async with flow_browser(**kw) as browser:
        page = await _select(browser, lang="ja")
        assert "確認方法の選択" in page.doc.text and "メール" in page.doc.text


@pytest.mark.parametrize(("factor", "channel"), [("EMAIL_OTP", "EMAIL"), ("SMS_OTP", "SMS")])
async def test_no_remember_device_offer_after_a_passwordless_code(
    double: CognitoDouble, upstream: Upstream, factor: str, channel: str
) -> None:
    # Issue 19: a remembered device spares a second factor; after a one-time code as the first
    # factor there is none to spare, so the proxy must not promise it.
    kw = _seed(double, upstream)
    double.set_user_auth(kw["pool_id"], ("PASSWORD", "EMAIL_OTP", "SMS_OTP"))
    double.set_device_tracking(kw["pool_id"], remembered="user_opt_in")
    async with flow_browser(**kw) as browser:
        page = await _select(browser)
        code_page = await browser.follow(await browser.answer(page, {"choice": factor}))
        # The code is the whole sign-in here, not a "two-step" second step.
        assert "Enter your code" in code_page.doc.text
        assert "Two-step verification" not in code_page.doc.text
        code = double.last_code(kw["pool_id"], "pia", channel)  # type: ignore[arg-type]
        assert code
        done = await browser.answer(code_page, {"code": code})
        assert done.status == 303 and done.location == "/", done.location
        assert double.devices(kw["pool_id"], "pia")  # tracked (confirmed), just not offered


async def test_remember_device_offer_after_password_and_an_emailed_mfa_code(
    double: CognitoDouble, upstream: Upstream
) -> None:
    # The same EMAIL_OTP challenge name, now as MFA after the password: worth remembering.
    pool = double.create_pool()
    double.set_pool_mfa(pool, "ON", factors=("EMAIL_OTP",))
    double.set_device_tracking(pool, remembered="user_opt_in")
    client_id, secret = double.create_client(pool, secret=True, flows={"USER_AUTH"})
    double.add_user(
        pool, "pia", PASSWORD, attributes={"email": "pia@example.com"}, mfa=["EMAIL_OTP"]
    )
    double.set_user_auth(pool, ("PASSWORD",))
    kw = pool_kwargs(double, pool, client_id, secret) | {
        "upstream_url": upstream.url,
        "auth_flow": "USER_AUTH",
    }
    async with flow_browser(**kw) as browser:
        page = await _select(browser)
        mfa = await browser.follow(
            await browser.answer(page, {"choice": "PASSWORD_SRP", "password": PASSWORD})
        )
        assert "Two-step verification" in mfa.doc.text, mfa.doc.text[:300]
        code = double.last_code(pool, "pia", "EMAIL")
        assert code
        done = await browser.answer(mfa, {"code": code})
        assert done.status == 303
        assert done.location == "/_auth/device?rd=%2F&spares=EMAIL_OTP"
        ask = await browser.follow(done)
        assert "you will not be asked for a code by email after your password" in ask.doc.text
