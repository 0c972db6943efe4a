"""The same requests through both upstream clients (GATE_UPSTREAM_CLIENT=lean and aiohttp):
the upstream must receive the same request and the client the same answer, byte for byte after
parsing (Date aside). Requests are written on raw sockets so that nothing normalises them."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import httptools
import pytest

from tests.support.raw_upstream import raw_upstream
from tests.unit.test_forward import front

CRLF = "\r\n"


def _req(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: app.example.test", *headers, "", ""]
    return CRLF.join(lines).encode() + body


REQUESTS: list[tuple[str, bytes]] = [
    ("plain", _req("GET", "/plain?q=a%20b&x=%00&y=%E6%97%A5")),
    ("duplicates and casing", _req("GET", "/d", "X-Dup: 1", "x-dup: 2", "x-MiXeD: v")),
    (
        "connection-listed headers",
        _req(
            "GET",
            "/c",
            "Connection: keep-alive, x-drop-me",
            "X-Drop-Me: secret",
            "TE: trailers",
            "Proxy-Authorization: Basic eA==",
            "Upgrade: h2c",
            "Keep-Alive: 5",
        ),
    ),
    (
        "sized body",
        _req("POST", "/form", "Content-Length: 7", "Content-Type: a/b", body=b"a=1&b=2"),
    ),
    (
        "chunked body",
        _req(
            "POST",
            "/chunks",
            "Transfer-Encoding: chunked",
            body=b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
        ),
    ),
    ("empty post", _req("POST", "/empty")),
    ("empty put with length 0", _req("PUT", "/zero", "Content-Length: 0")),
    (
        "expect 100-continue",
        _req("PUT", "/e", "Expect: 100-continue", "Content-Length: 2", body=b"hi"),
    ),
    ("head", _req("HEAD", "/h")),
    ("delete", _req("DELETE", "/del")),
    ("options", _req("OPTIONS", "/opt")),
    ("patch", _req("PATCH", "/p", "Content-Length: 1", body=b"x")),
    ("non-ascii header", "GET /u HTTP/1.1\r\nHost: h\r\nX-Name: caf\u00e9\r\n\r\n".encode()),
    ("encoded path", _req("GET", "/a/%2e%2e/b/%2F/%E6%97%A5;p=1")),
    (
        "forwarded headers from the client",
        _req(
            "GET",
            "/f",
            "X-Forwarded-For: 6.6.6.6",
            "X-Forwarded-Host: evil",
            "X-Forwarded-Proto: gopher",
        ),
    ),
    ("trailers", _req("GET", "/chunked-trailers")),
    ("close-delimited", _req("GET", "/close-delimited")),
    ("204", _req("GET", "/no-content")),
    ("304", _req("GET", "/not-modified", 'If-None-Match: "v1"')),
    ("interim", _req("GET", "/interim")),
    ("hop-by-hop answer", _req("GET", "/hop-by-hop")),
    ("rewrites", _req("GET", "/rewrite")),
    ("utf-8 answer header", _req("GET", "/utf8")),
    ("big", _req("GET", "/big")),
]


class _Answer:
    def __init__(self) -> None:
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.done = False
        self.parser: httptools.HttpResponseParser | None = None
        self.interim = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.interim = 100 <= self.parser.get_status_code() < 200
        if self.interim:
            self.headers.clear()  # our own server's 100 Continue: the answer follows

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if not self.interim:
            self.done = True


async def _exchange(port: int, raw: bytes, head: bool) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    answer = _Answer()
    parser = httptools.HttpResponseParser(answer)
    answer.parser = parser
    try:
        while not answer.done:
            data = await asyncio.wait_for(reader.read(65536), 10)
            if not data:
                break
            parser.feed_data(data)
            if head and answer.headers and not answer.done:
                break  # a HEAD answer has headers only
    finally:
        writer.close()
    headers = [(k.lower(), v) for k, v in answer.headers if k.lower() != "date"]
    return {"status": parser.get_status_code(), "headers": headers, "body": answer.body}


def _received(seen: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "method": r.method,
            "target": r.target,
            # Stable sort by name: the order among same-named headers is kept and compared.
            "headers": sorted(((k.lower(), v) for k, v in r.headers), key=lambda h: h[0]),
            "body": r.body,
        }
        for r in seen
    ]


@pytest.mark.parametrize(("name", "raw"), REQUESTS, ids=[n for n, _ in REQUESTS])
async def test_both_clients_send_and_answer_the_same(name: str, raw: bytes) -> None:
    results = {}
    async with AsyncExitStack() as stack:
        for kind in ("lean", "aiohttp"):
            up = await stack.enter_async_context(raw_upstream())
            f = await front(stack, up.url, client=kind)
            f.add_headers = [("X-Forwarded-User", "alice")]
            answer = await _exchange(f.port, raw, head=raw.startswith(b"HEAD"))
            # The upstream URL carries its own port: compare with the port named alike.
            text = repr(answer).replace(str(up.port), "UPSTREAM").replace(str(f.port), "FRONT")
            results[kind] = (text, repr(_received(up.seen)).replace(str(f.port), "FRONT"))
    lean, aio = results["lean"], results["aiohttp"]
    if name == "duplicates and casing":
        # The one difference, and the lean client is right: aiohttp's ClientRequest keeps only
        # the last of repeated request headers (update_headers assigns by name); the lean
        # client passes every one on, in order, as nginx does.
        assert "('x-dup', '1'), ('x-dup', '2')" in lean[1]
        assert "('x-dup', '1')" not in aio[1] and "('x-dup', '2')" in aio[1]
        return
    assert lean[1] == aio[1], f"{name}: the upstream received different requests"
    assert lean[0] == aio[0], f"{name}: the client received different answers"
