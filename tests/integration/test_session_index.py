"""Issue 18.6: a user's sessions in one Redis. "Sign out everywhere" costs the same few round
trips for a user with 50 sessions as for a user with one (counted on the Redis client, not
timed), and records that expire leave nothing behind: not in the user's index, not their cards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from proxy.auth.session_cards import SessionCards
from proxy.sessions.backends import open_store
from proxy.sessions.invalidation import invalidation_for
from proxy.sessions.session import Session, SessionManager
from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import RedisProcess
from tests.support.redis_topologies import redis_cluster
from tests.support.stack import (
    CSRF_FIELD,
    Browser,
    Upstream,
    cognito_kwargs,
    proxy_settings,
    running_proxy,
)

pytestmark = pytest.mark.integration

PASSWORD = "Index-pass-1!"
MANY = 50
JSON = {"Accept": "application/json"}


class RoundTrips:
    """Every request any redis-py connection of this process sends: one per command, one per
    pipeline (a pipeline's commands go out in one write; their answers are read after it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent = 0
        original = AbstractConnection.send_packed_command

        async def counted(
            conn: AbstractConnection, command: Any, check_health: bool = True
        ) -> None:
            self.sent += 1
            await original(conn, command, check_health)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)

    async def quiet(self, still: float = 0.1) -> None:
        """Until nothing has been sent for ``still`` seconds: a connection opened in the
        background (the pipelined GETs', sessions/pipelined.py) has done its handshake."""
        while True:
            before = self.sent
            await asyncio.sleep(still)
            if self.sent == before:
                return

    @asynccontextmanager
    async def counting(self) -> AsyncIterator[list[int]]:
        out: list[int] = []
        before = self.sent
        yield out
        out.append(self.sent - before)


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[RoundTrips]:
    yield RoundTrips(monkeypatch)


async def keys(redis_server: RedisProcess, pattern: str) -> list[bytes]:
    raw = Redis.from_url(redis_server.url)
    try:
        return sorted(await raw.keys(pattern))
    finally:
        await raw.aclose()


async def sign_in(base: str, username: str) -> Browser:
    browser = Browser(base)
    assert (await browser.login(username, PASSWORD)).status == 303
    return browser


async def test_sign_out_everywhere_costs_the_same_round_trips_for_50_sessions_as_for_one(
    double: CognitoDouble,
    upstream: Upstream,
    redis_server: RedisProcess,
    round_trips: RoundTrips,
) -> None:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    for name in ("many", "one", "bystander"):
        double.add_user(pool_id, name, PASSWORD)
    settings = proxy_settings(
        upstream_url=upstream.url,
        store_url=redis_server.url,
        **cognito_kwargs(double, pool_id, client_id, secret),
    )
    async with running_proxy(settings) as base:
        gate = asyncio.Semaphore(8)

        async def one_of_many() -> Browser:
            async with gate:
                return await sign_in(base, "many")

        browsers = await asyncio.gather(*(one_of_many() for _ in range(MANY)))
        single, bystander = await sign_in(base, "one"), await sign_in(base, "bystander")
        everyone = [*browsers, single, bystander]
        try:
            assert len(await keys(redis_server, "gate:card:*")) == MANY + 2
            costs = {}
            for name, browser in (("one", single), ("many", browsers[0])):
                page = await browser.get("/_auth/logout")
                csrf = CSRF_FIELD.search(await page.text())
                assert csrf
                async with round_trips.counting() as cost:
                    answer = await browser.post(
                        "/_auth/logout", {"csrf": csrf.group(1), "everywhere": "1"}
                    )
                assert answer.status == 303
                costs[name] = cost[0]
            print(f"\nRedis round trips of one sign-out everywhere: {costs}")
            # The same for 50 sessions as for one: nothing is done once per session.
            assert costs["many"] == costs["one"], costs
            statuses = [(await b.get("/", headers=JSON)).status for b in everyone]
            assert statuses == [401] * (MANY + 1) + [200]
            # Nothing of theirs is left in Redis: records, cards and indexes all gone.
            assert len(await keys(redis_server, "gate:s:*")) == 1  # the bystander's
            assert len(await keys(redis_server, "gate:card:*")) == 1
            assert len(await keys(redis_server, "gate:u:*")) == 1
        finally:
            for browser in everyone:
                await browser.close()


def _session(sub: str, created: float | None = None) -> Session:
    now = time.time() if created is None else created
    return Session(
        username=sub,
        sub=sub,
        claims={"sub": sub},
        id_token="i" * 900,
        access_token="a" * 1000,
        refresh_token="r" * 1700,
        expires_at=now + 3600,
        created_at=now,
    )


@asynccontextmanager
async def manager_on(
    redis_server: RedisProcess, lifetime: float = 3600, idle_timeout: float = 0.0
) -> AsyncIterator[tuple[SessionManager, SessionCards]]:
    """A SessionManager wired as the app wires it: Redis, pub/sub announcements, cards."""
    store = open_store(redis_server.url, timeout=2.0)
    cards = SessionCards(store, b"c" * 32)
    invalidation = invalidation_for(store)
    manager = SessionManager(
        store,
        b"s" * 32,
        lifetime=lifetime,
        idle_timeout=idle_timeout,
        on_end=invalidation.ended,
        companions=lambda record: (SessionCards.key(record),),
    )
    try:
        yield manager, cards
    finally:
        await invalidation.close()
        await store.close()


async def signed_in(manager: SessionManager, cards: SessionCards, sub: str, n: int) -> list[str]:
    cookies = []
    for _ in range(n):
        cookie = await manager.create(_session(sub))
        record = manager.record_hash(cookie)
        assert record
        await cards.record(record, user_agent="Firefox/1", ip="192.0.2.1", ttl=manager.lifetime)
        cookies.append(cookie)
    return cookies


async def test_ending_every_session_of_a_user_is_three_round_trips_whatever_their_number(
    redis_server: RedisProcess, round_trips: RoundTrips
) -> None:
    async with manager_on(redis_server) as (manager, cards):
        costs = {}
        for sub, n in (("one", 1), ("many", MANY)):
            cookies = await signed_in(manager, cards, sub, n)
            await manager.load(cookies[0])  # the pool's connection is open and checked
            await round_trips.quiet()  # and the GETs' own connection too
            async with round_trips.counting() as cost:
                assert await manager.end_all(sub) == n
            costs[sub] = cost[0]
            assert [await manager.load(c) for c in cookies] == [None] * n
        # The index read, one pipeline of deletes (records, cards, index members), one of
        # announcements to the other replicas.
        assert costs == {"one": 3, "many": 3}
        assert await keys(redis_server, "gate:*") == []


async def test_expired_records_leave_no_index_entries_or_cards_behind(
    redis_server: RedisProcess,
) -> None:
    raw = Redis.from_url(redis_server.url)
    index = SessionManager._index_key  # which key is the user's index
    try:
        # Idle sessions: the records expire after 1 s, the index and the cards would not yet.
        async with manager_on(redis_server, lifetime=60, idle_timeout=1) as (manager, cards):
            await signed_in(manager, cards, "idle", 3)
            await asyncio.sleep(1.3)
            assert len(await raw.keys("gate:s:*")) == 0
            assert await raw.scard(index("idle")) == 3  # what the read below finds
            # The next read of the index (the account page's list) drops them, cards included.
            assert await manager.live_records("idle") == []
            assert await raw.exists(index("idle")) == 0
            assert await raw.keys("gate:card:*") == []
            # So does the user's next sign-in: only the new session is left.
            await signed_in(manager, cards, "idle", 3)
            await asyncio.sleep(1.3)
            (fresh,) = await signed_in(manager, cards, "idle", 1)
            assert await raw.smembers(index("idle")) == {str(manager.record_key(fresh)).encode()}
            assert len(await raw.keys("gate:card:*")) == 1
        # Never read again: the index expires by itself with its sessions' absolute end.
        await raw.flushall()
        async with manager_on(redis_server, lifetime=2) as (manager, cards):
            await signed_in(manager, cards, "gone", 2)
            ttl = await raw.pttl(index("gone"))
            assert 1000 < ttl <= 2000, ttl
            await asyncio.sleep(2.3)
            assert await raw.keys("gate:*") == []
    finally:
        await raw.aclose()


async def test_on_a_cluster_the_index_is_read_pruned_and_ended_across_slots() -> None:
    # Records, cards and the index hash to different slots (masters): the pipelines split.
    with redis_cluster(3) as cluster:
        store = open_store(cluster.url, timeout=2.0)
        cards = SessionCards(store, b"c" * 32)
        manager = SessionManager(
            store,
            b"s" * 32,
            lifetime=3600,
            on_end=invalidation_for(store).ended,
            companions=lambda record: (SessionCards.key(record),),
        )
        try:
            cookies = await signed_in(manager, cards, "spread", 6)
            gone = manager.record_key(cookies[0])
            assert gone
            await store.delete(gone)  # expired
            assert len(await manager.live_records("spread")) == 5
            assert await store.get(SessionCards.key(gone.rsplit(":", 1)[-1])) is None
            assert await manager.end_all("spread") == 5
            assert [await manager.load(c) for c in cookies] == [None] * 6
            sizes = [int(n.command("DBSIZE").strip(":\r\n")) for n in cluster.masters]
            assert sum(sizes) == 0, sizes
        finally:
            await store.close()
