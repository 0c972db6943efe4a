"""Identity's decisions as a table: how near expiry the tokens are, by what the refresh says.

A real SessionManager over memory://; the Refresher is a stub that answers as told and counts
its calls. Integration tests (test_session_lifecycle.py, test_redis_ha.py) prove the same
against Cognito's double and real Redis servers.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from typing import Any

import pytest

from proxy.gate.identity import Identity, RefreshUnavailable
from proxy.refresh import NoRefreshToken, RefreshFailed, RefreshOutcome, RefreshRejected
from proxy.sessions.backends import open_store
from proxy.sessions.session import Session, SessionManager

LIFE = 3600.0  # the tokens' lifetime (iat → exp)
TOKEN_STATES = {
    "fresh": LIFE - 10,  # seconds left: far from expiry, no refresh
    "near": 60,  # within the margin, still valid
    "expired": -10,
}


def session(left: float) -> Session:
    now = time.time()
    return Session(
        username="ann",
        sub="s-1",
        claims={"sub": "s-1", "iat": now + left - LIFE},
        id_token="id-old",
        access_token="acc-old",
        refresh_token="ref",
        expires_at=now + left,
        created_at=now - 10,
    )


class StubRefresher:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.calls = 0

    async def refresh(self, current: Session) -> RefreshOutcome:
        self.calls += 1
        if self.answer == "new":
            return replace(current, access_token="acc-new", expires_at=time.time() + LIFE)
        if self.answer == "no_refresh_token":
            return NoRefreshToken()
        if self.answer == "rejected":
            return RefreshRejected("NotAuthorizedException")
        return RefreshFailed("TooManyRequestsException")


async def setup(tokens: str, answer: str) -> tuple[Identity, SessionManager, StubRefresher, str]:
    sessions = SessionManager(open_store("memory://"), b"k" * 32, lifetime=86_400)
    refresher = StubRefresher(answer)
    identity = Identity(
        sessions=sessions,
        refresher=refresher,
        cookie_name="gate",
        refresh_margin=300,
    )
    cookie = await sessions.create(session(TOKEN_STATES[tokens]))
    return identity, sessions, refresher, cookie


# tokens, refresh answer -> what resolve gives ("old", "new", None or the exception), whether
# the refresher was asked, whether the record still exists afterwards
TABLE: list[tuple[str, str, Any, bool, bool]] = [
    ("fresh", "new", "old", False, True),
    ("fresh", "rejected", "old", False, True),
    ("near", "new", "new", True, True),
    ("near", "no_refresh_token", "old", True, True),
    ("near", "rejected", None, True, False),
    ("near", "failed", "old", True, True),
    ("expired", "new", "new", True, True),
    ("expired", "no_refresh_token", None, True, True),
    ("expired", "rejected", None, True, False),
    ("expired", "failed", RefreshUnavailable, True, True),
]


@pytest.mark.parametrize(
    ("tokens", "answer", "gives", "asked", "kept"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]}") for row in TABLE],
)
async def test_resolve_decides(
    tokens: str, answer: str, gives: Any, asked: bool, kept: bool
) -> None:
    identity, sessions, refresher, cookie = await setup(tokens, answer)
    if gives is RefreshUnavailable:
        with pytest.raises(RefreshUnavailable):
            await identity.resolve_cookie(cookie)
    else:
        got = await identity.resolve_cookie(cookie)
        if gives is None:
            assert got is None
        else:
            assert got is not None
            assert got.access_token == f"acc-{gives}"
    assert (refresher.calls > 0) is asked
    assert (await sessions.load(cookie) is not None) is kept


async def test_a_fresh_refresh_is_saved_for_the_next_request() -> None:
    identity, sessions, refresher, cookie = await setup("near", "new")
    await identity.resolve_cookie(cookie)
    stored = await sessions.load(cookie)
    assert stored is not None and stored.access_token == "acc-new"
    again = await identity.resolve_cookie(cookie)
    assert again is not None and again.access_token == "acc-new"
    assert refresher.calls == 1


@pytest.mark.parametrize("tokens", ["near", "expired"])
async def test_a_failed_refresh_is_not_asked_again_at_once(tokens: str) -> None:
    """No retry storm: within REFRESH_RETRY_AFTER the same answer comes without Cognito."""
    identity, _, refresher, cookie = await setup(tokens, "failed")
    for _ in range(3):
        with contextlib.suppress(RefreshUnavailable):
            await identity.resolve_cookie(cookie)
    assert refresher.calls == 1


async def test_no_cookie_or_a_forged_one_is_nobody() -> None:
    identity, _, refresher, cookie = await setup("fresh", "new")
    assert await identity.resolve_cookie(cookie[:-2] + "AA") is None
    assert refresher.calls == 0
