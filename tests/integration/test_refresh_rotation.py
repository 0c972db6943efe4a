"""Issue 15's done-when, through the proxy against the strict double (real Redis for replicas).

Refresh-token rotation on with 20-second access tokens: several refresh cycles, 50 concurrent
requests on two replicas after expiry make one GetTokensFromRefreshToken, the stored refresh
token changes at each rotation, and after sign-out neither the old nor the rotated one works.
Rotation off, on the public and the Admin API. A replica whose refresh token was superseded uses
the saved tokens. A client-secret rotation in the middle of traffic loses nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from yarl import URL

from proxy.cognito.client import CognitoClient, Tokens
from proxy.devtools.cognito_double import CognitoDouble, running_double
from proxy.sessions.session import Session, SessionManager
from tests.support.redis_server import RedisProcess
from tests.support.stack import (
    CSRF_FIELD,
    Browser,
    Upstream,
    cognito_kwargs,
    proxy_settings,
    recording_upstream,
    running_proxy,
)

PASSWORD = "Rotation-pass-1!"
JSON = {"Accept": "application/json"}
SLOW_TTL = 20  # the 20-second access tokens
FAST_TTL = 4


@pytest.fixture(scope="module")
def double() -> Iterator[CognitoDouble]:
    with running_double(token_ttl=FAST_TTL) as d:
        yield d


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with recording_upstream() as up:
        yield up


def seed(double: CognitoDouble, upstream: Upstream, **client: Any) -> dict[str, Any]:
    double.failures.clear()  # a module's double: each test judges its own failures
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True, **client)
    double.add_user(pool_id, "rory", PASSWORD, attributes={"email": "rory@example.com"})
    return cognito_kwargs(double, pool_id, client_id, secret) | {"upstream_url": upstream.url}


@asynccontextmanager
async def replicas(kw: dict[str, Any], store_url: str, n: int = 2) -> AsyncIterator[list[str]]:
    settings = proxy_settings(store_url=store_url, **kw)
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running_proxy(settings)) for _ in range(n)]


def same_cookie(source: Browser, base: str) -> Browser:
    other = Browser(base)
    value = source.cookie("gate")
    assert value
    other.http.cookie_jar.update_cookies({"gate": value}, URL(base))
    return other


def refreshes(double: CognitoDouble, client_id: str) -> list[dict[str, Any]]:
    return [c for c in double.calls_to("GetTokensFromRefreshToken") if c["ClientId"] == client_id]


def refresh_failures(double: CognitoDouble) -> list[tuple[str, str, str]]:
    return [f for f in double.failures if f[0] in ("GetTokensFromRefreshToken", "InitiateAuth")]


async def sign_out(browser: Browser) -> None:
    page = await browser.get("/_auth/logout")
    match = CSRF_FIELD.search(await page.text())
    assert match
    resp = await browser.post("/_auth/logout", {"csrf": match.group(1)})
    assert resp.status == 303


def refused_at_cognito(double: CognitoDouble, kw: dict[str, Any], token: str) -> str:
    boto = boto3.client("cognito-idp", **double.client_kwargs())
    with pytest.raises(ClientError) as exc:
        boto.get_tokens_from_refresh_token(
            ClientId=kw["client_id"], ClientSecret=kw["client_secret"], RefreshToken=token
        )
    return str(exc.value.response["Error"]["Message"])


async def test_rotation_with_20_second_tokens_over_two_replicas(
    upstream: Upstream, redis_server: RedisProcess
) -> None:
    with running_double(token_ttl=SLOW_TTL) as double:
        kw = seed(double, upstream, refresh_token_rotation=True, retry_grace_period_seconds=10)
        async with replicas(kw, redis_server.url) as (a, b):
            first = Browser(a)
            assert (await first.login("rory", PASSWORD)).status == 303
            second = same_cookie(first, b)
            try:
                # Past expiry: 50 concurrent requests, half on each replica, one refresh.
                await asyncio.sleep(SLOW_TTL + 0.5)
                answers = await asyncio.gather(
                    *((first if i % 2 else second).get(f"/x/{i}", headers=JSON) for i in range(50))
                )
                assert [r.status for r in answers] == [200] * 50
                assert len(refreshes(double, kw["client_id"])) == 1
                # Two more cycles, each at half the tokens' life, alternating replicas.
                for cycle, browser in ((2, second), (3, first)):
                    await asyncio.sleep(SLOW_TTL / 2 + 0.5)
                    assert (await browser.get(f"/cycle/{cycle}", headers=JSON)).status == 200
                    assert len(refreshes(double, kw["client_id"])) == cycle
                    assert (await first.get("/again", headers=JSON)).status == 200
                    assert (await second.get("/again", headers=JSON)).status == 200
                    assert len(refreshes(double, kw["client_id"])) == cycle
                used = [c["RefreshToken"] for c in refreshes(double, kw["client_id"])]
                # Each refresh sent the token the previous one returned: the store kept it.
                assert len(set(used)) == 3
                assert not refresh_failures(double)
                await sign_out(second)
            finally:
                await first.close()
                await second.close()
        (revoked,) = [c["Token"] for c in double.calls_to("RevokeToken")]
        assert revoked not in used  # the latest rotated token is what sign-out revoked
        for token in (used[0], used[-1], revoked):
            assert refused_at_cognito(double, kw, token) == "Refresh Token has been revoked"
        assert upstream.last_headers["X-Forwarded-User"] == "rory"


@pytest.mark.parametrize("flow", ["USER_SRP_AUTH", "ADMIN_USER_PASSWORD_AUTH"])
async def test_rotation_off_on_the_public_and_the_admin_api(
    double: CognitoDouble, upstream: Upstream, redis_server: RedisProcess, flow: str
) -> None:
    kw = seed(double, upstream) | {"auth_flow": flow}
    async with replicas(kw, redis_server.url) as (a, b):
        first = Browser(a)
        assert (await first.login("rory", PASSWORD)).status == 303
        second = same_cookie(first, b)
        try:
            for cycle in (1, 2):
                await asyncio.sleep(FAST_TTL / 2 + 0.3)
                answers = await asyncio.gather(
                    *((first if i % 2 else second).get(f"/x/{i}", headers=JSON) for i in range(20))
                )
                assert [r.status for r in answers] == [200] * 20
                assert len(refreshes(double, kw["client_id"])) == cycle
            used = {c["RefreshToken"] for c in refreshes(double, kw["client_id"])}
            assert len(used) == 1  # no rotation: the one refresh token throughout
            assert not refresh_failures(double)
            await sign_out(first)
        finally:
            await first.close()
            await second.close()
    (token,) = used
    assert refused_at_cognito(double, kw, token) == "Refresh Token has been revoked"


async def test_a_superseded_refresh_token_uses_the_saved_tokens(
    double: CognitoDouble, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica that lost the race (its lease ran out mid-call) holds the old record; rotation
    (no grace period) refuses its refresh token. It re-reads and goes on with the saved
    tokens instead of signing the user out."""
    kw = seed(double, upstream, refresh_token_rotation=True, retry_grace_period_seconds=0)
    original = SessionManager.load
    seen: list[Session] = []
    stale_reads = 0

    async def load(self: SessionManager, cookie: str) -> Session | None:
        nonlocal stale_reads
        if stale_reads > 0:
            stale_reads -= 1
            return seen[0]  # the record as it was before the first rotation
        session = await original(self, cookie)
        if session is not None and not seen:
            seen.append(session)
        return session

    monkeypatch.setattr(SessionManager, "load", load)
    settings = proxy_settings(session={"store_url": "memory://", "cache_ttl": 0}, **kw)
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("rory", PASSWORD)).status == 303
            assert (await browser.get("/first", headers=JSON)).status == 200
            await asyncio.sleep(FAST_TTL / 2 + 0.3)
            assert (await browser.get("/rotates", headers=JSON)).status == 200  # T1 -> T2
            assert len(refreshes(double, kw["client_id"])) == 1
            stale_reads = 2  # the next load and the one under the lease see the T1 record
            assert (await browser.get("/stale", headers=JSON)).status == 200
            assert [f[1] for f in refresh_failures(double)][-1:] == ["RefreshTokenReuseException"]
            assert (await browser.get("/still", headers=JSON)).status == 200  # not signed out
        finally:
            await browser.close()
    assert upstream.last_headers["X-Forwarded-User"] == "rory"


async def test_a_client_secret_rotation_mid_traffic_loses_nothing(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = seed(double, upstream, refresh_token_rotation=True, retry_grace_period_seconds=5)
    old_id = double.client_secrets(kw["client_id"])[0][0]
    _, new = double.add_client_secret(kw["client_id"])
    settings = proxy_settings(**kw, cognito_extra={"client_secret_next": new})
    async with running_proxy(settings) as base:
        browsers = [Browser(base) for _ in range(3)]
        try:
            assert (await browsers[0].login("rory", PASSWORD)).status == 303
            statuses: list[int] = []
            deadline = time.monotonic() + FAST_TTL * 1.5
            deleted = False
            refreshed_before = 0
            while time.monotonic() < deadline:
                if not deleted and time.monotonic() > deadline - FAST_TTL:
                    double.delete_client_secret(kw["client_id"], old_id)  # mid-traffic
                    deleted = True
                    refreshed_before = len(refreshes(double, kw["client_id"]))
                    assert (await browsers[1].login("rory", PASSWORD)).status == 303
                statuses.append((await browsers[0].get("/t", headers=JSON)).status)
                await asyncio.sleep(0.2)
            assert deleted
            assert (await browsers[2].login("rory", PASSWORD)).status == 303
            assert set(statuses) == {200}
            assert (await browsers[1].get("/t", headers=JSON)).status == 200
        finally:
            for browser in browsers:
                await browser.close()
    # Refreshes went on after the old secret was gone; Cognito refused the old secret (once:
    # the working one goes first after that), and no user saw it.
    assert len(refreshes(double, kw["client_id"])) > refreshed_before
    refused = [f for f in double.failures if "secret" in f[2].lower()]
    assert len(refused) == 1, refused
    assert upstream.last_headers["X-Forwarded-User"] == "rory"


async def test_signed_out_during_a_refresh_revokes_the_rotated_token(
    double: CognitoDouble, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sign-out while a refresh is at Cognito: the session stays ended, and the refresh token
    that refresh brought (rotation) is revoked too, not left valid."""
    kw = seed(double, upstream, refresh_token_rotation=True, retry_grace_period_seconds=0)
    original = CognitoClient.refresh
    at_cognito = asyncio.Event()

    async def slow(
        self: CognitoClient, refresh_token: str, username: str, device_key: str | None = None
    ) -> Tokens:
        tokens = await original(self, refresh_token, username, device_key)
        at_cognito.set()
        await asyncio.sleep(0.5)  # the answer is on its way back while the user signs out
        return tokens

    monkeypatch.setattr(CognitoClient, "refresh", slow)
    async with running_proxy(proxy_settings(**kw)) as base:
        browser, tab = Browser(base), Browser(base)
        try:
            assert (await browser.login("rory", PASSWORD)).status == 303
            tab = same_cookie(browser, base)
            await asyncio.sleep(FAST_TTL / 2 + 0.3)
            pending = asyncio.create_task(tab.get("/refreshing", headers=JSON))
            await at_cognito.wait()
            await sign_out(browser)
            await pending
            assert (await tab.get("/after", headers=JSON)).status == 401
        finally:
            await browser.close()
            await tab.close()
    (used,) = [c["RefreshToken"] for c in refreshes(double, kw["client_id"])]
    revoked = [
        c["Token"] for c in double.calls_to("RevokeToken") if c["ClientId"] == kw["client_id"]
    ]
    assert len(revoked) == 2 and revoked[0] == used  # sign-out's, then the rotated one
    assert revoked[1] != used


async def test_a_pool_moving_to_the_multi_region_issuer_keeps_its_sessions(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = seed(double, upstream)
    local = double.issuer(kw["pool_id"])
    moved = f"https://issuer-cognito-idp.{double.region}.amazonaws.com/{kw['pool_id']}"
    kw.pop("issuer")
    settings = proxy_settings(**kw, cognito_extra={"issuers": [local, moved]})
    try:
        async with running_proxy(settings) as base:
            browser = Browser(base)
            try:
                assert (await browser.login("rory", PASSWORD)).status == 303
                double.issuer_style = "multi_region"  # the move, with sessions open
                await asyncio.sleep(FAST_TTL / 2 + 0.3)
                assert (await browser.get("/moved", headers=JSON)).status == 200
                assert len(refreshes(double, kw["client_id"])) == 1  # new tokens, new iss
                fresh = Browser(base)
                try:  # and new sign-ins, whose tokens carry the new issuer
                    assert (await fresh.login("rory", PASSWORD)).status == 303
                    assert (await fresh.get("/new", headers=JSON)).status == 200
                finally:
                    await fresh.close()
            finally:
                await browser.close()
        only_local = proxy_settings(**kw, issuer=local)
        async with running_proxy(only_local) as base:
            browser = Browser(base)
            try:  # without the new issuer listed, its tokens are refused
                assert (await browser.login("rory", PASSWORD)).status != 303
            finally:
                await browser.close()
    finally:
        double.issuer_style = "local"
