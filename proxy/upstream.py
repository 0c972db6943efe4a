"""A lean HTTP/1.1 client for proxied requests: asyncio protocols, httptools (llhttp) parsing,
a keep-alive pool per upstream.

aiohttp's ``ClientSession`` builds a ``ClientRequest`` and a ``ClientResponse`` per request,
recomputes default headers, wraps the body in payload objects and reschedules timeout handles:
about 30 % of the proxy's CPU on the hot path (issue 12). Here a request is one bytes head
written to a pooled connection and a response parsed by llhttp in C straight into a header
list; the body, both ways, is streamed with back-pressure.

What it does, and why:

- **Pool**: idle connections are reused last-in first-out (the warmest socket first); at most
  ``limit`` open (0 = no limit); waiting for a free one counts toward ``connect_timeout``.
- **Timeouts**: ``connect_timeout`` covers waiting for a pooled connection and the TCP (and TLS)
  connect; ``read_timeout`` is the longest silence from the upstream while a response is awaited
  or read (while we stop reading because the client is slow, the clock does not run).
- **Bodies**: a request body with a ``Content-Length`` is sent as it comes; one without (the
  client chunked it) is re-chunked. Responses: ``Content-Length``, chunked (trailers dropped:
  they would have to be forwarded as trailers, which aiohttp's server cannot send) and
  close-delimited bodies; ``HEAD``, ``1xx``, ``204`` and ``304`` have none. Interim ``1xx``
  answers (``100 Continue``, ``103 Early Hints``) are skipped; ``Expect`` never reaches the
  upstream (the forwarder answers it itself).
- **Reuse**: a connection goes back to the pool only after a complete response that allows it
  (keep-alive, not close-delimited, not HEAD, the request body fully sent).
- **Retry**: a pooled connection the upstream closed while it sat idle fails before any
  response byte arrives; such a request is sent again on a fresh connection once, only if its
  method is idempotent and its body is not being streamed (none, or one that had arrived whole
  and is sent again byte for byte: nothing of the client's stream was consumed).
- **One answer per request**: bytes that start a second response end the connection.
- **Safety**: a head with CR, LF or NUL inside a name, value or target is refused
  (:class:`UpstreamError`), never written.

Errors never quote the URL, headers or body: they may carry secrets.
"""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import ssl as ssl_module
from collections.abc import Sequence
from typing import Protocol

import httptools
from multidict import CIMultiDict

__all__ = [
    "IDEMPOTENT",
    "BodySource",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamResponse",
    "UpstreamTimeout",
]

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Bytes of response body held before we stop reading from the upstream (the client is slower).
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
_EMPTY = b""


class UpstreamError(ConnectionError):
    """The upstream could not be reached, closed early, or answered something unparsable."""


class UpstreamTimeout(TimeoutError):
    """connect_timeout or read_timeout passed."""


class BodySource(Protocol):
    """What a request body is read from (aiohttp's server-side ``StreamReader``)."""

    async def readany(self) -> bytes: ...

    def is_eof(self) -> bool: ...

    def read_nowait(self, n: int = -1) -> bytes: ...


class UpstreamResponse:
    """One response as it arrives; the httptools parser calls the ``on_*`` methods."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_exc",
        "_head_request",
        "_headers",
        "_headers_ready",
        "_in_body",
        "_interim",
        "_raw",
        "_reason",
        "_waiter",
        "close_delimited",
        "complete",
        "connection",
        "fields",
        "keep_alive",
        "reason",
        "received_any",
        "status",
    )

    def __init__(self, conn: _Connection, head_request: bool) -> None:
        self._conn = conn
        self._head_request = head_request
        self._raw: list[tuple[bytes, bytes]] = []
        self._reason = _EMPTY
        self._in_body = False
        self._interim = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._headers_ready: asyncio.Future[None] = conn.loop.create_future()
        self._exc: BaseException | None = None
        self.status = 0
        self.reason = ""
        # The response headers in order as (name, lower-case name, value): what the forwarder
        # walks once; ``headers`` is the same as a multidict, made only when asked for.
        self.fields: list[tuple[str, str, str]] = []
        self.connection: list[str] = []  # the Connection header values
        self._headers: CIMultiDict[str] | None = None
        self.complete = False
        self.close_delimited = False
        self.keep_alive = False
        self.received_any = False

    @property
    def headers(self) -> CIMultiDict[str]:
        """The response headers (empty until they arrived)."""
        headers = self._headers
        if headers is None:
            headers = CIMultiDict([(name, value) for name, _, value in self.fields])
            if self._in_body:  # complete: it will not change
                self._headers = headers
        return headers

    # -- httptools callbacks ------------------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        self._reason = reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_body:  # after the body: trailers, dropped
            self._raw.append((name, value))

    def on_headers_complete(self) -> None:
        if self._in_body:
            # A second answer to one request (response splitting, or a desynchronised app): the
            # connection can no longer be trusted to frame the next exchange.
            raise UpstreamError("the upstream sent more than one response")
        parser = self._conn.parser
        assert parser is not None
        status = parser.get_status_code()
        if 100 <= status < 200:
            # Interim (100 Continue, 103 Early Hints): the real answer follows. 101 would switch
            # protocols, which we never asked for (upgrades go through aiohttp's client).
            if status == 101:
                raise UpstreamError("unexpected 101 Switching Protocols")
            self._raw.clear()
            self._interim = True
            return
        self.status = status
        # Read now: once the message is complete llhttp has reset what this is computed from.
        self.keep_alive = parser.should_keep_alive()
        self.reason = self._reason.decode("utf-8", "surrogateescape")
        # As aiohttp's parser decodes them: bytes that are not UTF-8 survive the round trip.
        fields = self.fields
        length = False
        encoding: str | None = None  # the first Transfer-Encoding, as a multidict's get() has it
        for n, v in self._raw:
            name = n.decode("utf-8", "surrogateescape")
            value = v.decode("utf-8", "surrogateescape")
            lname = name.lower()
            if lname == "content-length":
                length = True
            elif lname == "transfer-encoding":
                if encoding is None:
                    encoding = value
            elif lname == "connection":
                self.connection.append(value)
            fields.append((name, lname, value))
        self._raw = []
        self._in_body = True
        if self._head_request or status in (204, 304):
            self.complete = True  # no body, whatever the headers say
        elif not length and "chunked" not in (encoding or ""):
            self.close_delimited = True
        if not self._headers_ready.done():
            self._headers_ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered >= _HIGH_WATER:
            self._conn.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
        self._wake()

    # -- the connection's events --------------------------------------------------------------

    def fail(self, exc: BaseException) -> None:
        if self.complete:
            return  # all of it arrived: a close afterwards changes nothing
        if self.close_delimited and isinstance(exc, _Eof):
            self.complete = True  # the end of a close-delimited body is the end of the socket
            self._wake()
            return
        if self._exc is None:
            self._exc = exc if not isinstance(exc, _Eof) else UpstreamError(str(exc))
        if not self._headers_ready.done():
            self._headers_ready.set_exception(self._exc)
            self._headers_ready.exception()  # retrieved: no "never retrieved" warning
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the caller's side --------------------------------------------------------------------

    async def wait_headers(self) -> None:
        await self._headers_ready

    def take_body(self) -> bytes:
        """Everything buffered so far (the whole body when ``complete`` at the headers)."""
        chunks = self._chunks
        if not chunks:
            return _EMPTY
        data = chunks[0] if len(chunks) == 1 else _EMPTY.join(chunks)
        chunks.clear()
        self._buffered = 0
        self._conn.resume_reading()
        return data

    async def read(self) -> bytes:
        """The next piece of the body; ``b""`` once it is complete."""
        while True:
            if self._chunks:
                return self.take_body()
            if self.complete:
                return _EMPTY
            if self._exc is not None:
                raise self._exc
            self._waiter = self._conn.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class _Eof(UpstreamError):
    """The upstream closed the connection (an error unless the body is close-delimited)."""


class _Connection(asyncio.Protocol):
    """One upstream connection; at most one request on it at a time."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpResponseParser | None = None  # one per response
        self.response: UpstreamResponse | None = None
        self.closed = False
        self.reused = False
        self.counted = True  # in pool._open until it is discarded
        self._paused = False
        self._can_write = True
        self._write_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_io = 0.0
        self._begun = 0.0
        self._strict_head = False

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        resp = self.response
        if resp is None:
            # Bytes on an idle connection: nothing may follow a complete response. Not reusable.
            self.close()
            return
        resp.received_any = True
        self._last_io = self.loop.time()
        assert self.parser is not None  # set with self.response
        try:
            self.parser.feed_data(data)
        except UpstreamError as exc:
            self._fail(exc)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__ or exc
            self._fail(cause if isinstance(cause, UpstreamError) else UpstreamError("bad response"))
        except httptools.HttpParserError:
            self._fail(UpstreamError("malformed response from the upstream"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        resp = self.response
        if resp is not None:
            if isinstance(exc, OSError):
                resp.fail(UpstreamError(f"connection lost ({type(exc).__name__})"))
            else:
                resp.fail(_Eof("the upstream closed the connection"))
        self._wake_writer()
        self.pool.discard(self)

    def pause_writing(self) -> None:
        self._can_write = False

    def resume_writing(self) -> None:
        self._can_write = True
        self._wake_writer()

    # -- reading ------------------------------------------------------------------------------

    def pause_reading(self) -> None:
        if not self._paused and self.transport is not None and not self.closed:
            self._paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self._last_io = self.loop.time()
            self.transport.resume_reading()

    def _fail(self, exc: BaseException) -> None:
        if self.response is not None:
            self.response.fail(exc)
        self.close()

    # -- writing ------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise UpstreamError("the upstream closed the connection")
        self.transport.write(data)

    async def drain(self) -> None:
        while not self._can_write and not self.closed:
            self._write_waiter = self.loop.create_future()
            try:
                await self._write_waiter
            finally:
                self._write_waiter = None
        if self.closed:
            raise UpstreamError("the upstream closed the connection")

    def _wake_writer(self) -> None:
        waiter = self._write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- one exchange -------------------------------------------------------------------------

    def begin(
        self, head: bytes, head_request: bool, read_timeout: float, *, strict_head: bool
    ) -> UpstreamResponse:
        """Send ``head``. ``strict_head``: the response headers are due within
        ``read_timeout`` of now, however they trickle (a body-less request; an upload goes at
        the client's pace, so then only silence counts)."""
        resp = UpstreamResponse(self, head_request)
        # A fresh parser per response: nothing of the previous exchange can leak into it.
        self.parser = httptools.HttpResponseParser(resp)
        self.response = resp
        self._last_io = self._begun = self.loop.time()
        self._strict_head = strict_head
        self._timer = self.loop.call_later(read_timeout, self._check_timeout, read_timeout)
        self.write(head)
        return resp

    def _check_timeout(self, read_timeout: float) -> None:
        self._timer = None
        resp = self.response
        if resp is None or self.closed or resp.complete:
            return
        # Headers of a body-less request: one deadline, however slowly they trickle in.
        since = self._begun if self._strict_head and not resp._in_body else self._last_io
        idle = self.loop.time() - since
        if self._paused or idle < read_timeout:
            # Paused: the client is the slow one. Otherwise data came since: wait the rest.
            self._timer = self.loop.call_later(
                read_timeout if self._paused else read_timeout - idle,
                self._check_timeout,
                read_timeout,
            )
            return
        self._fail(UpstreamTimeout("upstream read timeout"))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def finish(self, reusable: bool) -> None:
        """The exchange is over: back to the pool, or closed."""
        resp = self.response
        self._cancel_timer()
        self.response = None
        if (
            reusable
            and resp is not None
            and resp.complete
            and not resp.close_delimited
            and not resp._head_request
            and not self._paused
            and resp.keep_alive
            and not self.closed
        ):
            self.pool.put_idle(self)
        else:
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True
        self.pool.discard(self)


def _crlf_free(head: str, lines: int) -> bool:
    """True if the head has exactly its own line breaks (one per line) and no NUL."""
    return head.count("\n") == lines and head.count("\r") == lines and "\0" not in head


class UpstreamPool:
    """Keep-alive connections to one ``host:port`` (TLS with ``ssl``)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl: ssl_module.SSLContext | None = None,
        limit: int = 512,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self._host = host
        self._port = port
        self._ssl = ssl
        self._limit = limit
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    # -- connections --------------------------------------------------------------------------

    async def _acquire(self) -> _Connection:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                conn.reused = True
                return conn
            conn.close()
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await self._new_connection()
        except TimeoutError:
            raise UpstreamTimeout("upstream connect timeout") from None

    async def _new_connection(self) -> _Connection:
        while self._limit and self._open >= self._limit:
            if self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    conn.reused = True
                    return conn
                continue
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self._open += 1
        try:
            _, conn = await self.loop.create_connection(
                lambda: _Connection(self),
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
            )
        except OSError as exc:
            self._open -= 1
            self._wake_waiter()
            reason = exc.strerror or type(exc).__name__
            raise UpstreamError(f"cannot connect to the upstream ({reason})") from None
        except BaseException:
            self._open -= 1
            self._wake_waiter()
            raise
        return conn

    def put_idle(self, conn: _Connection) -> None:
        if self._closed:
            conn.close()
            return
        self._idle.append(conn)
        self._wake_waiter()

    def discard(self, conn: _Connection) -> None:
        if conn.counted:
            conn.counted = False
            self._open -= 1
            if conn in self._idle:
                self._idle.remove(conn)
            self._wake_waiter()

    def _wake_waiter(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        self._closed = True
        for conn in list(self._idle):
            conn.close()
        self._idle.clear()

    # -- a request ----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        target: str,
        headers: CIMultiDict[str] | Sequence[tuple[str, str]],
        body: BodySource | None,
        *,
        content_length: bool | None = None,
    ) -> tuple[UpstreamResponse, _Connection, asyncio.Task[None] | None]:
        """Send the request; returns once the response headers arrived. The caller reads the
        body from the response, then calls ``finish(conn, sender, ok)`` (see :meth:`finish`).

        ``headers``: a multidict or ``(name, value)`` pairs in order; ``content_length`` says
        whether one of them is Content-Length (None: look). ``body``: None for no body; with a
        ``Content-Length`` it is sent as it comes, otherwise chunked.
        """
        pairs = headers.items() if isinstance(headers, CIMultiDict) else headers
        if content_length is None:
            content_length = any(name.lower() == "content-length" for name, _ in pairs)
        parts = [method, " ", target, " HTTP/1.1\r\n"]
        for name, value in pairs:
            parts += (name, ": ", value, "\r\n")
        chunked = body is not None and not content_length
        lines = len(headers) + 2
        if chunked:
            parts.append("Transfer-Encoding: chunked\r\n")
            lines += 1
        parts.append("\r\n")
        text = "".join(parts)
        if not _crlf_free(text, lines):
            raise UpstreamError("a header name, value or the target holds CR, LF or NUL")
        head = text.encode("utf-8", "surrogateescape")
        head_request = method == "HEAD"
        whole: bytes | None = None
        if body is not None and body.is_eof():
            # Small bodies arrived with the head: one write, no sender task.
            whole = body.read_nowait(-1)
            if chunked:
                whole = (b"%x\r\n%s\r\n0\r\n\r\n" % (len(whole), whole)) if whole else b"0\r\n\r\n"
            body = None
        retry = body is None and method in IDEMPOTENT
        while True:
            conn = await self._acquire()
            sender: asyncio.Task[None] | None = None
            try:
                resp = conn.begin(
                    head if whole is None else head + whole,
                    head_request,
                    self._read_timeout,
                    strict_head=body is None,
                )
                if body is not None:
                    sender = self.loop.create_task(_send_body(conn, body, chunked))
                    sender.add_done_callback(_sender_done(conn))
                await resp.wait_headers()
            except UpstreamError:
                stale = conn.reused and not resp_received(conn)
                if sender is not None and not sender.done():
                    sender.cancel()
                conn.finish(False)
                if retry and stale:
                    retry = False  # once, on a fresh or other pooled connection
                    continue
                raise
            except BaseException:
                if sender is not None and not sender.done():
                    sender.cancel()
                conn.finish(False)
                raise
            return resp, conn, sender

    @staticmethod
    def finish(conn: _Connection, sender: asyncio.Task[None] | None, ok: bool) -> None:
        """After the body was read (``ok``) or abandoned: reuse or close the connection."""
        if sender is not None and not sender.done():
            sender.cancel()  # the upstream answered before taking the whole body
            ok = False
        elif sender is not None and (sender.cancelled() or sender.exception() is not None):
            ok = False
        conn.finish(ok)


def resp_received(conn: _Connection) -> bool:
    resp = conn.response
    return resp is not None and resp.received_any


def _sender_done(conn: _Connection) -> collections.abc.Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and conn.response is not None:
            # The client's upload failed (it went away): the upstream has half a body.
            conn.response.fail(exc if isinstance(exc, OSError) else UpstreamError("upload failed"))
            conn.close()

    return done


async def _send_body(conn: _Connection, body: BodySource, chunked: bool) -> None:
    while True:
        chunk = await body.readany()
        if not chunk:
            break
        conn.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        await conn.drain()
    if chunked:
        conn.write(b"0\r\n\r\n")
