"""The app behind the proxy in the browser tests: a few real pages a signed-in user would use.

- ``/ws-page`` opens a WebSocket back to its own origin (``/ws``) and shows the echo, which
  names the user from the identity header the proxy added to the upgrade request;
- ``/orders/new`` holds a form that POSTs to ``/orders``;
- anything else answers ``upstream saw METHOD /path?query`` and is recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import WSMsgType, web

from proxy.demo import free_port
from tests.support.stack import Upstream

WS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Live</title></head>
<body><main><h1>Live</h1><p id="out">connecting</p></main>
<script>
  const out = document.getElementById("out");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/ws");
  ws.onopen = () => ws.send("ping");
  ws.onmessage = (event) => { out.textContent = "echo: " + event.data; };
  ws.onerror = () => { out.textContent = "websocket failed"; };
</script></body></html>
"""

ORDER_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>New order</title></head>
<body><main><h1>New order</h1>
<form method="post" action="/orders">
  <label for="item">Item</label> <input id="item" name="item">
  <button type="submit">Place order</button>
</form></main></body></html>
"""


@asynccontextmanager
async def app_upstream() -> AsyncIterator[Upstream]:
    port = free_port()
    upstream = Upstream(url=f"http://127.0.0.1:{port}")

    async def record(request: web.Request) -> web.Response:
        upstream.seen.append(
            {
                "method": request.method,
                "path": request.raw_path,
                "headers": dict(request.headers),
                "body": await request.read(),
            }
        )
        return web.Response(text=f"upstream saw {request.method} {request.raw_path}")

    async def ws_page(request: web.Request) -> web.Response:
        return web.Response(text=WS_PAGE, content_type="text/html")

    async def order_form(request: web.Request) -> web.Response:
        return web.Response(text=ORDER_FORM, content_type="text/html")

    async def echo(request: web.Request) -> web.WebSocketResponse:
        user = request.headers.get("X-Forwarded-User", "nobody")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(f"{msg.data} ({user})")
        return ws

    app = web.Application()
    app.router.add_get("/ws-page", ws_page)
    app.router.add_get("/ws", echo)
    app.router.add_get("/orders/new", order_form)
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield upstream
    finally:
        await runner.cleanup()
