"""An upstream on raw asyncio sockets: records exactly what arrived and answers with canned
bytes per path, including what aiohttp's server cannot send (trailers, close-delimited bodies,
interim 1xx, a connection closed while idle)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httptools


@dataclass
class Received:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    connection: int  # which connection it came on (1, 2, ...)


@dataclass
class RawUpstream:
    port: int
    seen: list[Received] = field(default_factory=list)
    connections: int = 0
    # After answering, close the connection this many seconds later (stale keep-alive).
    close_idle_after: float | None = None
    # A second request on a connection is met with a close and no answer: the upstream's
    # idle timeout fired just as the request went out (the race a stale retry exists for).
    drop_reused: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _answer(path: str, method: str, body: bytes) -> bytes:
    if path.startswith("/chunked-trailers"):
        return (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n"
        )
    if path.startswith("/close-delimited"):
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end" + b"." * 5000
    if path.startswith("/no-content"):
        return b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"
    if path.startswith("/not-modified"):
        return b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 99\r\n\r\n'
    if path.startswith("/interim"):
        return (
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"
        )
    if path.startswith("/hop-by-hop"):
        return (
            b"HTTP/1.1 200 OK\r\nConnection: x-secret, keep-alive\r\nX-Secret: 1\r\n"
            b"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-Kept: yes\r\n"
            b"Content-Length: 2\r\n\r\nok"
        )
    if path.startswith("/rewrite"):
        return (
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:PORT/next?a=1\r\n"
            b"Set-Cookie: a=1; Domain=127.0.0.1; Path=/\r\nSet-Cookie: b=2; HttpOnly\r\n"
            b"Refresh: 0; url=http://127.0.0.1:PORT/r\r\nContent-Length: 0\r\n\r\n"
        )
    if path.startswith("/utf8"):
        name = "caf\u00e9 \u65e5\u672c"
        return f"HTTP/1.1 200 OK\r\nX-Name: {name}\r\nContent-Length: 1\r\n\r\n.".encode()
    if path.startswith("/twice"):
        return (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
            b"HTTP/1.1 302 Found\r\nLocation: http://evil.example/\r\nContent-Length: 0\r\n\r\n"
        )
    if path.startswith("/big"):
        size = 3 * 1024 * 1024
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"z" * size
    text = b"%s %d" % (method.encode(), len(body))
    if method == "HEAD":
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(text)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Up: 1\r\n\r\n%s" % (len(text), text)


class _Conn(asyncio.Protocol):
    def __init__(self, upstream: RawUpstream) -> None:
        upstream.connections += 1
        self.number = upstream.connections
        self.upstream = upstream
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.served = 0
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode()
        target = self.url.decode("latin-1")
        self.served += 1
        assert self.transport is not None
        if self.upstream.drop_reused and self.served > 1:
            self.transport.close()
            return
        self.upstream.seen.append(Received(method, target, self.headers, self.body, self.number))
        if target.startswith("/hang"):
            return
        answer = _answer(target, method, self.body)
        answer = answer.replace(b"PORT", str(self.upstream.port).encode())
        assert self.transport is not None
        self.transport.write(answer)
        if b"Connection: close" in answer.split(b"\r\n\r\n", 1)[0]:
            self.transport.close()
        elif self.upstream.close_idle_after is not None:
            asyncio.get_running_loop().call_later(
                self.upstream.close_idle_after, self.transport.close
            )
        self._reset()


@asynccontextmanager
async def raw_upstream() -> AsyncIterator[RawUpstream]:
    loop = asyncio.get_running_loop()
    holder: list[RawUpstream] = []
    server = await loop.create_server(lambda: _Conn(holder[0]), "127.0.0.1", 0)
    holder.append(RawUpstream(port=server.sockets[0].getsockname()[1]))
    try:
        yield holder[0]
    finally:
        server.close()
        await server.wait_closed()
