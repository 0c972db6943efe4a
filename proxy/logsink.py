"""The access log's fast path: one line per request built as bytes, written by a thread.

Through ``logging`` a request line cost a LogRecord, a formatter, ``json.dumps`` and a
``write()`` on the event loop: about a third of the proxy's throughput (issue 12). Here a line
is a few string joins (values that need no escaping, the usual case, are copied as they are)
appended to a buffer under a lock; a writer thread hands the buffer to the file descriptor when
it holds ``FLUSH_BYTES``, at least every ``FLUSH_SECONDS``, and at shutdown. A slow reader of
stderr therefore stalls the thread, never the event loop; past ``MAX_PENDING_BYTES`` waiting,
lines are counted and dropped (and the count is logged) rather than growing memory.

Lines that must be out at once (the audit stream, warnings, errors) go through
:meth:`LineSink.write_now`, which writes under the same lock as the thread so the two never
interleave inside a line.

The bytes are the same as :class:`proxy.observe.JsonFormatter` (or the text formatter) made:
the same keys in the same order. Every value is valid JSON whatever it holds (quotes,
backslashes, control characters, lone surrogates, non-UTF-8 bytes decoded by the HTTP parser),
and a text line never holds a raw control character, so a path with ``%0A`` cannot forge a
second line.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
import weakref
from typing import Literal

__all__ = [
    "FLUSH_BYTES",
    "FLUSH_SECONDS",
    "AccessLine",
    "LineSink",
    "encode_line",
    "flush_all",
    "json_string",
    "text_value",
]

FLUSH_BYTES = 64 * 1024
FLUSH_SECONDS = 0.1
MAX_PENDING_BYTES = 16 * 1024 * 1024
_WRITE_CHUNK = 256 * 1024  # one os.write at most: write_now never waits long for the thread

# Characters that may stand in a JSON string or a text line unescaped: printable ASCII but
# the quote and the backslash. Anything else takes the slow path.
_PLAIN = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}
# Text lines: control characters (C0, DEL, C1) and line separators become \xNN / \uNNNN.
_TEXT_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))} | {
    0x2028: "\\u2028",
    0x2029: "\\u2029",
    0x5C: "\\\\",
}


def json_string(value: str) -> str:
    """``value`` as a JSON string literal (quotes included), UTF-8 safe once encoded with
    ``backslashreplace`` (a lone surrogate becomes the JSON escape ``\\udc80``)."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def text_value(value: str) -> str:
    """``value`` for a text line: printable as it is, control characters escaped."""
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_TEXT_ESCAPES)


def encode_line(line: str) -> bytes:
    # backslashreplace: a lone surrogate (undecodable input) becomes "\udc80", which is a JSON
    # escape inside a string and plain text in a text line; never an encoding error.
    return line.encode("utf-8", "backslashreplace")


_ISO_MS = tuple(f".{ms:03d}Z" for ms in range(1000))


class _Clock:
    """Timestamps for log lines; the part up to the second is formatted once per second."""

    __slots__ = ("_iso_prefix", "_second", "_text_prefix")

    def __init__(self) -> None:
        self._second = -1
        self._iso_prefix = ""
        self._text_prefix = ""

    def _roll(self, second: int) -> None:
        tm = time.gmtime(second)
        self._second = second
        self._iso_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", tm)
        # logging's default asctime is local time: keep the text format's timestamps as they were.
        self._text_prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))

    def iso(self, now: float) -> str:
        ms = int(now * 1000)
        second, frac = divmod(ms, 1000)
        if second != self._second:
            self._roll(second)
        return self._iso_prefix + _ISO_MS[frac]

    def text(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._roll(second)
        return f"{self._text_prefix},{int((now - second) * 1000):03d}"


class LineSink:
    """Complete lines to one file descriptor: buffered by a writer thread, or at once."""

    def __init__(
        self,
        fd: int,
        *,
        flush_bytes: int = FLUSH_BYTES,
        flush_seconds: float = FLUSH_SECONDS,
        max_pending: int = MAX_PENDING_BYTES,
    ) -> None:
        self._fd = fd
        self._flush_bytes = flush_bytes
        self._flush_seconds = flush_seconds
        self._max_pending = max_pending
        self._lock = threading.Lock()  # the buffer
        self._io = threading.Lock()  # the descriptor: whole lines never interleave
        self._buffer: list[bytes] = []
        self._pending = 0
        self.dropped = 0
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="gate-log-writer", daemon=True)
        self._thread.start()
        _open_sinks.add(self)

    def write(self, line: bytes) -> None:
        """Queue one line (with its newline); returns at once."""
        if self._closed:
            self.write_now(line)
            return
        with self._lock:
            if self._pending > self._max_pending:
                self.dropped += 1
                return
            self._buffer.append(line)
            self._pending += len(line)
            full = self._pending >= self._flush_bytes
        if full:
            self._wake.set()

    def write_now(self, line: bytes) -> None:
        """Write one line before returning (what was queued before it goes first)."""
        with self._io:
            self._write(self._take() + line)

    def flush(self) -> None:
        """Everything queued so far is written when this returns."""
        with self._io:
            self._write(self._take())

    def close(self) -> None:
        """Flush and stop the thread (idempotent); later lines are written at once."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        self.flush()

    def _take(self) -> bytes:
        with self._lock:
            buffer, self._buffer = self._buffer, []
            self._pending = 0
            dropped, self.dropped = self.dropped, 0
        if dropped:
            note = f"cognito-gate: {dropped} log line(s) dropped (stderr too slow)\n"
            buffer.append(note.encode())
        return b"".join(buffer)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view[:_WRITE_CHUNK])
            except InterruptedError:
                continue
            except OSError:
                return  # stderr closed under us: nothing sensible left to do with the line
            view = view[written:]

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            self.flush()


_open_sinks: weakref.WeakSet[LineSink] = weakref.WeakSet()


def flush_all() -> None:
    """Write out every sink's queued lines now (serve calls it once the drain is over)."""
    for sink in list(_open_sinks):
        sink.flush()


@atexit.register
def _flush_at_exit() -> None:
    # serve() closes its sink after the drain; this covers every other way out of the process.
    for sink in list(_open_sinks):
        sink.close()


class AccessLine:
    """Renders the access line of one request as bytes, in the configured format."""

    def __init__(self, fmt: Literal["json", "text"], logger: str = "proxy.access") -> None:
        self._json = fmt == "json"
        self._clock = _Clock()
        self._logger = logger
        self._json_head = f'", "level": "info", "logger": "{logger}", "msg": '
        self._text_head = f" INFO    {logger}: "

    def render(
        self,
        now: float,
        *,
        request_id: str,
        method: str,
        path: str,
        route: str,
        status: int,
        seconds: float,
        upstream_ms: float | None,
        client_ip: str | None,
        user: str | None,
        session: str | None,
    ) -> bytes:
        """One line; ``now`` is ``time.time()`` when the request finished."""
        ms = seconds * 1000
        # The message as the logging version wrote it: "%s %s %s %.1fms %s".
        msg = f"{method} {path} {status} {ms:.1f}ms request_id={request_id}"
        if user is not None:
            msg += f" user={user}"
        if session is not None:
            msg += f" session={session}"
        if not self._json:
            return encode_line(f"{self._clock.text(now)}{self._text_head}{text_value(msg)}\n")
        tail = ""
        if upstream_ms is not None:
            tail = f', "upstream_ms": {upstream_ms!r}'
        # One test for every string at once: in the usual line none needs escaping.
        every = f"{msg}{route}{client_ip or ''}"
        if every.isascii() and every.isprintable() and '"' not in every and "\\" not in every:
            if client_ip is not None:
                tail += f', "client_ip": "{client_ip}"'
            if user is not None:
                tail += f', "user": "{user}"'
            if session is not None:
                tail += f', "session": "{session}"'
            return (
                f'{{"ts": "{self._clock.iso(now)}{self._json_head}"{msg}", "request_id": '
                f'"{request_id}", "method": "{method}", "path": "{path}", "route": "{route}", '
                f'"status": {status}, "duration_ms": {round(ms, 2)!r}{tail}}}\n'
            ).encode()
        js = json_string
        if client_ip is not None:
            tail += f', "client_ip": {js(client_ip)}'
        if user is not None:
            tail += f', "user": {js(user)}'
        if session is not None:
            tail += f', "session": {js(session)}'
        return encode_line(
            f'{{"ts": "{self._clock.iso(now)}{self._json_head}{js(msg)}, "request_id": '
            f'{js(request_id)}, "method": {js(method)}, "path": {js(path)}, "route": '
            f'{js(route)}, "status": {status}, "duration_ms": {round(ms, 2)!r}{tail}}}\n'
        )
