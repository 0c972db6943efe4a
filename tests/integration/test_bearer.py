"""API clients with `Authorization: Bearer <Cognito token>`: verified, forwarded, never merged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import jwt
import pytest

from tests.support.cognito_double import CognitoDouble, running_double
from tests.support.stack import Browser, Upstream, proxy_settings, running_proxy

pytestmark = pytest.mark.integration

PASSWORD = "Bearer-pass-1!"
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def double() -> Iterator[CognitoDouble]:
    with running_double(token_ttl=60) as d:
        yield d


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, _ = double.create_client(pool_id)
    double.add_user(pool_id, "ann", PASSWORD, attributes={"email": "ann@example.com"})
    double.add_user(pool_id, "ben", PASSWORD, groups=["ops"])
    return {
        "pool_id": pool_id,
        "client_id": client_id,
        "endpoint_url": double.url,
        "jwks_url": double.jwks_url(pool_id),
        "issuer": double.issuer(pool_id),
    }


def tokens(double: CognitoDouble, pool: dict[str, Any], username: str) -> dict[str, str]:
    idp = boto3.client("cognito-idp", region_name=double.region, endpoint_url=double.url)
    answer = idp.initiate_auth(
        ClientId=pool["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )
    result: dict[str, str] = answer["AuthenticationResult"]
    return result


@pytest.fixture
async def base(pool: dict[str, Any], upstream: Upstream) -> AsyncIterator[str]:
    settings = proxy_settings(upstream_url=upstream.url, auth={"bearer": "access"}, **pool)
    async with running_proxy(settings) as url:
        yield url


def bearer(token: str) -> dict[str, str]:
    return {**JSON, "Authorization": f"Bearer {token}"}


async def ready(client: Browser) -> None:
    for _ in range(100):  # the signing keys load in the background at start
        if (await client.get("/_auth/readyz")).status == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("proxy never became ready")


async def test_a_valid_access_token_is_forwarded_with_identity_headers(
    base: str, double: CognitoDouble, pool: dict[str, Any], upstream: Upstream
) -> None:
    client = Browser(base)
    try:
        await ready(client)
        ben = tokens(double, pool, "ben")
        answer = await client.get("/api/items", headers=bearer(ben["AccessToken"]))
        assert answer.status == 200
        seen = upstream.last_headers
        assert seen["X-Forwarded-User"] == "ben"
        assert seen["X-Forwarded-Groups"] == "ops"
        assert "X-Forwarded-Email" not in seen  # access tokens carry no email
        # Cached: the same token again needs no second verification, and still works.
        assert (await client.get("/api/again", headers=bearer(ben["AccessToken"]))).status == 200
    finally:
        await client.close()


async def test_the_bearer_identity_wins_over_a_cookie_and_is_never_merged(
    base: str, double: CognitoDouble, pool: dict[str, Any], upstream: Upstream
) -> None:
    browser = Browser(base)
    try:
        assert (await browser.login("ann", PASSWORD)).status == 303
        ben = tokens(double, pool, "ben")
        answer = await browser.get("/mixed", headers=bearer(ben["AccessToken"]))
        assert answer.status == 200
        seen = upstream.last_headers
        assert seen["X-Forwarded-User"] == "ben"
        assert "X-Forwarded-Email" not in seen  # not ann's email, from the cookie session
        # A bad token with a good cookie: 401, the cookie is not a fallback.
        bad = await browser.get("/mixed", headers=bearer("not-a-token"))
        assert bad.status == 401
        assert (await browser.get("/cookie-only", headers=JSON)).status == 200
        assert upstream.last_headers["X-Forwarded-User"] == "ann"
    finally:
        await browser.close()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda t: t["IdToken"], "TokenUseMismatch"),  # an ID token where access is configured
        (lambda t: t["AccessToken"][:-4] + "AAAA", "InvalidSignature"),
        (lambda t: "a.b", "MalformedToken"),
        (
            lambda t: jwt.encode({"sub": "x", "token_use": "access"}, "k" * 32, "HS256"),
            "AlgorithmNotAllowed",
        ),
    ],
)
async def test_an_invalid_bearer_token_gets_401_invalid_token_with_a_short_reason(
    base: str,
    double: CognitoDouble,
    pool: dict[str, Any],
    upstream: Upstream,
    make: Any,
    reason: str,
) -> None:
    client = Browser(base)
    try:
        await ready(client)
        answer = await client.get("/api", headers=bearer(make(tokens(double, pool, "ann"))))
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert await answer.json() == {"error": "invalid_token", "reason": reason}
        assert upstream.seen == []
    finally:
        await client.close()


async def test_check_and_userinfo_accept_bearer_clients_and_never_return_tokens(
    base: str, double: CognitoDouble, pool: dict[str, Any]
) -> None:
    client = Browser(base)
    try:
        await ready(client)
        ben = tokens(double, pool, "ben")
        check = await client.get("/_auth/check", headers=bearer(ben["AccessToken"]))
        assert check.status == 200
        assert check.headers["X-Auth-Request-User"] == "ben"
        assert (await client.get("/_auth/check", headers=bearer("junk"))).status == 401

        info = await client.get("/_auth/userinfo", headers=bearer(ben["AccessToken"]))
        assert info.status == 200
        claims = await info.json()
        assert claims["username"] == "ben"
        assert claims["cognito:groups"] == ["ops"]
        body = await info.text()
        # The tokens only: ExpiresIn ("60"...) may well occur inside a random claim value.
        for name in ("AccessToken", "IdToken", "RefreshToken"):
            assert ben[name][:40] not in body
    finally:
        await client.close()


async def test_bearer_off_by_default_leaves_authorization_to_the_app(
    pool: dict[str, Any], double: CognitoDouble, upstream: Upstream
) -> None:
    async with running_proxy(proxy_settings(upstream_url=upstream.url, **pool)) as url:
        client = Browser(url)
        try:
            ben = tokens(double, pool, "ben")
            answer = await client.get("/api", headers=bearer(ben["AccessToken"]))
            assert answer.status == 401  # no session: the token is not an identity here
            assert "WWW-Authenticate" not in answer.headers
        finally:
            await client.close()


async def test_check_passes_the_access_token_only_when_configured(
    pool: dict[str, Any], double: CognitoDouble, upstream: Upstream
) -> None:
    idp = boto3.client("cognito-idp", region_name=double.region, endpoint_url=double.url)
    for passed in (False, True):
        settings = proxy_settings(
            upstream_url=upstream.url, auth={"check_access_token": passed}, **pool
        )
        async with running_proxy(settings) as url:
            browser = Browser(url)
            try:
                assert (await browser.login("ann", PASSWORD)).status == 303
                check = await browser.get("/_auth/check")
                assert check.status == 200
                token = check.headers.get("X-Auth-Request-Access-Token")
                if not passed:
                    assert token is None
                    continue
                assert token
                # A real, current access token of this user: Cognito accepts it.
                assert idp.get_user(AccessToken=token)["Username"] == "ann"
            finally:
                await browser.close()


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])
async def test_check_answers_only_200_401_or_500_whatever_the_method(
    base: str, double: CognitoDouble, pool: dict[str, Any], method: str
) -> None:
    client = Browser(base)
    try:
        await ready(client)
        ann = tokens(double, pool, "ann")
        for headers, expected in (
            ({}, 401),
            ({"Cookie": "gate=garbage"}, 401),
            (bearer("garbage"), 401),
            (bearer(ann["AccessToken"]), 200),
        ):
            async with client.http.request(
                method, base + "/_auth/check", headers=headers, allow_redirects=False
            ) as answer:
                assert answer.status == expected, (method, headers, answer.status)
    finally:
        await client.close()
