"""/_auth/account's password section over HTTP: proxy -> strict double (ChangePassword)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from typing import Any

import boto3
import pytest

from tests.support.cognito_double import CognitoDouble
from tests.support.stack import Browser, Upstream, cognito_kwargs, proxy_settings, running_proxy

PASSWORD = "Correct-horse-9!"
NEW_PASSWORD = "Battery-staple-7?"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def pool(double: CognitoDouble, upstream: Upstream) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, "carol", PASSWORD, attributes={"email": "carol@example.com"})
    return cognito_kwargs(double, pool_id, client_id, secret) | {"upstream_url": upstream.url}


@pytest.fixture
async def browser(pool: dict[str, Any]) -> AsyncIterator[Browser]:
    settings = proxy_settings(**pool, regulation={"user_max_failures": 3})
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("carol", PASSWORD)).status == 303
            yield browser
        finally:
            await browser.close()


async def text_of(browser: Browser, path: str) -> str:
    async with browser.http.get(browser.base + path, allow_redirects=False) as resp:
        assert resp.status == 200, resp.status
        return unescape(await resp.text())


async def change(
    browser: Browser, current: str, new: str, confirm: str | None = None
) -> tuple[int, str]:
    csrf = CSRF.search(await text_of(browser, "/_auth/account"))
    assert csrf
    form = {
        "csrf": csrf[1],
        "current_password": current,
        "new_password": new,
        "confirm_password": new if confirm is None else confirm,
    }
    async with browser.http.post(
        browser.base + "/_auth/account/password", data=form, allow_redirects=False
    ) as resp:
        return resp.status, unescape(await resp.text())


def change_calls(double: CognitoDouble) -> int:
    return len(double.calls_to("ChangePassword"))


async def test_change_password_then_sign_in_with_the_new_one(
    browser: Browser, double: CognitoDouble
) -> None:
    status, _ = await change(browser, PASSWORD, NEW_PASSWORD)
    assert status == 303
    assert "Your password is changed." in await text_of(
        browser, "/_auth/account?done=password_changed"
    )
    other = Browser(browser.base)
    try:
        assert (await other.login("carol", PASSWORD)).status == 401
        assert (await other.login("carol", NEW_PASSWORD)).status == 303
    finally:
        await other.close()


async def test_the_policy_is_shown_and_checked_before_cognito(
    browser: Browser, double: CognitoDouble
) -> None:
    html = await text_of(browser, "/_auth/account")
    for rule in ("at least 8 characters", "an uppercase letter", "a number", "a symbol"):
        assert rule in html
    before = change_calls(double)
    status, html = await change(browser, PASSWORD, "short1!")
    assert status == 400
    assert "That password is too short." in html
    status, html = await change(browser, PASSWORD, "no-digits-here!A")
    assert status == 400
    assert "The password needs a number." in html
    status, html = await change(browser, PASSWORD, NEW_PASSWORD, confirm="something-else")
    assert status == 400
    assert change_calls(double) == before  # none of them reached Cognito


async def test_a_stricter_pool_policy_from_the_settings(
    pool: dict[str, Any], double: CognitoDouble
) -> None:
    settings = proxy_settings(**pool, account={"password_policy": {"min_length": 20}})
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            await browser.login("carol", PASSWORD)
            assert "at least 20 characters" in await text_of(browser, "/_auth/account")
            status, html = await change(browser, PASSWORD, NEW_PASSWORD)
            assert status == 400
            assert "That password is too short." in html
        finally:
            await browser.close()


async def test_wrong_current_passwords_are_regulated_like_sign_ins(
    browser: Browser, double: CognitoDouble
) -> None:
    for _ in range(3):
        status, html = await change(browser, "Wrong-pass-1!", NEW_PASSWORD)
        assert status == 400
        assert "The current password is not right." in html
    calls = change_calls(double)
    status, html = await change(browser, PASSWORD, NEW_PASSWORD)
    assert status == 429  # banned: even the right password is not tried
    assert "Too many attempts" in html
    assert change_calls(double) == calls
    other = Browser(browser.base)  # and the ban is the sign-in ban
    try:
        assert (await other.login("carol", PASSWORD)).status == 429
    finally:
        await other.close()


async def test_a_session_cognito_signed_out_goes_to_login(
    browser: Browser, double: CognitoDouble, pool: dict[str, Any]
) -> None:
    # Signed out at Cognito only (AdminUserGlobalSignOut elsewhere): our session still exists,
    # its access token does not.
    admin = boto3.client("cognito-idp", **double.client_kwargs())
    admin.admin_user_global_sign_out(UserPoolId=pool["pool_id"], Username="carol")
    status, _ = await change(browser, PASSWORD, NEW_PASSWORD)
    assert status == 303
    resp = await browser.get("/_auth/account")
    assert resp.status == 303  # the session is gone here too
    assert resp.headers["Location"].startswith("/_auth/login")
    assert double.failures[-1][:2] == ("ChangePassword", "NotAuthorizedException")


async def test_the_language_links_of_a_refused_form_lead_back_to_the_account_page(
    browser: Browser,
) -> None:
    # The page drawn for a post is at the form's path, which has no GET: its 日本語 link led to
    # GET /_auth/account/password?lang=ja, a 404.
    status, html = await change(browser, "not-the-password-1A!", NEW_PASSWORD)
    assert status == 400
    links = re.findall(r'href="([^"]*lang=ja)"', html)
    assert links == ["/_auth/account?lang=ja"]
    assert "アカウント" in await text_of(browser, links[0])
