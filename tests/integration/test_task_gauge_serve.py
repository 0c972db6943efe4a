"""``gate_asyncio_tasks`` from a real ``cognito-gate serve``: held requests and WebSockets raise
it, and it comes back down when they end (what the long-day soak watches for leaks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.faults.harness import Served, pool_env, serve, signed_in_cookie
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import echo_ws, serving

PASSWORD = "Tasks-pass-1!"
HELD = 20


@asynccontextmanager
async def holding_upstream(release: asyncio.Event, arrived: asyncio.Event) -> AsyncIterator[str]:
    """/hold answers once ``release`` is set (``arrived`` is set when HELD are waiting); /ws
    echoes."""
    waiting = 0

    async def hold(request: web.Request) -> web.Response:
        nonlocal waiting
        waiting += 1
        if waiting == HELD:
            arrived.set()
        await release.wait()
        return web.Response(text="released")

    app = web.Application()
    app.router.add_get("/hold", hold)
    app.router.add_get("/ws", echo_ws)
    async with serving(app) as url:
        yield url


async def tasks(served: Served, http: aiohttp.ClientSession) -> float:
    return (await served.metrics(http))["gate_asyncio_tasks"]


async def settled(served: Served, http: aiohttp.ClientSession, at_most: float) -> float:
    """The count once it is at most ``at_most`` (closing connections end a loop turn later)."""
    deadline = time.monotonic() + 10
    # Polling another process's metrics: there is nothing to wait on.
    while (now := await tasks(served, http)) > at_most and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    return now


async def test_held_requests_and_websockets_raise_the_task_count_and_it_falls_after(
    double: CognitoDouble, tmp_path: Path
) -> None:
    pool_id = double.create_pool()
    client_id, _ = double.create_client(pool_id, secret=False)
    double.add_user(pool_id, "tia", PASSWORD)
    release, arrived = asyncio.Event(), asyncio.Event()
    async with holding_upstream(release, arrived) as upstream:
        env = {**pool_env(double, pool_id, client_id), "GATE_UPSTREAM_URL": upstream}
        async with serve(env, tmp_path) as served, aiohttp.ClientSession() as metrics_http:
            cookie = await signed_in_cookie(served.base, "tia", PASSWORD)
            idle = await settled(served, metrics_http, at_most=float("inf"))
            assert idle >= 1
            # Each held request on its own connection, as browsers send them.
            clients = [aiohttp.ClientSession(headers={"Cookie": cookie}) for _ in range(HELD)]
            try:
                held = [asyncio.ensure_future(c.get(served.base + "/hold")) for c in clients]
                await asyncio.wait_for(arrived.wait(), 15)
                busy = await tasks(served, metrics_http)
                assert busy >= idle + HELD  # at least one task per held request

                sockets = [await c.ws_connect(served.base + "/ws") for c in clients[:5]]
                for sock in sockets:
                    await sock.send_str("hi")
                    assert (await sock.receive(timeout=5)).data == "hi"
                assert await tasks(served, metrics_http) > busy  # relays are tasks too

                release.set()
                for answer in await asyncio.gather(*held):
                    assert answer.status == 200
                    assert await answer.text() == "released"
                for sock in sockets:
                    await sock.close()
            finally:
                for c in clients:
                    await c.close()
            # Back to where it was: nothing the held requests started lives on.
            assert await settled(served, metrics_http, at_most=idle + 2) <= idle + 2
