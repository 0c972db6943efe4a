"""/_auth/account, its recent-activity section, over HTTP: proxy (Admin API) -> strict double.

The section lists the user's sign-ins as threat protection logged them and sends "This
wasn't me" as AdminUpdateAuthEventFeedback for the session's own user only.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.cognito_double import CognitoDouble
from tests.support.stack import Browser, Upstream, cognito_kwargs, proxy_settings, running_proxy

PASSWORD = "Correct-horse-9!"
EVENT_IDS = re.compile(r'name="event" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def stack(double: CognitoDouble, upstream: Upstream) -> AsyncIterator[dict[str, Any]]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    for name in ("carol", "dave"):
        double.add_user(pool_id, name, PASSWORD, attributes={"email": f"{name}@example.com"})
    double.set_threat_protection(pool_id, mode="AUDIT")
    double.ip_locations["127.0.0.1"] = ("Osaka", "Japan")
    yield cognito_kwargs(double, pool_id, client_id, secret) | {
        "upstream_url": upstream.url,
        "auth_flow": "ADMIN_USER_PASSWORD_AUTH",
    }


async def page(browser: Browser, path: str = "/_auth/account") -> tuple[int, str]:
    async with browser.http.get(browser.base + path, allow_redirects=False) as resp:
        return resp.status, await resp.text()


def reports(double: CognitoDouble, pool_id: str) -> list[dict[str, Any]]:
    return [
        c for c in double.calls_to("AdminUpdateAuthEventFeedback") if c["UserPoolId"] == pool_id
    ]


async def test_recent_sign_ins_with_risk_and_this_wasnt_me(
    stack: dict[str, Any], double: CognitoDouble
) -> None:
    async with running_proxy(proxy_settings(**stack)) as base:
        browser = Browser(base)
        try:
            wrong = await browser.login("carol", "Not-her-password-1")
            assert wrong.status != 303
            double.set_risk(stack["pool_id"], "medium", username="carol")
            assert (await browser.login("carol", PASSWORD)).status == 303
            status, html = await page(browser)
            assert status == 200
            assert "Recent activity" in html
            assert "Sign-in: succeeded" in html and "Sign-in: failed" in html
            assert html.index("Sign-in: succeeded") < html.index("Sign-in: failed")  # newest
            assert "Osaka, Japan" in html and "127.0.0.1" in html
            assert "Medium" in html and "Low" in html
            newest, older = EVENT_IDS.findall(html)
            token = CSRF.search(html)
            assert token
            resp = await browser.post("/_auth/account/activity/report", {"event": older})
            assert resp.status == 403  # no CSRF token
            resp = await browser.post(
                "/_auth/account/activity/report", {"csrf": token[1], "event": "../<x>"}
            )
            assert resp.status == 400
            assert reports(double, stack["pool_id"]) == []
            resp = await browser.post(
                "/_auth/account/activity/report", {"csrf": token[1], "event": older}
            )
            assert resp.status == 303
            assert resp.headers["Location"] == "/_auth/account?done=activity_reported#activity"
            (sent,) = reports(double, stack["pool_id"])
            # The session's own user, whatever the form said; Cognito's Admin call.
            assert (sent["Username"], sent["EventId"], sent["FeedbackValue"]) == (
                "carol",
                older,
                "Invalid",
            )
            status, html = await page(browser, "/_auth/account?done=activity_reported")
            assert "that sign-in is reported as not you" in html
            assert "Reported: not you" in html
            assert EVENT_IDS.findall(html) == [newest]  # reported: no button any more
            listed = {e["EventId"]: e for e in double.auth_events(stack["pool_id"], "carol")}
            assert listed[older]["EventFeedback"]["FeedbackValue"] == "Invalid"
            status, html = await page(browser, "/_auth/account?lang=ja")
            assert "最近のアクティビティ" in html and "これは自分ではない" in html
        finally:
            await browser.close()


async def test_another_users_event_is_never_reported(
    stack: dict[str, Any], double: CognitoDouble
) -> None:
    async with running_proxy(proxy_settings(**stack)) as base:
        carol, dave = Browser(base), Browser(base)
        try:
            assert (await carol.login("carol", PASSWORD)).status == 303
            assert (await dave.login("dave", PASSWORD)).status == 303
            _, carols = await page(carol)
            (carol_event,) = EVENT_IDS.findall(carols)
            _, daves = await page(dave)
            token = CSRF.search(daves)
            assert token
            resp = await dave.post(
                "/_auth/account/activity/report", {"csrf": token[1], "event": carol_event}
            )
            assert resp.status == 404
            assert reports(double, stack["pool_id"]) == []
            listed = double.auth_events(stack["pool_id"], "carol")
            assert "EventFeedback" not in listed[0]
        finally:
            await carol.close()
            await dave.close()


async def test_the_section_says_when_cognito_cannot_be_asked(
    stack: dict[str, Any], double: CognitoDouble
) -> None:
    async with running_proxy(proxy_settings(**stack)) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("carol", PASSWORD)).status == 303
            double.inject_errors["AdminListUserAuthEvents"] = ("InternalErrorException", "boom")
            try:
                status, html = await page(browser)
            finally:
                del double.inject_errors["AdminListUserAuthEvents"]
            assert status == 200  # the rest of the page works
            assert "Your recent activity cannot be shown right now." in html
            assert 'id="sessions"' in html
        finally:
            await browser.close()


@pytest.mark.parametrize("case", ["public API", "no threat protection"])
async def test_hidden_without_the_admin_api_or_a_history(
    stack: dict[str, Any], double: CognitoDouble, case: str
) -> None:
    if case == "public API":
        stack = stack | {"auth_flow": "USER_SRP_AUTH"}
    else:
        double.set_threat_protection(stack["pool_id"], mode="OFF")
    async with running_proxy(proxy_settings(**stack)) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("carol", PASSWORD)).status == 303
            status, html = await page(browser)
            assert status == 200
            assert "Recent activity" not in html
            assert 'id="activity"' not in html
            token = CSRF.search(html)
            assert token
            resp = await browser.post(
                "/_auth/account/activity/report", {"csrf": token[1], "event": "some-event"}
            )
            assert resp.status == 404  # no route, or no history to report on
            assert reports(double, stack["pool_id"]) == []
            if case == "public API":
                assert not any(
                    c["UserPoolId"] == stack["pool_id"]
                    for c in double.calls_to("AdminListUserAuthEvents")
                )
        finally:
            await browser.close()
