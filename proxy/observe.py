"""What the proxy tells its operators: logs, request lines, the audit stream, metrics, health.

Log lines never carry passwords, codes, tokens, cookies or session ids; a session appears as a
short fingerprint of its id at most, a user as Cognito's ``sub`` (an opaque identifier, not a
secret). Prometheus metrics live in their own registry and are served on their own listener
(see :func:`metrics_app`); nothing here talks to the network.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import logging
import secrets
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy.logsink import AccessLine, LineSink, encode_line
from proxy.settings import LogSettings
from proxy.upgrade import is_websocket_upgrade

access_log = logging.getLogger("proxy.access")
audit_log = logging.getLogger("proxy.audit")

# Fields a LogRecord carries for the JSON formatter; text logs put them in the message.
FIELDS_ATTR = "gate_fields"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, FIELDS_ATTR, None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class SinkHandler(logging.Handler):
    """Every record written to the sink at once (audit, warnings, errors); the access lines
    of :class:`RequestObserver` bypass ``logging`` and are queued on the same sink."""

    def __init__(self, sink: LineSink, access: AccessLine) -> None:
        super().__init__()
        self.sink = sink
        self.access = access

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.sink.write_now(encode_line(line + "\n"))


def setup_logging(settings: LogSettings) -> None:
    """Logging as ``serve`` runs it: one stderr sink, access lines queued, the rest at once."""
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, SinkHandler):
            old.sink.close()  # set up again (tests, demo): the old thread flushes and stops
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None  # stderr replaced by an object without a descriptor (e.g. captured)
    handler: logging.Handler
    if fd is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        sys.stderr.flush()  # anything written through the text layer goes first
        handler = SinkHandler(LineSink(fd), AccessLine(settings.format))
    handler.setFormatter(
        JsonFormatter() if settings.format == "json" else logging.Formatter(_TEXT_FORMAT)
    )
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    # botocore logs request bodies (passwords, tokens) at debug: keep it quiet whatever the level.
    for noisy in ("botocore", "aiobotocore", "aioboto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _text(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)


# -- metrics ---------------------------------------------------------------------------------

# Few buckets: a histogram observation costs one bisect plus one increment per bucket line.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_REMOTE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class LeanHistogram:
    """A histogram of one label set counted in plain Python: one bisect, one list increment and
    one addition per observation (prometheus_client's Histogram takes a lock per bucket line and
    for the sum, ~1.6 µs an observation here). Only the event loop thread observes; a scrape
    reads it at collection time (:class:`RequestSeries`)."""

    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        # bisect_left: the first bound >= amount, which is the bucket "le" counts it in.
        self.counts[bisect.bisect_left(self.bounds, amount)] += 1
        self.sum += amount

    def add_to(self, family: HistogramMetricFamily, labels: dict[str, str]) -> None:
        # The samples prometheus_client's Histogram exports, in its order and label order.
        name, cumulative = family.name, 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += count
            family.add_sample(name + "_bucket", {**labels, "le": _le(bound)}, float(cumulative))
        family.add_sample(name + "_count", labels, float(cumulative))
        family.add_sample(name + "_sum", labels, self.sum)
        family.add_sample(name + "_created", labels, self.created)


def _le(bound: float) -> str:
    # As prometheus_client spells its bucket bounds: "0.005", "1.0", "+Inf".
    return "+Inf" if bound == float("inf") else repr(float(bound))


class RequestSeries(Collector):
    """The per-request series (``gate_requests``, ``gate_request_duration_seconds``,
    ``gate_proxy_overhead_seconds``, ``gate_upstream_response_seconds``), the same names, help,
    labels and buckets as prometheus_client's Counter and Histogram would export, kept as plain
    numbers: a request costs a dict lookup and a few additions instead of nine locked updates
    (~6 µs per request)."""

    _REQUESTS = ("gate_requests", "Requests answered, by route class and status")
    _DURATION = ("gate_request_duration_seconds", "Time to answer a request, whole body included")
    _OVERHEAD = (
        "gate_proxy_overhead_seconds",
        "Time spent in the proxy before the upstream request is sent (session, refresh)",
    )
    _UPSTREAM = (
        "gate_upstream_response_seconds",
        "Time from sending upstream to its response headers",
    )

    def __init__(self) -> None:
        # (route, status) -> [count, created]
        self._requests: dict[tuple[str, int], list[float]] = {}
        self._duration: dict[str, LeanHistogram] = {}
        self.overhead = LeanHistogram(_LATENCY_BUCKETS)
        self.upstream = LeanHistogram(_REMOTE_BUCKETS)

    def count(self, route: str, status: int, seconds: float) -> None:
        counter = self._requests.get((route, status))
        if counter is None:
            counter = self._requests[(route, status)] = [0, time.time()]
        counter[0] += 1
        hist = self._duration.get(route)
        if hist is None:
            hist = self._duration[route] = LeanHistogram(_LATENCY_BUCKETS)
        hist.observe(seconds)

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(*self._REQUESTS, labels=["route", "status"])
        yield HistogramMetricFamily(*self._DURATION, labels=["route"])
        yield HistogramMetricFamily(*self._OVERHEAD)
        yield HistogramMetricFamily(*self._UPSTREAM)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(*self._REQUESTS, labels=["route", "status"])
        for (route, status), (count, created) in list(self._requests.items()):
            requests.add_metric([route, str(status)], count, created=created)
        yield requests
        duration = HistogramMetricFamily(*self._DURATION, labels=["route"])
        for route, hist in list(self._duration.items()):
            hist.add_to(duration, {"route": route})
        yield duration
        for (name, text), hist in (
            (self._OVERHEAD, self.overhead),
            (self._UPSTREAM, self.upstream),
        ):
            family = HistogramMetricFamily(name, text)
            hist.add_to(family, {})
            yield family


class Metrics:
    """Every metric cognito-gate exports, in one registry of its own (no process defaults)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.series = RequestSeries()
        r.register(self.series)
        self.overhead = self.series.overhead
        self.upstream = self.series.upstream
        self.auth_events = Counter(
            "gate_auth_events", "Audit events: logins by outcome and reason, challenges, logouts",
            ["event", "reason"], registry=r,
        )  # fmt: skip
        self.cognito_calls = Counter(
            "gate_cognito_requests", "Cognito API calls by operation and outcome (error code)",
            ["operation", "outcome"], registry=r,
        )  # fmt: skip
        self.cognito_latency = Histogram(
            "gate_cognito_request_seconds", "Cognito API call latency", ["operation"],
            buckets=_REMOTE_BUCKETS, registry=r,
        )  # fmt: skip
        self.refreshes = Counter(
            "gate_token_refreshes", "Token refreshes by outcome", ["outcome"], registry=r
        )
        self.store_errors = Counter(
            "gate_session_store_errors", "Session store calls that failed (store unavailable)",
            ["operation"], registry=r,
        )  # fmt: skip
        self.websockets = Gauge(
            "gate_websockets_active", "WebSocket connections being relayed", registry=r
        )
        self.inflight = Gauge(
            "gate_requests_in_flight", "HTTP requests being answered (WebSockets excluded)",
            registry=r,
        )  # fmt: skip
        # Read at scrape time from each observer's own count: nothing per request.
        self._inflight_sources: list[Callable[[], int]] = []
        self.inflight.set_function(lambda: sum(source() for source in self._inflight_sources))
        self.upstream_in_flight = Gauge(
            "gate_upstream_requests_in_flight", "Requests in flight to each upstream (its cap: "
            "max_requests)", ["upstream"], registry=r,
        )  # fmt: skip
        self.upstream_rejected = Counter(
            "gate_upstream_rejected", "Requests answered 503 because the upstream had "
            "max_requests in flight", ["upstream"], registry=r,
        )  # fmt: skip
        self.store_full = Gauge(
            "gate_session_store_full",
            "1 while the session store refuses writes for memory (Redis maxmemory, noeviction)",
            registry=r,
        )
        self.draining = Gauge(
            "gate_draining", "1 while shutting down (readiness fails)", registry=r
        )
        self.breaker_open = Gauge(
            "gate_cognito_breaker_open", "1 while the Cognito circuit breaker is open", registry=r
        )
        # A leak of tasks (a relay, a refresh, a lock keeper that never ends) shows as growth
        # here long before it shows in memory; read at scrape time, nothing per request.
        self.tasks = Gauge(
            "gate_asyncio_tasks",
            "asyncio tasks not yet done on the event loop that serves the scrape (the gate's)",
            registry=r,
        )
        self.tasks.set_function(_loop_tasks)
        _audit_sinks.add(self)

    def count_request(self, route: str, status: int, seconds: float) -> None:
        self.series.count(route, status, seconds)

    def count_inflight(self, source: Callable[[], int]) -> None:
        """``gate_requests_in_flight`` adds ``source()`` at every scrape (one per app)."""
        self._inflight_sources.append(source)

    def cognito_call(self, operation: str, outcome: str, seconds: float) -> None:
        """The CognitoClient's observer: ``outcome`` is "ok" or Cognito's error code."""
        self.cognito_calls.labels(operation, outcome).inc()
        self.cognito_latency.labels(operation).observe(seconds)
        if operation == "refresh":
            self.refreshes.labels("ok" if outcome == "ok" else "error").inc()

    def store_error(self, operation: str) -> None:
        self.store_errors.labels(operation).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _loop_tasks() -> int:
    # The scrape handler runs on the gate's loop (serve starts the metrics listener there);
    # an exposition made outside any loop has no tasks to count.
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return 0


def metrics_app(metrics: Metrics) -> web.Application:
    """The metrics listener's app: ``GET /metrics`` and nothing else."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", handler)
    return app


# -- audit -----------------------------------------------------------------------------------

_audit_sinks: weakref.WeakSet[Metrics] = weakref.WeakSet()


def audit(event: str, **fields: Any) -> None:
    """One auth event on the ``proxy.audit`` logger (and in ``gate_auth_events_total``).

    Events: login.success, login.failure (reason=...), login.challenge (challenge=...),
    login.blocked (reason=threat_protection: Cognito's threat protection refused it), mfa.*,
    logout, signout.everywhere, ban, session.end (reason=refresh_rejected, code=Cognito's).
    Fields must never be secrets: pass a session fingerprint, a ``sub``, a client ip, a reason
    class.
    """
    reason = str(fields.get("reason") or fields.get("challenge") or "")
    for sink in list(_audit_sinks):
        sink.auth_events.labels(event, reason).inc()
    if audit_log.isEnabledFor(logging.INFO):
        clean = {k: v for k, v in fields.items() if v is not None}
        audit_log.info("%s %s", event, _text(clean), extra={FIELDS_ATTR: {"event": event, **clean}})


# -- per-request observation -----------------------------------------------------------------

REQUEST_ID_HEADER = "X-Request-Id"
# What a request learns on its way through, for its access log line.
REQUEST_ID_KEY = web.RequestKey("request_id", str)
USER_KEY = web.RequestKey("user", str)
SESSION_KEY = web.RequestKey("session_fp", str)
_UPSTREAM_KEY = web.RequestKey("upstream_timing", tuple[float, float])


# A fresh id: 16 random hex digits fixed per process, then a counter (32 in all, like the uuid4
# hex it replaces). Unique across replicas and restarts, and ~20x cheaper than uuid4().
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"


def request_id_from(value: str | None) -> str:
    """A trusted, well-formed incoming id (a load balancer's: 1-64 of ``A-Za-z0-9._-``), or a
    fresh one. ``str.strip`` of the allowed characters leaves nothing exactly when every
    character is allowed: the regex it replaces, without the regex engine."""
    if value is not None and 0 < len(value) <= 64 and not value.strip(_ID_CHARS):
        return value
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def upstream_timing(request: web.Request, sent_at: float, headers_at: float) -> None:
    """The forwarder's timing hook: when the upstream request went out and its headers came."""
    request[_UPSTREAM_KEY] = (sent_at, headers_at)


AccessSink = tuple[LineSink, AccessLine]


def access_sink() -> AccessSink | None:
    """The fast path for access lines when :func:`setup_logging` configured logging and
    nobody attached a handler of their own to ``proxy.access`` (then lines go through
    ``logging``, records and all, as a test or an embedding application expects)."""
    if access_log.handlers or not access_log.propagate:
        return None
    for handler in logging.getLogger().handlers:
        if isinstance(handler, SinkHandler):
            return handler.sink, handler.access
    return None


class RequestObserver:
    """aiohttp middleware: request id, one access log line and the request metrics.

    ``route_class`` maps a request to a small, fixed set of labels (never the raw path, which
    would make unbounded metric series). ``access``: where access lines go without
    ``logging`` (see :func:`access_sink`); None sends them through ``proxy.access``.
    """

    def __init__(self, metrics: Metrics, *, prefix: str, access: AccessSink | None = None) -> None:
        self._metrics = metrics
        self._access = access
        self._prefix = prefix + "/"
        self._inflight = 0
        metrics.count_inflight(lambda: self._inflight)
        self._series = metrics.series

    @property
    def inflight(self) -> int:
        """HTTP requests being answered now, WebSockets excluded (what a drain waits for)."""
        return self._inflight

    def route_class(self, request: web.Request) -> str:
        path = request.path
        if not path.startswith(self._prefix):
            return "websocket" if is_websocket_upgrade(request.headers) else "proxy"
        name = path[len(self._prefix) :].split("/", 1)[0]
        if name in ("login", "logout", "challenge", "check", "userinfo", "healthz", "readyz"):
            return name
        return "static" if name == "static" else "auth_other"

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        rid = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request[REQUEST_ID_KEY] = rid
        route = self.route_class(request)
        socket = route == "websocket"
        metrics = self._metrics
        if socket:
            metrics.websockets.inc()
        else:
            self._inflight += 1
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            if socket:
                metrics.websockets.dec()
            else:
                self._inflight -= 1
            self._finish(request, route, status, rid, started)

    def _finish(
        self, request: web.Request, route: str, status: int, rid: str, started: float
    ) -> None:
        done = time.perf_counter()
        seconds = done - started
        self._series.count(route, status, seconds)
        timing = request.get(_UPSTREAM_KEY)
        upstream_ms = None
        if timing is not None:
            sent_at, headers_at = timing
            self._metrics.overhead.observe(sent_at - started)
            self._metrics.upstream.observe(headers_at - sent_at)
            upstream_ms = round((headers_at - sent_at) * 1000, 2)
        if route in ("healthz", "readyz") or not access_log.isEnabledFor(logging.INFO):
            return
        if self._access is not None:
            sink, line = self._access
            sink.write(
                line.render(
                    time.time(),
                    request_id=rid,
                    method=request.method,
                    path=request.path,  # never the query string: it may carry codes or tokens
                    route=route,
                    status=status,
                    seconds=seconds,
                    upstream_ms=upstream_ms,
                    client_ip=request.remote,
                    user=request.get(USER_KEY),
                    session=request.get(SESSION_KEY),
                )
            )
            return
        fields = {
            "request_id": rid,
            "method": request.method,
            "path": request.path,  # never the query string: it may carry codes or tokens
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "upstream_ms": upstream_ms,
            "client_ip": request.remote,
            "user": request.get(USER_KEY),
            "session": request.get(SESSION_KEY),
        }
        access_log.info(
            "%s %s %s %.1fms %s",
            request.method,
            request.path,
            status,
            seconds * 1000,
            _text({k: v for k, v in fields.items() if k in ("request_id", "user", "session")}),
            extra={FIELDS_ATTR: {k: v for k, v in fields.items() if v is not None}},
        )


# -- health ----------------------------------------------------------------------------------

ReadinessCheck = Callable[[], Awaitable[str | None]]


class Health:
    """``healthz`` touches nothing external; ``readyz`` runs every readiness check.

    ``begin_drain()`` (SIGTERM) makes ``readyz`` fail at once so the Service stops sending new
    traffic while in-flight requests finish.
    """

    def __init__(
        self,
        checks: list[ReadinessCheck],
        metrics: Metrics | None = None,
        warnings: list[Callable[[], str | None]] | None = None,
    ) -> None:
        self._checks = checks
        self._metrics = metrics
        # Shown by readyz without failing it: conditions every replica shares (a full store),
        # where taking this one out of the Service would only make things worse.
        self._warnings = warnings or []
        self.draining = False

    def begin_drain(self) -> None:
        self.draining = True
        if self._metrics is not None:
            self._metrics.draining.set(1)

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def readyz(self, request: web.Request) -> web.StreamResponse:
        problems = ["draining (shutting down)"] if self.draining else []
        problems += [p for p in [await check() for check in self._checks] if p]
        warnings = [w for w in (warning() for warning in self._warnings) if w]
        return web.json_response(
            {"ready": not problems, "problems": problems, "warnings": warnings},
            status=503 if problems else 200,
            headers={"Cache-Control": "no-store"},
        )
