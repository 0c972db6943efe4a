"""BearerAuth: parsing the header, and the bounded in-process cache of verified claims."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from proxy.cognito.tokens import Expired
from proxy.gate.bearer import BearerAuth, bearer_token


class CountingVerifier:
    def __init__(self, lifetime: float = 60) -> None:
        self.calls = 0
        self.lifetime = lifetime

    async def verify(self, token: str, *, token_use: str) -> dict[str, Any]:
        self.calls += 1
        if token == "expired":
            raise Expired("token expired")
        return {"username": token, "exp": time.time() + self.lifetime, "token_use": token_use}


def auth(verifier: CountingVerifier, **kw: Any) -> BearerAuth:
    return BearerAuth(verifier, "access", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), (None, None)],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    assert bearer_token(make_mocked_request("GET", "/", headers=headers)) == token


async def test_a_token_is_verified_once_while_it_lives() -> None:
    verifier = CountingVerifier()
    bearer = auth(verifier)
    for _ in range(5):
        claims = await bearer.claims("tok")
    assert verifier.calls == 1
    assert claims["cognito:username"] == "tok"  # access tokens name the user as username


async def test_an_expired_cache_entry_is_verified_again() -> None:
    verifier = CountingVerifier(lifetime=-1)  # already past exp when cached
    bearer = auth(verifier)
    await bearer.claims("tok")
    await bearer.claims("tok")
    assert verifier.calls == 2


async def test_failures_are_not_cached_and_the_cache_is_bounded() -> None:
    verifier = CountingVerifier()
    bearer = auth(verifier, max_cached=2)
    for _ in range(2):
        with pytest.raises(Expired):
            await bearer.claims("expired")
    assert verifier.calls == 2
    for token in ("a", "b", "c"):
        await bearer.claims(token)
    await bearer.claims("a")  # evicted by "c": verified again
    assert verifier.calls == 6
