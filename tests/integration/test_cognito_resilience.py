"""Cognito throttled, failing or slow: bounded jittered retries only where a resend is safe, a
circuit breaker that answers "try again later" at once, never a blind resend of a challenge."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from proxy.cognito.breaker import CircuitBreaker, RetryBudget
from proxy.cognito.client import MAX_ATTEMPTS, CognitoClient
from proxy.cognito.errors import BadCredentials, TooManyRequests, Unavailable
from proxy.demo import free_port
from proxy.observe import Metrics
from proxy.settings import CognitoSettings
from tests.support.stack import Browser, proxy_settings, running_proxy

TOKENS = {"AuthenticationResult": {"IdToken": "i", "AccessToken": "a", "ExpiresIn": 3600}}


@dataclass
class FakeCognito:
    """Speaks the AWS JSON protocol; answers each operation from a script, then with `default`."""

    url: str = ""
    script: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    default: tuple[int, dict[str, Any]] = (200, TOKENS)
    delay: float = 0.0
    calls: list[str] = field(default_factory=list)

    def error(self, status: int, code: str) -> tuple[int, dict[str, Any]]:
        return status, {"__type": code, "message": "scripted"}


@asynccontextmanager
async def fake_cognito() -> AsyncIterator[FakeCognito]:
    fake = FakeCognito()

    async def handler(request: web.Request) -> web.Response:
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        fake.calls.append(operation)
        if fake.delay:
            await asyncio.sleep(fake.delay)
        queue = fake.script.get(operation) or []
        status, body = queue.pop(0) if queue else fake.default
        return web.Response(
            status=status, text=json.dumps(body), content_type="application/x-amz-json-1.1"
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@asynccontextmanager
async def client_for(
    fake: FakeCognito,
    breaker: CircuitBreaker | None = None,
    call_timeout: float = 5.0,
    retries: RetryBudget | None = None,
    **kw: Any,
) -> AsyncIterator[CognitoClient]:
    settings = CognitoSettings(
        user_pool_id="us-east-1_Fake123",
        client_id="client",
        endpoint_url=fake.url,
        timeout=call_timeout,
        **kw,
    )
    client = CognitoClient(
        settings, breaker=breaker or CircuitBreaker(threshold=50), retries=retries
    )
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def test_throttled_refresh_is_retried_with_backoff_and_succeeds() -> None:
    async with fake_cognito() as fake:
        fake.script["GetTokensFromRefreshToken"] = [
            fake.error(400, "TooManyRequestsException"),
            fake.error(500, "InternalErrorException"),
        ]
        async with client_for(fake) as client:
            tokens = await client.refresh("refresh-token", "user")
        assert tokens.access_token == "a"
        assert fake.calls == ["GetTokensFromRefreshToken"] * 3


async def test_throttled_refresh_token_auth_is_retried_too() -> None:
    async with fake_cognito() as fake:
        fake.script["InitiateAuth"] = [fake.error(400, "TooManyRequestsException")]
        async with client_for(fake, refresh_flow="REFRESH_TOKEN_AUTH") as client:
            tokens = await client.refresh("refresh-token", "user")
        assert tokens.access_token == "a"
        assert fake.calls == ["InitiateAuth"] * 2


async def test_retries_are_bounded() -> None:
    async with fake_cognito() as fake:
        fake.default = fake.error(400, "ThrottlingException")
        async with client_for(fake) as client:
            with pytest.raises(TooManyRequests):
                await client.refresh("refresh-token", "user")
        assert len(fake.calls) == MAX_ATTEMPTS


async def test_a_challenge_answer_is_never_resent() -> None:
    async with fake_cognito() as fake:
        fake.script["InitiateAuth"] = [
            (
                200,
                {
                    "ChallengeName": "PASSWORD_VERIFIER",
                    "ChallengeParameters": {
                        "USER_ID_FOR_SRP": "user",
                        "SRP_B": "ab" * 192,
                        "SALT": "0a1b2c",
                        "SECRET_BLOCK": "c2VjcmV0",
                    },
                },
            )
        ]
        fake.script["RespondToAuthChallenge"] = [fake.error(500, "InternalErrorException")]
        async with client_for(fake) as client:
            with pytest.raises(Unavailable):
                await client.password_login("user", "Password-1!")
        assert fake.calls == ["InitiateAuth", "RespondToAuthChallenge"]


async def test_a_lockout_or_bad_password_is_not_retried_and_does_not_trip_the_breaker() -> None:
    async with fake_cognito() as fake:
        fake.default = fake.error(400, "TooManyFailedAttemptsException")
        breaker = CircuitBreaker(threshold=1)
        async with client_for(fake, breaker, auth_flow="USER_PASSWORD_AUTH") as client:
            with pytest.raises(TooManyRequests):
                await client.password_login("user", "Password-1!")
            fake.default = fake.error(400, "NotAuthorizedException")
            with pytest.raises(BadCredentials):
                await client.password_login("user", "Password-1!")
        assert fake.calls == ["InitiateAuth", "InitiateAuth"]
        assert not breaker.is_open


async def test_a_read_timeout_is_not_retried() -> None:
    async with fake_cognito() as fake:
        fake.delay = 1.0
        async with client_for(fake, call_timeout=0.3) as client:
            with pytest.raises(Unavailable):
                await client.refresh("refresh-token", "user")
        assert fake.calls == ["GetTokensFromRefreshToken"]


async def test_open_breaker_fails_fast_then_a_probe_closes_it() -> None:
    async with fake_cognito() as fake:
        fake.default = fake.error(503, "ServiceUnavailable")
        breaker = CircuitBreaker(threshold=3, cooldown=0.3)
        async with client_for(fake, breaker) as client:
            for _ in range(3):  # three failed calls (each retried): open
                assert not breaker.is_open
                with pytest.raises(Unavailable):
                    await client.refresh("r", "user")
            assert breaker.is_open
            calls = len(fake.calls)
            with pytest.raises(Unavailable) as exc:
                await client.refresh("r", "user")
            assert exc.value.code == "CircuitOpen"
            assert len(fake.calls) == calls  # nothing was sent
            await asyncio.sleep(0.35)
            fake.default = (200, TOKENS)
            assert (await client.refresh("r", "user")).access_token == "a"
            assert not breaker.is_open


async def test_a_wave_of_failing_calls_is_retried_within_the_budget_not_each_call() -> None:
    async with fake_cognito() as fake:
        fake.default = fake.error(500, "InternalErrorException")
        fake.delay = 0.05
        breaker = CircuitBreaker(threshold=3, cooldown=30)
        async with client_for(fake, breaker) as client:
            # A wave: 20 refreshes at once, as when every session reaches its refresh point.
            wave = await asyncio.gather(
                *(client.refresh(f"r{i}", "user") for i in range(20)), return_exceptions=True
            )
        assert all(isinstance(e, Unavailable) for e in wave)
        assert breaker.is_open
        # Every call's first attempt went out before any had failed; the retries came out of
        # the budget (10 saved up, and a little more with time): not two more each (60).
        assert 20 <= len(fake.calls) <= 20 + 12, len(fake.calls)


async def test_a_call_refused_its_first_retry_does_not_count_against_the_breaker() -> None:
    async with fake_cognito() as fake:
        fake.default = fake.error(500, "InternalErrorException")
        breaker = CircuitBreaker(threshold=1, cooldown=30)
        one_retry = RetryBudget(ratio=0, per_second=0, burst=1)
        async with client_for(fake, breaker, retries=one_retry) as client:
            with pytest.raises(Unavailable):
                await client.refresh("r1", "user")  # a retry, then refused a second: counts
            assert breaker.is_open
            assert fake.calls == ["GetTokensFromRefreshToken"] * 2
        breaker = CircuitBreaker(threshold=1, cooldown=30)
        no_retry = RetryBudget(ratio=0, per_second=0, burst=1)
        no_retry.withdraw()
        async with client_for(fake, breaker, retries=no_retry) as client:
            with pytest.raises(Unavailable):
                await client.refresh("r2", "user")  # one try, no retry left: does not count
            assert not breaker.is_open


async def test_sign_in_says_try_again_at_once_while_cognito_is_down() -> None:
    async with fake_cognito() as fake:
        fake.default = fake.error(500, "InternalErrorException")
        metrics = Metrics()
        settings = proxy_settings(
            upstream_url="http://127.0.0.1:9",
            pool_id="us-east-1_Fake123",
            client_id="client",
            endpoint_url=fake.url,
            jwks_url=fake.url + "/jwks.json",
        )
        async with running_proxy(settings, metrics, keys=False) as base:
            browser = Browser(base)
            try:
                for _ in range(5):  # 5 failed calls (3 attempts each): the threshold
                    resp = await browser.login("user", "Password-1!")
                    assert resp.status == 503
                calls = len(fake.calls)
                resp = await browser.login("user", "Password-1!")
                assert resp.status == 503
                assert "try again" in (await resp.text()).lower()
                assert len(fake.calls) == calls  # the breaker answered, Cognito was not called
                # Readiness does not depend on Cognito: signed-in traffic still works.
                async with browser.http.get(base + "/_auth/readyz") as ready:
                    problems = (await ready.json())["problems"]
                assert not [p for p in problems if "cognito" in p.lower()]
            finally:
                await browser.close()
        assert metrics.breaker_open._value.get() == 1
