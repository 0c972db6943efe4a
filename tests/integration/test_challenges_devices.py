"""Remembered devices end to end: ConfirmDevice after MFA, the device's secrets kept sealed on
the server, and DEVICE_SRP_AUTH / DEVICE_PASSWORD_VERIFIER skipping MFA on the next sign-in."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from proxy.devtools.cognito_double import CognitoDouble
from tests.support.challenges import FlowBrowser, flow_browser, pool_kwargs
from tests.support.stack import Upstream
from tests.support.totp import totp

PASSWORD = "Device-user-pass-1!"


def _seed(
    double: CognitoDouble, upstream: Upstream, remembered: str, flow: str = "USER_SRP_AUTH"
) -> dict[str, Any]:
    pool = double.create_pool()
    double.set_pool_mfa(pool, "OPTIONAL", factors=("SOFTWARE_TOKEN_MFA",))
    double.set_device_tracking(pool, challenge_required_on_new_device=True, remembered=remembered)  # type: ignore[arg-type]
    client_id, secret = double.create_client(pool, secret=True)
    double.add_user(
        pool,
        "dora",
        PASSWORD,
        attributes={"email": "dora@example.com"},
        mfa=("SOFTWARE_TOKEN_MFA",),
    )
    return pool_kwargs(double, pool, client_id, secret) | {
        "upstream_url": upstream.url,
        "auth_flow": flow,
    }


async def _sign_in_with_mfa(
    browser: FlowBrowser, double: CognitoDouble, kw: dict[str, Any], at: float
) -> Any:
    first = await browser.sign_in("dora", PASSWORD)
    assert first.status == 303 and first.location == "/_auth/challenge", first.doc.text[:200]
    page = await browser.follow(first)
    secret = double.totp_secret(kw["pool_id"], "dora")
    assert secret
    return await browser.answer(page, {"code": totp(secret, at)})


async def _sign_out(browser: FlowBrowser) -> None:
    page = await browser.open("/_auth/logout")
    done = await browser.submit("/_auth/logout", {}, csrf=page.doc.csrf())
    assert done.status == 303
    assert (await browser.get("/")).status == 302


def _seen_by_browser(browser: FlowBrowser) -> str:
    return " ".join(f"{m.key}={m.value}" for m in browser.http.cookie_jar)


@pytest.mark.parametrize("flow", ["USER_SRP_AUTH", "ADMIN_USER_PASSWORD_AUTH"])
async def test_remembered_device_skips_mfa_next_time(
    double: CognitoDouble, upstream: Upstream, flow: str
) -> None:
    kw = _seed(double, upstream, "always", flow)
    async with flow_browser(**kw) as browser:
        done = await _sign_in_with_mfa(browser, double, kw, time.time())
        assert done.status == 303 and done.location == "/"
        device_cookie = browser.cookie("gate-device")
        assert device_cookie
        devices = double.devices(kw["pool_id"], "dora")
        assert len(devices) == 1 and devices[0]["confirmed"] and devices[0]["remembered"]
        # The device's key (let alone its password) never reaches the browser.
        assert devices[0]["key"] not in _seen_by_browser(browser)
        assert devices[0]["group_key"] not in _seen_by_browser(browser)

        await _sign_out(browser)
        again = await browser.sign_in("dora", PASSWORD)
        assert again.status == 303 and again.location == "/", again.doc.text[:300]
        assert (await browser.get("/")).status == 200

    operation = (
        "AdminRespondToAuthChallenge" if flow.startswith("ADMIN") else "RespondToAuthChallenge"
    )
    names = [
        c["ChallengeName"]
        for c in double.calls_to(operation)
        if c.get("ClientId") == kw["client_id"]
    ]
    assert names[-2:] == ["DEVICE_SRP_AUTH", "DEVICE_PASSWORD_VERIFIER"]
    assert names.count("SOFTWARE_TOKEN_MFA") == 1


async def test_opt_in_device_is_remembered_only_when_the_user_says_so(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream, "user_opt_in")
    async with flow_browser(**kw) as browser:
        done = await _sign_in_with_mfa(browser, double, kw, time.time())
        assert (
            done.status == 303 and done.location == "/_auth/device?rd=%2F&spares=SOFTWARE_TOKEN_MFA"
        )
        ask = await browser.follow(done)
        assert ask.status == 200 and "Remember this device?" in ask.doc.text
        # What it spares, precisely: the authenticator-app code this user just typed.
        assert "not be asked for a code from your authenticator app" in ask.doc.text
        # The parameter is ours, but read as hostile: anything else gets the general words.
        odd = await browser.open("/_auth/device?rd=%2F&spares=%3Cscript%3E")
        assert "not be asked for a verification code after your password" in odd.doc.text
        assert "<script>" not in odd.html
        assert double.devices(kw["pool_id"], "dora")[0]["remembered"] is False
        yes = await browser.submit(
            "/_auth/device", {"rd": "/", "remember": "yes"}, csrf=ask.doc.csrf()
        )
        assert yes.status == 303 and yes.location == "/"
        assert double.devices(kw["pool_id"], "dora")[0]["remembered"] is True

        await _sign_out(browser)
        again = await browser.sign_in("dora", PASSWORD)
        assert again.status == 303 and again.location == "/"


async def test_declined_device_still_asks_for_mfa(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream, "user_opt_in")
    async with flow_browser(**kw) as browser:
        done = await _sign_in_with_mfa(browser, double, kw, time.time())
        ask = await browser.follow(done)
        no = await browser.submit(
            "/_auth/device", {"rd": "/", "remember": "no"}, csrf=ask.doc.csrf()
        )
        assert no.status == 303 and no.location == "/"
        await _sign_out(browser)
        again = await browser.sign_in("dora", PASSWORD)
        assert again.status == 303 and again.location == "/_auth/challenge"


async def test_device_page_needs_the_session_csrf_token(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream, "user_opt_in")
    async with flow_browser(**kw) as browser:
        done = await _sign_in_with_mfa(browser, double, kw, time.time())
        ask = await browser.follow(done)
        assert (
            "このデバイスを記憶しますか?" in (await browser.open("/_auth/device?lang=ja")).doc.text
        )
        forged = await browser.submit(
            "/_auth/device", {"rd": "/", "remember": "yes"}, csrf="forged"
        )
        assert forged.status == 403
        assert double.devices(kw["pool_id"], "dora")[0]["remembered"] is False
        assert ask.doc.csrf()


async def test_another_user_on_the_same_browser_does_not_use_the_device(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream, "always")
    double.add_user(kw["pool_id"], "eve", PASSWORD, mfa=("SOFTWARE_TOKEN_MFA",))
    async with flow_browser(**kw) as browser:
        await _sign_in_with_mfa(browser, double, kw, time.time())
        await _sign_out(browser)
        other = await browser.sign_in("eve", PASSWORD)
        assert other.status == 303 and other.location == "/_auth/challenge"
        starts = [c for c in double.calls_to("InitiateAuth") if c["ClientId"] == kw["client_id"]]
        assert "DEVICE_KEY" not in starts[-1]["AuthParameters"]


async def test_without_a_second_factor_the_device_is_confirmed_but_not_offered(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream, "user_opt_in")
    double.add_user(kw["pool_id"], "plain", PASSWORD)
    async with flow_browser(**kw) as browser:
        done = await browser.sign_in("plain", PASSWORD)
        assert done.status == 303 and done.location == "/"  # no "remember this device?"
        assert browser.cookie("gate-device")
    devices = double.devices(kw["pool_id"], "plain")
    assert [(d["confirmed"], d["remembered"]) for d in devices] == [(True, False)]


async def test_tokens_linked_to_a_device_refresh_with_its_key(
    double: CognitoDouble, upstream: Upstream
) -> None:
    # With device tracking, Cognito refuses a refresh without the device key.
    kw = _seed(double, upstream, "user_opt_in")
    double.add_user(kw["pool_id"], "ron", PASSWORD)
    double.token_ttl = 4
    try:
        async with flow_browser(**kw) as browser:
            assert (await browser.sign_in("ron", PASSWORD)).status == 303
            await asyncio.sleep(2.2)  # past half the tokens' life: the next request refreshes
            assert (await browser.get("/")).status == 200
            assert (await browser.get("/")).status == 200
    finally:
        double.token_ttl = 3600
    refreshes = [
        c for c in double.calls_to("GetTokensFromRefreshToken") if c["ClientId"] == kw["client_id"]
    ]
    assert refreshes
    key = double.devices(kw["pool_id"], "ron")[0]["key"]
    assert refreshes[0]["DeviceKey"] == key
    assert not [f for f in double.failures if f[0] == "GetTokensFromRefreshToken"]


async def test_sign_out_everywhere_refreshes_expired_device_linked_tokens_with_the_key(
    double: CognitoDouble, upstream: Upstream
) -> None:
    # Issue 13.6: the refresh before GlobalSignOut went without the device key, Cognito refused it,
    # no GlobalSignOut was made and the page said done anyway.
    kw = _seed(double, upstream, "user_opt_in")
    double.add_user(kw["pool_id"], "gus", PASSWORD)
    double.token_ttl = 3
    try:
        async with flow_browser(**kw) as browser:
            assert (await browser.sign_in("gus", PASSWORD)).status == 303
            assert double.devices(kw["pool_id"], "gus")  # the tokens are linked to a device
            await asyncio.sleep(3.5)  # idle: the stored access token has expired
            signouts = len(double.calls_to("GlobalSignOut"))
            failures = len(double.failures)
            page = await browser.open("/_auth/logout")
            done = await browser.submit("/_auth/logout", {"everywhere": "1"}, csrf=page.doc.csrf())
            assert done.status == 303
    finally:
        double.token_ttl = 3600
    assert len(double.calls_to("GlobalSignOut")) == signouts + 1
    assert double.failures[failures:] == []
    key = double.devices(kw["pool_id"], "gus")[0]["key"]
    refresh = [
        c for c in double.calls_to("GetTokensFromRefreshToken") if c["ClientId"] == kw["client_id"]
    ][-1]
    assert refresh["DeviceKey"] == key


async def test_a_device_forgotten_in_cognito_does_not_lock_the_user_out(
    double: CognitoDouble, upstream: Upstream
) -> None:
    import boto3

    kw = _seed(double, upstream, "always")
    async with flow_browser(**kw) as browser:
        await _sign_in_with_mfa(browser, double, kw, time.time())
        await _sign_out(browser)
        key = double.devices(kw["pool_id"], "dora")[0]["key"]
        idp = boto3.client("cognito-idp", **double.client_kwargs())
        idp.admin_forget_device(UserPoolId=kw["pool_id"], Username="dora", DeviceKey=key)
        # The stale device cookie is harmless: MFA is asked again, then a new device.
        done = await _sign_in_with_mfa(browser, double, kw, time.time() + 30)
        assert done.status == 303 and done.location == "/"


async def test_device_cognito_no_longer_knows_is_dropped_and_sign_in_retried(
    double: CognitoDouble, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proxy.cognito.client import CognitoClient
    from proxy.cognito.errors import Misconfigured

    kw = _seed(double, upstream, "always")
    real = CognitoClient.password_login

    async def refuse_devices(self: CognitoClient, *args: Any, **kw_: Any) -> Any:
        if len(args) > 3 and args[3] is not None:
            raise Misconfigured("ResourceNotFoundException", "Device does not exist.")
        return await real(self, *args, **kw_)

    async with flow_browser(**kw) as browser:
        await _sign_in_with_mfa(browser, double, kw, time.time())
        await _sign_out(browser)
        monkeypatch.setattr(CognitoClient, "password_login", refuse_devices)
        again = await browser.sign_in("dora", PASSWORD)
        assert again.status == 303 and again.location == "/_auth/challenge"
