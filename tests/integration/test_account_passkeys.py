"""/_auth/account's passkeys: add one (StartWebAuthnRegistration → the browser's
navigator.credentials.create → CompleteWebAuthnRegistration), list them, delete one.

The browser's part is a SoftwareAuthenticator answering the options on our page exactly as
static/passkeys.js hands them to navigator.credentials.create; the credential it makes is what
the script posts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

from proxy.devtools.cognito_double import CognitoDouble
from proxy.devtools.webauthn import SoftwareAuthenticator, b64url
from tests.support.challenges import FlowBrowser, Page, flow_browser, pool_kwargs
from tests.support.redis_server import start_redis_server
from tests.support.stack import Upstream
from tests.support.stepup import age_sign_in

PASSWORD = "Passkey-owner-pass-1!"
RP_ID = "gate.example"


def _seed(double: CognitoDouble, upstream: Upstream, **extra: Any) -> dict[str, Any]:
    pool = double.create_pool()
    client_id, secret = double.create_client(pool, secret=True, flows={"USER_AUTH"})
    double.add_user(pool, "pia", PASSWORD, attributes={"email": "pia@example.com"})
    return pool_kwargs(double, pool, client_id, secret) | {
        "upstream_url": upstream.url,
        "auth_flow": "USER_AUTH",
        **extra,
    }


async def _sign_in(browser: FlowBrowser) -> None:
    login = await browser.open("/_auth/login")
    first = await browser.submit("/_auth/login", {"username": "pia"}, csrf=login.doc.csrf())
    page = await browser.follow(first)
    done = await browser.answer(page, {"choice": "PASSWORD_SRP", "password": PASSWORD})
    assert done.status == 303 and done.location == "/", done.doc.text[:300]


async def _sign_in_with_passkey(browser: FlowBrowser, key: SoftwareAuthenticator) -> Page:
    login = await browser.open("/_auth/login")
    first = await browser.submit("/_auth/login", {"username": "pia"}, csrf=login.doc.csrf())
    page = await browser.follow(first)
    chosen = await browser.answer(page, {"choice": "WEB_AUTHN"})
    passkey = await browser.follow(chosen)
    form = passkey.doc.find("form", id="webauthn-form")[0]
    return await browser.answer(
        passkey, {"credential": key.assertion(form["data-webauthn-options"] or "")}
    )


@asynccontextmanager
async def _signed_in(
    double: CognitoDouble, upstream: Upstream, **extra: Any
) -> AsyncIterator[tuple[FlowBrowser, dict[str, Any]]]:
    kw = _seed(double, upstream, **extra)
    async with flow_browser(**kw) as browser:
        double.set_user_auth(
            kw["pool_id"],
            ("PASSWORD", "WEB_AUTHN"),
            relying_party_id=RP_ID,
            allowed_origins=(browser.base,),
        )
        await _sign_in(browser)
        yield browser, kw


async def _start(browser: FlowBrowser) -> tuple[Page, dict[str, Any], str]:
    """Press "Add a passkey": the page handing Cognito's options to the browser."""
    account = await browser.open("/_auth/account")
    (add,) = account.doc.find("form", id="passkey-add")
    started = await browser.submit(add["action"] or "", {}, csrf=account.doc.csrf())
    assert started.status == 200, started.doc.text[:300]
    (form,) = started.doc.find("form", id="passkey-register-form")
    return (
        started,
        json.loads(form["data-options"] or ""),
        started.doc.input("ticket")["value"] or "",
    )


async def _post(browser: FlowBrowser, page: Page, credential: Any, ticket: str) -> Page:
    raw = credential if isinstance(credential, str) else json.dumps(credential)
    return await browser.answer(
        page, {"credential": raw, "ticket": ticket}, path="/_auth/account/passkeys/add"
    )


async def test_add_a_passkey_sign_in_with_it_then_delete_it(
    double: CognitoDouble, upstream: Upstream
) -> None:
    async with _signed_in(double, upstream) as (browser, kw):
        account = await browser.open("/_auth/account")
        assert account.status == 200
        assert "Passkeys" in account.doc.text and "You have no passkeys yet." in account.doc.text
        (add,) = account.doc.find("form", id="passkey-add")
        assert "hidden" in add  # until passkeys.js finds WebAuthn in the browser
        assert "Adding a passkey needs JavaScript" in account.html  # the noscript note
        scripts = [a["src"] or "" for t, a in account.doc.tags if t == "script"]
        assert any("/passkeys.js" in s for s in scripts)

        page, options, ticket = await _start(browser)
        assert "Add a passkey" in page.doc.text
        assert options["rp"]["id"] == RP_ID and options["user"]["name"] == "pia"
        key = SoftwareAuthenticator(RP_ID, origin=browser.base)
        added = await _post(browser, page, key.register_response(options), ticket)
        assert added.status == 303, added.doc.text[:300]
        shown = await browser.follow(added)
        assert "Your passkey is added." in shown.doc.text
        (field,) = shown.doc.find("input", name="credential")
        assert field["value"] == b64url(key.credential_id)
        assert "Built into a device" in shown.doc.text and "Added" in shown.doc.text
        assert double.user_info(kw["pool_id"], "pia")["passkeys"] == 1

        # Sign out, then sign in with the new passkey.
        logout = await browser.open("/_auth/logout")
        assert (await browser.submit("/_auth/logout", {}, csrf=logout.doc.csrf())).status == 303
        done = await _sign_in_with_passkey(browser, key)
        assert done.status == 303 and done.location == "/", done.doc.text[:300]

        account = await browser.open("/_auth/account")
        (field,) = account.doc.find("input", name="credential")
        gone = await browser.submit(
            "/_auth/account/passkeys/delete",
            {"credential": field["value"] or ""},
            csrf=account.doc.csrf(),
        )
        assert gone.status == 303
        after = await browser.follow(gone)
        assert "That passkey is deleted." in after.doc.text
        assert "You have no passkeys yet." in after.doc.text
        assert double.user_info(kw["pool_id"], "pia")["passkeys"] == 0


async def test_options_given_to_another_session_are_refused_before_cognito(
    double: CognitoDouble, upstream: Upstream
) -> None:
    """A credential made for the options of one session cannot be completed by another (the
    ticket binds them to the session that was shown them), nor with a ticket of other options."""
    async with _signed_in(double, upstream) as (browser, kw):
        other = FlowBrowser(browser.base)
        try:
            await _sign_in(other)
            _, options_a, ticket_a = await _start(browser)
            page_b, options_b, ticket_b = await _start(other)
            key = SoftwareAuthenticator(RP_ID, origin=browser.base)
            asked = len(double.calls_to("CompleteWebAuthnRegistration"))
            for credential, ticket in (
                (key.register_response(options_a), ticket_a),  # A's options and ticket
                (key.register_response(options_b), ticket_a),  # B's options, A's ticket
                (key.register_response(options_b), ""),
                (key.register_response(options_b), ticket_b[:-1] + "0"),
                (key.register_response(options_b), "9999999999." + ticket_b.split(".")[1]),
            ):
                refused = await _post(other, page_b, credential, ticket)
                assert refused.status == 400, refused.doc.text[:300]
                assert "Adding the passkey took too long" in refused.doc.text
            assert len(double.calls_to("CompleteWebAuthnRegistration")) == asked
            done = await _post(other, page_b, key.register_response(options_b), ticket_b)
            assert done.status == 303
        finally:
            await other.close()
        assert double.user_info(kw["pool_id"], "pia")["passkeys"] == 1


async def test_a_body_over_the_form_limit_is_413(double: CognitoDouble, upstream: Upstream) -> None:
    async with _signed_in(double, upstream) as (browser, _):
        page, _, ticket = await _start(browser)
        assert (await _post(browser, page, "x" * 70_000, ticket)).status == 413


@pytest.mark.parametrize(
    "credential",
    [
        "",
        "{not json",
        "[]",
        '{"type": "public-key"}',
        '{"type": "public-key", "response": {"clientDataJSON": "!!"}}',
        '{"type": "public-key", "response": {"clientDataJSON": "e30"}}',  # {}
        "[" * 2000 + "]" * 2000,
        "x" * 15_000,
    ],
)
async def test_hostile_credentials_get_a_400(
    double: CognitoDouble, upstream: Upstream, credential: str
) -> None:
    async with _signed_in(double, upstream) as (browser, _):
        page, _, ticket = await _start(browser)
        asked = len(double.calls_to("CompleteWebAuthnRegistration"))
        refused = await _post(browser, page, credential, ticket)
        assert refused.status == 400
        assert "The passkey could not be added" in refused.doc.text
        assert len(double.calls_to("CompleteWebAuthnRegistration")) == asked


async def test_cognitos_refusals_are_said_on_the_page(
    double: CognitoDouble, upstream: Upstream
) -> None:
    async with _signed_in(double, upstream) as (browser, kw):
        page, options, ticket = await _start(browser)
        elsewhere = SoftwareAuthenticator(RP_ID, origin="https://evil.example")
        refused = await _post(browser, page, elsewhere.register_response(options), ticket)
        assert refused.status == 400
        assert "The passkey was made for another site" in refused.doc.text

        key = SoftwareAuthenticator(RP_ID, origin=browser.base)
        page, options, ticket = await _start(browser)
        assert (await _post(browser, page, key.register_response(options), ticket)).status == 303
        page, options, ticket = await _start(browser)
        assert len(options["excludeCredentials"]) == 1
        again = await _post(browser, page, key.register_response(options), ticket)  # same key
        assert again.status == 400 and "already added" in again.doc.text

        double.set_user_auth(kw["pool_id"], ("PASSWORD",))  # the pool stops offering passkeys
        account = await browser.open("/_auth/account")
        (add,) = account.doc.find("form", id="passkey-add")
        off = await browser.submit(add["action"] or "", {}, csrf=account.doc.csrf())
        assert off.status == 409
        assert "Passkeys are not offered for this account." in off.doc.text


async def test_delete_checks_its_input(double: CognitoDouble, upstream: Upstream) -> None:
    async with _signed_in(double, upstream) as (browser, _):
        account = await browser.open("/_auth/account")
        csrf = account.doc.csrf()
        for bad in ("", "!!", "a" * 2000, "../x"):
            answer = await browser.submit(
                "/_auth/account/passkeys/delete", {"credential": bad}, csrf=csrf
            )
            assert answer.status == 400
        forged = await browser.submit(
            "/_auth/account/passkeys/delete", {"credential": "AAAA"}, csrf="not-the-token"
        )
        assert forged.status == 403
        unknown = await browser.submit(
            "/_auth/account/passkeys/delete", {"credential": "AAAAAAAAAAAAAAAAAAAAAA"}, csrf=csrf
        )
        assert unknown.status == 303  # not this user's (or no longer): gone either way


async def test_the_list_says_when_cognito_cannot_be_asked(
    double: CognitoDouble, upstream: Upstream
) -> None:
    async with _signed_in(double, upstream) as (browser, _):
        double.inject_flaky["ListWebAuthnCredentials"] = 1.0
        try:
            account = await browser.open("/_auth/account")
        finally:
            double.inject_flaky.clear()
        assert account.status == 200
        assert "Your passkeys cannot be shown right now." in account.doc.text
        assert "Change password" in account.doc.text or account.doc.find("section", id="password")


async def test_hidden_without_user_auth_or_when_turned_off(
    double: CognitoDouble, upstream: Upstream
) -> None:
    async with _signed_in(double, upstream, account={"passkeys": False}) as (browser, _):
        account = await browser.open("/_auth/account")
        assert account.status == 200 and not account.doc.find("section", id="passkeys")
        start = await browser.submit("/_auth/account/passkeys/start", {}, csrf=account.doc.csrf())
        assert start.status in (404, 405), start.status
    pool = double.create_pool()
    client_id, secret = double.create_client(pool, secret=True)
    double.add_user(pool, "sam", PASSWORD, attributes={"email": "sam@example.com"})
    kw = pool_kwargs(double, pool, client_id, secret) | {"upstream_url": upstream.url}
    async with flow_browser(**kw) as browser:
        assert (await browser.sign_in("sam", PASSWORD)).status == 303
        account = await browser.open("/_auth/account")
        assert account.status == 200 and "Passkeys" not in account.doc.text


async def test_the_passkeys_section_in_japanese(double: CognitoDouble, upstream: Upstream) -> None:
    async with _signed_in(double, upstream) as (browser, _):
        account = await browser.open("/_auth/account?lang=ja")
        assert "パスキー" in account.doc.text and "パスキーを追加" in account.doc.text
        (add,) = account.doc.find("form", id="passkey-add")
        assert (add["action"] or "").endswith("?lang=ja")
        started = await browser.submit(add["action"] or "", {}, csrf=account.doc.csrf())
        assert "パスキーを作成" in started.doc.text


async def test_an_old_sign_in_must_be_confirmed_before_adding_or_deleting(
    double: CognitoDouble, upstream: Upstream
) -> None:
    """Adding a passkey to a stolen session would give its thief a way back in: every passkey
    action is a sensitive route, and a post after the max age is not acted on."""
    redis = start_redis_server()
    try:
        store = {"store_url": redis.url}
        async with _signed_in(
            double,
            upstream,
            **store,
            session=store | {"cache_ttl": 0},
            account={"reauth_max_age": 300},
        ) as (browser, kw):
            page, options, ticket = await _start(browser)  # while the sign-in is fresh
            key = SoftwareAuthenticator(RP_ID, origin=browser.base)
            credential = key.register_response(options)
            cookie = browser.cookie("gate")
            assert cookie
            await age_sign_in(redis.url, cookie, 301)
            asked = {
                op: len(double.calls_to(op))
                for op in ("StartWebAuthnRegistration", "CompleteWebAuthnRegistration")
            }
            account = await browser.open("/_auth/account")
            for path, fields in (
                ("start", {}),
                ("add", {"credential": json.dumps(credential), "ticket": ticket}),
                ("delete", {"credential": "AAAAAAAAAAAAAAAAAAAAAA"}),
            ):
                refused = await browser.submit(
                    f"/_auth/account/passkeys/{path}", fields, csrf=account.doc.csrf()
                )
                assert refused.status == 303 and refused.location, path
                assert urlsplit(refused.location).path == "/_auth/reauth", path
            assert {op: len(double.calls_to(op)) for op in asked} == asked  # nothing acted on
            assert double.user_info(kw["pool_id"], "pia")["passkeys"] == 0
            assert page.status == 200
    finally:
        redis.stop()
