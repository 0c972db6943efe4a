"""/_auth/account's profile over HTTP: proxy -> strict double (GetUser, UpdateUserAttributes,
VerifyUserAttribute, GetUserAttributeVerificationCode), both pool modes for a new email."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

from proxy.devtools.cognito_double import CognitoDouble
from tests.support.challenges import FlowBrowser, Page, flow_browser, pool_kwargs
from tests.support.redis_server import start_redis_server
from tests.support.stack import Upstream
from tests.support.stepup import age_sign_in

PASSWORD = "Correct-horse-9!"
ACCOUNT = "/_auth/account"


@pytest.fixture
def kw(double: CognitoDouble, upstream: Upstream) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(
        pool_id,
        "erin",
        PASSWORD,
        attributes={
            "email": "erin@example.com",
            "email_verified": "true",
            "name": "Erin Example",
            "family_name": "Example",  # not listed: never shown
            "custom:tenant": "acme",
        },
    )
    return pool_kwargs(double, pool_id, client_id, secret) | {
        "upstream_url": upstream.url,
        # The app reads the name too; sessions are cached (a stale copy must not be served).
        "headers": {"extra": {"X-User-Name": "name"}},
        "session": {"store_url": "memory://", "cache_ttl": 30},
    }


@asynccontextmanager
async def signed_in(kw: dict[str, Any], **account: Any) -> AsyncIterator[FlowBrowser]:
    settings = kw | {"account": {"profile_attributes": ["name", "email", "phone_number"]} | account}
    async with flow_browser(**settings) as browser:
        assert (await browser.sign_in("erin", PASSWORD)).status == 303
        yield browser


async def app_sees(browser: FlowBrowser, upstream: Upstream) -> dict[str, str]:
    resp = await browser.get("/app")
    assert resp.status == 200
    return upstream.last_headers


async def post(browser: FlowBrowser, path: str, fields: dict[str, str]) -> Page:
    page = await browser.open(ACCOUNT)
    assert page.status == 200
    return await browser.submit(ACCOUNT + path, fields, csrf=page.doc.csrf())


def calls(double: CognitoDouble, op: str) -> int:
    return len(double.calls_to(op))


def code(double: CognitoDouble, kw: dict[str, Any], channel: str = "EMAIL") -> str:
    sent = double.last_code(kw["pool_id"], "erin", channel)  # type: ignore[arg-type]
    assert sent is not None
    return sent


async def test_only_the_listed_attributes_are_shown(kw: dict[str, Any]) -> None:
    async with signed_in(kw, profile_read_only=["custom:tenant"]) as browser:
        page = await browser.open(ACCOUNT)
        assert page.status == 200
        assert page.doc.input("attr:name")["value"] == "Erin Example"
        assert "erin@example.com" in page.doc.text
        assert "Verified" in page.doc.text
        assert "tenant acme" in page.doc.text  # read-only: shown, no field
        assert not page.doc.find("input", name="attr:custom:tenant")
        assert "Example" not in page.doc.text.replace("Erin Example", "").replace(
            "example.com", ""
        )  # family_name is not listed
        names = {t.get("name") for t in page.doc.find("input")}
        for hidden in ("attr:sub", "attr:email_verified", "attr:family_name"):
            assert hidden not in names


async def test_no_attributes_listed_no_section(kw: dict[str, Any], double: CognitoDouble) -> None:
    # (and no two-step verification section, which reads GetUser too)
    async with signed_in(kw, profile_attributes=[], mfa_factors=[]) as browser:
        before = calls(double, "GetUser")
        page = await browser.open(ACCOUNT)
        assert page.status == 200
        assert 'id="profile"' not in page.html
        assert calls(double, "GetUser") == before


async def test_a_new_name_reaches_the_app_on_the_next_request(
    kw: dict[str, Any], upstream: Upstream, double: CognitoDouble, caplog: pytest.LogCaptureFixture
) -> None:
    async with signed_in(kw) as browser:
        assert (await app_sees(browser, upstream))["X-User-Name"] == "Erin Example"
        with caplog.at_level(logging.INFO, logger="proxy.audit"):
            done = await post(browser, "/profile", {"attr:name": "Erin Renamed"})
        (line,) = [
            r.getMessage() for r in caplog.records if "account.profile_changed" in r.getMessage()
        ]
        assert "attributes=name" in line and "Erin Renamed" not in line  # names, never values
        assert done.status == 303
        assert done.location == ACCOUNT + "?done=profile_saved#profile"
        page = await browser.follow(done)
        assert "Your profile is saved." in page.doc.text
        assert page.doc.input("attr:name")["value"] == "Erin Renamed"
        # New tokens at once (the cache held the old session for 30 s): the app sees it now.
        assert (await app_sees(browser, upstream))["X-User-Name"] == "Erin Renamed"
        assert double.user_info(kw["pool_id"], "erin")["attributes"]["name"] == "Erin Renamed"


async def test_a_blank_name_removes_it(
    kw: dict[str, Any], upstream: Upstream, double: CognitoDouble
) -> None:
    async with signed_in(kw) as browser:
        assert (await post(browser, "/profile", {"attr:name": "  "})).status == 303
        assert "name" not in double.user_info(kw["pool_id"], "erin")["attributes"]
        assert "X-User-Name" not in await app_sees(browser, upstream)


async def test_unchanged_values_are_not_written(kw: dict[str, Any], double: CognitoDouble) -> None:
    async with signed_in(kw) as browser:
        before = calls(double, "UpdateUserAttributes")
        assert (await post(browser, "/profile", {"attr:name": "Erin Example"})).status == 303
        assert calls(double, "UpdateUserAttributes") == before


async def test_fields_the_settings_leave_out_are_never_written(
    kw: dict[str, Any], double: CognitoDouble
) -> None:
    async with signed_in(kw, profile_read_only=["custom:tenant"]) as browser:
        done = await post(
            browser,
            "/profile",
            {
                "attr:name": "Erin",
                "attr:email_verified": "false",
                "attr:sub": "someone-else",
                "attr:custom:tenant": "evil",
                "attr:family_name": "Other",
                "attr:email": "erin@evil.example",  # email changes only through its own form
            },
        )
        assert done.status == 303
        (call,) = double.calls_to("UpdateUserAttributes")[-1:]
        assert call["UserAttributes"] == [{"Name": "name", "Value": "Erin"}]
        attrs = double.user_info(kw["pool_id"], "erin")["attributes"]
        assert attrs["custom:tenant"] == "acme" and attrs["email"] == "erin@example.com"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"attr:name": "x" * 2049}, "That is too long (2048 characters at most)."),
        ({"attr:name": "Erin\x00"}, "That contains characters that cannot be saved."),
    ],
)
async def test_bad_plain_values_are_400_with_the_fields_error(
    kw: dict[str, Any], double: CognitoDouble, fields: dict[str, str], message: str
) -> None:
    async with signed_in(kw) as browser:
        before = calls(double, "UpdateUserAttributes")
        page = await post(browser, "/profile", fields)
        assert page.status == 400
        assert message in page.doc.text
        field = page.doc.input("attr:name")
        assert field["aria-invalid"] == "true"
        assert field["aria-describedby"] == "profile-name-error"
        assert calls(double, "UpdateUserAttributes") == before


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("email", "not-an-address", "Enter an email address like name@example.com."),
        ("email", "a@b", "Enter an email address like name@example.com."),
        ("email", "", "Enter an email address like name@example.com."),
        ("email", "a b@example.com", "Enter an email address like name@example.com."),
        ("phone_number", "090-1234-5678", "with its country code"),
        ("phone_number", "+0 123", "with its country code"),
        ("phone_number", "+1234567890123456", "with its country code"),
        ("phone_number", "+81 90 abcd", "with its country code"),
    ],
)
async def test_bad_contacts_are_400_before_cognito(
    kw: dict[str, Any], double: CognitoDouble, attribute: str, value: str, message: str
) -> None:
    async with signed_in(kw) as browser:
        before = calls(double, "UpdateUserAttributes")
        page = await post(
            browser, "/profile/contact", {"attribute": attribute, f"attr:{attribute}": value}
        )
        assert page.status == 400
        assert message in page.doc.text
        assert calls(double, "UpdateUserAttributes") == before


@pytest.mark.parametrize(
    "fields",
    [
        {"attribute": "sub", "attr:sub": "x"},
        {"attribute": "email_verified", "attr:email_verified": "true"},
        {"attribute": "name", "attr:name": "x"},
        {"attribute": ""},
        {},
    ],
)
async def test_hostile_contact_forms_are_400(
    kw: dict[str, Any], double: CognitoDouble, fields: dict[str, str]
) -> None:
    async with signed_in(kw) as browser:
        before = calls(double, "UpdateUserAttributes")
        for path in ("/profile/contact", "/profile/verify", "/profile/resend"):
            page = await post(browser, path, fields | {"code": "123456"})
            assert page.status == 400, path
        assert calls(double, "UpdateUserAttributes") == before


async def test_without_a_session_the_forms_go_to_login(kw: dict[str, Any]) -> None:
    async with signed_in(kw) as browser:
        page = await browser.open(ACCOUNT)
        csrf = page.doc.csrf()
        await browser.submit("/_auth/logout", {}, csrf=csrf)
        for path in ("/profile", "/profile/contact", "/profile/verify", "/profile/resend"):
            done = await browser.submit(ACCOUNT + path, {"attribute": "email"}, csrf=csrf)
            assert (done.status, done.location) == (303, "/_auth/login?rd=%2F_auth%2Faccount")


async def test_a_new_phone_number_is_written_in_e164(
    kw: dict[str, Any], double: CognitoDouble, upstream: Upstream
) -> None:
    async with signed_in(kw) as browser:
        done = await post(
            browser,
            "/profile/contact",
            {"attribute": "phone_number", "attr:phone_number": " +81 (90) 1234-5678 "},
        )
        assert done.status == 303
        assert done.location == ACCOUNT + "?done=code_sent#profile"
        attrs = double.user_info(kw["pool_id"], "erin")["attributes"]
        assert attrs["phone_number"] == "+819012345678"
        assert attrs["phone_number_verified"] == "false"
        page = await browser.follow(done)
        assert "We sent a code." in page.doc.text
        assert "+819012345678 Not verified" in page.doc.text
        verified = await post(
            browser,
            "/profile/verify",
            {"attribute": "phone_number", "code": code(double, kw, "SMS")},
        )
        assert verified.status == 303
        attrs = double.user_info(kw["pool_id"], "erin")["attributes"]
        assert attrs["phone_number_verified"] == "true"


async def test_new_email_in_a_pool_that_applies_it_at_once(
    kw: dict[str, Any], double: CognitoDouble, upstream: Upstream
) -> None:
    async with signed_in(kw) as browser:
        done = await post(
            browser, "/profile/contact", {"attribute": "email", "attr:email": "erin@new.example"}
        )
        assert done.status == 303
        page = await browser.follow(done)
        # In effect now, unverified: the code form and "send a new code" under it.
        assert "erin@new.example Not verified" in page.doc.text
        assert page.doc.find("input", name="code")
        assert "Send a new code" in page.doc.text
        assert "Waiting for its code" not in page.doc.text
        headers = await app_sees(browser, upstream)
        assert headers["X-Forwarded-Email"] == "erin@new.example"
        sent = {"attribute": "email", "code": code(double, kw)}
        ok = await post(browser, "/profile/verify", sent)
        assert ok.status == 303
        page = await browser.follow(ok)
        assert "Verified. It is in effect now." in page.doc.text
        assert "erin@new.example Verified" in page.doc.text
        assert not page.doc.find("input", name="code")


async def test_new_email_in_a_pool_that_keeps_the_original_until_verified(
    kw: dict[str, Any], double: CognitoDouble, upstream: Upstream
) -> None:
    double.set_keep_original_attributes(kw["pool_id"], ["email"])
    async with signed_in(kw) as browser:
        done = await post(
            browser, "/profile/contact", {"attribute": "email", "attr:email": "erin@new.example"}
        )
        assert done.status == 303
        page = await browser.follow(done)
        text = page.doc.text
        assert "erin@example.com Verified" in text  # the old one is still in effect
        assert "Waiting for its code: erin@new.example." in text
        assert (await app_sees(browser, upstream))["X-Forwarded-Email"] == "erin@example.com"
        # A wrong code: 400, the code field says so; nothing changes.
        wrong = await post(browser, "/profile/verify", {"attribute": "email", "code": "000000"})
        assert wrong.status == 400
        assert "That code is not right." in wrong.doc.text
        assert wrong.doc.input("code")["aria-invalid"] == "true"
        assert "Waiting for its code: erin@new.example." in wrong.doc.text
        # A new code (to the pending address); the first one is void.
        first = code(double, kw)
        resent = await post(browser, "/profile/resend", {"attribute": "email"})
        assert resent.status == 303
        assert "A new code is on its way." in (await browser.follow(resent)).doc.text
        assert double.calls_to("GetUserAttributeVerificationCode")[-1]["AttributeName"] == "email"
        second = code(double, kw)
        if second != first:
            stale = await post(browser, "/profile/verify", {"attribute": "email", "code": first})
            assert stale.status == 400
        ok = await post(browser, "/profile/verify", {"attribute": "email", "code": second})
        assert ok.status == 303
        page = await browser.follow(ok)
        assert "erin@new.example Verified" in page.doc.text
        assert "Waiting for its code" not in page.doc.text
        assert "You are signed in as erin@new.example" in page.doc.text  # the page's claims, too
        assert (await app_sees(browser, upstream))["X-Forwarded-Email"] == "erin@new.example"


async def test_the_pending_email_is_shown_in_every_browser_of_the_user(
    kw: dict[str, Any], double: CognitoDouble
) -> None:
    double.set_keep_original_attributes(kw["pool_id"], ["email"])
    async with signed_in(kw) as browser:
        await post(
            browser, "/profile/contact", {"attribute": "email", "attr:email": "erin@new.example"}
        )
        other = FlowBrowser(browser.base)
        try:
            assert (await other.sign_in("erin", PASSWORD)).status == 303
            page = await other.open(ACCOUNT)
            assert "Waiting for its code: erin@new.example." in page.doc.text
        finally:
            await other.close()


async def test_an_email_another_account_has_is_refused(
    kw: dict[str, Any], double: CognitoDouble
) -> None:
    double.set_keep_original_attributes(kw["pool_id"], ["email"])
    double.add_user(
        kw["pool_id"],
        "fred",
        PASSWORD,
        attributes={"email": "fred@example.com", "email_verified": "true"},
    )
    async with signed_in(kw) as browser:
        await post(
            browser, "/profile/contact", {"attribute": "email", "attr:email": "fred@example.com"}
        )
        sent = {"attribute": "email", "code": code(double, kw)}
        page = await post(browser, "/profile/verify", sent)
        assert page.status == 400
        assert "That cannot be used for this account." in page.doc.text
        assert double.user_info(kw["pool_id"], "erin")["attributes"]["email"] == "erin@example.com"


async def test_an_attribute_the_client_may_not_write(
    kw: dict[str, Any], double: CognitoDouble, caplog: pytest.LogCaptureFixture
) -> None:
    double.set_client_attributes(kw["client_id"], write=["email"])
    async with signed_in(kw) as browser:
        with caplog.at_level(logging.WARNING, logger="proxy.auth"):
            page = await post(browser, "/profile", {"attr:name": "Erin Two"})
        assert page.status == 403
        assert "This cannot be changed here." in page.doc.text
        assert page.doc.input("attr:name")["aria-invalid"] == "true"
        assert page.doc.input("attr:name")["value"] == "Erin Two"  # what was typed, kept
        assert any("GATE_ACCOUNT_PROFILE_ATTRIBUTES" in r.getMessage() for r in caplog.records)


async def test_cognito_failing_hides_only_the_profile(
    kw: dict[str, Any], double: CognitoDouble
) -> None:
    async with signed_in(kw) as browser:
        double.inject_flaky["GetUser"] = 1.0
        try:
            page = await browser.open(ACCOUNT)
        finally:
            double.inject_flaky.pop("GetUser")
        assert page.status == 200
        assert "Your profile cannot be shown right now." in page.doc.text
        assert "Change password" in page.doc.text  # the rest of the page works


async def test_an_old_sign_in_must_be_confirmed_before_a_new_email_not_a_new_name(
    kw: dict[str, Any], double: CognitoDouble
) -> None:
    redis = start_redis_server()
    try:
        settings = kw | {"session": {"store_url": redis.url, "cache_ttl": 0}}
        settings |= {"store_url": redis.url, "account": {"reauth_max_age": 300}}
        async with flow_browser(**settings) as browser:
            assert (await browser.sign_in("erin", PASSWORD)).status == 303
            cookie = browser.cookie("gate")
            assert cookie
            await age_sign_in(redis.url, cookie, 301)
            before = calls(double, "UpdateUserAttributes")
            refused = await post(
                browser, "/profile/contact", {"attribute": "email", "attr:email": "e@new.example"}
            )
            assert refused.status == 303 and refused.location
            assert urlsplit(refused.location).path == "/_auth/reauth"
            assert calls(double, "UpdateUserAttributes") == before  # not acted on
            saved = await post(browser, "/profile", {"attr:name": "Erin Older"})
            assert saved.status == 303  # a name is not how anyone signs in
            assert calls(double, "UpdateUserAttributes") == before + 1
            attrs = double.user_info(kw["pool_id"], "erin")["attributes"]
            assert attrs["email"] == "erin@example.com" and attrs["name"] == "Erin Older"
    finally:
        redis.stop()


async def test_cognito_failing_a_change_is_a_503_on_the_page(
    kw: dict[str, Any], double: CognitoDouble
) -> None:
    async with signed_in(kw) as browser:
        # A fixed error (the flaky rotation alternates with throttling, a 429, by how many
        # flaky answers the module's double gave before).
        double.inject_errors["UpdateUserAttributes"] = ("InternalErrorException", "down")
        try:
            page = await post(browser, "/profile", {"attr:name": "Erin Later"})
        finally:
            double.inject_errors.pop("UpdateUserAttributes")
        assert page.status == 503
        assert "The service is temporarily unavailable." in page.doc.text
        assert "Change password" in page.doc.text  # the rest of the page is there
        assert double.user_info(kw["pool_id"], "erin")["attributes"]["name"] == "Erin Example"
