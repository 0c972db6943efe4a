"""Ending another browser's session from the account page, in Chromium (issue 16.5): two
browsers of one user; the other one's open WebSocket closes at once, its next page is the login
page, and Cognito was asked to revoke that browser's refresh token."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from playwright.async_api import BrowserContext, Page

from proxy.app import derive_key
from proxy.sessions.sealed import SealedStore
from proxy.sessions.session import Session
from tests.e2e.helpers import Site, shot, sign_in
from tests.support.stack import COOKIE_SECRET

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def session_cookie(context: BrowserContext) -> str:
    (cookie,) = [c["value"] for c in await context.cookies() if c["name"] == "gate"]
    return cookie


async def refresh_token_of(site: Site, cookie: str) -> str:
    """What only that browser's cookie can open: the refresh token in its record."""
    sealed_store = SealedStore(None, derive_key(COOKIE_SECRET, "session"), namespace="s")  # type: ignore[arg-type]
    key = sealed_store.record_key(cookie)
    assert key is not None
    client = aioredis.from_url(site.redis_url)
    try:
        sealed = await client.get(key)
    finally:
        await client.aclose()
    payload = sealed_store.open_aside(cookie, sealed)
    assert payload is not None
    session = Session.from_bytes(payload)
    assert session is not None and session.refresh_token
    return session.refresh_token


async def test_ending_another_browsers_session(new_context: Any, site: Site) -> None:
    mine = await new_context()
    theirs = await new_context()
    other: Page = await theirs.new_page()
    await other.goto(site.url("/ws-page"))
    await sign_in(other)
    await other.wait_for_url(site.url("/ws-page"))
    await other.locator("#out").filter(has_text="echo:").wait_for(timeout=5000)
    token = await refresh_token_of(site, await session_cookie(theirs))

    page: Page = await mine.new_page()
    await page.goto(site.url("/_auth/account"))
    await sign_in(page)
    await page.wait_for_url(site.url("/_auth/account"))
    sessions = page.locator("#sessions")
    await shot(page, "account-sessions-two-browsers")
    await sessions.get_by_role("button", name="Sign out this session").click()
    await page.wait_for_url("**/_auth/account?done=session_ended#sessions")
    assert "That session is signed out." in await page.inner_text("main")
    assert await sessions.get_by_role("button", name="Sign out this session").count() == 0

    # Its WebSocket is closed at once (CLOSED = 3), without any page load of its own.
    await other.wait_for_function("() => ws.readyState === 3", timeout=5000)
    await other.goto(site.url("/ws-page"))
    assert "/_auth/login" in other.url
    assert await other.locator("#username").is_visible()
    await shot(other, "ended-elsewhere-login")
    revoked = [c for c in site.double.calls_to("RevokeToken") if c["Token"] == token]
    assert len(revoked) == 1
    await page.goto(site.url("/_auth/account"))
    assert page.url == site.url("/_auth/account")  # the browser that ended it goes on
