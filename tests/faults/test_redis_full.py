"""Issue 18.2: Redis at ``maxmemory`` with ``noeviction`` under steady load. Reads still work and
writes are refused ("OOM command not allowed"): signed-in users go on (from the cache and the
store; their activity writes are skipped), new sign-ins get a clear 503 page, nothing answers
500, and the condition shows in metrics and readyz (ready, with a warning: every replica shares
the store, so failing readiness would take the signed-in users down too). Freeing memory ends
it by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import redis

from tests.faults.harness import (
    Load,
    healthy_upstream,
    load_client,
    pool_env,
    serve,
    signed_in_cookie,
    steady_load,
)
from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import RedisProcess, start_redis_server
from tests.support.stack import CSRF_FIELD

pytestmark = pytest.mark.faults

PASSWORD = "Faults-redis-full-1!"
USERS = 20
# Seconds: activity is written every IDLE/4 = 7.5 s, so the 8 s of load cross it for every
# session. Refused while Redis is full, so each session idles out IDLE after its sign-in: with
# 20 s a slow machine's sign-ins took long enough for the last seconds of load to cross that
# too (users sent to the login page, rightly).
IDLE = 30
# Redis counts client buffers in used_memory, and frees an idle connection's query buffer
# (16 KB) after 2 s, to take it again at its next command: used_memory swings by hundreds of KB
# as the gate's pooled connections go idle and busy in turn (more so with GETs on a connection
# of their own, when the pool carries only writes), and a sign-in (~4 KB) fitted into a dip
# right after the fill. So the limit is then put halfway back to where the fill began: ~3 MB
# from both full and freed, more than the client buffers of a pool grown to its 64 connections
# (~37 KB each while new: 2.4 MB), which it does when every session's activity write falls due.
FULL_GAUGE = "gate_session_store_full"


@pytest.fixture
def small_redis() -> Iterator[RedisProcess]:
    server = start_redis_server(
        extra_args=("--maxmemory", "8mb", "--maxmemory-policy", "noeviction")
    )
    try:
        yield server
    finally:
        server.stop()


def fill(client: redis.Redis) -> int:
    """Write 4 KB values until Redis refuses with OOM; how many went in."""
    value = b"x" * 4096
    written = 0
    while True:
        try:
            pipe = client.pipeline(transaction=False)
            for i in range(50):
                pipe.set(f"fill:{written + i}", value)
            pipe.execute()
            written += 50
        except redis.exceptions.OutOfMemoryError:
            return written


async def try_sign_in(http: aiohttp.ClientSession, base: str) -> tuple[int, str]:
    """A fresh browser's sign-in: the login page, then the form. (status, page) of the first
    answer that is not the way forward."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(base + "/_auth/login", headers={"Accept": "text/html"}) as resp:
            page = await resp.text()
            if resp.status != 200:
                return resp.status, page
        match = CSRF_FIELD.search(page)
        assert match, page
        form = {"csrf": match.group(1), "username": "uma", "password": PASSWORD}
        async with browser.post(
            base + "/_auth/login",
            data=form,
            headers={"Accept": "text/html"},
            allow_redirects=False,
        ) as resp:
            return resp.status, await resp.text()


async def test_full_redis_refuses_new_sign_ins_and_keeps_signed_in_users(
    double: CognitoDouble, small_redis: RedisProcess, tmp_path: Path
) -> None:
    pool_id = double.create_pool()
    client_id, _ = double.create_client(pool_id, secret=False)
    double.add_user(pool_id, "uma", PASSWORD)
    env = {
        **pool_env(double, pool_id, client_id),
        "GATE_SESSION_STORE_URL": small_redis.url,
        "GATE_SESSION_IDLE_TIMEOUT": str(IDLE),
    }
    async with healthy_upstream() as upstream:
        env["GATE_UPSTREAM_URL"] = upstream
        async with serve(env, tmp_path) as served, load_client() as http:
            direct = redis.Redis(port=small_redis.port)
            before = direct.info("memory")["used_memory"]
            cookies = [await signed_in_cookie(served.base, "uma", PASSWORD) for _ in range(USERS)]
            per_session = (direct.info("memory")["used_memory"] - before) / USERS
            unfilled = direct.info("memory")["used_memory"]
            filled = fill(direct)
            limit = (unfilled + direct.info("memory")["used_memory"]) // 2
            direct.config_set("maxmemory", limit)
            print(
                f"\n{per_session:.0f} bytes per session; filled {filled} x 4 KB, "
                f"used {direct.info('memory')['used_memory_human']}, limit now {limit}"
            )

            signins: list[tuple[int, str]] = []

            async def sign_ins() -> None:
                for _ in range(10):
                    signins.append(await try_sign_in(http, served.base))
                    await asyncio.sleep(0.5)

            attempts = asyncio.create_task(sign_ins())
            load = Load()
            # Each signed-in user's own stream; together ~150 req/s for 8 s (crossing the
            # 7.5 s activity write of every session).
            await asyncio.gather(
                *(
                    steady_load(
                        http,
                        served.base,
                        ["/app"],
                        rate=150 / USERS,
                        seconds=8,
                        headers={"Cookie": c, "Accept": "text/html"},
                        load=load,
                    )
                    for c in cookies
                )
            )
            await attempts
            metrics = await served.metrics(http)
            async with http.get(served.base + "/_auth/readyz") as resp:
                ready_status, ready = resp.status, await resp.json()

            # Memory freed: the next sign-in works, and the warning goes.
            freed_at = time.monotonic()
            direct.delete(*direct.scan_iter("fill:*", count=1000))
            status, _ = await try_sign_in(http, served.base)
            recovered = time.monotonic() - freed_at
            metrics_after = await served.metrics(http)
            async with http.get(served.base + "/_auth/readyz") as resp:
                ready_after = await resp.json()
            log = served.log_lines()

    statuses = Load.statuses(load.outcomes)
    print(
        f"signed-in: {dict(statuses)} slowest {Load.slowest(load.outcomes):.2f}s; "
        f"sign-ins: {[s for s, _ in signins]}; readyz {ready_status} {ready}; "
        f"recovered in {recovered:.2f}s; gauge {metrics.get(FULL_GAUGE)}"
    )
    assert statuses == {200: len(load.outcomes)}, statuses
    assert all(s == 503 for s, _ in signins), signins
    assert all("temporarily unavailable" in page and "try again" in page for _, page in signins)
    assert not any(e.get("status") == 500 for e in log)
    assert not [e for e in log if e.get("level") == "error"]
    assert metrics[FULL_GAUGE] == 1
    assert ready_status == 200 and ready["ready"] is True
    assert any("full" in w for w in ready["warnings"]), ready
    assert status == 303
    assert metrics_after[FULL_GAUGE] == 0
    assert not ready_after.get("warnings"), ready_after
