"""A real browser (Debian's Chromium, driven by Playwright) signs in, reaches the app, signs out.

Browsers send what HTTP clients do not (Origin, Sec-Fetch-*, referrer policy effects), so this
catches what the HTTP-level tests cannot.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support.cognito_double import CognitoDouble, running_double
from tests.support.stack import Upstream, proxy_settings, recording_upstream, running_proxy

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parents[2] / "artifacts"
PASSWORD = "Browser-pass-7!"


@pytest.fixture(scope="module")
def double() -> Iterator[CognitoDouble]:
    with running_double() as d:
        yield d


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    assert os.path.exists(CHROMIUM), "apt-get install chromium (CI's .ci/run does)"  # noqa: ASYNC240
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def site(double: CognitoDouble) -> AsyncIterator[tuple[str, Upstream]]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, "erin", PASSWORD, attributes={"email": "erin@example.com"})
    async with recording_upstream() as upstream:
        settings = proxy_settings(
            upstream_url=upstream.url,
            pool_id=pool_id,
            client_id=client_id,
            client_secret=secret,
            endpoint_url=double.url,
            jwks_url=double.jwks_url(pool_id),
            issuer=double.issuer(pool_id),
        )
        async with running_proxy(settings) as base:
            yield base, upstream


async def test_browser_signs_in_with_srp_reaches_the_app_and_signs_out(
    chromium: Browser, site: tuple[str, Upstream]
) -> None:
    base, upstream = site
    ARTIFACTS.mkdir(exist_ok=True)
    page = await chromium.new_page()
    await page.goto(f"{base}/reports/2026?view=full")
    assert "/_auth/login" in page.url
    await page.screenshot(path=str(ARTIFACTS / "login.png"))

    await page.fill("#password", "wrong-password")
    await page.fill("#username", "erin")
    await page.click("button[type=submit]")
    assert "Incorrect username or password." in await page.inner_text("body")

    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/reports/2026?view=full")
    assert await page.inner_text("body") == "upstream saw GET /reports/2026?view=full"
    assert upstream.last_headers["X-Forwarded-User"] == "erin"

    await page.goto(f"{base}/_auth/logout")
    await page.screenshot(path=str(ARTIFACTS / "logout.png"))
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/_auth/login?notice=signed_out")
    assert "You have been signed out." in await page.inner_text("body")
    await page.goto(f"{base}/reports")
    assert "/_auth/login" in page.url
