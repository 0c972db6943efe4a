"""Per-request work before and after issue 12's audit, one change at a time.

    .venv/bin/python bench/micro.py [--number 20000]

The second table is the session cache miss (``GATE_SESSION_CACHE_TTL=0``, or the first request
of a session on a replica): the stored record decoded, the cookie opened, and
``SessionManager.load`` whole on the memory store (its Redis GET is not in it), for a record
the size of a real Cognito sign-in's (~4.7 KB: ID token 1,100, access 1,050, refresh 1,780
characters).

Each line times the old way (copied here as it was) and the code in proxy/ now, in one process,
as the best of 7 repeats (the least disturbed by other work on the machine), and prints CPU µs
per request for both. The whole-request effect of each change shows in `make bench`; this is
where the per-change figures in docs/performance.md come from.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import io
import ipaddress
import json
import logging
import os
import re
import sys
import time
import timeit
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from proxy.forwarded import resolve_client  # noqa: E402
from proxy.gate import paths  # noqa: E402
from proxy.logsink import AccessLine, LineSink  # noqa: E402
from proxy.observe import FIELDS_ATTR, JsonFormatter, Metrics, request_id_from  # noqa: E402
from proxy.sessions import sealed  # noqa: E402
from proxy.sessions.backends import open_store  # noqa: E402
from proxy.sessions.session import Session, SessionManager  # noqa: E402

# -- the old ways, as they were before issue 12 --------------------------------------------

_OLD_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_OLD_PLAIN = re.compile(r"(?:/[A-Za-z0-9\-_~!$&'()*+,=:@][A-Za-z0-9\-._~!$&'()*+,=:@]*)*/?")
FIELDS: dict[str, Any] = {
    "request_id": "0123456789abcdef0123456789abcdef",
    "method": "GET",
    "path": "/bench/item",
    "route": "proxy",
    "status": 200,
    "duration_ms": 1.23,
    "upstream_ms": 0.51,
    "client_ip": "127.0.0.1",
    "user": "3f1b2c4d-aaaa-bbbb-cccc-123456789012",
    "session": "a1b2c3d4e5f6",
}


def _old_logger() -> logging.Logger:
    log = logging.getLogger("micro.access")
    log.propagate = False
    handler = logging.StreamHandler(io.StringIO())  # a write per line, as to stderr
    handler.setFormatter(JsonFormatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    return log


def old_access_line(log: logging.Logger) -> None:
    """RequestObserver._finish before: LogRecord, formatter, json.dumps, a write per line."""
    f = FIELDS
    log.info(
        "%s %s %s %.1fms %s",
        f["method"],
        f["path"],
        f["status"],
        1.2345,
        " ".join(f"{k}={v}" for k, v in f.items() if k in ("request_id", "user", "session")),
        extra={FIELDS_ATTR: {k: v for k, v in f.items() if v is not None}},
    )


def new_access_line(line: AccessLine, sink: LineSink) -> None:
    f = FIELDS
    sink.write(
        line.render(
            time.time(),
            request_id=f["request_id"],
            method=f["method"],
            path=f["path"],
            route=f["route"],
            status=f["status"],
            seconds=0.0012345,
            upstream_ms=f["upstream_ms"],
            client_ip=f["client_ip"],
            user=f["user"],
            session=f["session"],
        )
    )


def old_request_id_from(value: str | None) -> str:
    if value is not None and _OLD_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


def old_canonical_path(raw: str) -> str:
    """canonical_path's fast path before: a regex."""
    if not raw.startswith("/"):
        raise ValueError(raw)
    if _OLD_PLAIN.fullmatch(raw):
        return raw
    return paths.canonical_path(raw)


def old_peer(peer: str) -> str:
    """resolve_client before, with nothing trusted: the peer parsed by ipaddress anyway."""
    addr = ipaddress.ip_address(peer)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


class OldMetrics:
    """The per-request series as prometheus_client Counter and Histogram objects (before the
    second pass counted them in plain Python, observe.RequestSeries)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        r = CollectorRegistry()
        self.requests = Counter("gate_requests", "", ["route", "status"], registry=r)
        self.duration = Histogram(
            "gate_request_duration_seconds", "", ["route"], buckets=_OLD_BUCKETS, registry=r
        )


_OLD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def old_count_request(metrics: OldMetrics, route: str, status: int, seconds: float) -> None:
    """What caching the label children saves: .labels() per request (on prometheus_client)."""
    metrics.requests.labels(route, str(status)).inc()
    metrics.duration.labels(route).observe(seconds)


# -- the session cache miss: record version 2 and the regex-checked cookie, as they were ------

_OLD_COOKIE_RE = re.compile(r"[A-Za-z0-9_-]{65}[AQgw]\.[A-Za-z0-9_-]{21}[AQgw]")
_OLD_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def old_split(cookie: str) -> tuple[bytes, bytes] | None:
    """sealed._split before: a regex, then base64."""
    if len(cookie) != 89 or not _OLD_COOKIE_RE.fullmatch(cookie):
        return None
    raw = cookie.encode("ascii").translate(_OLD_FROM_URLSAFE)
    return binascii.a2b_base64(raw[:66] + b"=="), binascii.a2b_base64(raw[67:] + b"==")


def old_record(session: Session) -> bytes:
    """Session.to_bytes at record version 2: one JSON object, the tokens inside it."""
    fields = {f: getattr(session, f) for f in Session.__dataclass_fields__}
    return json.dumps({"v": 2, **fields}, separators=(",", ":")).encode()


def old_from_bytes(raw: bytes) -> Session | None:
    """Session.from_bytes at record version 2 (a version-2 record: no upgrade step runs)."""
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.pop("v", 0) != 2:
            return None
        return Session(**data)
    except (ValueError, TypeError):
        return None


def real_sized_session() -> Session:
    def token(n: int) -> str:
        return (base64_alphabet * (n // len(base64_alphabet) + 1))[:n]

    base64_alphabet = "eyJraWQiOiJhYmMiLCJhbGciOiJSUzI1NiJ9-_0123456789"
    sub = "3f1b2c4d-aaaa-bbbb-cccc-123456789012"
    now = time.time()
    claims: dict[str, Any] = {
        "sub": sub,
        "email_verified": True,
        "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI",
        "cognito:username": sub,
        "origin_jti": "9d2c1f0e-1111-2222-3333-444455556666",
        "aud": "1example23456789abcdefghij",
        "event_id": "5e4d3c2b-7777-8888-9999-000011112222",
        "token_use": "id",
        "auth_time": int(now),
        "exp": int(now) + 3600,
        "iat": int(now),
        "jti": "0a1b2c3d-eeee-ffff-0000-123412341234",
        "email": "user@example.com",
    }
    return Session(
        username=sub,
        sub=sub,
        claims=claims,
        id_token=token(1100),
        access_token=token(1050),
        refresh_token=token(1780),
        expires_at=now + 3600,
        created_at=now,
        last_seen=now,
        auth_time=now,
        factors=["srp"],
    )


def run_now(coro: Coroutine[Any, Any, Session | None]) -> Session | None:
    """A coroutine that never waits (the memory store's), run without an event loop's cost."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise RuntimeError("the coroutine waited")


def miss_cases() -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    session = real_sized_session()
    v2, v3 = old_record(session), session.to_bytes()
    assert old_from_bytes(v2) == Session.from_bytes(v3) == Session.from_bytes(v2) == session
    manager = SessionManager(open_store("memory://"), b"k" * 32, lifetime=3600)
    loop = asyncio.new_event_loop()
    v2_cookie = loop.run_until_complete(manager.create(session))
    v3_cookie = loop.run_until_complete(manager.create(session))
    store = manager._sealed  # noqa: SLF001 - the bench plays the older release's writer
    assert loop.run_until_complete(store.save(v2_cookie, v2, 3600))
    loop.close()
    assert old_split(v3_cookie) == sealed._split(v3_cookie)  # noqa: SLF001
    return [
        (f"record decoded ({len(v2):,} B JSON v2 → {len(v3):,} B framed v3)",
         lambda: old_from_bytes(v2), lambda: Session.from_bytes(v3)),
        ("cookie checked and split (regex → translate + strict base64)",
         lambda: old_split(v3_cookie), lambda: sealed._split(v3_cookie)),  # noqa: SLF001
        ("SessionManager.load, memory store (v2 record → v3 record)",
         lambda: run_now(manager.load(v2_cookie)), lambda: run_now(manager.load(v3_cookie))),
    ]  # fmt: skip


# -- timing ---------------------------------------------------------------------------------


def best_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def table(
    cases: list[tuple[str, Callable[[], object], Callable[[], object]]], n: int, *, total: bool
) -> None:
    print("| per-request work | before µs | after µs | saved µs | after/before |")
    print("|---|---:|---:|---:|---:|")
    total_before = total_after = 0.0
    for name, before, after in cases:
        b, a = best_us(before, n), best_us(after, n)
        total_before += b
        total_after += a
        print(f"| {name} | {b:.2f} | {a:.2f} | {b - a:.2f} | {a / b:.2f}x |")
    if total:
        print(
            f"| **all of the above** | {total_before:.2f} | {total_after:.2f} "
            f"| {total_before - total_after:.2f} | {total_after / total_before:.2f}x |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=20000, help="calls per repeat")
    args = parser.parse_args(argv)
    n = args.number

    devnull = os.open(os.devnull, os.O_WRONLY)
    sink = LineSink(devnull, flush_seconds=0.1)
    line = AccessLine("json")
    log = _old_logger()
    metrics = Metrics()
    metrics.count_request("proxy", 200, 0.001)  # series made once, as after the first request
    old_metrics = OldMetrics()
    path = "/bench/item/42"

    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("access line (JSON) built and handed off", lambda: old_access_line(log),
         lambda: new_access_line(line, sink)),
        ("fresh request id", lambda: old_request_id_from(None), lambda: request_id_from(None)),
        ("incoming X-Request-Id checked", lambda: old_request_id_from("lb-abc.1_2-0042"),
         lambda: request_id_from("lb-abc.1_2-0042")),
        ("peer address, nothing trusted", lambda: old_peer("127.0.0.1"),
         lambda: resolve_client(peer="127.0.0.1", scheme="http", host="h", forwarded_for=(),
                                forwarded_proto=(), forwarded_host=(), trusted=())),
        ("plain path recognised", lambda: old_canonical_path(path),
         lambda: paths.canonical_path(path)),
        ("request metrics (counter + histogram)",
         lambda: old_count_request(old_metrics, "proxy", 200, 0.001),
         lambda: metrics.count_request("proxy", 200, 0.001)),
    ]  # fmt: skip
    print(f"best of 7 x {n:,} calls, µs per call (load average {os.getloadavg()[0]:.2f})")
    print()
    table(cases, n, total=True)
    print()
    print("The session cache miss (record version 2 → 3, cookie check):")
    print()
    table(miss_cases(), n // 4, total=False)
    sink.close()
    os.close(devnull)
    return 0


if __name__ == "__main__":
    sys.exit(main())
