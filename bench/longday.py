"""A long day (issue 18.5): `python bench/soak.py --minutes N [--rate R]`. Not part of CI.

One `cognito-gate serve` on a private redis-server, the strict Cognito double with 1-minute
tokens (so sessions refresh all day) and the bench upstream in its own process. First a capacity
probe: signed-in page loads as fast as wrk drives them (32 connections, --probe seconds), alone,
then again with the rest of the mix (below) beside them at its share of half the first figure;
the second rate is "capacity". Page loads are 97 % of the mix's requests and the only kind a
generator can drive flat out without itself being the bottleneck; the gate's CPU share is
printed for both phases, so how near "half" the whole mix came is measured, not assumed.

Then N minutes of the mix at R = half that capacity (or --rate): page loads at R a second by
wrk (a Lua script paces requests onto a fixed schedule and rotates 50 resident sessions'
cookies), and in --workers Python processes (python bench/longday.py --worker) per second R/100
sign-ins, each followed by one page load and, once 50 churn sessions are live, a sign-out of the
oldest; R/100 WebSockets opened, echoed and closed; R/200 downloads of 1 MB. The resident
sessions refresh every 30 s while wrk uses them; the churn ones while they live.

Every 10 s it samples the gate's RSS, open file descriptors, Redis' key count, the gate's
``gate_asyncio_tasks`` and CPU time, and the machine's load average. At the end: target and
achieved rate per kind, statuses per kind, each series at the end of warm-up (the first quarter)
and at the end, its min/max after warm-up and whether it is flat (the median of the last third
of the samples after warm-up within a tolerance of the first third's), and whether every log
line is JSON. Exit 0 only if every series is flat, every line is JSON and nothing failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from proxy.demo import free_port  # noqa: E402
from tests.faults.harness import Served, pool_env, serve  # noqa: E402
from tests.support.cognito_double import running_double  # noqa: E402
from tests.support.redis_server import start_redis_server  # noqa: E402
from tests.support.stack import CSRF_FIELD  # noqa: E402

PASSWORD = "Long-day-pass-1!"
SAMPLE_EVERY = 10.0
RESIDENT = 50  # sessions wrk's page loads rotate through; never signed out
CHURN = 50  # sessions live at once among those signed in and out all day
MB = 1024 * 1024
PROBE_CONNECTIONS = 32
# wrk's connections: enough for the rate at 0.25 s a request (the shared machine's slow
# moments), so that one does not hold its schedule back.
RUN_CONNECTIONS = 64
# The load generators yield the CPU to the gate, its upstream and the Cognito double: on a
# shared machine they would otherwise take the gate's share and measure themselves.
NICE = ("nice", "-n", "5")
MAX_CONNECTIONS = 400  # well under the gate's connection cap (1000 by default)
WORKER_START = 3.0  # seconds for a worker process to import and start its schedule
# Flat: the last third's median within max(absolute, 5 %) of the first third's (after warm-up).
TOLERANCE = {"rss": 2.0, "fds": 10.0, "keys": 5.0, "tasks": 10.0}
OK = {"page": {200}, "sign-in": {"ok"}, "logout": {303}, "ws": {"ok"}, "1MB": {200}}

WRK_SCRIPT = """
local cookies = {%(cookies)s}
local rate = %(rate)f
local threads = {}
local n = 0
statuses = {}
function setup(thread) table.insert(threads, thread) end
function request()
  n = n + 1
  return wrk.format("GET", "/page", {["Cookie"] = cookies[(n %% #cookies) + 1]})
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
if rate > 0 then
  -- A fixed schedule: each answer claims the next slot, 1/rate s after the one before; a
  -- schedule more than 1 s behind starts again from now (no burst to catch up).
  local ffi = require("ffi")
  ffi.cdef[[ typedef struct { long s; long ns; } gate_ts; int clock_gettime(int, gate_ts *); ]]
  local ts = ffi.new("gate_ts")
  local function now_ms()
    ffi.C.clock_gettime(1, ts)
    return tonumber(ts.s) * 1000 + tonumber(ts.ns) / 1e6
  end
  local period = 1000 / rate
  local slot = nil
  function delay()
    local t = now_ms()
    if slot == nil or slot < t - 1000 then slot = t end
    slot = slot + period
    return math.max(0, slot - t)
  end
end
function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do all[k] = (all[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(all) do parts[#parts + 1] = string.format('"%%d": %%d', k, v) end
  io.write(string.format(
    'WRK {"requests": %%d, "seconds": %%.3f, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"timeout": %%d, "p50_ms": %%.2f, "p99_ms": %%.2f, "statuses": {%%s}}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, table.concat(parts, ", ")))
end
"""


# -- the Python share of the load: one process per worker --------------------------------------


async def sign_in(base: str, username: str) -> str | None:
    """A browser's sign-in through the gate's pages; the Cookie header that carries it."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(base + "/_auth/login") as resp:
            csrf = CSRF_FIELD.search(await resp.text())
        if not csrf:
            return None
        form = {"csrf": csrf.group(1), "username": username, "password": PASSWORD}
        async with browser.post(base + "/_auth/login", data=form, allow_redirects=False) as resp:
            if resp.status != 303:
                return None
        return "; ".join(f"{m.key}={m.value}" for m in browser.cookie_jar)


async def worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """Sign-ins (each followed by a page load, and a sign-out of the oldest churn session),
    WebSockets and 1 MB downloads, each kind on a fixed schedule of ``cfg["rates"]`` a second."""
    base, residents, keep = cfg["base"], cfg["cookies"], cfg["keep"]
    statuses: Counter[str] = Counter()
    started: Counter[str] = Counter()
    churn: list[str] = []
    running: set[asyncio.Task[None]] = set()
    latest = 0.0  # how far behind its schedule a start was, at worst: the generator's own lag
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=timeout,
    ) as http:

        async def logout(cookie: str) -> None:
            headers = {"Cookie": cookie, "Origin": base}
            async with http.get(base + "/_auth/logout", headers=headers) as r:
                csrf = CSRF_FIELD.search(await r.text())
            if not csrf:
                statuses["logout no-form"] += 1
                return
            form = {"csrf": csrf.group(1)}
            async with http.post(
                base + "/_auth/logout", data=form, headers=headers, allow_redirects=False
            ) as r:
                statuses[f"logout {r.status}"] += 1

        async def signin() -> None:
            cookie = await sign_in(base, cfg["user"])
            statuses["sign-in " + ("ok" if cookie else "failed")] += 1
            if not cookie:
                return
            async with http.get(base + "/page", headers={"Cookie": cookie}) as r:
                await r.read()
                statuses[f"page {r.status}"] += 1
            churn.append(cookie)
            if len(churn) > keep:
                await logout(churn.pop(0))

        async def websocket() -> None:
            headers = {"Cookie": random.choice(residents)}
            async with http.ws_connect(base + "/__soak/ws", headers=headers) as sock:
                await sock.send_str("hi")
                msg = await sock.receive(timeout=10)
                statuses[f"ws {'ok' if msg.data == 'hi' else 'bad'}"] += 1

        async def download() -> None:
            headers = {"Cookie": random.choice(residents)}
            async with http.get(f"{base}/__soak/download?bytes={MB}", headers=headers) as r:
                got = len(await r.read())
                statuses[f"1MB {r.status if got == MB else 'short'}"] += 1

        async def guarded(kind: str, fn: Any) -> None:
            try:
                await fn()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                statuses[f"{kind} {type(exc).__name__}"] += 1

        kinds = {"sign-in": signin, "ws": websocket, "1MB": download}
        loop = asyncio.get_running_loop()
        begin = loop.time()
        end = begin + cfg["seconds"]
        due = {k: begin + random.random() / r for k, r in cfg["rates"].items() if r > 0}
        while (now := loop.time()) < end:
            for kind, at in due.items():
                while at <= now:
                    latest = max(latest, now - at)
                    started[kind] += 1
                    task = asyncio.create_task(guarded(kind, kinds[kind]))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    at += 1 / cfg["rates"][kind]
                due[kind] = at
            await asyncio.sleep(max(0.0, min(min(due.values()), end) - loop.time()))
        await asyncio.gather(*running, return_exceptions=True)
        for cookie in churn:  # the day ends: everyone still signed in signs out
            await guarded("logout", lambda c=cookie: logout(c))
    return {"statuses": dict(statuses), "started": dict(started), "late_s": latest}


# -- the gate, its samples and the report --------------------------------------------------------


def wrk_command(base: str, script: Path, connections: int, seconds: float) -> list[str]:
    return [
        *NICE, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(script), base + "/page",
    ]  # fmt: skip


def write_script(path: Path, cookies: list[str], rate: float) -> Path:
    listed = ", ".join(json.dumps(c) for c in cookies)  # JSON strings are Lua strings here
    path.write_text(WRK_SCRIPT % {"cookies": listed, "rate": rate}, encoding="utf-8")
    return path


def wrk_result(stdout: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith("WRK "):
            result: dict[str, Any] = json.loads(line[4:])
            return result
    raise RuntimeError("wrk printed no result:\n" + stdout)


def mix(pages: float) -> dict[str, float]:
    """The other kinds' rates a second for ``pages`` page loads a second."""
    return {"sign-in": pages / 100, "ws": pages / 100, "1MB": pages / 200}


async def flat_out(
    served: Served, script: Path, seconds: float
) -> tuple[float, float, dict[str, Any]]:
    """wrk's page loads as fast as they go: per second, the gate's CPU share, wrk's figures."""
    pid = served.proc.pid
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *wrk_command(served.base, script, PROBE_CONNECTIONS, seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    measured = wrk_result(out.decode())
    return measured["requests"] / measured["seconds"], cpu, measured


async def start_workers(cfg: dict[str, Any], count: int) -> list[asyncio.Future[Any]]:
    """``count`` worker processes on ``cfg``; each future is its (stdout, stderr)."""
    procs = [
        await asyncio.create_subprocess_exec(
            *NICE,
            sys.executable,
            __file__,
            "--worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(count)
    ]
    return [asyncio.ensure_future(p.communicate(json.dumps(cfg).encode())) for p in procs]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def sample(served: Served, http: aiohttp.ClientSession, redis_port: int) -> dict[str, float]:
    import redis as redis_py

    metrics = await served.metrics(http)
    return {
        "t": time.monotonic(),
        "rss": round(served.rss_mb(), 2),
        "fds": float(served.fds()),
        "keys": float(redis_py.Redis(port=redis_port).dbsize()),
        "tasks": metrics["gate_asyncio_tasks"],
        "cpu": cpu_seconds(served.proc.pid),
        "load1": os.getloadavg()[0],
    }


def flatness(warm: list[dict[str, float]], key: str) -> tuple[bool, float, float]:
    third = max(1, len(warm) // 3)
    first = statistics.median(s[key] for s in warm[:third])
    last = statistics.median(s[key] for s in warm[-third:])
    return last - first <= max(TOLERANCE[key], 0.05 * first), first, last


async def run(minutes: float, rate: float | None, probe: float = 15.0, workers: int = 2) -> int:
    samples: list[dict[str, float]] = []
    with running_double(token_ttl=60) as double, tempfile.TemporaryDirectory() as tmp:
        pool_id = double.create_pool()
        client_id, _ = double.create_client(pool_id, secret=False)
        double.add_user(pool_id, "resident", PASSWORD)
        double.add_user(pool_id, "day", PASSWORD)
        redis = start_redis_server()
        port = free_port()
        upstream = subprocess.Popen(  # noqa: ASYNC220  (returns at once)
            [sys.executable, str(ROOT / "bench" / "run.py"), "--role", "upstream",
             "--port", str(port)],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            env = {
                **pool_env(double, pool_id, client_id),
                "GATE_UPSTREAM_URL": f"http://127.0.0.1:{port}",
                "GATE_SESSION_STORE_URL": redis.url,
            }
            async with serve(env, Path(tmp)) as served, aiohttp.ClientSession() as http:
                cookies: list[str] = []
                for _ in range(RESIDENT):
                    cookie = await sign_in(served.base, "resident")
                    if cookie:
                        cookies.append(cookie)
                assert len(cookies) == RESIDENT, f"only {len(cookies)} resident sign-ins"
                async with http.get(f"http://127.0.0.1:{port}/__bench/count") as resp:
                    assert resp.status == 200, "the bench upstream is not answering"
                pid = served.proc.pid

                # Capacity: page loads flat out, first alone, then with the rest of the mix
                # going on at its share of half the first figure (the machine hosts it all).
                script = write_script(Path(tmp) / "probe.lua", cookies, 0)
                alone, _, _ = await flat_out(served, script, probe)
                cfg = {
                    "base": served.base, "cookies": cookies, "user": "day",
                    "keep": CHURN // workers, "seconds": probe + WORKER_START,
                    "rates": {k: r / workers for k, r in mix(alone / 2).items()},
                }  # fmt: skip
                beside = await start_workers(cfg, workers)
                await asyncio.sleep(WORKER_START)
                capacity, probe_cpu, measured = await flat_out(served, script, probe)
                probe_statuses: Counter[str] = Counter()
                for result in [json.loads((await d)[0]) for d in beside]:
                    probe_statuses.update(result["statuses"])
                target = rate or capacity / 2
                print(
                    f"capacity probe ({probe:g} s each, {PROBE_CONNECTIONS} connections): "
                    f"{alone:,.0f} signed-in page loads/s alone; {capacity:,.0f}/s with the rest "
                    f"of the mix at its share of {alone / 2:,.0f}/s beside them (p50 "
                    f"{measured['p50_ms']} ms, statuses {measured['statuses']}, the rest "
                    f"{dict(probe_statuses)}), gate CPU {probe_cpu:.2f} of a core, load "
                    f"average {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                rates = mix(target)
                seconds = minutes * 60
                print(
                    f"target: page loads {target:,.0f}/s, sign-ins (and sign-outs) "
                    f"{rates['sign-in']:.2f}/s, WebSockets {rates['ws']:.2f}/s, 1 MB downloads "
                    f"{rates['1MB']:.2f}/s, for {minutes:g} min; {workers} worker processes",
                    flush=True,
                )

                script = write_script(Path(tmp) / "run.lua", cookies, target)
                connections = min(MAX_CONNECTIONS, max(RUN_CONNECTIONS, int(target / 4)))
                pages = await asyncio.create_subprocess_exec(
                    *wrk_command(served.base, script, connections, seconds),
                    stdout=asyncio.subprocess.PIPE,
                )
                cfg = {
                    **cfg,
                    "seconds": seconds,
                    "rates": {k: r / workers for k, r in rates.items()},
                }
                done = await start_workers(cfg, workers)
                wrk_done = asyncio.ensure_future(pages.communicate())
                began = time.monotonic()
                cpu_began = cpu_seconds(pid)
                while not (wrk_done.done() and all(d.done() for d in done)):
                    if time.monotonic() - began < seconds:  # not the day's last sign-outs
                        samples.append(await sample(served, http, redis.port))
                        print(
                            json.dumps({**samples[-1], "t": round(samples[-1]["t"] - began, 1)}),
                            flush=True,
                        )
                    await asyncio.wait(
                        [wrk_done, *done], timeout=SAMPLE_EVERY, return_when="ALL_COMPLETED"
                    )
                elapsed = time.monotonic() - began
                run_cpu = (cpu_seconds(pid) - cpu_began) / elapsed
                await asyncio.sleep(2)  # connections of the last requests close
                after = await sample(served, http, redis.port)
                page_result = wrk_result((await wrk_done)[0].decode())
                gate_view = await served.metrics(http)
                results = [json.loads((await d)[0]) for d in done]
                lines = served.log.read_text(encoding="utf-8").splitlines()
                bad_lines = 0
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
            upstream.terminate()
            upstream.wait(timeout=10)
            redis.stop()

    statuses: Counter[str] = Counter()
    started: Counter[str] = Counter()
    for result in results:
        statuses.update(result["statuses"])
        started.update(result["started"])
    for code, count in page_result["statuses"].items():
        statuses[f"page {code}"] += count
    for error in ("connect", "read", "write", "timeout"):
        if page_result[error]:
            statuses[f"page {error}-error"] += page_result[error]
    page_seconds = page_result["seconds"]
    print(f"\nstatuses by kind: {dict(sorted(statuses.items()))}")
    achieved = {
        "page loads": (target, page_result["requests"] / page_seconds),
        "sign-ins": (rates["sign-in"], started["sign-in"] / seconds),
        "sign-outs": (
            rates["sign-in"],
            sum(v for k, v in statuses.items() if "logout" in k) / seconds,
        ),
        "WebSockets": (rates["ws"], started["ws"] / seconds),
        "1 MB downloads": (rates["1MB"], started["1MB"] / seconds),
    }
    for kind, (want, got) in achieved.items():
        print(f"  {kind}: target {want:,.2f}/s, achieved {got:,.2f}/s")
    print(
        f"page loads p50 {page_result['p50_ms']} ms, p99 {page_result['p99_ms']} ms; workers at "
        f"worst {max(r['late_s'] for r in results):.3f} s behind schedule; gate CPU "
        f"{run_cpu:.2f} of a core (probe: {probe_cpu:.2f}); refreshes {refreshes}"
    )

    def mean_ms(name: str, labels: str = "") -> str:
        count = gate_view.get(f"{name}_count{labels}", 0.0)
        return (
            f"{1000 * gate_view.get(f'{name}_sum{labels}', 0.0) / count:.1f} ms" if count else "-"
        )

    proxied, login, refresh = '{route="proxy"}', '{route="login"}', '{operation="refresh"}'
    print(
        "the gate's own view (means): proxied request "
        f"{mean_ms('gate_request_duration_seconds', proxied)}, before upstream "
        f"{mean_ms('gate_proxy_overhead_seconds')}, upstream "
        f"{mean_ms('gate_upstream_response_seconds')}, sign-in "
        f"{mean_ms('gate_request_duration_seconds', login)}, Cognito refresh "
        f"{mean_ms('gate_cognito_request_seconds', refresh)}"
    )
    loads = [s["load1"] for s in samples]
    print(f"machine load average (1 min) during the run: {min(loads):.1f}-{max(loads):.1f}")
    warm = samples[len(samples) // 4 :]
    flat_all = True
    for key, unit in (("rss", " MiB"), ("fds", ""), ("keys", ""), ("tasks", "")):
        flat, first, last = flatness(warm, key)
        flat_all &= flat
        low, high = min(s[key] for s in warm), max(s[key] for s in warm)
        print(
            f"  {key}: at warm-up end {warm[0][key]:g}{unit}, at the end {samples[-1][key]:g}"
            f"{unit}; after warm-up min {low:g}, max {high:g}; median first third {first:g}, "
            f"last third {last:g}: {'flat' if flat else 'GROWING'}"
        )
    print(
        f"after the load (2 s): RSS {after['rss']:g} MiB, descriptors {after['fds']:g}, Redis keys "
        f"{after['keys']:g}, tasks {after['tasks']:g}"
    )
    print(f"log lines: {len(lines):,}, not JSON: {bad_lines}; Redis keys by prefix: {dict(kinds)}")
    failed = {k: v for k, v in statuses.items() if int_or(k.split()[-1]) not in OK[k.split()[0]]}
    print(f"not as expected: {failed or 'none'}")
    return 0 if flat_all and bad_lines == 0 and not failed else 1


def int_or(text: str) -> int | str:
    return int(text) if text.isdigit() else text


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    print(json.dumps(asyncio.run(worker(json.loads(sys.stdin.read())))), flush=True)
