"""GETs written back to back on one dedicated Redis connection, their replies parsed by hiredis
and handed out in order: the read of a session record on a cache miss without redis-py's
per-command pool checkout, condition and timeout handle.

Replies carry no request id, so the one thing that matters is that the n-th reply goes to the
n-th GET written, or to nobody. Everything below follows from that:

- A GET's slot (its future) leaves the queue only when its reply is parsed, or when the
  connection is given up. A caller cancelled by its own deadline leaves its slot behind; the
  reply still arrives, fills that slot and is dropped.
- A connection is given up, never reused, when it is lost or closed by the server, when a
  reply cannot be parsed or is not a GET's (a string or nil; an error reply is a GET's), when
  a reply arrives with no GET waiting, or when the oldest GET has waited ``timeout`` (a hung
  server, or a reply cut in the middle). Every GET still queued fails with it; those that
  lost the connection (not the timeouts) are retried once through redis-py's pool, as redis-py
  retries a pooled connection that died.
- Connecting, the handshake (AUTH, SELECT, CLIENT SETNAME, TLS, a Sentinel's master) is
  redis-py's own, through a connection its pool builds with the store's settings; the socket
  is then taken over. Only RESP2 (redis-py's default): RESP3 could push unasked messages.
- While there is no connection (starting, after a failure, or idle past the health-check
  interval, when a half-open socket would go unnoticed), while the kernel's send buffer is
  full, or while ``max_pending`` GETs wait, GETs go through redis-py's pool as before, which
  has its own limit and timeout: so the queue, and the bytes waiting to be sent, are bounded.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import hiredis
from redis.asyncio.connection import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

_MAX_PENDING = 256
_RECONNECT_AFTER = 1.0  # seconds without a connection after a failed attempt (the pool serves)


class _Lost(RedisConnectionError):
    """The connection went away with this GET unanswered: safe to retry (GET is idempotent)."""


class _Link(asyncio.Protocol):
    """One connection's queue of GETs in the order written, and the parser of their replies."""

    __slots__ = (
        "_loop",
        "_on_gone",
        "_parser",
        "_timeout",
        "_timer",
        "_transport",
        "_writer",
        "last_reply",
        "open",
        "paused",
        "pending",
    )

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        timeout: float,
        on_gone: Callable[[_Link], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        # Held, never used: a StreamWriter closes its transport when collected.
        self._writer = writer
        self._transport = writer.transport
        self._timeout = timeout
        self._on_gone = on_gone
        self._parser = hiredis.Reader()  # bytes out; error replies come back as ReplyError
        self._timer: asyncio.TimerHandle | None = None
        self.pending: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.open = True
        self.paused = False
        self.last_reply = self._loop.time()

    def send(self, key: str, now: float) -> asyncio.Future[Any]:
        pending = self.pending
        if pending and pending[0][1] + self._timeout <= now:
            # The watchdog is late (a busy loop): the oldest GET is overdue already.
            self._give_up(RedisTimeoutError("redis GET timed out"))
            raise _Lost("gave up an overdue connection")
        raw = key.encode()
        fut: asyncio.Future[Any] = self._loop.create_future()
        pending.append((fut, now))
        self._transport.write(b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(raw), raw))
        if self._timer is None:
            self._timer = self._loop.call_at(now + self._timeout, self._watch)
        return fut

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        pending = self.pending
        parser.feed(data)
        while True:
            try:
                reply = parser.gets()
            except hiredis.ProtocolError:
                self._give_up(RedisConnectionError("unparsable reply from redis"))
                return
            if reply is False:  # not complete yet (None is a nil reply, b"" an empty value)
                return
            if not pending:
                self._give_up(RedisConnectionError("a reply from redis that nothing asked for"))
                return
            fut = pending.popleft()[0]
            self.last_reply = self._loop.time()
            if reply is None or type(reply) is bytes:
                if not fut.done():
                    fut.set_result(reply)
            elif isinstance(reply, hiredis.ReplyError):
                if not fut.done():
                    fut.set_exception(ResponseError(str(reply)))
            else:
                # Not what a GET answers: whatever this connection is in step with, it is not us.
                if not fut.done():
                    fut.set_exception(RedisConnectionError("not a GET reply from redis"))
                self._give_up(RedisConnectionError("not a GET reply from redis"))
                return

    def _watch(self) -> None:
        self._timer = None
        if not self.open or not self.pending:
            return
        oldest = self.pending[0][1]
        now = self._loop.time()
        if oldest + self._timeout <= now:
            self._give_up(RedisTimeoutError("redis GET timed out"))
        else:
            self._timer = self._loop.call_at(oldest + self._timeout, self._watch)

    def eof_received(self) -> bool:
        return False  # close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._give_up(_Lost("redis connection lost"))

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    def close(self) -> None:
        self._give_up(_Lost("closed"))

    def _give_up(self, error: Exception) -> None:
        """Never use this connection again: close it, fail every GET still queued."""
        was_open = self.open
        self.open = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport.abort()
        pending, self.pending = self.pending, collections.deque()
        for fut, _ in pending:
            if not fut.done():
                fut.set_exception(error)
        if was_open:
            self._on_gone(self)
            if not isinstance(error, _Lost) or pending:
                log.warning("redis GET connection given up: %s", error)


class PipelinedGets:
    """GET through one pipelined connection made by ``pool``, else through ``fallback``."""

    __slots__ = (
        "_closed",
        "_connecting",
        "_fallback",
        "_health_interval",
        "_link",
        "_max_pending",
        "_pool",
        "_retry_at",
        "_timeout",
    )

    def __init__(
        self,
        pool: ConnectionPool,
        fallback: Callable[[str], Awaitable[Any]],
        *,
        timeout: float,
        health_interval: float,
        max_pending: int = _MAX_PENDING,
    ) -> None:
        self._pool = pool
        self._fallback = fallback
        self._timeout = timeout
        self._health_interval = health_interval
        self._max_pending = max_pending
        self._link: _Link | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self._closed = False

    @staticmethod
    def usable_with(pool: ConnectionPool) -> bool:
        """RESP2 only: a RESP3 connection may receive pushes nobody asked for."""
        return str(pool.connection_kwargs.get("protocol") or 2) == "2"

    async def get(self, key: str) -> Any:
        link = self._link
        now = asyncio.get_running_loop().time()
        if (
            link is None
            or link.paused
            or len(link.pending) >= self._max_pending
            or now - link.last_reply > self._health_interval
        ):
            if link is None or now - link.last_reply > self._health_interval:
                self._replace(link, now)
            return await self._fallback(key)
        try:
            return await link.send(key, now)
        except _Lost:
            return await self._fallback(key)

    def _replace(self, link: _Link | None, now: float) -> None:
        if link is not None:
            link.close()  # idle past the health-check interval: a fresh one, in the background
        if self._connecting is None and not self._closed and now >= self._retry_at:
            self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        conn = self._pool.make_connection()  # type: ignore[no-untyped-call]  # untyped in redis-py
        writer: asyncio.StreamWriter | None = None
        try:
            # redis-py's own connect and handshake, with the store's settings and retry.
            await conn.connect()
            # Take the socket over: redis-py read every handshake reply, so nothing is
            # buffered, and it must never touch the stream again.
            writer = conn._writer  # noqa: SLF001  (redis-py has no public hand-over)
            conn._reader = conn._writer = None  # noqa: SLF001
            if writer is None or writer.transport.is_closing() or self._closed:
                raise RedisConnectionError("connection closed during the handshake")
            link = _Link(writer, self._timeout, self._gone)
            writer.transport.set_protocol(link)
            self._link = link
        except BaseException as exc:
            if writer is not None:
                writer.transport.abort()
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
            self._retry_at = asyncio.get_running_loop().time() + _RECONNECT_AFTER
            if not isinstance(exc, Exception):
                raise  # cancelled: the store is closing
            log.debug("redis GET connection failed: %s", type(exc).__name__)
        finally:
            self._connecting = None

    def _gone(self, link: _Link) -> None:
        if self._link is link:
            self._link = None

    async def close(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        if self._link is not None:
            self._link.close()
