"""Running the proxy as a server process: listeners, graceful drain on SIGTERM, workers.

SIGTERM (or SIGINT): readiness fails at once (so the Service stops routing here), the listener
stays open while in-flight HTTP requests finish, for at most ``drain_seconds``; then the
listener closes, relayed WebSockets are closed with 1001 (Going Away), whatever is still
running gets ``_FINAL_GRACE`` more seconds, and the process exits 0.

``workers > 1``: a supervisor starts N worker processes that each bind the same port with
SO_REUSEPORT (the kernel spreads connections), forwards SIGTERM/SIGINT to them and exits 0 when
all of them did. A worker that dies on its own takes the others down and the supervisor exits
1, so the orchestrator restarts the whole container rather than running short-handed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import web

from proxy import eventloop
from proxy.app import FORWARDER_KEY, HEALTH_KEY, OBSERVER_KEY, build_app
from proxy.logsink import flush_all
from proxy.observe import Metrics, metrics_app
from proxy.server import GateRunner
from proxy.settings import Settings, parse_listen

log = logging.getLogger("proxy.serve")

EXIT_CANNOT_LISTEN = 2  # like a bad setting: restarting will not help
_FINAL_GRACE = 5.0  # after the drain: closing handshakes of WebSockets, last bytes
_POLL = 0.05


async def serve(settings: Settings, *, worker: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then drain and return (the caller exits 0)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reuse_port = True if worker is not None else None
    metrics = Metrics()
    app = build_app(settings, metrics)
    # GateRunner: the connection and header limits of proxy.server (431, deadlines, caps).
    runner = GateRunner(
        app,
        settings.server,
        handle_signals=False,
        shutdown_timeout=min(_FINAL_GRACE, settings.drain_seconds),
    )
    await runner.setup()
    host, port = settings.listen_address
    metrics_runner: web.AppRunner | None = None
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port)
        await _listen(site, "GATE_LISTEN", settings.listen)
        freeze_startup_objects()
        if settings.metrics.listen != "off":
            metrics_host, metrics_port = parse_listen(settings.metrics.listen)
            # Each worker has its own counters: worker i serves them on the metrics port + i.
            metrics_port += worker or 0
            metrics_runner = web.AppRunner(
                metrics_app(metrics), access_log=None, handle_signals=False
            )
            await metrics_runner.setup()
            site = web.TCPSite(metrics_runner, metrics_host, metrics_port)
            await _listen(site, "GATE_METRICS_LISTEN", f"{metrics_host}:{metrics_port}")
        log.info(
            "listening on %s:%d%s (event loop %s)",
            host,
            port,
            f" (worker {worker}, pid {os.getpid()})" if worker is not None else "",
            eventloop.resolve(settings.server.event_loop),
        )
        await stop.wait()
        await drain(app, settings.drain_seconds)
    finally:
        await runner.cleanup()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
    log.info("stopped")
    flush_all()  # every access line of the drained requests is out before the process ends


# Net container allocations between two young collections (CPython's default: 700).
GC_YOUNG_THRESHOLD = 10_000


def freeze_startup_objects() -> None:
    """Everything built at start (imports, botocore models, pools) lives as long as the
    process. Frozen, the cyclic GC's full collections no longer rescan it: each such pass
    otherwise stalls every in-flight request for tens of milliseconds (p99 at one connection).

    The young generation's threshold goes up too. It counts allocations minus frees since the
    last collection, and frees of objects older than that collection do not count below zero:
    so once the requests in flight hold more than ~700 objects (50 connections do), each
    turnover of them ran another young collection, which rescans all of them. At 50
    connections that was ~1 collection per 100 requests (~20,000 instructions per request,
    ~4 % of it); at 8, none. Reference cycles of the hot path are rare, so little garbage waits
    the longer."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


async def drain(app: web.Application, seconds: float) -> None:
    """Fail readiness, then wait (listener open) until in-flight requests are done."""
    app[HEALTH_KEY].begin_drain()
    observer = app[OBSERVER_KEY]
    log.info(
        "draining: readiness now fails; %d request(s) in flight, up to %.0fs",
        observer.inflight,
        seconds,
    )
    deadline = time.monotonic() + seconds
    # Polling a counter during shutdown only; an Event per request would cost every request.
    while observer.inflight > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(_POLL)
    if observer.inflight:
        log.warning("drain window over with %d request(s) still running", observer.inflight)
    # WebSockets never finish by themselves: 1001 tells clients to reconnect elsewhere.
    await app[FORWARDER_KEY].close_websockets(1001)


class ListenError(Exception):
    """A listener could not be opened; the message names the setting and the address."""


async def _listen(site: web.TCPSite, setting: str, address: str) -> None:
    try:
        await site.start()
    except OSError as exc:
        # e.g. two replicas on one host with the default metrics port: one line, no traceback.
        # asyncio rewords strerror ("error while attempting to bind on address ...").
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ListenError(f"{setting}: cannot listen on {address}: {reason}") from None


def run(settings: Settings, config: Path | None, worker: int | None = None) -> int:
    if settings.workers > 1 and worker is None:
        return supervise(settings.workers, config)
    try:
        eventloop.run(serve(settings, worker=worker), settings.server.event_loop)
    except ListenError as exc:
        print(f"cognito-gate: {exc}", file=sys.stderr)
        return EXIT_CANNOT_LISTEN
    return 0


def supervise(count: int, config: Path | None) -> int:
    """Start ``count`` workers (same settings, same port), forward signals, reap them."""
    args = [sys.executable, "-m", "proxy", "serve"]
    if config is not None:
        args += ["--config", str(config)]
    procs = [
        subprocess.Popen([*args, "--worker-index", str(i)], stdin=subprocess.DEVNULL)  # noqa: S603
        for i in range(count)
    ]
    stopping = False

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    log.info("supervising %d workers: %s", count, ", ".join(str(p.pid) for p in procs))
    failed = False
    while any(p.poll() is None for p in procs):
        time.sleep(0.2)
        if not stopping and any(p.poll() is not None for p in procs):
            log.error("a worker exited unexpectedly; stopping the others")
            failed = True
            forward(signal.SIGTERM, None)
    # A worker still starting up when the signal came dies of it (no handler yet): also clean.
    clean = {0, -signal.SIGTERM, -signal.SIGINT}
    codes = [p.returncode for p in procs]
    if not failed and any(code not in clean for code in codes):
        log.error("worker exit codes: %s", codes)
    if EXIT_CANNOT_LISTEN in codes:
        return EXIT_CANNOT_LISTEN  # a worker said which address (one line on stderr)
    return 1 if failed or any(code not in clean for code in codes) else 0
