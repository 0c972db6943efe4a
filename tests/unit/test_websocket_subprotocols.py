"""WebSocket subprotocols are negotiated with the upstream; the client gets its choice, quietly.

aiohttp's own handshake reads only the first ``Sec-WebSocket-Protocol`` header and logs a warning
per connection when the client's offer does not overlap the server's list, which for a relay is
the normal case of an upstream that takes no subprotocol.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from contextlib import AsyncExitStack

import pytest
from aiohttp import WSMsgType, web

from tests.unit.test_forward import client, front, serve


def _app(protocols: tuple[str, ...]) -> web.Application:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=protocols)
        if not protocols:  # an upstream that ignores subprotocols, without aiohttp's warning
            headers = {k: v for k, v in request.headers.items() if k != "Sec-WebSocket-Protocol"}
            request = request.clone(headers=headers)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str("echo:" + msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", echo)
    return app


async def test_an_offer_the_upstream_declines_connects_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with AsyncExitStack() as stack:
        up = await serve(stack, _app(()))
        f = await front(stack, f"http://127.0.0.1:{up.port}")
        session = await client(stack)
        with caplog.at_level(logging.DEBUG):
            async with session.ws_connect(f.url("/ws"), protocols=("graphql-ws", "v2")) as ws:
                assert ws.protocol is None
                await ws.send_str("hi")
                assert await ws.receive_str(timeout=5) == "echo:hi"
    noise = [r.getMessage() for r in caplog.records if "overlap" in r.getMessage()]
    assert noise == []


async def _handshake(port: int, offers: list[str]) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(b"0123456789abcdef").decode()
    lines = [
        "GET /ws HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"Sec-WebSocket-Protocol: {offer}" for offer in offers),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    try:
        async with asyncio.timeout(10):
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()


async def test_the_client_gets_the_upstreams_choice_from_any_of_its_headers() -> None:
    async with AsyncExitStack() as stack:
        up = await serve(stack, _app(("chat.v1",)))
        f = await front(stack, f"http://127.0.0.1:{up.port}")
        head = await _handshake(f.port, ["x-unknown", "chat.v1"])  # two header lines
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"\r\nSec-WebSocket-Protocol: chat.v1\r\n" in head
        head = await _handshake(f.port, ["x-unknown, chat.v1"])  # one list
        assert b"\r\nSec-WebSocket-Protocol: chat.v1\r\n" in head
