"""GETs pipelined on one connection (proxy/sessions/pipelined.py): each caller gets its own
key's reply or an error, never another's, whatever fails around it. A reply handed to the
wrong GET would give one browser another's sealed record (refused by its encryption: the user
is sent to the login page) or "no session" for a live one: both a correctness and a security
failure. Against a real redis-server, and a scripted one for replies cut or out of step."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import hiredis
import pytest
import redis

from proxy.sessions.redis import RedisStore
from proxy.sessions.store import StoreUnavailable
from tests.support.redis_server import RedisProcess, start_redis_server

pytestmark = pytest.mark.integration

TIMEOUT = 0.5


def clients(port: int, password: str | None = None) -> list[dict[str, str]]:
    """CLIENT LIST as dicts, this inspecting connection left out."""
    direct = redis.Redis(port=port, password=password)
    try:
        me = direct.client_id()
        return [c for c in direct.client_list() if int(c["id"]) != me]
    finally:
        direct.close()


async def link_up(store: RedisStore, key: str) -> None:
    """A GET or two (the first starts the pipelined connection in the background)."""
    await store.get(key)
    await asyncio.sleep(0.05)
    await store.get(key)


# -- the stress test: a real server, killed and restarted mid-flight ---------------------------


@dataclass
class Keys:
    """Values that name their key (any swap shows), of many sizes (replies split across reads),
    empty ones and missing keys (replies that are falsy: b"" and nil), and keys holding a set
    (an error reply, which takes its place in the order like any other)."""

    values: dict[str, bytes] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    wrong_type: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, rng: random.Random) -> Keys:
        keys = cls()
        for i in range(300):
            key = f"gate:s:{i:04d}"
            size = rng.choice((0, 0, 10, 100, 1000, 4000, 20000, 150000))
            keys.values[key] = b"" if size == 0 else (key.encode() + b"=" + os.urandom(size))
        keys.missing = [f"gate:s:missing-{i}" for i in range(30)]
        keys.wrong_type = [f"gate:set:{i}" for i in range(5)]
        return keys

    def all(self) -> list[str]:
        return [*self.values, *self.missing, *self.wrong_type]

    def write(self, port: int) -> None:
        direct = redis.Redis(port=port)
        try:
            pipe = direct.pipeline(transaction=False)
            for key, value in self.values.items():
                pipe.set(key, value)
            for key in self.wrong_type:
                pipe.sadd(key, "member")
            pipe.execute()
        finally:
            direct.close()


async def test_every_caller_gets_its_own_keys_reply_through_cancellations_and_restarts() -> None:
    rng = random.Random(1203)
    keys = Keys.make(rng)
    server = start_redis_server()
    keys.write(server.port)
    store = RedisStore.from_url(server.url, timeout=TIMEOUT)
    # Set while the server may not hold what Keys wrote: from a kill until the rewrite.
    emptied = False
    outcomes: Counter[str] = Counter()
    wrong: list[tuple[str, str]] = []
    names = keys.all()

    async def one(key: str) -> None:
        was_emptied = emptied
        action = rng.random()
        try:
            if action < 0.15:  # the caller's own deadline, often before the reply is back
                value = await asyncio.wait_for(store.get(key), rng.uniform(0, 0.003))
            else:
                value = await store.get(key)
        except TimeoutError:
            outcomes["timed out"] += 1
            return
        except asyncio.CancelledError:
            outcomes["cancelled"] += 1
            raise
        except StoreUnavailable as exc:
            if key in keys.wrong_type and "WRONGTYPE" in str(exc.__cause__):
                outcomes["wrong type"] += 1
            else:
                outcomes["unavailable"] += 1
            return
        if key in keys.wrong_type:
            if value is None and (was_emptied or emptied):
                outcomes["emptied"] += 1
            else:
                wrong.append((key, f"a value {value!r:.40} for a set"))
        elif key in keys.missing:
            if value is None:
                outcomes["nil"] += 1
            else:
                wrong.append((key, f"{value!r:.40} for a missing key"))
        elif value == keys.values[key]:
            outcomes["own value"] += 1
        elif value is None and (was_emptied or emptied):
            outcomes["emptied"] += 1
        else:
            wrong.append((key, f"{value!r:.40}, not its own {keys.values[key]!r:.40}"))

    async def burst(n: int) -> None:
        tasks = [asyncio.create_task(one(rng.choice(names))) for _ in range(n)]
        await asyncio.sleep(0)
        for task in rng.sample(tasks, n // 10):  # cancelled at once, or a little later
            if rng.random() < 0.5:
                task.cancel()
            else:
                asyncio.get_running_loop().call_later(rng.uniform(0, 0.002), task.cancel)
        if rng.random() < 0.3:
            time.sleep(rng.uniform(0, 0.01))  # noqa: ASYNC251  (a busy loop: replies pile up)
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        started = time.monotonic()
        kills = 0
        while time.monotonic() - started < 8:
            await asyncio.gather(*(burst(rng.randint(1, 120)) for _ in range(4)))
            if kills < 3 and time.monotonic() - started > 2 * (kills + 1):
                # Killed with GETs in flight, back on the same port, empty until rewritten.
                flight = [asyncio.create_task(one(rng.choice(names))) for _ in range(200)]
                await asyncio.sleep(0.001)
                emptied = True
                os.kill(server.pid, signal.SIGKILL)
                server.stop()
                await asyncio.gather(*flight, return_exceptions=True)
                server = start_redis_server(port=server.port)
                await asyncio.gather(*(burst(50) for _ in range(4)))
                keys.write(server.port)
                emptied = False
                kills += 1
        # A hung server: the GETs queued time out; those sent after them, once it answers
        # again, get their own replies, not the late ones of the GETs that timed out.
        server.pause()
        try:
            hung = [asyncio.create_task(one(rng.choice(names))) for _ in range(100)]
            await asyncio.sleep(TIMEOUT * 1.2)
            hung += [asyncio.create_task(one(rng.choice(names))) for _ in range(100)]
            await asyncio.sleep(0.01)
        finally:
            server.resume()
        await asyncio.gather(*hung, return_exceptions=True)
        # After all that, a quiet round: every answer is right, and none is an error.
        outcomes_before = outcomes.copy()
        await asyncio.gather(*(one(k) for k in names if k not in keys.wrong_type))
        quiet = outcomes - outcomes_before
    finally:
        await store.close()
        server.stop()
    print(f"\n{dict(outcomes)}")
    assert not wrong, wrong[:10]
    assert kills == 3
    assert set(quiet) <= {"own value", "nil", "timed out"}, quiet
    # The test saw what it is about: plenty of answers, timeouts and cancellations, errors.
    assert outcomes["own value"] > 5000 and outcomes["nil"] > 300, outcomes
    assert outcomes["timed out"] > 500 and outcomes["cancelled"] > 500, outcomes
    assert outcomes["wrong type"] > 50, outcomes


# -- properties on a real server ---------------------------------------------------------------


async def test_concurrent_gets_share_one_connection(redis_server: RedisProcess) -> None:
    store = RedisStore.from_url(redis_server.url, timeout=TIMEOUT)
    try:
        await store.set("gate:s:k", b"v", 60)
        await link_up(store, "gate:s:k")
        values = await asyncio.gather(*(store.get("gate:s:k") for _ in range(200)))
        assert values == [b"v"] * 200
        # redis-py's pool would have opened a connection per concurrent GET (up to 64).
        connected = clients(redis_server.port)
        assert len(connected) <= 3, connected
        assert any(c["cmd"] == "get" for c in connected), connected
    finally:
        await store.close()


async def test_auth_and_db_apply_to_the_pipelined_connection() -> None:
    server = start_redis_server()
    redis.Redis(port=server.port).config_set("requirepass", "pipelined-pw")
    store = RedisStore.from_url(f"redis://:pipelined-pw@127.0.0.1:{server.port}/3", timeout=TIMEOUT)
    try:
        await store.set("gate:s:k", b"in db 3", 60)
        await link_up(store, "gate:s:k")
        assert await store.get("gate:s:k") == b"in db 3"
        getters = [c for c in clients(server.port, "pipelined-pw") if c["cmd"] == "get"]
        assert getters and all(c["db"] == "3" for c in getters), getters
        wrong = RedisStore.from_url(f"redis://:nope@127.0.0.1:{server.port}/3", timeout=TIMEOUT)
        try:
            for _ in range(3):  # never a value, through the pool or a pipelined connection
                with pytest.raises(StoreUnavailable):
                    await wrong.get("gate:s:k")
                await asyncio.sleep(0.05)
        finally:
            await wrong.close()
    finally:
        await store.close()
        server.stop()


async def test_a_hung_server_fails_the_queued_gets_in_one_timeout_and_recovers(
    redis_server: RedisProcess,
) -> None:
    store = RedisStore.from_url(redis_server.url, timeout=TIMEOUT)
    try:
        await store.set("gate:s:a", b"a", 60)
        await store.set("gate:s:b", b"b", 60)
        await link_up(store, "gate:s:a")
        redis_server.pause()
        try:
            start = time.monotonic()
            results = await asyncio.gather(
                store.get("gate:s:a"), store.get("gate:s:b"), return_exceptions=True
            )
            elapsed = time.monotonic() - start
        finally:
            redis_server.resume()
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert TIMEOUT * 0.8 < elapsed < TIMEOUT * 1.8
        # The replies the server sends once resumed go nowhere: that connection is gone.
        for _ in range(5):
            assert await store.get("gate:s:b") == b"b"
            assert await store.get("gate:s:a") == b"a"
            await asyncio.sleep(0.05)
    finally:
        await store.close()


# -- a scripted server: replies cut, late, or out of step ---------------------------------------


@dataclass
class Scripted:
    """Speaks just enough RESP for redis-py's handshake and GET; ``replies`` says what a GET of
    a key gets (raw bytes, written as they are), ``hold`` keys wait until released."""

    replies: dict[bytes, bytes]
    hold: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        parser = hiredis.Reader()
        try:
            while data := await reader.read(65536):
                parser.feed(data)
                while (command := parser.gets()) is not False:
                    name = command[0].upper()
                    if name == b"PING":
                        writer.write(b"+PONG\r\n")
                    elif name != b"GET":
                        writer.write(b"+OK\r\n")
                    else:
                        key = command[1]
                        if key.startswith(b"held:"):
                            await writer.drain()
                            await self.hold.wait()
                        writer.write(self.replies.get(key, b"$-1\r\n"))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def scripted(replies: dict[bytes, bytes]) -> AsyncIterator[Scripted]:
    fake = Scripted(replies)
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.close()


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


async def scripted_store(fake: Scripted) -> RedisStore:
    store = RedisStore.from_url(fake.url, timeout=TIMEOUT)
    await link_up(store, "warm")
    return store


async def test_a_cancelled_get_leaves_its_place_for_its_reply() -> None:
    replies = {b"held:a": bulk(b"A"), b"b": bulk(b"B"), b"c": bulk(b""), b"d": b"$-1\r\n"}
    async with scripted(replies) as fake:
        store = await scripted_store(fake)
        try:
            a = asyncio.create_task(store.get("held:a"))
            await asyncio.sleep(0.01)
            rest = [asyncio.create_task(store.get(k)) for k in ("b", "c", "d", "b")]
            await asyncio.sleep(0.01)
            a.cancel()  # its reply is still to come, ahead of the others'
            fake.hold.set()
            assert await asyncio.gather(*rest) == [b"B", b"", None, b"B"]
            assert fake.connections == 2  # the pool's first GET, and the one pipelined
        finally:
            await store.close()


async def test_a_reply_cut_in_the_middle_gives_the_connection_up() -> None:
    # Half a reply, then nothing: the GET behind it must not take the rest of it later.
    replies = {b"cut": b"$10\r\nhalf", b"x": bulk(b"X")}
    async with scripted(replies) as fake:
        store = await scripted_store(fake)
        try:
            start = time.monotonic()
            results = await asyncio.gather(store.get("cut"), store.get("x"), return_exceptions=True)
            assert TIMEOUT * 0.8 < time.monotonic() - start < TIMEOUT * 1.8
            assert all(isinstance(r, StoreUnavailable) for r in results), results
            assert await store.get("x") == b"X"
            await asyncio.sleep(0.05)
            assert await store.get("x") == b"X"
            assert fake.connections >= 3  # a fresh pipelined connection after the cut one
        finally:
            await store.close()


@pytest.mark.parametrize(
    "odd",
    [b":1\r\n", b"*1\r\n$1\r\nx\r\n", b"?garbage\r\n"],
    ids=["integer", "array", "unparsable"],
)
async def test_a_reply_that_no_get_has_gives_the_connection_up(odd: bytes) -> None:
    # Whatever this connection is in step with, it is not our GETs: nothing more is read from
    # it. (A status reply, +OK, reads as a string, like a value: hiredis does not tell them
    # apart, and Redis answers a GET with no status.)
    replies = {b"odd": odd, b"y": bulk(b"Y"), b"z": bulk(b"Z")}
    async with scripted(replies) as fake:
        store = await scripted_store(fake)
        try:
            results = await asyncio.gather(
                *(store.get(k) for k in ("odd", "y", "z")), return_exceptions=True
            )
            assert isinstance(results[0], StoreUnavailable), results
            assert all(r in (b"Y", b"Z") or isinstance(r, StoreUnavailable) for r in results[1:])
            await asyncio.sleep(0.05)
            for _ in range(3):
                assert await store.get("y") == b"Y"
                assert await store.get("z") == b"Z"
                await asyncio.sleep(0.05)
            assert fake.connections >= 3
        finally:
            await store.close()


async def test_a_reply_nothing_asked_for_gives_the_connection_up() -> None:
    # One GET, two replies: the second must never answer the next GET.
    replies = {b"twice": bulk(b"A") + bulk(b"B"), b"y": bulk(b"Y")}
    async with scripted(replies) as fake:
        store = await scripted_store(fake)
        try:
            assert await store.get("twice") == b"A"
            await asyncio.sleep(0.05)
            for _ in range(3):
                assert await store.get("y") == b"Y"
                await asyncio.sleep(0.05)
            assert fake.connections >= 3
        finally:
            await store.close()
