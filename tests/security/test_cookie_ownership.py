"""Our cookies stay between the browser and us (issue 13.1, 13.2), black-box through the proxy
with a hostile app behind it: none of them, in any spelling, reaches the app, and the app cannot
set (fix, replace, plant) any of them in the browser."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from proxy.demo import free_port
from tests.security.conftest import PASSWORD, USER, pool_settings
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import CSRF_FIELD, proxy_settings, running_proxy

# What a hostile app answers with: each tries to set a cookie of ours in some spelling.
HOSTILE_SET_COOKIES = (
    "__Host-gate=planted-session; Path=/; Secure; HttpOnly; SameSite=Lax",
    "__Host-gate-login=planted-flow; Path=/; Secure",
    "__Host-gate-device=planted-device; Path=/; Secure; Max-Age=99999999",
    "__HOST-GATE=upper; Path=/; Secure",
    "__Secure-gate-device=secure-prefixed; Path=/; Secure",
    "gate=bare; Path=/",
    "gate-login=bare-flow; Path=/",
    "=__Host-gate=nameless; Path=/; Secure",
    "%5F%5FHost-gate=encoded; Path=/; Secure",
)
APP_SET_COOKIE = "app_sid=mine; Path=/"


@dataclass
class HostileApp:
    url: str
    cookies_seen: list[str] = field(default_factory=list)


@asynccontextmanager
async def hostile_app() -> AsyncIterator[HostileApp]:
    port = free_port()
    app_state = HostileApp(url=f"http://127.0.0.1:{port}")

    async def handler(request: web.Request) -> web.Response:
        app_state.cookies_seen.extend(request.headers.getall("Cookie", ()))
        response = web.Response(text="hostile app")
        for value in (*HOSTILE_SET_COOKIES, APP_SET_COOKIE):
            response.headers.add("Set-Cookie", value)
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield app_state
    finally:
        await runner.cleanup()


@asynccontextmanager
async def secure_proxy(double: CognitoDouble) -> AsyncIterator[tuple[str, HostileApp]]:
    async with hostile_app() as app:
        kw = pool_settings(double) | {"upstream_url": app.url}
        settings = proxy_settings(**kw, cookie={"secret": "s" * 48, "secure": True})
        async with running_proxy(settings) as base:
            yield base, app


async def _signed_in(http: aiohttp.ClientSession, base: str) -> str:
    """The ``__Host-gate`` value of a real sign-in (sent by hand: Secure cookies over loopback
    http would be dropped by a cookie jar)."""
    async with http.get(base + "/_auth/login") as page:
        flow = page.cookies["__Host-gate-login"].value
        token = CSRF_FIELD.search(await page.text())
    assert token
    async with http.post(
        base + "/_auth/login",
        data={"csrf": token.group(1), "username": USER, "password": PASSWORD},
        headers={"Cookie": f"__Host-gate-login={flow}"},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303
        return resp.cookies["__Host-gate"].value


async def test_no_cookie_of_ours_reaches_the_app_in_any_spelling(double: CognitoDouble) -> None:
    async with (
        secure_proxy(double) as (base, app),
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        session = await _signed_in(http, base)
        cookie = (
            f"__Host-gate={session}; __Host-gate-device=remembered-device-handle; app=1; "
            "__host-gate-login=x; __Secure-gate=y; GATE-DEVICE=z; %5F%5FHost-gate-device=w"
        )
        async with http.get(base + "/", headers={"Cookie": cookie}) as resp:
            assert resp.status == 200
    assert app.cookies_seen == ["app=1"]


async def test_the_app_cannot_set_our_cookies(
    double: CognitoDouble, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="proxy.forward")
    async with (
        secure_proxy(double) as (base, _),
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        session = await _signed_in(http, base)
        async with http.get(base + "/", headers={"Cookie": f"__Host-gate={session}"}) as resp:
            assert resp.status == 200
            relayed = resp.headers.getall("Set-Cookie", ())
    assert relayed == [APP_SET_COOKIE]
    dropped = [r for r in caplog.records if "Set-Cookie for our cookie" in r.getMessage()]
    assert len(dropped) == len(HOSTILE_SET_COOKIES)
