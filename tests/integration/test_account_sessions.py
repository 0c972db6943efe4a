"""/_auth/account, its sessions section, over HTTP: proxy -> strict double -> upstream."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.cognito_double import CognitoDouble
from tests.support.stack import Browser, Upstream, cognito_kwargs, proxy_settings, running_proxy

PASSWORD = "Correct-horse-9!"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)
SESSION_IDS = re.compile(r'name="session" value="([0-9a-f]{64})"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def stack(double: CognitoDouble, upstream: Upstream) -> AsyncIterator[dict[str, Any]]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    for name in ("carol", "dave"):
        double.add_user(pool_id, name, PASSWORD, attributes={"email": f"{name}@example.com"})
    yield cognito_kwargs(double, pool_id, client_id, secret) | {"upstream_url": upstream.url}


async def browsers(base: str, *agents: str) -> list[Browser]:
    result = []
    for agent in agents:
        browser = Browser(base)
        browser.http.headers["User-Agent"] = agent
        result.append(browser)
    return result


async def page(browser: Browser, path: str = "/_auth/account") -> str:
    resp = await browser.get(path)
    assert resp.status == 200, resp.status
    async with browser.http.get(browser.base + path) as again:
        return await again.text()


async def test_signed_out_goes_to_login_and_comes_back(stack: dict[str, Any]) -> None:
    async with running_proxy(proxy_settings(**stack)) as base:
        (browser,) = await browsers(base, FIREFOX_LINUX)
        try:
            resp = await browser.get("/_auth/account?lang=ja")
            assert resp.status == 303
            assert resp.headers["Location"] == "/_auth/login?rd=%2F_auth%2Faccount&lang=ja"
            resp = await browser.login("carol", PASSWORD, rd="/_auth/account")
            assert resp.headers["Location"] == "/_auth/account"
            html = await page(browser)
            assert "Firefox · Linux" in html
            assert "This browser" in html
            assert "127.0.0.1" in html
            assert "Sign out everywhere else" not in html  # no other session yet
        finally:
            await browser.close()


async def test_end_another_browsers_session(stack: dict[str, Any]) -> None:
    async with running_proxy(proxy_settings(**stack)) as base:
        mine, other = await browsers(base, FIREFOX_LINUX, EDGE_WINDOWS)
        try:
            for browser, user in ((mine, "carol"), (other, "carol")):
                assert (await browser.login(user, PASSWORD)).status == 303
            assert (await other.get("/")).status == 200
            html = await page(mine)
            assert "Edge · Windows" in html
            assert "Firefox · Linux" in html
            (other_id,) = SESSION_IDS.findall(html)  # only other sessions have the button
            csrf = CSRF.search(html)
            assert csrf
            resp = await mine.post("/_auth/account/sessions/end", {"session": other_id})
            assert resp.status == 403  # no CSRF token
            resp = await mine.post(
                "/_auth/account/sessions/end", {"csrf": csrf[1], "session": "../../x"}
            )
            assert resp.status == 400
            resp = await mine.post(
                "/_auth/account/sessions/end", {"csrf": csrf[1], "session": other_id}
            )
            assert resp.status == 303
            assert resp.headers["Location"] == "/_auth/account?done=session_ended#sessions"
            assert "That session is signed out." in await page(
                mine, "/_auth/account?done=session_ended"
            )
            gone = await other.get("/")
            assert gone.status in (302, 303)
            assert gone.headers["Location"].startswith("/_auth/login")
            assert (await other.get("/_auth/account")).status == 303
            assert (await mine.get("/")).status == 200
        finally:
            for browser in (mine, other):
                await browser.close()


async def test_another_users_session_id_ends_nothing(stack: dict[str, Any]) -> None:
    async with running_proxy(proxy_settings(**stack)) as base:
        mine, other, stranger = await browsers(base, FIREFOX_LINUX, EDGE_WINDOWS, FIREFOX_LINUX)
        try:
            for browser, user in ((mine, "carol"), (other, "carol"), (stranger, "dave")):
                assert (await browser.login(user, PASSWORD)).status == 303
            (other_id,) = SESSION_IDS.findall(await page(mine))
            # dave's page names only dave's session; carol's id, posted by dave, ends nothing.
            assert SESSION_IDS.findall(await page(stranger)) == []
            dave_csrf = CSRF.search(await page(stranger, "/_auth/logout"))  # same session token
            assert dave_csrf
            resp = await stranger.post(
                "/_auth/account/sessions/end", {"csrf": dave_csrf[1], "session": other_id}
            )
            assert resp.status == 303
            assert (await other.get("/")).status == 200  # still signed in
            assert SESSION_IDS.findall(await page(mine)) == [other_id]
        finally:
            for browser in (mine, other, stranger):
                await browser.close()


async def test_sign_out_everywhere_else_keeps_this_one(stack: dict[str, Any]) -> None:
    async with running_proxy(proxy_settings(**stack)) as base:
        group = await browsers(base, FIREFOX_LINUX, EDGE_WINDOWS, EDGE_WINDOWS)
        try:
            for browser in group:
                assert (await browser.login("carol", PASSWORD)).status == 303
            html = await page(group[0])
            assert len(SESSION_IDS.findall(html)) == 2
            csrf = CSRF.search(html)
            assert csrf
            resp = await group[0].post("/_auth/account/sessions/end-others", {"csrf": csrf[1]})
            assert resp.status == 303
            assert (await group[0].get("/")).status == 200
            for browser in group[1:]:
                assert (await browser.get("/")).status in (302, 303)
            assert SESSION_IDS.findall(await page(group[0])) == []
        finally:
            for browser in group:
                await browser.close()


async def test_the_current_session_ends_through_logout(stack: dict[str, Any]) -> None:
    async with running_proxy(proxy_settings(**stack)) as base:
        (browser,) = await browsers(base, FIREFOX_LINUX)
        try:
            await browser.login("carol", PASSWORD)
            html = await page(browser)
            assert 'href="/_auth/logout"' in html
            logout = await page(browser, "/_auth/logout")
            assert 'href="/_auth/account"' in logout
        finally:
            await browser.close()


async def test_account_page_can_be_turned_off(stack: dict[str, Any]) -> None:
    async with running_proxy(proxy_settings(**stack, account={"enabled": False})) as base:
        (browser,) = await browsers(base, FIREFOX_LINUX)
        try:
            await browser.login("carol", PASSWORD)
            assert (await browser.get("/_auth/account")).status == 404
            assert "/_auth/account" not in await page(browser, "/_auth/logout")
        finally:
            await browser.close()
