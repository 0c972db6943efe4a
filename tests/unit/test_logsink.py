"""The access log's fast path (proxy/logsink.py): the same lines as the logging formatter made,
valid JSON (or one text line) for every hostile value, and no line lost."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.logsink import AccessLine, LineSink, json_string, text_value
from proxy.observe import FIELDS_ATTR, JsonFormatter

FIELDS: dict[str, Any] = {
    "request_id": "0123456789abcdef0123456789abcdef",
    "method": "GET",
    "path": "/page/x",
    "route": "proxy",
    "status": 200,
    "seconds": 0.0012345,
    "upstream_ms": 0.5,
    "client_ip": "127.0.0.1",
    "user": "3f1b2c4d-aaaa-bbbb-cccc-123456789012",
    "session": "a1b2c3d4e5f6",
}


def _as_logging_made_it(now: float, f: dict[str, Any]) -> dict[str, Any]:
    """The line the logging path (RequestObserver before issue 12) wrote for the same request."""
    fields = {
        "request_id": f["request_id"],
        "method": f["method"],
        "path": f["path"],
        "route": f["route"],
        "status": f["status"],
        "duration_ms": round(f["seconds"] * 1000, 2),
        "upstream_ms": f["upstream_ms"],
        "client_ip": f["client_ip"],
        "user": f["user"],
        "session": f["session"],
    }
    tail = " ".join(
        f"{k}={v}" for k, v in fields.items() if k in ("request_id", "user", "session") and v
    )
    record = logging.LogRecord(
        "proxy.access", logging.INFO, __file__, 1, "%s %s %s %.1fms %s", None, None
    )
    record.args = (f["method"], f["path"], f["status"], f["seconds"] * 1000, tail)
    record.created, record.msecs = now, (now - int(now)) * 1000
    setattr(record, FIELDS_ATTR, {k: v for k, v in fields.items() if v is not None})
    parsed: dict[str, Any] = json.loads(JsonFormatter().format(record))
    return parsed


def _render(fmt: str, now: float, **fields: Any) -> bytes:
    return AccessLine(fmt).render(now, **fields)  # type: ignore[arg-type]


def test_json_line_is_the_logging_line_key_for_key() -> None:
    now = 1_800_000_000.25  # exact in binary: both round the milliseconds alike
    line = _render("json", now, **FIELDS)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    parsed = json.loads(line)
    expected = _as_logging_made_it(now, FIELDS)
    assert list(parsed) == list(expected)  # same keys, same order
    assert parsed == expected


def test_absent_fields_are_left_out_like_before() -> None:
    fields = FIELDS | {"upstream_ms": None, "client_ip": None, "user": None, "session": None}
    parsed = json.loads(_render("json", 1_800_000_000.5, **fields))
    assert parsed == _as_logging_made_it(1_800_000_000.5, fields)
    assert "user" not in parsed and "upstream_ms" not in parsed


hostile = st.text(alphabet=st.characters(codec=None), max_size=40) | st.sampled_from(
    ['"', "\\", "\n", "\r\n", "\x00", "\u2028", "\udc80", "日本語", '\\"}{"x":1', "\x1b[31m"]
)


@settings(max_examples=300, deadline=None)
@given(path=hostile, user=hostile, method=hostile, rid=hostile)
def test_every_hostile_value_is_valid_json_on_one_line(
    path: str, user: str, method: str, rid: str
) -> None:
    fields = FIELDS | {"path": path, "user": user, "method": method, "request_id": rid}
    line = _render("json", time.time(), **fields)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    line.decode("utf-8")  # strict: a lone surrogate left as an escape, never raw
    parsed = json.loads(line)
    assert parsed["path"] == path and parsed["user"] == user and parsed["method"] == method
    assert parsed["request_id"] == rid


@settings(max_examples=300, deadline=None)
@given(path=hostile, user=hostile)
def test_a_text_line_cannot_be_split_or_carry_control_characters(path: str, user: str) -> None:
    line = _render("text", time.time(), **(FIELDS | {"path": path, "user": user}))
    text = line.decode("utf-8")
    assert text.endswith("\n")
    body = text[:-1]
    # No control character, line or paragraph separator, or raw surrogate survives.
    assert not [c for c in body if unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs")]


def test_value_escapes() -> None:
    assert json_string("plain") == '"plain"'
    assert json.loads(json_string('a"b\\c\n')) == 'a"b\\c\n'
    assert text_value("a\nb") == "a\\x0ab"
    assert text_value("back\\slash") == "back\\\\slash"  # an escape cannot be forged either


def _reader() -> tuple[int, int]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    return r, w


def _read(fd: int, want: int, timeout: float) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(BlockingIOError):
            got += os.read(fd, 1 << 20)
        if len(got) >= want or time.monotonic() >= deadline:
            return got
        time.sleep(0.005)


def test_lines_are_flushed_within_the_interval_and_in_order() -> None:
    r, w = _reader()
    sink = LineSink(w, flush_bytes=1 << 20, flush_seconds=0.1)
    try:
        for i in range(100):
            sink.write(b"line %d\n" % i)
        assert _read(r, 1, 0.0) == b""  # queued, not written by the caller
        out = _read(r, 10**6, 2.0)
        assert out == b"".join(b"line %d\n" % i for i in range(100))
    finally:
        sink.close()
        os.close(r)
        os.close(w)


def test_a_full_buffer_is_written_without_waiting_for_the_interval() -> None:
    r, w = _reader()
    sink = LineSink(w, flush_bytes=1000, flush_seconds=30)
    try:
        for _ in range(20):
            sink.write(b"x" * 99 + b"\n")
        assert len(_read(r, 2000, 2.0)) == 2000
    finally:
        sink.close()
        os.close(r)
        os.close(w)


def test_write_now_goes_out_at_once_after_what_was_queued() -> None:
    r, w = _reader()
    sink = LineSink(w, flush_bytes=1 << 20, flush_seconds=30)
    try:
        sink.write(b"queued\n")
        sink.write_now(b"audit\n")
        assert _read(r, 13, 0.0) == b"queued\naudit\n"
    finally:
        sink.close()
        os.close(r)
        os.close(w)


def test_close_flushes_and_later_lines_are_written_at_once() -> None:
    r, w = _reader()
    sink = LineSink(w, flush_bytes=1 << 20, flush_seconds=30)
    sink.write(b"a\n")
    sink.close()
    assert _read(r, 2, 0.0) == b"a\n"
    sink.write(b"b\n")
    assert _read(r, 2, 0.0) == b"b\n"
    os.close(r)
    os.close(w)


def test_past_the_cap_lines_are_counted_and_reported_not_stored() -> None:
    r, w = _reader()
    sink = LineSink(w, flush_bytes=1 << 20, flush_seconds=30, max_pending=10)
    try:
        for _ in range(5):
            sink.write(b"0123456789\n")
        sink.flush()
        out = _read(r, 10**6, 0.0)
        assert out.count(b"0123456789\n") == 1
        assert b"4 log line(s) dropped" in out
    finally:
        sink.close()
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_lines_queued_just_before_exit_are_written(fmt: str) -> None:
    """A process that logs and exits at once (no serve drain) still writes every line."""
    code = f"""
import time
from proxy.observe import RequestObserver, access_sink, setup_logging
from proxy.settings import LogSettings
setup_logging(LogSettings(format="{fmt}"))
sink, line = access_sink()
for i in range(500):
    sink.write(line.render(time.time(), request_id="r%d" % i, method="GET", path="/p%d" % i,
        route="proxy", status=200, seconds=0.001, upstream_ms=None, client_ip=None, user=None,
        session=None))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=True)
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 500
    assert all(f"/p{i} " in line for i, line in enumerate(lines))
