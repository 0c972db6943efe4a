"""Identity.renew_cookie (the account page's profile after a change): new tokens at once
however fresh they are, through the same refresh and lease, the cached copy dropped."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.gate.cache import SessionCache
from proxy.gate.identity import Identity
from proxy.sessions.backends import open_store
from proxy.sessions.session import SessionManager
from tests.unit.test_identity_decisions import TOKEN_STATES, StubRefresher, session, setup

# tokens, refresh answer -> what renew gives ("old", "new" or None), whether the record is kept
TABLE: list[tuple[str, str, Any, bool]] = [
    ("fresh", "new", "new", True),
    ("fresh", "no_refresh_token", "old", True),
    ("fresh", "failed", "old", True),  # the claims catch up at the next refresh
    ("fresh", "rejected", None, False),  # Cognito ended it: so does the gate
    ("expired", "failed", "old", True),  # never raises: the next request decides
]


@pytest.mark.parametrize(
    ("tokens", "answer", "gives", "kept"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]}") for row in TABLE],
)
async def test_renew_decides(tokens: str, answer: str, gives: Any, kept: bool) -> None:
    identity, sessions, refresher, cookie = await setup(tokens, answer)
    got = await identity.renew_cookie(cookie)
    assert refresher.calls == 1
    if gives is None:
        assert got is None
    else:
        assert got is not None and got.access_token == f"acc-{gives}"
    stored = await sessions.load(cookie)
    assert (stored is not None) is kept
    if gives == "new":
        assert stored is not None and stored.access_token == "acc-new"


async def test_a_gone_or_forged_session_is_not_refreshed() -> None:
    identity, sessions, refresher, cookie = await setup("fresh", "new")
    assert await identity.renew_cookie(cookie[:-2] + "AA") is None
    await sessions.delete(cookie)
    assert await identity.renew_cookie(cookie) is None
    assert refresher.calls == 0


async def test_the_cached_copy_is_not_served_after_a_renewal() -> None:
    cache = SessionCache(ttl=60)

    async def changed(record: str, ttl: float) -> None:
        cache.invalidate(record)

    sessions = SessionManager(
        open_store("memory://"), b"k" * 32, lifetime=86_400, on_change=changed
    )
    refresher = StubRefresher("new")
    identity = Identity(sessions=sessions, refresher=refresher, cookie_name="gate", cache=cache)
    cookie = await sessions.create(session(TOKEN_STATES["fresh"]))
    first = await identity.resolve_cookie(cookie)
    assert first is not None and first.access_token == "acc-old"
    assert cache.size == 1  # served from memory for the next 60 s ...
    await identity.renew_cookie(cookie)
    after = await identity.resolve_cookie(cookie)  # ... but not after the renewal
    assert after is not None and after.access_token == "acc-new"


async def test_a_held_lease_is_waited_for_then_renewed(monkeypatch: pytest.MonkeyPatch) -> None:
    identity, sessions, refresher, cookie = await setup("fresh", "new")
    lock = sessions.lock(cookie)
    assert lock is not None and await lock.obtain()  # another request is refreshing
    monkeypatch.setattr("proxy.gate.identity.REFRESH_WAIT", 0.2)
    got = await identity.renew_cookie(cookie)
    assert got is not None and got.access_token == "acc-old"  # waited, then gave up
    assert refresher.calls == 0
    await lock.release()
    got = await identity.renew_cookie(cookie)
    assert got is not None and got.access_token == "acc-new"
