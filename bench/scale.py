"""Sessions at scale (issue 18.6): `python bench/scale.py [--sessions 100000]`. Not part of CI.

One `cognito-gate serve` on a private redis-server (session cache off, so every signed-in
request reads Redis), the strict Cognito double. Measured near-empty, after --sessions sessions
have been written into the same Redis, and near-empty again once they are flushed: sign-in
latency (login page and form post, through the double), signed-in request latency (one
connection, then 20 at once), and "sign out everywhere" for a user with 50 sessions.

The sessions are written by the real SessionManager and SessionCards (the same keys, the
cookie secret's derived keys, records sealed in the real format, index entries by the real
script), with one real signed-in session's tokens; only the sending is batched: the store's
commands go out on a pipeline. Redis' `used_memory` before and after gives the bytes per
session, cards and index included.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from proxy.app import derive_key  # noqa: E402
from proxy.auth.session_cards import SessionCards  # noqa: E402
from proxy.sessions.redis import RedisStore  # noqa: E402
from proxy.sessions.session import Session, SessionManager  # noqa: E402
from tests.faults.harness import healthy_upstream, pool_env, serve  # noqa: E402
from tests.support.cognito_double import running_double  # noqa: E402
from tests.support.redis_server import start_redis_server  # noqa: E402
from tests.support.stack import COOKIE_SECRET, CSRF_FIELD  # noqa: E402

PASSWORD = "Scale-pass-1!"
LIFETIME = 12 * 3600  # the default GATE_SESSION_LIFETIME
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
BATCH = 1000
REPEAT = 3  # request measurements per phase (the median run is reported)


class _Queued(RedisStore):
    """RedisStore over a pipeline: its own commands (SET PX, the index script), queued and sent
    in batches. A pipeline answers no reads, so the index looks empty: nothing to prune."""

    __slots__ = ()

    async def members(self, key: str) -> frozenset[str]:
        return frozenset()


def _clone(template: Session, sub: str) -> Session:
    now = time.time()
    claims = {**template.claims, "sub": sub, "cognito:username": sub}
    return dataclasses.replace(
        template, username=sub, sub=sub, claims=claims, created_at=now, last_seen=now
    )


async def populate(
    redis: Redis, template: Session, users: Sequence[tuple[str, int]], *, clone: bool = True
) -> dict[str, list[str]]:
    """Sessions for each (sub, count), written as sign-ins write them; the cookies, by sub."""
    cookies: dict[str, list[str]] = {}
    pipe = redis.pipeline(transaction=False)
    store = _Queued(pipe)
    manager = SessionManager(store, derive_key(COOKIE_SECRET, "session"), lifetime=LIFETIME)
    cards = SessionCards(store, derive_key(COOKIE_SECRET, "cards"))
    queued = 0
    for sub, count in users:
        for _ in range(count):
            fresh = _clone(template, sub) if clone else dataclasses.replace(template)
            cookie = await manager.create(fresh)
            record = manager.record_hash(cookie)
            assert record is not None
            ip = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(256)}"
            await cards.record(record, user_agent=FIREFOX, ip=ip, ttl=LIFETIME)
            cookies.setdefault(sub, []).append(cookie)
            queued += 1
            if queued % BATCH == 0:
                await pipe.execute()
    await pipe.execute()
    return cookies


async def template_session(redis: Redis, cookie_header: str) -> Session:
    """The record behind a real sign-in's cookie: real tokens and claims to copy."""
    value = next(p.split("=", 1)[1] for p in cookie_header.split("; ") if p.startswith("gate="))
    manager = SessionManager(
        RedisStore(redis), derive_key(COOKIE_SECRET, "session"), lifetime=LIFETIME
    )
    session = await manager.load(value)
    assert session is not None
    return session


async def sign_in(base: str, username: str) -> tuple[float, str]:
    """(seconds for the login page and the form post, Cookie header) of one fresh browser."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        began = time.perf_counter()
        async with browser.get(base + "/_auth/login") as resp:
            csrf = CSRF_FIELD.search(await resp.text())
        assert csrf
        form = {"csrf": csrf.group(1), "username": username, "password": PASSWORD}
        async with browser.post(base + "/_auth/login", data=form, allow_redirects=False) as resp:
            assert resp.status == 303, resp.status
        took = time.perf_counter() - began
        return took, "; ".join(f"{m.key}={m.value}" for m in browser.cookie_jar)


async def requests(base: str, cookies: Sequence[str], n: int, concurrency: int) -> list[float]:
    """``n`` signed-in GETs, each with a cookie picked at random, ``concurrency`` at once."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as http:

        async def worker(count: int) -> None:
            for _ in range(count):
                headers = {"Cookie": "gate=" + random.choice(cookies), "Accept": "application/json"}
                began = time.perf_counter()
                async with http.get(base + "/app", headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                latencies.append(time.perf_counter() - began)

        await worker(20)  # warm the connections
        latencies.clear()
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    return latencies


async def sign_out_everywhere(base: str, cookie: str) -> float:
    headers = {"Cookie": "gate=" + cookie}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(base + "/_auth/logout", headers=headers) as resp:
            csrf = CSRF_FIELD.search(await resp.text())
        assert csrf
        began = time.perf_counter()
        async with http.post(
            base + "/_auth/logout",
            data={"csrf": csrf.group(1), "everywhere": "1"},
            headers=headers,
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303, resp.status
        took = time.perf_counter() - began
        async with http.get(base + "/app", headers={**headers, "Accept": "application/json"}) as r:
            assert r.status == 401, r.status
        return took


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(values: Sequence[float], q: float) -> str:
    return f"{quantile(values, q) * 1000:.2f}"


def runs_ms(runs: Sequence[Sequence[float]], q: float) -> str:
    """The median over the runs of each run's quantile ``q``."""
    return f"{statistics.median(quantile(r, q) for r in runs) * 1000:.2f}"


async def fifty_signed_out(
    base: str, redis: Redis, double: Any, pool_id: str, phase: str, rep: int
) -> float:
    """A user signs in once for real and has 49 more sessions like it; the seconds its
    "sign out everywhere" takes (GlobalSignOut at the double included)."""
    user = f"fifty-{phase}-{rep}"
    double.add_user(pool_id, user, PASSWORD)
    _, header = await sign_in(base, user)
    real = await template_session(redis, header)
    await populate(redis, real, [(user, 49)], clone=False)
    return await sign_out_everywhere(base, header.split("gate=", 1)[1].split(";", 1)[0])


async def sign_ins(
    base: str, double: Any, pool_id: str, phase: str
) -> tuple[list[float], list[str]]:
    """40 sign-ins of 40 new users: their latencies and cookie values."""
    took, cookies = [], []
    for i in range(40):
        double.add_user(pool_id, f"{phase}-{i}", PASSWORD)
        seconds, header = await sign_in(base, f"{phase}-{i}")
        took.append(seconds)
        cookies.append(header.split("gate=", 1)[1].split(";", 1)[0])
    return took, cookies


async def run(sessions: int) -> int:
    with running_double() as double, tempfile.TemporaryDirectory() as tmp:
        pool_id = double.create_pool()
        client_id, _ = double.create_client(pool_id, secret=False)
        double.add_user(pool_id, "template", PASSWORD)
        server = start_redis_server()
        redis = Redis.from_url(server.url)
        try:
            async with healthy_upstream() as upstream:
                env = {
                    **pool_env(double, pool_id, client_id),
                    "GATE_UPSTREAM_URL": upstream,
                    "GATE_SESSION_STORE_URL": server.url,
                    "GATE_SESSION_CACHE_TTL": "0",
                }
                async with serve(env, Path(tmp)) as served:
                    base = served.base
                    _, header = await sign_in(base, "template")
                    template = await template_session(redis, header)
                    for _ in range(10):  # warm-up: connections, JWKS, first-call costs
                        await sign_in(base, "template")
                    rows: dict[str, dict[str, Any]] = {}
                    memory: dict[str, float] = {}
                    # Near-empty, full, then near-empty again (everything flushed): on a shared
                    # machine the two near-empty rows show how much is noise.
                    for phase in ("empty", "full", "again"):
                        if phase == "again":
                            await redis.flushdb(asynchronous=True)
                        if phase == "full":
                            await redis.execute_command("MEMORY", "PURGE")
                            before = (await redis.info("memory"))["used_memory"]
                            keys_before = await redis.dbsize()
                            began = time.perf_counter()
                            populated = await populate(
                                redis, template, [(f"u{i}", 1) for i in range(sessions)]
                            )
                            memory["seconds"] = time.perf_counter() - began
                            await redis.execute_command("MEMORY", "PURGE")
                            after = (await redis.info("memory"))["used_memory"]
                            memory["keys"] = await redis.dbsize() - keys_before
                            memory["per_session"] = (after - before) / sessions
                            memory["total_mb"] = (after - before) / 2**20
                            sample = random.choice(populated["u0"])
                            store = RedisStore(redis)
                            manager = SessionManager(
                                store, derive_key(COOKIE_SECRET, "session"), lifetime=LIFETIME
                            )
                            key = manager.record_key(sample)
                            record_hash = manager.record_hash(sample)
                            assert key and record_hash
                            for name, k in (
                                ("record", key),
                                ("card", SessionCards.key(record_hash)),
                                ("index", SessionManager._index_key("u0")),  # noqa: SLF001
                            ):
                                memory[name] = await redis.memory_usage(k, samples=0) or 0
                            memory["record_value"] = len(await redis.get(key) or b"")
                            random_cookies = [
                                c
                                for i in random.sample(range(sessions), 2000)
                                for c in populated[f"u{i}"]
                            ]
                        load = os.getloadavg()[0]
                        signin, signed_in = await sign_ins(base, double, pool_id, phase)
                        request_cookies = random_cookies if phase == "full" else signed_in
                        runs: dict[str, list[list[float]]] = {"one": [], "many": []}
                        for _ in range(REPEAT):
                            runs["one"].append(await requests(base, request_cookies, 3000, 1))
                            runs["many"].append(await requests(base, request_cookies, 4000, 20))
                        everywhere = []
                        for rep in range(5):
                            everywhere.append(
                                await fifty_signed_out(base, redis, double, pool_id, phase, rep)
                            )
                        rows[phase] = {
                            "dbsize": await redis.dbsize(),
                            "signin": signin,
                            **runs,
                            "everywhere": everywhere,
                            "load": (load + os.getloadavg()[0]) / 2,
                        }
        finally:
            await redis.aclose()
            server.stop()
    print(
        f"\n{sessions:,} sessions written in {memory['seconds']:.1f} s "
        f"({memory['keys']:,} keys); used_memory +{memory['total_mb']:.0f} MiB: "
        f"{memory['per_session']:,.0f} bytes per session (record, card, index entry, "
        f"and Redis' per-key overhead). MEMORY USAGE of one: record {memory['record']:,.0f} "
        f"(sealed value {memory['record_value']:,.0f}), card {memory['card']:,.0f}, one-member "
        f"index {memory['index']:,.0f}. The double's tokens: ID {len(template.id_token):,}, "
        f"access {len(template.access_token):,}, refresh {len(template.refresh_token or ''):,} "
        "characters"
    )
    print(
        f"\n| Redis holds | keys | load avg | sign-in p50 / p90 ms (40) | request p50 / p99 ms, 1"
        f" conn (median of {REPEAT} x 3000) | request p50 / p99 ms, 20 conns (median of {REPEAT}"
        " x 4000) | sign out everywhere, 50 sessions, median ms (5) |"
    )
    print("|---|---|---|---|---|---|---|")
    for phase, row in rows.items():
        label = {
            "empty": "near-empty",
            "full": f"{sessions:,} sessions",
            "again": "near-empty again (flushed)",
        }[phase]
        print(
            f"| {label} | {row['dbsize']:,} | {row['load']:.1f}"
            f" | {ms(row['signin'], 0.5)} / {ms(row['signin'], 0.9)}"
            f" | {runs_ms(row['one'], 0.5)} / {runs_ms(row['one'], 0.99)}"
            f" | {runs_ms(row['many'], 0.5)} / {runs_ms(row['many'], 0.99)}"
            f" | {statistics.median(row['everywhere']) * 1000:.1f} |"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000, help="sessions in Redis")
    args = parser.parse_args(argv)
    if args.sessions < 2000:
        parser.error("--sessions must be at least 2000")
    return asyncio.run(run(args.sessions))


if __name__ == "__main__":
    sys.exit(main())
