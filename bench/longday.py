"""A long day (issue 18.5): `python bench/soak.py --minutes N [--rate R]`. Not part of CI.

One `cognito-gate serve` on a private redis-server, the strict Cognito double with short-lived
tokens (so sessions refresh all day), and a mixed, steady load for N minutes: signed-in page
loads at --rate a second, a sign-in and a sign-out every second (so the number of sessions stays
level), a 1 MB download every two seconds, a WebSocket opened, echoed and closed every second.
Every 10 s it samples the gate's RSS, open file descriptors and Redis' key count; at the end it
checks that they are flat after warm-up (the first quarter) and that every log line is JSON.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from proxy.demo import free_port  # noqa: E402
from tests.faults.harness import load_client, pool_env, serve  # noqa: E402
from tests.support.cognito_double import running_double  # noqa: E402
from tests.support.redis_server import start_redis_server  # noqa: E402
from tests.support.stack import CSRF_FIELD  # noqa: E402

PASSWORD = "Long-day-pass-1!"
MB = b"\x5a" * (1024 * 1024)
SAMPLE_EVERY = 10.0


async def _upstream() -> tuple[web.AppRunner, str]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=MB)

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            await sock.send_str(msg.data)
        return sock

    app = web.Application()
    app.router.add_get("/big", big)
    app.router.add_get("/ws", ws)
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def _sign_in(base: str) -> str | None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(base + "/_auth/login") as resp:
            csrf = CSRF_FIELD.search(await resp.text())
        if not csrf:
            return None
        form = {"csrf": csrf.group(1), "username": "day", "password": PASSWORD}
        async with browser.post(base + "/_auth/login", data=form, allow_redirects=False) as resp:
            if resp.status != 303:
                return None
        return "; ".join(f"{m.key}={m.value}" for m in browser.cookie_jar)


async def run(minutes: float, rate: float) -> int:
    statuses: Counter[str] = Counter()
    samples: list[dict[str, float]] = []
    with running_double(token_ttl=60) as double, tempfile.TemporaryDirectory() as tmp:
        pool_id = double.create_pool()
        client_id, _ = double.create_client(pool_id, secret=False)
        double.add_user(pool_id, "day", PASSWORD)
        redis = start_redis_server()
        runner, upstream = await _upstream()
        try:
            env = {
                **pool_env(double, pool_id, client_id),
                "GATE_UPSTREAM_URL": upstream,
                "GATE_SESSION_STORE_URL": redis.url,
            }
            async with serve(env, Path(tmp)) as served, load_client() as http:
                sessions = [c for c in [await _sign_in(served.base) for _ in range(50)] if c]
                end = time.monotonic() + minutes * 60
                loop_tasks: set[asyncio.Task[None]] = set()

                async def get(path: str, cookie: str, kind: str) -> None:
                    try:
                        async with http.get(served.base + path, headers={"Cookie": cookie}) as r:
                            await r.read()
                            statuses[f"{kind} {r.status}"] += 1
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        statuses[f"{kind} {type(exc).__name__}"] += 1

                async def websocket(cookie: str) -> None:
                    try:
                        async with http.ws_connect(
                            served.base.replace("http", "ws") + "/ws", headers={"Cookie": cookie}
                        ) as sock:
                            await sock.send_str("hi")
                            msg = await sock.receive(timeout=10)
                            statuses[f"ws {'ok' if msg.data == 'hi' else 'bad'}"] += 1
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        statuses[f"ws {type(exc).__name__}"] += 1

                async def churn() -> None:
                    # One sign-in and one sign-out a second: the session count stays level.
                    cookie = await _sign_in(served.base)
                    statuses["sign-in " + ("ok" if cookie else "failed")] += 1
                    if cookie:
                        sessions.append(cookie)
                    if len(sessions) > 50:
                        old = sessions.pop(0)
                        headers = {"Cookie": old, "Origin": served.base}
                        async with http.get(served.base + "/_auth/logout", headers=headers) as r:
                            csrf = CSRF_FIELD.search(await r.text())
                        if csrf:
                            async with http.post(
                                served.base + "/_auth/logout",
                                data={"csrf": csrf.group(1)},
                                headers=headers,
                                allow_redirects=False,
                            ) as r:
                                statuses[f"logout {r.status}"] += 1
                        else:
                            statuses["logout no-form"] += 1

                def spawn(coro: Any) -> None:
                    task = asyncio.create_task(coro)
                    loop_tasks.add(task)
                    task.add_done_callback(loop_tasks.discard)

                next_sample = time.monotonic()
                tick = 0
                while time.monotonic() < end:
                    tick += 1
                    spawn(get("/page", random.choice(sessions), "page"))
                    if tick % int(rate) == 0:
                        spawn(churn())
                        spawn(websocket(random.choice(sessions)))
                    if tick % int(2 * rate) == 0:
                        spawn(get("/big", random.choice(sessions), "1MB"))
                    if time.monotonic() >= next_sample:
                        next_sample += SAMPLE_EVERY
                        import redis as redis_py

                        keys = redis_py.Redis(port=redis.port).dbsize()
                        samples.append(
                            {
                                "t": tick / rate,
                                "rss": served.rss_mb(),
                                "fds": served.fds(),
                                "keys": float(keys),
                                "sessions": len(sessions),
                            }
                        )
                        print(json.dumps(samples[-1]), flush=True)
                    await asyncio.sleep(1 / rate)
                await asyncio.gather(*loop_tasks, return_exceptions=True)
                bad_lines = 0
                lines = served.log.read_text(encoding="utf-8").splitlines()
                for line in lines:
                    try:
                        json.loads(line)
                    except ValueError:
                        bad_lines += 1
                refreshes = sum(1 for op, _ in double.calls if op == "GetTokensFromRefreshToken")
                import redis as redis_py

                kinds = Counter(
                    k.decode().rsplit(":", 1)[0]
                    for k in redis_py.Redis(port=redis.port).scan_iter()
                )
        finally:
            await runner.cleanup()
            redis.stop()
    warm = samples[len(samples) // 4 :]
    spread = {k: (min(s[k] for s in warm), max(s[k] for s in warm)) for k in ("rss", "fds", "keys")}
    print(f"statuses: {dict(sorted(statuses.items()))}")
    print(f"after warm-up (min, max): {spread}; refreshes: {refreshes}")
    print(f"log lines: {len(lines)}, not JSON: {bad_lines}; Redis keys by prefix: {dict(kinds)}")
    return 0 if bad_lines == 0 else 1
