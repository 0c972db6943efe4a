"""Streaming and connection soak checks for cognito-gate, bounded in time.

    python bench/soak.py [--bytes 1073741824] [--keepalive 10000] [--websockets 1000]

Starts the bench upstream and one `cognito-gate serve` (memory store), signs in once, then:

* idle RSS of the gate after sign-in and a few requests;
* a download of --bytes through the gate, streamed, while sampling the gate's RSS;
* an upload of --bytes through the gate (chunked, streamed), likewise;
* --keepalive idle keep-alive client connections, each having made one authenticated request,
  held for a few seconds, then each used once more (it must still work);
* --websockets WebSockets through the gate to an echo endpoint, held, each echoing once more.

Prints one line per check with PASS/FAIL against the issue's targets (RSS growth < 20 MB while
streaming, idle RSS <= 80 MB, every held connection usable). Not part of the test suite's
pass/fail; `tests/integration/test_bench_smoke.py` runs a small version.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # the sibling bench module: processes, upstream, login

MiB = 1024 * 1024
CHUNK = b"\x5a" * 65536
RSS_GROWTH_LIMIT_MIB = 20.0
IDLE_RSS_LIMIT_MIB = 80.0


class RssSampler:
    """Samples a process's VmRSS every 50 ms in a thread; reports the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, bench.rss_kib(self.pid).get("VmRSS", 0))
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def rss_mib(pid: int) -> float:
    return bench.rss_kib(pid).get("VmRSS", 0) / 1024


def check(ok: bool, text: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {text}", flush=True)
    return ok


async def download(base: str, cookie: str, total: int) -> tuple[int, float]:
    started = time.perf_counter()
    got = 0
    timeout = aiohttp.ClientTimeout(total=None, sock_read=30)
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout) as http,
        http.get(
            f"{base}/__soak/download?bytes={total}", headers={"Cookie": f"gate={cookie}"}
        ) as resp,
    ):
        resp.raise_for_status()
        async for chunk in resp.content.iter_any():
            got += len(chunk)
    return got, time.perf_counter() - started


async def upload(base: str, cookie: str, total: int) -> tuple[int, float]:
    async def body() -> Any:
        sent = 0
        while sent < total:
            chunk = CHUNK[: min(len(CHUNK), total - sent)]
            sent += len(chunk)
            yield chunk

    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout) as http,
        http.post(
            f"{base}/__soak/upload", data=body(), headers={"Cookie": f"gate={cookie}"}
        ) as resp,
    ):
        resp.raise_for_status()
        received = int((await resp.json())["received"])
    return received, time.perf_counter() - started


async def one_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> bool:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return False
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return True


async def keepalive(host: str, port: int, cookie: str, count: int, hold: float) -> tuple[int, int]:
    """Open `count` keep-alive connections (one request each), hold them, use each again."""
    request = (
        f"GET /bench/item?id=1 HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: gate={cookie}\r\n\r\n"
    ).encode()
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    failed = 0
    sem = asyncio.Semaphore(200)  # open in waves: a SYN flood would only measure the backlog

    async def open_one() -> None:
        nonlocal failed
        async with sem:
            try:
                reader, writer = await asyncio.open_connection(host, port)
                if await asyncio.wait_for(one_request(reader, writer, request), 30):
                    conns.append((reader, writer))
                else:
                    failed += 1
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                failed += 1

    await asyncio.gather(*(open_one() for _ in range(count)))
    await asyncio.sleep(hold)
    reused_ok = 0

    async def reuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal reused_ok
        async with sem:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, TimeoutError):
                if await asyncio.wait_for(one_request(reader, writer, request), 30):
                    reused_ok += 1

    await asyncio.gather(*(reuse(r, w) for r, w in conns))
    for _, writer in conns:
        writer.close()
    return count - failed, reused_ok


async def websockets(base: str, cookie: str, count: int, hold: float) -> tuple[int, int]:
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=0)
    opened: list[aiohttp.ClientWebSocketResponse] = []
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
    ) as http:
        sem = asyncio.Semaphore(100)

        async def open_one(i: int) -> None:
            async with sem:
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    ws = await http.ws_connect(
                        f"{base}/__soak/ws", headers={"Cookie": f"gate={cookie}"}
                    )
                    await ws.send_str(f"hello {i}")
                    msg = await asyncio.wait_for(ws.receive(), 30)
                    if msg.type == aiohttp.WSMsgType.TEXT and msg.data == f"hello {i}":
                        opened.append(ws)
                    else:
                        await ws.close()

        await asyncio.gather(*(open_one(i) for i in range(count)))
        await asyncio.sleep(hold)
        echoed = 0

        async def echo(ws: aiohttp.ClientWebSocketResponse) -> None:
            nonlocal echoed
            async with sem:
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    await ws.send_str("again")
                    msg = await asyncio.wait_for(ws.receive(), 30)
                    if msg.type == aiohttp.WSMsgType.TEXT and msg.data == "again":
                        echoed += 1

        await asyncio.gather(*(echo(ws) for ws in opened))
        await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    return len(opened), echoed


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_soak(args: argparse.Namespace) -> int:
    from proxy.demo import DEMO_USERS, free_port, start_local_cognito

    fds = raise_fd_limit()
    procs = bench.Processes()
    pinning = bench.Pinning(note="unpinned")
    workdir = Path(tempfile.mkdtemp(prefix="gate-soak-"))
    cognito = None
    results: list[bool] = []
    try:
        port = free_port()
        upstream_url = f"http://127.0.0.1:{port}"
        up = procs.start(
            "upstream",
            [sys.executable, str(Path(bench.__file__).resolve()), "--role", "upstream",
             "--port", str(port)],
        )  # fmt: skip
        bench.wait_http(upstream_url + bench.COUNT_PATH, proc=up, what="upstream")
        cognito = start_local_cognito()
        gate = bench.start_gate(
            procs,
            pinning,
            workdir,
            cognito=cognito,
            upstream_url=upstream_url,
            store_url="memory://",
            label="soak",
            # The connection cap (default 1000) is a defence of its own: the soak checks what
            # the process holds, so it is raised above the 10k connections held here.
            extra_env={"GATE_SERVER_MAX_CONNECTIONS": str(args.keepalive + args.websockets + 100)},
        )
        user = DEMO_USERS[0]
        cookie = asyncio.run(bench.login(gate.url, user.username, user.password))
        pid = gate.proc.pid
        print(f"file descriptor limit: {fds}; gate pid {pid}", flush=True)

        asyncio.run(keepalive("127.0.0.1", int(gate.url.rsplit(":", 1)[1]), cookie, 20, 0))
        idle = rss_mib(pid)
        results.append(check(idle <= IDLE_RSS_LIMIT_MIB, f"idle gate RSS {idle:.1f} MiB (<= 80)"))

        for name, fn in (("download", download), ("upload", upload)):
            before = rss_mib(pid)
            with RssSampler(pid) as sampler:
                moved, seconds = asyncio.run(fn(gate.url, cookie, args.bytes))
            growth = sampler.peak_kib / 1024 - before
            results.append(
                check(
                    moved == args.bytes and growth < RSS_GROWTH_LIMIT_MIB,
                    f"{name} of {args.bytes / MiB:,.0f} MiB: {moved / MiB:,.0f} MiB arrived in "
                    f"{seconds:.1f} s ({moved / MiB / seconds:,.0f} MiB/s); gate RSS growth "
                    f"{growth:.1f} MiB (< {RSS_GROWTH_LIMIT_MIB:.0f})",
                )
            )

        if args.keepalive:
            host, port_text = gate.url.removeprefix("http://").rsplit(":", 1)
            started = time.perf_counter()
            opened, reused = asyncio.run(
                keepalive(host, int(port_text), cookie, args.keepalive, args.hold)
            )
            results.append(
                check(
                    opened == reused == args.keepalive,
                    f"{args.keepalive:,} keep-alive connections: {opened:,} opened, "
                    f"{reused:,} still usable after {args.hold:g} s idle "
                    f"({time.perf_counter() - started:.1f} s); gate RSS {rss_mib(pid):.1f} MiB",
                )
            )
        if args.websockets:
            started = time.perf_counter()
            opened, echoed = asyncio.run(websockets(gate.url, cookie, args.websockets, args.hold))
            results.append(
                check(
                    opened == echoed == args.websockets,
                    f"{args.websockets:,} WebSockets: {opened:,} opened, {echoed:,} echoed after "
                    f"{args.hold:g} s open ({time.perf_counter() - started:.1f} s); "
                    f"gate RSS {rss_mib(pid):.1f} MiB",
                )
            )
        text = gate.stderr_path.read_text(errors="replace").strip()
        errors = "\n".join(x for x in text.splitlines() if '"proxy.access"' not in x)
        if errors:
            print("gate stderr (tail):\n" + "\n".join(errors.splitlines()[-10:]))
        return 0 if all(results) else 1
    except bench.BenchError as exc:
        print(f"SOAK FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        if cognito is not None:
            cognito.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bytes", type=int, default=1024 * MiB, help="download/upload size")
    parser.add_argument("--keepalive", type=int, default=10_000, help="idle keep-alive conns")
    parser.add_argument("--websockets", type=int, default=1000, help="open WebSockets")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds to hold them idle")
    parser.add_argument(
        "--minutes", type=float, help="instead: a long day of mixed load (longday.py)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        help="with --minutes: page loads/s (default: half the capacity probed)",
    )
    parser.add_argument("--probe", type=float, default=15.0, help="with --minutes: probe seconds")
    parser.add_argument("--workers", type=int, default=2, help="with --minutes: Python load procs")
    args = parser.parse_args(argv)
    if args.minutes:
        import longday

        return asyncio.run(longday.run(args.minutes, args.rate, args.probe, args.workers))
    return run_soak(args)


if __name__ == "__main__":
    sys.exit(main())
