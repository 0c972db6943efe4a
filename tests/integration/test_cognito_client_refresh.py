"""The Cognito client's refresh flows and client-secret rotation, against the strict double.

GetTokensFromRefreshToken by default (rotation on or off), REFRESH_TOKEN_AUTH by setting, one
clear log line and a metric when Cognito says the flow is not offered; two client secrets with
one retry on a refused secret and a log line naming the one that works.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pydantic import SecretStr

from proxy.cognito.client import CognitoClient, Tokens
from proxy.cognito.errors import BadClientSecret, RefreshFlowNotAllowed
from proxy.devtools.cognito_double import CognitoDouble
from proxy.settings import CognitoSettings

USER = "erin"
PASSWORD = "Correct-Horse-9"


def pool(double: CognitoDouble, **client: Any) -> tuple[str, str, str | None]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, **client)
    double.add_user(pool_id, USER, PASSWORD)
    return pool_id, client_id, secret


@asynccontextmanager
async def cognito(
    double: CognitoDouble,
    pool_id: str,
    client_id: str,
    secret: str | None,
    observed: list[tuple[str, str]] | None = None,
    **settings: Any,
) -> AsyncIterator[CognitoClient]:
    config = CognitoSettings(
        user_pool_id=pool_id,
        client_id=client_id,
        client_secret=SecretStr(secret) if secret else None,
        endpoint_url=double.url,
        **settings,
    )
    client = CognitoClient(
        config,
        observer=(lambda op, outcome, _s: observed.append((op, outcome)))
        if observed is not None
        else None,
    )
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def sign_in(client: CognitoClient) -> Tokens:
    result = await client.password_login(USER, PASSWORD)
    assert result.tokens is not None
    return result.tokens


def calls(double: CognitoDouble, operation: str, client_id: str) -> list[dict[str, Any]]:
    return [c for c in double.calls_to(operation) if c.get("ClientId") == client_id]


@pytest.mark.parametrize("secret", [False, True], ids=["public", "secret"])
async def test_refresh_uses_get_tokens_from_refresh_token_by_default(
    double: CognitoDouble, secret: bool
) -> None:
    pool_id, client_id, client_secret = pool(double, secret=secret)
    async with cognito(double, pool_id, client_id, client_secret) as client:
        tokens = await sign_in(client)
        assert tokens.refresh_token is not None
        fresh = await client.refresh(tokens.refresh_token, USER)
    assert fresh.refresh_token is None  # rotation off: keep the one we have
    (call,) = calls(double, "GetTokensFromRefreshToken", client_id)
    assert call.get("ClientSecret") == client_secret  # the secret itself, no SECRET_HASH
    assert "SECRET_HASH" not in str(call)
    assert not [c for c in calls(double, "InitiateAuth", client_id) if "REFRESH" in c["AuthFlow"]]


async def test_rotation_returns_the_new_refresh_token(double: CognitoDouble) -> None:
    pool_id, client_id, secret = pool(
        double, secret=True, refresh_token_rotation=True, retry_grace_period_seconds=5
    )
    async with cognito(double, pool_id, client_id, secret) as client:
        token = (await sign_in(client)).refresh_token
        seen = {token}
        for _ in range(3):
            assert token is not None
            token = (await client.refresh(token, USER)).refresh_token
            assert token is not None and token not in seen
            seen.add(token)


async def test_refresh_token_auth_by_setting(double: CognitoDouble) -> None:
    pool_id, client_id, secret = pool(double, secret=True)
    async with cognito(
        double, pool_id, client_id, secret, refresh_flow="REFRESH_TOKEN_AUTH"
    ) as client:
        tokens = await sign_in(client)
        assert tokens.refresh_token is not None
        fresh = await client.refresh(tokens.refresh_token, USER)
    assert fresh.refresh_token is None
    assert not calls(double, "GetTokensFromRefreshToken", client_id)
    (call,) = [c for c in calls(double, "InitiateAuth", client_id) if "REFRESH" in c["AuthFlow"]]
    assert call["AuthFlow"] == "REFRESH_TOKEN_AUTH"
    assert "SECRET_HASH" in call["AuthParameters"]


async def test_refresh_token_auth_on_a_rotating_client_says_what_to_set(
    double: CognitoDouble, caplog: pytest.LogCaptureFixture
) -> None:
    pool_id, client_id, secret = pool(double, secret=True, refresh_token_rotation=True)
    observed: list[tuple[str, str]] = []
    async with cognito(
        double, pool_id, client_id, secret, observed, refresh_flow="REFRESH_TOKEN_AUTH"
    ) as client:
        tokens = await sign_in(client)
        assert tokens.refresh_token is not None
        with caplog.at_level(logging.ERROR, logger="proxy.cognito"):
            for _ in range(2):
                with pytest.raises(RefreshFlowNotAllowed):
                    await client.refresh(tokens.refresh_token, USER)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1, lines  # one line, not one per session and request
    assert "GATE_COGNITO_REFRESH_FLOW=GetTokensFromRefreshToken" in lines[0]
    assert "rotation" in lines[0]
    assert observed.count(("refresh", "RefreshFlowNotAllowed")) == 2


async def test_an_emulator_without_get_tokens_says_what_to_set(
    double: CognitoDouble, caplog: pytest.LogCaptureFixture
) -> None:
    pool_id, client_id, secret = pool(double)
    observed: list[tuple[str, str]] = []
    double.inject_errors["GetTokensFromRefreshToken"] = ("UnknownOperationException", "")
    try:
        async with cognito(double, pool_id, client_id, secret, observed) as client:
            tokens = await sign_in(client)
            assert tokens.refresh_token is not None
            with (
                caplog.at_level(logging.ERROR, logger="proxy.cognito"),
                pytest.raises(RefreshFlowNotAllowed),
            ):
                await client.refresh(tokens.refresh_token, USER)
    finally:
        double.inject_errors.clear()
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "GATE_COGNITO_REFRESH_FLOW=REFRESH_TOKEN_AUTH" in line
    assert ("refresh", "RefreshFlowNotAllowed") in observed


@pytest.mark.parametrize("flow", ["USER_SRP_AUTH", "USER_PASSWORD_AUTH"])
async def test_a_secret_rotation_loses_no_sign_in_and_no_refresh(
    double: CognitoDouble, caplog: pytest.LogCaptureFixture, flow: str
) -> None:
    pool_id, client_id, old = pool(double, secret=True)
    assert old is not None
    old_id = double.client_secrets(client_id)[0][0]
    _, new = double.add_client_secret(client_id)
    async with (
        cognito(
            double,
            pool_id,
            client_id,
            old,
            client_secret_next=SecretStr(new),
            auth_flow=flow,
        ) as client,
        cognito(
            double,
            pool_id,
            client_id,
            old,
            client_secret_next=SecretStr(new),
            auth_flow=flow,
            refresh_flow="REFRESH_TOKEN_AUTH",
        ) as legacy,
    ):
        tokens = await sign_in(client)
        assert tokens.refresh_token is not None
        double.delete_client_secret(client_id, old_id)  # mid-traffic
        failures = len(double.failures)
        with caplog.at_level(logging.WARNING, logger="proxy.cognito"):
            assert await client.refresh(tokens.refresh_token, USER)
            assert await legacy.refresh(tokens.refresh_token, USER)  # SECRET_HASH over the name
        assert len(double.failures) - failures == 2  # one refused try each, then the other
        works = [r.getMessage() for r in caplog.records if "works" in r.getMessage()]
        assert works and "GATE_COGNITO_CLIENT_SECRET_NEXT works" in works[0]
        # From now on the working secret goes first: no more refused calls.
        failures = len(double.failures)
        fresh = await sign_in(client)
        assert fresh.refresh_token is not None
        await client.refresh(fresh.refresh_token, USER)
        await client.revoke(fresh.refresh_token)
        assert len(double.failures) == failures


async def test_a_refused_secret_without_a_second_one_names_the_setting(
    double: CognitoDouble, caplog: pytest.LogCaptureFixture
) -> None:
    pool_id, client_id, _ = pool(double, secret=True)
    async with cognito(double, pool_id, client_id, "wrong-secret-" * 3) as client:
        with (
            caplog.at_level(logging.ERROR, logger="proxy.cognito"),
            pytest.raises(BadClientSecret),
        ):
            await client.password_login(USER, PASSWORD)
    assert any("GATE_COGNITO_CLIENT_SECRET" in r.getMessage() for r in caplog.records)
    _, next_secret = double.add_client_secret(client_id)
    async with cognito(
        double,
        pool_id,
        client_id,
        "wrong-secret-" * 3,
        client_secret_next=SecretStr("also-wrong-" * 3),
    ) as client:
        with pytest.raises(BadClientSecret):
            await client.password_login(USER, PASSWORD)
    assert next_secret  # neither configured secret was the real one


async def test_device_key_goes_along(double: CognitoDouble) -> None:
    pool_id, client_id, secret = pool(double)
    async with cognito(double, pool_id, client_id, secret) as client:
        tokens = await sign_in(client)
        assert tokens.refresh_token is not None
        await client.refresh(tokens.refresh_token, USER, "us-east-1_0b7e1f3c-aaaa")
    (call,) = calls(double, "GetTokensFromRefreshToken", client_id)
    assert call["DeviceKey"] == "us-east-1_0b7e1f3c-aaaa"
