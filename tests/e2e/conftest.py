"""One Chromium for the whole run; one Cognito double, one Redis and one proxy per test module;
a fresh browser context (its own cookies) per test. All run on one event loop (the session's).
Debian's Chromium is driven by Playwright through ``executable_path``: Playwright's own browser
download cannot work here.

Every test leaves a screenshot in ``artifacts/`` (git-ignored; CI keeps it as an artifact).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.e2e.helpers import ARGS, ARTIFACTS, CHROMIUM, PASSWORD, USER, Site
from tests.e2e.upstream import app_upstream
from tests.e2e.walk import Sites, running_sites
from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import RedisProcess, start_redis_server
from tests.support.stack import proxy_settings, running_proxy


@pytest.fixture(scope="module")
def redis_process() -> Iterator[RedisProcess]:
    server = start_redis_server()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Browser]:
    assert os.path.exists(CHROMIUM), "apt-get install chromium (CI's .ci/run does)"  # noqa: ASYNC240
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def site(double: CognitoDouble, redis_process: RedisProcess) -> AsyncIterator[Site]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, USER, PASSWORD, attributes={"email": "erin@example.com"})
    async with app_upstream() as upstream:
        settings = proxy_settings(
            upstream_url=upstream.url,
            pool_id=pool_id,
            client_id=client_id,
            client_secret=secret,
            endpoint_url=double.url,
            jwks_url=double.jwks_url(pool_id),
            issuer=double.issuer(pool_id),
            store_url=redis_process.url,
            # Tests end sessions by deleting them from Redis behind the proxy's back: no
            # in-process cache may keep serving them.
            session={"store_url": redis_process.url, "cache_ttl": 0},
        )
        async with running_proxy(settings) as base:
            yield Site(base, upstream, double, pool_id, redis_process.url)


@pytest_asyncio.fixture(loop_scope="session")
async def new_context(chromium: Browser) -> AsyncIterator[Any]:
    """``await new_context(**playwright_options)``; every context is closed after the test."""
    opened: list[BrowserContext] = []

    async def make(**options: Any) -> BrowserContext:
        options.setdefault("locale", "en-US")
        context = await chromium.new_context(**options)
        opened.append(context)
        return context

    yield make
    for context in opened:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(new_context: Any) -> Page:
    context = await new_context()
    return await context.new_page()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sites() -> AsyncIterator[Sites]:
    """The proxies the gallery's walks go through (tests/e2e/walk.py), one set per module."""
    async with running_sites() as running:
        yield running
