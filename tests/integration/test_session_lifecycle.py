"""A session lives exactly as long as it should: refresh near expiry, revocation, store outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import pytest

from tests.support.cognito_double import CognitoDouble, running_double
from tests.support.redis_server import RedisProcess, start_redis_server
from tests.support.stack import Browser, Upstream, proxy_settings, recording_upstream, running_proxy

PASSWORD = "Lifecycle-pass-1!"
TOKEN_TTL = 4


async def past_half_life() -> None:
    await asyncio.sleep(TOKEN_TTL / 2 + 0.3)


@pytest.fixture(scope="module")
def double() -> Iterator[CognitoDouble]:
    # Tokens live 4 s: the proxy refreshes them once half their life has passed.
    with running_double(token_ttl=TOKEN_TTL) as d:
        yield d


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, "dave", PASSWORD, attributes={"email": "dave@example.com"})
    return {
        "pool_id": pool_id,
        "client_id": client_id,
        "client_secret": secret,
        "endpoint_url": double.url,
        "jwks_url": double.jwks_url(pool_id),
        "issuer": double.issuer(pool_id),
    }


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with recording_upstream() as up:
        yield up


@pytest.fixture
async def browser(pool: dict[str, Any], upstream: Upstream) -> AsyncIterator[Browser]:
    async with running_proxy(proxy_settings(upstream_url=upstream.url, **pool)) as base:
        b = Browser(base)
        yield b
        await b.close()


def _refreshes(double: CognitoDouble, client_id: str) -> int:
    return sum(
        1
        for op, body in double.calls
        if op == "InitiateAuth"
        and body.get("AuthFlow") == "REFRESH_TOKEN_AUTH"
        and body.get("ClientId") == client_id
    )


async def test_tokens_near_expiry_are_refreshed_once_for_concurrent_requests(
    browser: Browser, double: CognitoDouble, pool: dict[str, Any], upstream: Upstream
) -> None:
    assert (await browser.login("dave", PASSWORD)).status == 303
    before = _refreshes(double, pool["client_id"])
    assert (await browser.get("/fresh")).status == 200
    assert _refreshes(double, pool["client_id"]) == before  # fresh tokens: no refresh

    await past_half_life()
    answers = await asyncio.gather(*(browser.get(f"/item/{i}") for i in range(20)))
    assert [r.status for r in answers] == [200] * 20
    # One refresh for 20 concurrent requests of one session (SECRET_HASH included: the double
    # would refuse the refresh otherwise).
    assert _refreshes(double, pool["client_id"]) - before == 1
    assert upstream.last_headers["X-Forwarded-User"] == "dave"
    # The refreshed tokens were saved: the next request does not refresh again.
    assert (await browser.get("/again")).status == 200
    assert _refreshes(double, pool["client_id"]) - before == 1


async def test_a_revoked_refresh_token_ends_the_session(
    browser: Browser, double: CognitoDouble, pool: dict[str, Any]
) -> None:
    assert (await browser.login("dave", PASSWORD)).status == 303
    idp = boto3.client("cognito-idp", region_name=double.region, endpoint_url=double.url)
    idp.admin_user_global_sign_out(UserPoolId=pool["pool_id"], Username="dave")
    await past_half_life()
    resp = await browser.get("/after-signout")
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/_auth/login?rd=%2Fafter-signout")
    assert resp.headers["Location"].endswith("&notice=expired")


async def test_logout_revokes_the_refresh_token_at_cognito(
    browser: Browser, double: CognitoDouble
) -> None:
    assert (await browser.login("dave", PASSWORD)).status == 303
    page = await browser.get("/_auth/logout")
    token = page_csrf(await page.text())
    assert (await browser.post("/_auth/logout", {"csrf": token})).status == 303
    revoked = [body for op, body in double.calls if op == "RevokeToken"]
    assert revoked, "logout did not call RevokeToken"
    assert "ClientSecret" in revoked[-1]


@pytest.fixture
def redis_proc() -> Iterator[RedisProcess]:
    proc = start_redis_server()
    yield proc
    proc.resume()
    proc.stop()


async def test_store_outage_fails_closed_keeps_the_cookie_and_recovers(
    pool: dict[str, Any], upstream: Upstream, redis_proc: RedisProcess
) -> None:
    settings = proxy_settings(
        upstream_url=upstream.url,
        store_url=redis_proc.url,
        # No session cache: it would serve a session loaded moments ago through the outage
        # for up to its ttl (test_session_cache.py pins that); here every request asks Redis.
        session={"store_url": redis_proc.url, "store_timeout": 0.5, "cache_ttl": 0},
        **pool,
    )
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("dave", PASSWORD)).status == 303
            assert (await browser.get("/")).status == 200
            cookie = browser.cookie("gate")

            redis_proc.pause()  # Redis hangs: neither an answer nor a refused connection
            page = await browser.get("/")
            assert page.status == 503
            assert page.headers["Retry-After"]
            assert "Set-Cookie" not in page.headers
            api = await browser.get("/api", headers={"Accept": "application/json"})
            assert api.status == 503
            assert (await browser.get("/_auth/check")).status == 500  # what nginx expects
            assert (await browser.get("/_auth/readyz")).status == 503
            assert (await browser.get("/_auth/healthz")).status == 200

            redis_proc.resume()
            assert browser.cookie("gate") == cookie
            recovered = await browser.get("/")
            assert recovered.status == 200
        finally:
            await browser.close()


def page_csrf(page: str) -> str:
    from tests.support.stack import CSRF_FIELD

    match = CSRF_FIELD.search(page)
    assert match
    return match.group(1)
