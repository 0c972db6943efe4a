"""The HTTP server around the app: limits on what one client may make it hold.

aiohttp's llhttp parser already refuses ambiguous framing (Content-Length with
Transfer-Encoding, duplicate Content-Length or Host, obsolete line folding) with 400 before any
handler runs. On top of that:

- request targets that are not origin-form (``GET http://evil/x``, ``CONNECT host:443``,
  ``OPTIONS *``) are refused with 400 before routing, so nothing is forwarded for them;
- a header (or URL) over ``server.max_header_size`` or more than ``server.max_headers`` headers
  answers 431 instead of aiohttp's 400;
- malformed requests are logged as one warning line, without aiohttp's traceback and without
  the offending bytes (they may hold a cookie); real 500s keep their traceback;
- a request head must arrive within ``server.header_timeout`` of the connection opening or of
  the previous response (aiohttp's keep-alive timer is not pushed back by partial data, so it
  is a header-read deadline), which cuts slowloris clients;
- past ``server.max_connections`` open connections, a new one gets a 503 and is closed at once.

The hot path (:class:`Shortcut`): a request for a proxied path goes from the connection straight
to the gate's handler (through the request observer), without the router's walk past the auth
routes, without the middleware chain and without a ``Task`` of its own (it runs in the
connection's task: nothing on that path sets a context variable); every other request, and any
request the shortcut is unsure of, goes through the app as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.aiohttp_internals import (
    BadHttpMessage,
    HttpProcessingError,
    InlineRequestHandler,
    LineTooLong,
    RawRequestMessage,
    WrappingAppRunner,
    connection_count,
    detach_from_manager,
    handler_manager,
    inline_requests_note,
    new_protocol,
    server_arguments,
    set_match_info,
    set_server_header,
)
from proxy.settings import ServerSettings

log = logging.getLogger("proxy.server")

_BUSY_BODY = b"server at capacity\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s"
    % (len(_BUSY_BODY), _BUSY_BODY)
)


@web.middleware
async def reject_non_origin_form(request: web.Request, handler: Handler) -> web.StreamResponse:
    """400 for absolute-form, authority-form and asterisk-form targets: only ``/path`` routes.

    aiohttp accepts ``GET http://other/x HTTP/1.1``; a proxy must not let the target's
    authority decide anything (the Host header, the upstream, the return URL).
    """
    if not request.raw_path.startswith("/"):
        log.warning("refused a request target that is not a path from %s", request.remote)
        response = web.Response(status=400, text="Bad Request")
        response.force_close()  # whatever follows on this connection is not trusted either
        return response
    return await handler(request)


def _too_large(exc: BaseException) -> bool:
    # LineTooLong: one header (name + value) or the request line over the limit; the parser
    # says "Too many headers received" past max_headers.
    return isinstance(exc, LineTooLong) or (
        isinstance(exc, BadHttpMessage) and "too many headers" in exc.message.lower()
    )


class GateRequestHandler(InlineRequestHandler):
    """aiohttp's connection protocol with the limits above; the shortcut's requests run in the
    connection's task."""

    def inline_handler(self, message: RawRequestMessage) -> Handler | None:
        manager = handler_manager(self)
        if isinstance(manager, GateServer) and manager.shortcut is not None:
            return manager.shortcut(message)
        return None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        manager = handler_manager(self)
        if isinstance(manager, GateServer) and manager.at_capacity():
            # A stream transport (uvloop's is not an asyncio.Transport subclass, hence a cast).
            stream = cast(asyncio.Transport, transport)
            stream.write(_BUSY)
            transport.close()
            detach_from_manager(self)  # never registered: connection_lost has nothing to undo
            manager.refused += 1
            return
        super().connection_made(transport)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)  # real 500s: traceback
        status = 431 if _too_large(exc) else 400
        # The type only: the message quotes the offending bytes, which may be a cookie.
        log.warning("refused a malformed request from %s: %s", request.remote, type(exc).__name__)
        text = "Request Header Fields Too Large" if status == 431 else "Bad Request"
        response = web.Response(status=status, text=text)
        response.force_close()
        return response


@dataclass(frozen=True, slots=True)
class Shortcut:
    """Requests that the app's catch-all ``route`` would take, handed to ``handler`` directly.

    ``handler`` must do what the app's middleware chain and the route's handler do for them
    (app.py: the request observer around ``Gate.proxy``; :func:`reject_non_origin_form` has
    nothing to refuse on this path). Through the app instead: a target that is not a path, a
    decoded path starting with ``reserved`` (the auth prefix: the router decides those, in any
    spelling it decodes), and a request with ``Expect`` (the route's expect handler answers
    ``100 Continue``). ``request.app`` works as after routing; ``match_info`` is the catch-all's,
    without its ``tail`` (nothing on the proxied path reads it). ``handler`` runs in the
    connection's task (:class:`~proxy.aiohttp_internals.InlineRequestHandler`), so it must set
    no context variable: the next request on the connection would see it.
    """

    reserved: str
    route: web.AbstractRoute
    handler: Handler

    def entry(self, app: web.Application) -> Callable[[RawRequestMessage], Handler | None]:
        """For a parsed request head, the handler that takes it, or None: through the app."""
        match = web.UrlMappingMatchInfo({}, self.route)
        match.add_app(app)
        match.freeze()
        reserved, handler = self.reserved, self.handler

        async def shortcut(request: web.Request) -> web.StreamResponse:
            set_match_info(request, match)
            return await handler(request)

        def takes(message: RawRequestMessage) -> Handler | None:
            # message.url is the request's rel_url: its .path is request.path (decoded).
            if (
                message.path[:1] != "/"
                or message.url.path.startswith(reserved)
                or "Expect" in message.headers
            ):
                return None
            return shortcut

        return takes


SHORTCUT = web.AppKey("shortcut", Shortcut)


class GateServer(web.Server):
    """aiohttp's Server making :class:`GateRequestHandler` protocols, counting connections."""

    def __init__(
        self,
        made: web.Server,
        *,
        max_connections: int,
        shortcut: Callable[[RawRequestMessage], Handler | None] | None = None,
    ) -> None:
        handler, kwargs = server_arguments(made)
        super().__init__(handler, **kwargs)
        self.max_connections = max_connections
        self.shortcut = shortcut
        self.refused = 0

    def at_capacity(self) -> bool:
        return connection_count(self) >= self.max_connections

    def __call__(self) -> web.RequestHandler:
        return new_protocol(self, GateRequestHandler)


class GateRunner(WrappingAppRunner):
    """An AppRunner whose server applies :class:`ServerSettings`."""

    def __init__(self, app: web.Application, limits: ServerSettings, **kwargs: Any) -> None:
        super().__init__(
            app,
            access_log=None,
            keepalive_timeout=limits.header_timeout,
            max_line_size=limits.max_header_size,
            max_field_size=limits.max_header_size,
            max_headers=limits.max_headers,
            **kwargs,
        )
        self._max_connections = limits.max_connections
        set_server_header(limits.header)

    def wrap_server(self, made: web.Server) -> web.Server:
        app = self.app
        shortcut = app.get(SHORTCUT)
        return GateServer(
            made,
            max_connections=self._max_connections,
            shortcut=None if shortcut is None else shortcut.entry(app),
        )


async def start(app: web.Application, limits: ServerSettings, host: str, port: int) -> GateRunner:
    """Serve `app` on host:port; the caller awaits ``runner.cleanup()`` to stop."""
    if (note := inline_requests_note()) is not None:
        log.warning(note)
    runner = GateRunner(app, limits)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
