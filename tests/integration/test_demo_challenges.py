"""The demo on the strict double: each seeded challenge user completes sign-in through the demo
app, as a person trying `cognito-gate demo` would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from proxy.demo import (
    DEMO_SITES,
    DemoCognito,
    DemoSite,
    double_settings,
    free_port,
    start_demo_cognito,
    upstream_app,
)
from tests.support.challenges import FlowBrowser
from tests.support.stack import running_proxy
from tests.support.totp import totp


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoCognito]:
    cognito = start_demo_cognito()
    try:
        yield cognito
    finally:
        cognito.stop()


@pytest.fixture
async def demo_app_url() -> AsyncIterator[str]:
    port = free_port()
    runner = web.AppRunner(upstream_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _site(key: str) -> DemoSite:
    return next(s for s in DEMO_SITES if s.key == key)


def _password(site: DemoSite, username: str) -> str:
    return next(u.password for u in site.users if u.username == username)


async def _browser(demo: DemoCognito, key: str, app_url: str) -> AsyncIterator[FlowBrowser]:
    settings = double_settings(demo, _site(key), app_url, "127.0.0.1:8080")
    async with running_proxy(settings) as base:
        browser = FlowBrowser(base)
        try:
            yield browser
        finally:
            await browser.close()


async def _hello(browser: FlowBrowser, username: str) -> None:
    page = await browser.open("/")
    assert page.status == 200 and f"Hello, {username}" in page.html


async def test_demo_plain_user_signs_in(demo: DemoCognito, demo_app_url: str) -> None:
    async for browser in _browser(demo, "main", demo_app_url):
        done = await browser.sign_in("alice", _password(_site("main"), "alice"))
        assert done.status == 303 and done.location == "/"
        await _hello(browser, "alice")


async def test_demo_sms_user_gets_the_printed_code(demo: DemoCognito, demo_app_url: str) -> None:
    site = _site("main")
    async for browser in _browser(demo, "main", demo_app_url):
        page = await browser.follow(await browser.sign_in("sara", _password(site, "sara")))
        code = demo.double.last_code(demo.pools["main"].pool_id, "sara", "SMS")
        assert code
        done = await browser.answer(page, {"code": code})
        assert done.status == 303 and done.location.startswith("/_auth/device")
        await _hello(browser, "sara")


async def test_demo_totp_user_with_the_printed_secret(demo: DemoCognito, demo_app_url: str) -> None:
    site = _site("main")
    async for browser in _browser(demo, "main", demo_app_url):
        page = await browser.follow(await browser.sign_in("tom", _password(site, "tom")))
        done = await browser.answer(page, {"code": totp(demo.totp_secrets["tom"])})
        assert done.status == 303
        await _hello(browser, "tom")


async def test_demo_new_password_user_sets_password_and_name(
    demo: DemoCognito, demo_app_url: str
) -> None:
    site = _site("main")
    async for browser in _browser(demo, "main", demo_app_url):
        page = await browser.follow(await browser.sign_in("nina", _password(site, "nina")))
        assert page.doc.input("userAttributes.name")["autocomplete"] == "name"
        new = "Nina-chosen-2026!"
        done = await browser.answer(
            page,
            {"new_password": new, "confirm_password": new, "userAttributes.name": "Nina Example"},
        )
        assert done.status == 303 and done.location == "/"
        await _hello(browser, "nina")


async def test_demo_selection_user_picks_email(demo: DemoCognito, demo_app_url: str) -> None:
    site = _site("main")
    async for browser in _browser(demo, "main", demo_app_url):
        page = await browser.follow(await browser.sign_in("sel", _password(site, "sel")))
        code_page = await browser.follow(await browser.answer(page, {"choice": "EMAIL_OTP"}))
        code = demo.double.last_code(demo.pools["main"].pool_id, "sel", "EMAIL")
        assert code
        assert (await browser.answer(code_page, {"code": code})).status == 303
        await _hello(browser, "sel")


async def test_demo_enrolment_user_sets_up_totp(demo: DemoCognito, demo_app_url: str) -> None:
    site = _site("enrol")
    async for browser in _browser(demo, "enrol", demo_app_url):
        page = await browser.follow(await browser.sign_in("enzo", _password(site, "enzo")))
        secret = page.html.split('id="totp-secret">', 1)[1].split("<", 1)[0].strip()
        done = await browser.answer(page, {"code": totp(secret)})
        assert done.status == 303
        await _hello(browser, "enzo")


async def test_demo_custom_challenge_user(demo: DemoCognito, demo_app_url: str) -> None:
    site = _site("custom")
    async for browser in _browser(demo, "custom", demo_app_url):
        page = await browser.follow(await browser.sign_in("cara", _password(site, "cara")))
        assert "What is 3 + 4?" in page.doc.text
        assert (await browser.answer(page, {"answer": "7"})).status == 303
        await _hello(browser, "cara")
