"""/_auth/account's sign-in methods over HTTP: proxy -> strict double (GetUser,
AssociateSoftwareToken / VerifySoftwareToken with the access token, SetUserMFAPreference)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from tests.support.challenges import FlowBrowser, Page
from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import start_redis_server
from tests.support.stack import Upstream, cognito_kwargs, proxy_settings, running_proxy
from tests.support.stepup import age_sign_in
from tests.support.totp import totp

PASSWORD = "Correct-horse-9!"
SECRET_SHOWN = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')
ALL_FACTORS = ["SOFTWARE_TOKEN_MFA", "SMS_MFA", "EMAIL_OTP"]


@pytest.fixture
def pool(double: CognitoDouble, upstream: Upstream) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, "carol", PASSWORD, attributes={"email": "carol@example.com"})
    return cognito_kwargs(double, pool_id, client_id, secret) | {"upstream_url": upstream.url}


@pytest.fixture
async def base(pool: dict[str, Any]) -> AsyncIterator[str]:
    async with running_proxy(proxy_settings(**pool)) as url:
        yield url


async def signed_in(base: str, username: str = "carol") -> FlowBrowser:
    browser = FlowBrowser(base)
    done = await browser.sign_in(username, PASSWORD)
    assert done.status == 303, done.doc.text[:300]
    return browser


async def account(browser: FlowBrowser, query: str = "") -> Page:
    page = await browser.open("/_auth/account" + query)
    assert page.status == 200, page.status
    return page


async def post(browser: FlowBrowser, path: str, fields: dict[str, str]) -> Page:
    page = await account(browser)
    return await browser.submit("/_auth/account/methods/" + path, fields, csrf=page.doc.csrf())


async def start_enrolment(browser: FlowBrowser) -> tuple[Page, str]:
    started = await post(browser, "totp/start", {})
    assert started.status == 303 and started.location == "/_auth/account#methods"
    page = await account(browser)
    shown = SECRET_SHOWN.search(page.html)
    assert shown, page.doc.text[:500]
    return page, shown[1]


def verify_calls(double: CognitoDouble) -> list[dict[str, Any]]:
    return double.calls_to("VerifySoftwareToken")


def changes(double: CognitoDouble) -> list[int]:
    """How many calls Cognito has had that change a user's MFA."""
    ops = ("AssociateSoftwareToken", "VerifySoftwareToken", "SetUserMFAPreference")
    return [len(double.calls_to(op)) for op in ops]


def user(double: CognitoDouble, pool: dict[str, Any], name: str = "carol") -> dict[str, Any]:
    return double.user_info(pool["pool_id"], name)


async def test_enrol_an_authenticator_app_then_sign_in_with_a_code(
    base: str, pool: dict[str, Any], double: CognitoDouble
) -> None:
    browser = await signed_in(base)
    try:
        page = await account(browser)
        assert "Two-step verification" in page.doc.text
        assert "No second step is turned on" in page.doc.text
        assert "Set up an authenticator app" in page.doc.text

        page, secret = await start_enrolment(browser)
        (qr,) = page.doc.find("img", alt="QR code to add this account to an authenticator app")
        assert (qr["src"] or "").startswith("data:image/svg+xml;base64,")
        # The secret is shown to read, never carried by a form field.
        assert all(secret.replace(" ", "") not in (i.get("value") or "").replace(" ", "")
                   for _, i in page.doc.tags)  # fmt: skip
        assert "Set up an authenticator app" not in page.doc.text  # the setup is under way

        wrong = await browser.submit(
            "/_auth/account/methods/totp/verify", {"code": "000000"}, csrf=page.doc.csrf()
        )
        assert wrong.status == 400
        assert "That code is incorrect." in wrong.doc.text
        assert SECRET_SHOWN.search(wrong.html)  # the same setup, to try again

        done = await browser.submit(
            "/_auth/account/methods/totp/verify", {"code": totp(secret)}, csrf=page.doc.csrf()
        )
        assert done.status == 303, done.doc.text[:300]
        after = await browser.follow(done)
        assert "Your authenticator app is set up." in after.doc.text
        assert not SECRET_SHOWN.search(after.html)
        assert secret.replace(" ", "") not in after.html and secret not in after.html
        assert "Preferred" in after.doc.text and "Remove" in after.doc.text

        info = user(double, pool)
        assert info["mfa"] == ["SOFTWARE_TOKEN_MFA"]
        assert info["preferred_mfa"] == "SOFTWARE_TOKEN_MFA"
        assert double.totp_secret(pool["pool_id"], "carol") == secret.replace(" ", "")
        # The access-token path, never an MFA_SETUP Session.
        for call in [*double.calls_to("AssociateSoftwareToken"), *verify_calls(double)]:
            assert "AccessToken" in call and "Session" not in call

        out = await browser.open("/_auth/logout")
        assert (await browser.submit("/_auth/logout", {}, csrf=out.doc.csrf())).status == 303
        first = await browser.sign_in("carol", PASSWORD)
        assert first.status == 303 and first.location == "/_auth/challenge"
        challenge = await browser.follow(first)
        assert "authenticator app" in challenge.doc.text
        # The next step's code: the double accepts each step once, like Cognito.
        signed = await browser.answer(challenge, {"code": totp(secret, time.time() + 30)})
        assert signed.status == 303 and signed.location == "/", signed.doc.text[:300]
        assert (await browser.get("/")).status == 200
    finally:
        await browser.close()


async def test_the_page_asks_getuser_once_for_profile_and_methods(
    base: str, double: CognitoDouble
) -> None:
    browser = await signed_in(base)
    try:
        before = len(double.calls_to("GetUser"))
        page = await account(browser)
        assert 'id="profile"' in page.html and 'id="methods"' in page.html
        assert len(double.calls_to("GetUser")) == before + 1
        # Cognito failing: both sections say so, still from one call.
        double.inject_errors["GetUser"] = ("InternalErrorException", "down")
        try:
            before = len(double.calls_to("GetUser"))
            page = await account(browser)
            asked = len(double.calls_to("GetUser")) - before
        finally:
            del double.inject_errors["GetUser"]
        assert "Your sign-in methods cannot be shown right now." in page.doc.text
        assert "Your profile cannot be shown right now." in page.doc.text
        assert asked == 1  # not once per section
    finally:
        await browser.close()


async def test_wrong_codes_are_counted_and_end_the_setup(
    base: str, pool: dict[str, Any], double: CognitoDouble
) -> None:
    browser = await signed_in(base)
    try:
        page, _ = await start_enrolment(browser)
        before = len(verify_calls(double))
        bad_shape = await browser.submit(
            "/_auth/account/methods/totp/verify", {"code": "12ab56"}, csrf=page.doc.csrf()
        )
        assert bad_shape.status == 400
        assert len(verify_calls(double)) == before  # not worth asking Cognito
        for attempt in range(1, 6):
            answer = await browser.submit(
                "/_auth/account/methods/totp/verify", {"code": "000000"}, csrf=page.doc.csrf()
            )
            assert answer.status == (429 if attempt == 5 else 400)
        assert "Too many wrong codes" in answer.doc.text
        assert not SECRET_SHOWN.search(answer.html)  # that secret is gone from the page
        again = await browser.submit(
            "/_auth/account/methods/totp/verify", {"code": "000000"}, csrf=page.doc.csrf()
        )
        assert again.status == 400 and "The setup has ended" in again.doc.text
        assert len(verify_calls(double)) == before + 5
        assert user(double, pool)["mfa"] == []
        # Starting again is a new secret (AssociateSoftwareToken replaces the pending one).
        _, fresh = await start_enrolment(browser)
        ok = await browser.submit(
            "/_auth/account/methods/totp/verify", {"code": totp(fresh)}, csrf=page.doc.csrf()
        )
        assert ok.status == 303
    finally:
        await browser.close()


async def test_the_pending_secret_belongs_to_the_session_that_started_it(
    base: str, pool: dict[str, Any], double: CognitoDouble
) -> None:
    double.add_user(pool["pool_id"], "dave", PASSWORD, attributes={"email": "dave@example.com"})
    carol = await signed_in(base)
    carol_elsewhere = await signed_in(base)
    dave = await signed_in(base, "dave")
    try:
        _, secret = await start_enrolment(carol)
        # Another browser of carol's, and another user: no setup shown, none to finish.
        for other in (carol_elsewhere, dave):
            page = await account(other)
            assert not SECRET_SHOWN.search(page.html)
            finish = await other.submit(
                "/_auth/account/methods/totp/verify",
                {"code": totp(secret), "secret": secret.replace(" ", "")},
                csrf=page.doc.csrf(),
            )
            assert finish.status == 400 and "The setup has ended" in finish.doc.text
        assert user(double, pool, "dave")["mfa"] == []
        # A secret posted along is ignored: Cognito checks the code against its own pending
        # secret, so a code made from a secret of the attacker's choice is just wrong.
        chosen = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
        page = await account(carol)
        swapped = await carol.submit(
            "/_auth/account/methods/totp/verify",
            {"code": totp(chosen), "secret": chosen},
            csrf=page.doc.csrf(),
        )
        assert swapped.status == 400
        assert double.totp_secret(pool["pool_id"], "carol") is None
        ok = await carol.submit(
            "/_auth/account/methods/totp/verify", {"code": totp(secret)}, csrf=page.doc.csrf()
        )
        assert ok.status == 303
        assert double.totp_secret(pool["pool_id"], "carol") == secret.replace(" ", "")
    finally:
        for b in (carol, carol_elsewhere, dave):
            await b.close()


async def test_cancel_ends_the_setup(base: str, double: CognitoDouble) -> None:
    browser = await signed_in(base)
    try:
        page, _ = await start_enrolment(browser)
        cancelled = await browser.submit(
            "/_auth/account/methods/totp/cancel", {}, csrf=page.doc.csrf()
        )
        after = await browser.follow(cancelled)
        assert "Authenticator app setup is cancelled." in after.doc.text
        assert not SECRET_SHOWN.search(after.html)
    finally:
        await browser.close()


async def test_sms_and_email_codes_on_off_and_preferred(
    pool: dict[str, Any], double: CognitoDouble
) -> None:
    pool_id = pool["pool_id"]
    double.add_user(
        pool_id,
        "erin",
        PASSWORD,
        attributes={"email": "erin@example.com", "phone_number": "+15555550100"},
        mfa=["SOFTWARE_TOKEN_MFA"],
        preferred_mfa="SOFTWARE_TOKEN_MFA",
    )
    secret = double.totp_secret(pool_id, "erin")
    assert secret
    settings = proxy_settings(**pool, account={"mfa_factors": ALL_FACTORS})
    async with running_proxy(settings) as url:
        browser = FlowBrowser(url)
        try:
            first = await browser.sign_in("erin", PASSWORD)
            challenge = await browser.follow(first)
            assert (await browser.answer(challenge, {"code": totp(secret)})).status == 303
            page = await account(browser)
            for label in ("Authenticator app", "Text message (SMS)", "Email"):
                assert label in page.doc.text

            async def change(factor: str, action: str) -> Page:
                answer = await post(browser, "mfa", {"factor": factor, "action": action})
                assert answer.status == 303, answer.doc.text[:300]
                return await browser.follow(answer)

            shown = await change("SMS_MFA", "on")
            assert "That second step is turned on." in shown.doc.text
            assert user(double, pool, "erin")["mfa"] == ["SMS_MFA", "SOFTWARE_TOKEN_MFA"]
            shown = await change("SMS_MFA", "preferred")
            assert "That second step is now your preferred one." in shown.doc.text
            assert user(double, pool, "erin")["preferred_mfa"] == "SMS_MFA"
            await change("EMAIL_OTP", "on")
            shown = await change("SMS_MFA", "off")
            assert "That second step is turned off." in shown.doc.text
            info = user(double, pool, "erin")
            assert info["mfa"] == ["EMAIL_OTP", "SOFTWARE_TOKEN_MFA"]
            assert info["preferred_mfa"] is None
            shown = await change("SOFTWARE_TOKEN_MFA", "off")
            assert "The authenticator app is removed." in shown.doc.text
            await change("EMAIL_OTP", "off")
            assert user(double, pool, "erin")["mfa"] == []
            assert "No second step is turned on" in (await account(browser)).doc.text
            # Passing a factor preferred needs it on.
            off = await post(browser, "mfa", {"factor": "EMAIL_OTP", "action": "preferred"})
            assert off.status == 400
        finally:
            await browser.close()


async def test_a_factor_on_from_before_that_the_settings_do_not_offer_can_be_turned_off(
    base: str, pool: dict[str, Any], double: CognitoDouble
) -> None:
    double.add_user(
        pool["pool_id"],
        "gail",
        PASSWORD,
        attributes={"email": "gail@example.com", "phone_number": "+15555550102"},
        mfa=["SMS_MFA"],
        preferred_mfa="SMS_MFA",
    )
    browser = FlowBrowser(base)
    try:
        challenge = await browser.follow(await browser.sign_in("gail", PASSWORD))
        code = double.last_code(pool["pool_id"], "gail", "SMS")
        assert code is not None
        assert (await browser.answer(challenge, {"code": code})).status == 303
        page = await account(browser)  # the settings offer the authenticator app only
        assert "Text message (SMS)" in page.doc.text and "Turn off" in page.doc.text
        assert "Make preferred" not in page.doc.text
        refused = await post(browser, "mfa", {"factor": "SMS_MFA", "action": "preferred"})
        assert refused.status == 400
        done = await post(browser, "mfa", {"factor": "SMS_MFA", "action": "off"})
        assert done.status == 303
        after = await browser.follow(done)
        assert "Text message (SMS)" not in after.doc.text  # not offered: gone once off
        assert user(double, pool, "gail")["mfa"] == []
    finally:
        await browser.close()


async def test_codes_by_sms_or_email_need_a_verified_destination(
    pool: dict[str, Any], double: CognitoDouble
) -> None:
    double.add_user(
        pool["pool_id"],
        "fred",
        PASSWORD,
        attributes={
            "email": "fred@example.com",
            "email_verified": "false",
            "phone_number": "+15555550101",
            "phone_number_verified": "false",
        },
    )
    settings = proxy_settings(**pool, account={"mfa_factors": ALL_FACTORS})
    async with running_proxy(settings) as url:
        browser = await signed_in(url, "fred")
        try:
            page = await account(browser)
            assert "Authenticator app" in page.doc.text
            assert "Text message (SMS)" not in page.doc.text
            assert "methods-EMAIL_OTP-title" not in page.html
            before = len(double.calls_to("SetUserMFAPreference"))
            for factor in ("SMS_MFA", "EMAIL_OTP"):
                refused = await post(browser, "mfa", {"factor": factor, "action": "on"})
                assert refused.status == 400
                assert "Verify your phone number or email address first" in refused.doc.text
            assert len(double.calls_to("SetUserMFAPreference")) == before
        finally:
            await browser.close()


@pytest.mark.parametrize(
    ("path", "fields", "status"),
    [
        ("mfa", {"factor": "ADMIN", "action": "on"}, 400),
        ("mfa", {"factor": "SMS_MFA", "action": "on"}, 400),  # the pool does not offer it here
        ("mfa", {"factor": "SOFTWARE_TOKEN_MFA", "action": "delete"}, 400),
        ("mfa", {"factor": "SOFTWARE_TOKEN_MFA", "action": "on"}, 400),  # only by enrolling
        ("mfa", {}, 400),
        ("totp/verify", {"code": "1" * 5000}, 400),
        ("totp/verify", {"code": "123456"}, 400),  # no setup under way
    ],
)
async def test_hostile_forms_get_4xx(
    base: str, double: CognitoDouble, path: str, fields: dict[str, str], status: int
) -> None:
    browser = await signed_in(base)
    try:
        before = len(double.calls_to("SetUserMFAPreference")) + len(verify_calls(double))
        answer = await post(browser, path, fields)
        assert answer.status == status, answer.doc.text[:300]
        assert len(double.calls_to("SetUserMFAPreference")) + len(verify_calls(double)) == before
        # No CSRF token: refused before anything.
        forged = await browser.post("/_auth/account/methods/" + path, fields)
        assert forged.status == 403
    finally:
        await browser.close()


async def test_not_signed_in_goes_to_the_login_page(base: str) -> None:
    browser = FlowBrowser(base)
    try:
        login = await browser.open("/_auth/login")
        answer = await browser.submit("/_auth/account/methods/totp/start", {}, csrf="x" * 43)
        assert answer.status == 303 and (answer.location or "").startswith("/_auth/login")
        assert login.status == 200
    finally:
        await browser.close()


async def test_cognito_failing_is_said_in_the_section(
    base: str, pool: dict[str, Any], double: CognitoDouble
) -> None:
    browser = await signed_in(base)
    try:
        double.inject_errors["GetUser"] = ("InternalErrorException", "down")
        try:
            page = await account(browser)
        finally:
            del double.inject_errors["GetUser"]
        assert "Your sign-in methods cannot be shown right now." in page.doc.text
        assert "Change password" in page.doc.text  # the rest of the page works

        double.inject_errors["AssociateSoftwareToken"] = ("InternalErrorException", "down")
        try:
            failed = await post(browser, "totp/start", {})
        finally:
            del double.inject_errors["AssociateSoftwareToken"]
        assert failed.status == 503
        assert "That could not be changed right now." in failed.doc.text

        page, secret = await start_enrolment(browser)
        double.inject_errors["SetUserMFAPreference"] = ("InternalErrorException", "down")
        try:
            failed = await browser.submit(
                "/_auth/account/methods/totp/verify", {"code": totp(secret)}, csrf=page.doc.csrf()
            )
        finally:
            del double.inject_errors["SetUserMFAPreference"]
        assert failed.status == 503
        assert "That could not be changed right now." in failed.doc.text
        assert user(double, pool)["mfa"] == []
        # Cognito took the code, turning it on failed: trying again only turns it on.
        again = await browser.submit(
            "/_auth/account/methods/totp/verify", {"code": totp(secret)}, csrf=page.doc.csrf()
        )
        assert again.status == 303, again.doc.text[:300]
        assert user(double, pool)["mfa"] == ["SOFTWARE_TOKEN_MFA"]

        # Signed out at Cognito (elsewhere): the access token is refused, the session ends.
        admin = boto3.client("cognito-idp", **double.client_kwargs())
        admin.admin_user_global_sign_out(UserPoolId=pool["pool_id"], Username="carol")
        gone = await post(browser, "totp/start", {})
        assert gone.status == 303 and (gone.location or "").startswith("/_auth/login")
        assert (await browser.get("/_auth/account")).status == 303
    finally:
        await browser.close()


async def test_no_factor_offered_hides_the_section(pool: dict[str, Any]) -> None:
    settings = proxy_settings(**pool, account={"mfa_factors": []})
    async with running_proxy(settings) as url:
        browser = await signed_in(url)
        try:
            page = await account(browser)
            assert "Two-step verification" not in page.doc.text
            assert (await post(browser, "totp/start", {})).status == 404
        finally:
            await browser.close()


async def test_an_old_sign_in_must_be_confirmed_before_any_change(
    pool: dict[str, Any], double: CognitoDouble
) -> None:
    redis = start_redis_server()
    try:
        settings = proxy_settings(
            **pool | {"store_url": redis.url},
            session={"store_url": redis.url, "cache_ttl": 0},
            account={"reauth_max_age": 300, "mfa_factors": ALL_FACTORS},
        )
        async with running_proxy(settings) as url:
            browser = await signed_in(url)
            try:
                _, secret = await start_enrolment(browser)
                cookie = browser.cookie("gate")
                assert cookie
                await age_sign_in(redis.url, cookie, 301)
                before = changes(double)
                for path, fields in (
                    ("totp/start", {}),
                    ("totp/verify", {"code": totp(secret)}),
                    ("mfa", {"factor": "EMAIL_OTP", "action": "on"}),
                ):
                    refused = await post(browser, path, fields)
                    assert refused.status == 303 and refused.location, path
                    assert urlsplit(refused.location).path == "/_auth/reauth"
                assert changes(double) == before  # none of it acted on
                assert user(double, pool)["mfa"] == []
                # Cancelling changes nothing about signing in: no confirmation needed.
                cancelled = await post(browser, "totp/cancel", {})
                assert cancelled.status == 303
                assert "done=totp_cancelled" in (cancelled.location or "")
            finally:
                await browser.close()
    finally:
        redis.stop()
