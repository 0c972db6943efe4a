"""A form posted after the session ended is not lost silently: the user is told and sent back.

The body itself is not kept (it may be large or secret, and replaying it after sign-in would let
any page that tricks a user into signing in submit forms as them), so the login page says the
form was not sent and returns the user to the page that held it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.cognito_double import CognitoDouble
from tests.support.stack import Browser, Upstream, proxy_settings, recording_upstream, running_proxy

# What Chromium sends for a top-level <form method=post> submission.
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


@pytest.fixture
async def site(double: CognitoDouble) -> AsyncIterator[tuple[Browser, Upstream]]:
    pool_id = double.create_pool()
    client_id, _ = double.create_client(pool_id)
    async with recording_upstream() as upstream:
        settings = proxy_settings(
            upstream_url=upstream.url,
            pool_id=pool_id,
            client_id=client_id,
            endpoint_url=double.url,
            jwks_url=double.jwks_url(pool_id),
            issuer=double.issuer(pool_id),
        )
        async with running_proxy(settings) as base:
            browser = Browser(base)
            try:
                yield browser, upstream
            finally:
                await browser.close()


def _headers(browser: Browser, referer: str, *, expired: bool) -> dict[str, str]:
    host = browser.base.removeprefix("http://")
    headers = {**NAVIGATE, "Sec-Fetch-Site": "same-origin", "Referer": referer}
    if expired:
        # A cookie this deployment never issued (or whose session is gone): "had a session".
        headers["Cookie"] = "gate=AAAA.BBBB"
    return {k: v.replace("{host}", host) for k, v in headers.items()}


async def test_form_post_after_expiry_goes_to_login_saying_so_and_back_to_the_form_page(
    site: tuple[Browser, Upstream],
) -> None:
    browser, upstream = site
    headers = _headers(browser, "http://{host}/orders/new?draft=1", expired=True)
    resp = await browser.post("/orders", {"item": "42"}, headers=headers)
    assert resp.status == 303
    assert (
        resp.headers["Location"]
        == "/_auth/login?notice=expired_post&rd=%2Forders%2Fnew%3Fdraft%3D1"
    )
    assert upstream.seen == []

    page = await browser.get(resp.headers["Location"])
    text = await page.text()
    assert "the form you submitted was not sent" in text
    assert 'role="status"' in text


async def test_form_post_without_any_session_says_the_form_was_not_sent(
    site: tuple[Browser, Upstream],
) -> None:
    browser, _ = site
    headers = _headers(browser, "http://{host}/contact", expired=False)
    resp = await browser.post("/contact", {"message": "hi"}, headers=headers)
    assert resp.status == 303
    assert resp.headers["Location"] == "/_auth/login?notice=post_lost&rd=%2Fcontact"
    page = await browser.get(resp.headers["Location"])
    assert "You were not signed in, so the form was not sent." in await page.text()


@pytest.mark.parametrize(
    "referer",
    [
        "http://evil.example/orders/new",  # another site
        "http://{host}.evil.example/x",  # a host that merely starts with ours
        "javascript:alert(1)//{host}/",
        "",
    ],
)
async def test_only_a_same_host_referer_becomes_the_return_path(
    site: tuple[Browser, Upstream], referer: str
) -> None:
    browser, _ = site
    headers = _headers(browser, referer, expired=True)
    resp = await browser.post("/orders", {"item": "42"}, headers=headers)
    assert resp.status == 303
    assert resp.headers["Location"] == "/_auth/login?notice=expired_post"


async def test_script_and_api_posts_still_get_401_json(site: tuple[Browser, Upstream]) -> None:
    browser, upstream = site
    for extra in (
        {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},  # fetch()
        {**NAVIGATE, "X-Requested-With": "XMLHttpRequest"},
        {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"},  # a form inside a frame
        {},  # no Fetch metadata: an API client
    ):
        resp = await browser.post("/api/orders", {"item": "42"}, headers=extra)
        assert resp.status == 401, extra
        assert (await resp.json())["error"] == "unauthenticated"
    assert upstream.seen == []
