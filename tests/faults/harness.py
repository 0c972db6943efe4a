# ruff: noqa: ASYNC220  (starts real processes; Popen returns at once)
"""The fault suite's rig: `cognito-gate serve` as a real process driven from outside by a steady,
bounded stream of requests, and what it looks like from there (statuses, latencies, metrics,
file descriptors, memory)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from proxy.demo import free_port
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import COOKIE_SECRET, Browser

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def pool_env(double: CognitoDouble, pool_id: str, client_id: str) -> dict[str, str]:
    return {
        "GATE_COGNITO_USER_POOL_ID": pool_id,
        "GATE_COGNITO_CLIENT_ID": client_id,
        "GATE_COGNITO_ENDPOINT_URL": double.url,
        "GATE_COGNITO_JWKS_URL": double.jwks_url(pool_id),
        "GATE_COGNITO_ISSUER": double.issuer(pool_id),
    }


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    base: str
    metrics_url: str
    log: Path

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def sockets_to(self, ip: str, port: int) -> int:
        """TCP sockets this process holds towards ip:port (in any state, SYN_SENT included)."""
        hexaddr = "".join(f"{int(part):02X}" for part in reversed(ip.split(".")))
        return self._sockets(2, f"{hexaddr}:{port:04X}")

    def other_fds(self, peers: Sequence[tuple[str, int]]) -> int:
        """Descriptors that are neither a client's connection nor one towards ``peers``: what
        would grow if anything leaked. (Read one after the other while connections churn.)"""
        fds = self.fds()
        return fds - self.client_sockets() - sum(self.sockets_to(ip, port) for ip, port in peers)

    def client_sockets(self) -> int:
        """TCP connections from clients this process holds (on its listening port)."""
        return self._sockets(1, f"0100007F:{int(self.base.rsplit(':', 1)[1]):04X}") - 1

    def _sockets(self, column: int, address: str) -> int:
        inodes = set()
        fd_dir = f"/proc/{self.proc.pid}/fd"
        for fd in os.listdir(fd_dir):
            try:
                link = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue  # closed meanwhile
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        with open(f"/proc/{self.proc.pid}/net/tcp", encoding="ascii") as f:
            next(f)
            return sum(1 for line in f if (v := line.split())[column] == address and v[9] in inodes)

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    async def metrics(self, http: aiohttp.ClientSession) -> dict[str, float]:
        """Every sample of the metrics listener, keyed ``name{labels}`` as exposed."""
        async with http.get(self.metrics_url) as resp:
            text = await resp.text()
        out: dict[str, float] = {}
        for line in text.splitlines():
            m = _SAMPLE.match(line)
            if m:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return out

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log, one object per line (a line that is not JSON fails the test)."""
        lines = []
        for raw in self.log.read_text(encoding="utf-8").splitlines():
            if raw.strip():
                lines.append(json.loads(raw))
        return lines


@asynccontextmanager
async def serve(env_extra: dict[str, str], tmp_path: Path) -> AsyncIterator[Served]:
    """`python -m proxy serve` on free loopback ports, JSON logs to a file; killed afterwards."""
    port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    env.update(
        {
            "GATE_LISTEN": f"127.0.0.1:{port}",
            "GATE_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
            "GATE_COOKIE_SECRET": COOKIE_SECRET,
            "GATE_COOKIE_SECURE": "false",
            "GATE_LOG_FORMAT": "json",
            "GATE_DRAIN_SECONDS": "0",
            **env_extra,
        }
    )
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(
        proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", log
    )
    try:
        await _wait_ready(served)
        yield served
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


async def _wait_ready(served: Served) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert served.proc.poll() is None, served.log.read_text()
            try:
                async with http.get(served.base + "/_auth/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("proxy never came up:\n" + served.log.read_text())


async def signed_in_cookie(base: str, username: str, password: str) -> str:
    """Sign in once through the proxy's pages; the ``Cookie`` header value that carries it."""
    browser = Browser(base)
    try:
        resp = await browser.login(username, password)
        assert resp.status == 303, resp.status
        return "; ".join(f"{m.key}={m.value}" for m in browser.http.cookie_jar)
    finally:
        await browser.close()


def connections_to(port: int) -> int:
    """Established TCP connections (any process, loopback) whose remote end is ``port``: the
    proxy's side of its connections to an upstream, counted the moment the proxy closes one."""
    count = 0
    with open("/proc/net/tcp", encoding="ascii") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


# -- steady load ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    path: str
    started: float  # monotonic
    seconds: float  # from sending to the whole answer, NOT counting the TCP connect (below)
    status: int | str  # an HTTP status, or the client-side exception's name
    connect: float = 0.0  # opening a new connection to the proxy, if this request needed one

    @property
    def ended(self) -> float:
        return self.started + self.seconds


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    outstanding: int = 0  # requests sent and not yet answered
    peak_outstanding: int = 0
    skipped: int = 0  # arrivals not sent because max_outstanding were already waiting

    def by(self, prefix: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.path.startswith(prefix)]

    @staticmethod
    def statuses(outcomes: Sequence[Outcome]) -> Counter[int | str]:
        return Counter(o.status for o in outcomes)

    @staticmethod
    def slowest(outcomes: Sequence[Outcome]) -> float:
        return max((o.seconds for o in outcomes), default=0.0)

    @staticmethod
    def percentile(outcomes: Sequence[Outcome], q: float) -> float:
        values = sorted(o.seconds for o in outcomes)
        if not values:
            return 0.0
        return values[min(len(values) - 1, int(q * len(values)))]


def load_client(connections: int = 0) -> aiohttp.ClientSession:
    """A client that never queues on its own side (``connections=0``: no pool limit), so the
    latencies measured are the proxy's.

    A new connection's TCP connect is measured apart (``Outcome.connect``): on a starved shared
    machine the proxy's accept queue overflows and SYN retransmits (1 s, 3 s) would otherwise
    pass for the proxy's answer time."""
    trace = aiohttp.TraceConfig()

    async def connect_start(_: Any, ctx: Any, __: Any) -> None:
        if isinstance(ctx.trace_request_ctx, dict):
            ctx.trace_request_ctx["connect_started"] = time.monotonic()

    async def connect_end(_: Any, ctx: Any, __: Any) -> None:
        if isinstance(ctx.trace_request_ctx, dict) and "connect_started" in ctx.trace_request_ctx:
            began = ctx.trace_request_ctx.pop("connect_started")
            ctx.trace_request_ctx["connect"] = time.monotonic() - began

    trace.on_connection_create_start.append(connect_start)
    trace.on_connection_create_end.append(connect_end)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=30),
        trace_configs=[trace],
    )


async def steady_load(
    http: aiohttp.ClientSession,
    base: str,
    paths: Sequence[str],
    *,
    rate: float,
    seconds: float,
    headers: dict[str, str] | None = None,
    load: Load | None = None,
    max_outstanding: int = 200,
) -> Load:
    """Start ``rate`` requests a second for ``seconds``, round-robin over ``paths``, each on its
    own task (an open loop: a slow answer never slows the arrivals); wait for all of them.

    Bounded like wrk's connection count: an arrival finding ``max_outstanding`` requests
    already waiting is skipped (counted), so a starved machine cannot snowball into thousands
    of connections that measure the machine rather than the proxy."""
    load = load if load is not None else Load()
    tasks: list[asyncio.Task[None]] = []

    async def one(path: str) -> None:
        started = time.monotonic()
        status: int | str
        ctx: dict[str, float] = {}
        try:
            async with http.get(
                base + path, headers=headers, allow_redirects=False, trace_request_ctx=ctx
            ) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = type(exc).__name__
        load.outstanding -= 1
        connect = ctx.get("connect", 0.0)
        seconds = time.monotonic() - started - connect
        load.outcomes.append(Outcome(path, started + connect, seconds, status, connect))

    interval = 1.0 / rate
    begin = time.monotonic()
    count = int(rate * seconds)
    for i in range(count):
        delay = begin + i * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if load.outstanding >= max_outstanding:
            load.skipped += 1
            continue
        load.outstanding += 1
        load.peak_outstanding = max(load.peak_outstanding, load.outstanding)
        tasks.append(asyncio.create_task(one(paths[i % len(paths)])))
    await asyncio.gather(*tasks)
    return load


# -- sick upstreams --------------------------------------------------------------------------


@dataclass
class SickUpstream:
    """A raw TCP server that misbehaves as an HTTP upstream in one way (``kind``):

    ``hang``: accepts, reads, never answers; ``trickle``: answers one byte a second;
    ``reset``: reads the request and resets the connection (RST, not FIN)."""

    kind: str
    url: str = ""
    port: int = 0
    open_now: int = 0
    peak: int = 0
    accepted: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open_now += 1
        self.peak = max(self.peak, self.open_now)
        self._writers.add(writer)
        try:
            if self.kind == "hang":
                while await reader.read(65536):
                    pass
                return
            await reader.readuntil(b"\r\n\r\n")
            if self.kind == "reset":
                # Linger on, zero seconds: close() sends RST instead of FIN.
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
            for byte in answer:
                writer.write(bytes([byte]))
                await writer.drain()
                # A second between bytes, or until stop(): never cancelled (see stop()).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 1.0)
                if self._stopping.is_set():
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_now -= 1
            self._writers.discard(writer)
            writer.transport.abort()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        # Handlers end on their own (a cancelled stream handler logs a bogus error in 3.11).
        self._stopping.set()
        for writer in list(self._writers):
            writer.transport.abort()
        for _ in range(50):
            if not self.open_now:
                break
            await asyncio.sleep(0.02)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@asynccontextmanager
async def sick_upstream(kind: str) -> AsyncIterator[SickUpstream]:
    upstream = SickUpstream(kind)
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.stop()


@asynccontextmanager
async def healthy_upstream(body: bytes = b"ok") -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
