"""Every use of aiohttp's private parts, in one place, checked at import.

aiohttp's public API does not cover what a hardened proxy needs: a connection cap before the
request is parsed, quiet 400/431 answers for malformed requests, a ``Server`` header without a
version, a fast cookie reader, one socket write for small bodies. Those reach into attributes and
modules aiohttp may rename in any release. They are all named here, nowhere else, and
:func:`_require` checks at import that each still exists: an aiohttp that changed one fails at
start with a line naming it, never later on a request. ``tests/unit/test_aiohttp_internals.py``
pins the behaviour each one is used for. Supported: aiohttp 3.14 (the floor in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import sys
from asyncio.base_events import BaseEventLoop
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import aiohttp
from aiohttp import web, web_protocol, web_response
from aiohttp._cookie_helpers import parse_cookie_header
from aiohttp.helpers import ceil_timeout
from aiohttp.http import RawRequestMessage, StreamWriter
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong

_H = TypeVar("_H", bound=web.RequestHandler)

__all__ = [
    "AiohttpChanged",
    "BadHttpMessage",
    "HttpProcessingError",
    "InlineRequestHandler",
    "LineTooLong",
    "RawRequestMessage",
    "WholeBodyResponse",
    "WrappingAppRunner",
    "connection_count",
    "detach_from_manager",
    "handler_manager",
    "new_protocol",
    "parse_cookie_header",
    "server_arguments",
    "set_match_info",
    "set_server_header",
]


class AiohttpChanged(ImportError):
    """The installed aiohttp lacks an internal cognito-gate relies on."""


def _require(owner: Any, name: str) -> None:
    if not hasattr(owner, name):
        where = getattr(owner, "__qualname__", getattr(owner, "__name__", repr(owner)))
        raise AiohttpChanged(
            f"aiohttp {aiohttp.__version__} has no {where}.{name}, which cognito-gate uses; "
            "install the aiohttp version pyproject.toml names"
        )


# Class- and module-level names; the per-instance ones (Server._connections, ._loop, ._kwargs)
# are pinned by the test.
_require(web_response, "SERVER_SOFTWARE")
_require(web.StreamResponse, "_send_headers_immediately")
_require(web.AppRunner, "_make_server")
_require(web.RequestHandler, "_manager")  # a __slots__ member
_require(web.Request, "_match_info")
for _name in ("_ErrInfo", "ERROR", "_PAYLOAD_ACCESS_ERROR"):
    _require(web_protocol, _name)
for _name in ("_handle_request", "_make_error_handler", "_process_keepalive"):
    _require(web.RequestHandler, _name)
for _name in ("_resume_reading_if_drained", "_messages", "_waiter", "_lingering_time"):
    _require(web.RequestHandler, _name)


def set_server_header(product: str) -> None:
    """The ``Server`` header of every answer this process makes itself (not the upstream's).

    aiohttp fills an absent ``Server`` with ``SERVER_SOFTWARE`` (``Python/3.11 aiohttp/3.14.5``)
    from its module global, read per response: replacing it costs nothing per request, and it
    covers answers no middleware sees (parser errors, aiohttp's own 500s, the metrics listener).
    """
    web_response.SERVER_SOFTWARE = product  # type: ignore[attr-defined]


class WholeBodyResponse(web.StreamResponse):
    """For bodies that already arrived in full: aiohttp then coalesces headers and body into one
    socket write (the class attribute is what its own ``web.Response`` uses). Never for streams,
    where headers must go out before the first chunk."""

    _send_headers_immediately = False


def set_match_info(request: web.Request, match: web.UrlMappingMatchInfo) -> None:
    """What ``Application._handle`` sets once its router resolved the request (``request.app``
    and ``match_info`` read it), for a request the server hands to a route itself."""
    request._match_info = match


# -- the HTTP server's connection bookkeeping (proxy/server.py) ------------------------------


class WrappingAppRunner(web.AppRunner):
    """An AppRunner whose low-level server is replaced by :meth:`wrap_server`'s answer."""

    def wrap_server(self, made: web.Server) -> web.Server:
        return made

    async def _make_server(self) -> web.Server:
        return self.wrap_server(await super()._make_server())


def server_arguments(made: web.Server) -> tuple[Any, dict[str, Any]]:
    """The handler and keyword arguments ``made`` was built with (by ``AppRunner._make_server``),
    to build a subclass of ``web.Server`` the same way."""
    kwargs: dict[str, Any] = {
        "request_factory": made.request_factory,
        "handler_cancellation": made.handler_cancellation,
        "loop": made._loop,
        **made._kwargs,
    }
    return made.request_handler, kwargs


def new_protocol(server: web.Server, cls: type[_H]) -> _H:
    """A connection protocol of class ``cls`` made as ``server()`` would make its own."""
    return cls(server, loop=server._loop, **server._kwargs)


def connection_count(server: web.Server) -> int:
    return len(server._connections)


def handler_manager(handler: web.RequestHandler) -> web.Server | None:
    """The Server that made this connection's protocol (None once detached)."""
    manager: web.Server | None = handler._manager
    return manager


def detach_from_manager(handler: web.RequestHandler) -> None:
    """For a connection refused in ``connection_made``: it was never registered with its Server,
    so ``connection_lost`` must not try to unregister it."""
    handler._manager = None


# -- the connection's request loop (proxy/server.py GateRequestHandler) ----------------------

_AnyRequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
# A route's handler: the app's request factory makes web.Request objects.
_InlineHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class InlineRequestHandler(web.RequestHandler):
    """aiohttp's connection protocol, whose request loop can run a request's handler in the
    connection's own task instead of a new ``Task`` per request.

    aiohttp's ``start()`` wraps every request in a Task, only so that context variables a
    handler sets do not leak into the next request on the connection (aiohttp #3406). On
    Python 3.11 that Task is an extra object, an ``all_tasks`` registration and two more trips
    through the event loop per request. :meth:`inline_handler` names the requests whose
    handler sets no context variable (cognito-gate's proxied path sets none); every other
    request gets its Task as before.

    ``start()`` below is aiohttp 3.14.5's, changed only where marked ``# gate:``. It runs only
    while the installed aiohttp's ``start()`` is the one it was copied from
    (:data:`INLINE_REQUESTS`); under any other release aiohttp's own loop runs (every request in
    a Task: slower, never a stale copy shadowing a fix), and :func:`inline_requests_note` says
    so at startup. Cancellation is unchanged:
    the request's ``task`` was already the connection's task (``request.task``), aiohttp cancels
    that one on disconnect (with ``handler_cancellation``) and at shutdown, and a handler run
    inline is cancelled with it, as the per-request Task awaited there was.
    """

    # sha256 of the source of aiohttp 3.14.5's RequestHandler.start, which start() copies.
    COPIED_START = "2e565fd40c8e04fb3afb481d5ba52691a61d28396573b4b8a4cf3b168782288e"

    def inline_handler(self, message: RawRequestMessage) -> _InlineHandler | None:
        """The handler to run without a Task of its own, or None for aiohttp's way."""
        return None

    async def start(self) -> None:
        if not INLINE_REQUESTS:  # gate: another aiohttp's loop is not this copy
            return await super().start()
        loop = self._loop
        manager = self._manager
        assert manager is not None
        keepalive_timeout = self._keepalive_timeout
        resp = None
        assert self._request_factory is not None
        assert self._request_handler is not None

        while not self._force_close:
            if not self._messages:
                try:
                    # wait for next request
                    self._waiter = loop.create_future()
                    await self._waiter
                finally:
                    self._waiter = None

            message, payload = self._messages.popleft()

            # Free a parser slot; resume reading once drained to low water so
            # pipelining keeps flowing while this request is handled.
            if self._parser is not None:  # pragma: no branch
                self._parser.message_consumed()
            if self._buffer_paused and len(self._messages) <= self._msg_queue_resume_size:
                self._resume_reading_if_drained()

            start = loop.time() if self._logging_enabled else None

            manager.requests_count += 1
            writer = StreamWriter(self, loop)
            inline = None  # gate
            if isinstance(message, web_protocol._ErrInfo):
                # make request_factory work
                request_handler = self._make_error_handler(message)
                message = web_protocol.ERROR
            else:
                request_handler = self._request_handler
                inline = self.inline_handler(message)  # gate

            request = self._request_factory(
                message,
                payload,
                self,
                writer,
                self._task_handler or asyncio.current_task(loop),  # type: ignore[arg-type]
            )
            try:
                if inline is not None:  # gate: the handler in this task
                    try:
                        handler = cast(_AnyRequestHandler, inline)
                        resp, reset = await self._handle_request(request, start, handler)
                    except ConnectionError:
                        self.log_debug("Ignored premature client disconnection")
                        break
                else:
                    # a new task is used for copy context vars (#3406)
                    coro = self._handle_request(request, start, request_handler)
                    task: asyncio.Task[tuple[web.StreamResponse, bool]]
                    if sys.version_info >= (3, 14):
                        if isinstance(loop, BaseEventLoop):
                            task = asyncio.create_task(coro, eager_start=True)
                        else:
                            task = asyncio.Task(coro, loop=loop, eager_start=True)
                    elif sys.version_info >= (3, 12):
                        task = asyncio.Task(coro, loop=loop, eager_start=True)
                    else:
                        task = loop.create_task(coro)
                    try:
                        resp, reset = await task
                    except ConnectionError:
                        self.log_debug("Ignored premature client disconnection")
                        break

                    # Drop the processed task from asyncio.Task.all_tasks() early
                    del task
                if reset:
                    self.log_debug("Ignored premature client disconnection 2")
                    break

                # notify server about keep-alive
                self._keepalive = bool(resp.keep_alive)

                # check payload
                if not payload.is_eof():
                    lingering_time = self._lingering_time
                    if not self._force_close and lingering_time:
                        self.log_debug("Start lingering close timer for %s sec.", lingering_time)

                        now = loop.time()
                        end_t = now + lingering_time

                        try:
                            while not payload.is_eof() and now < end_t:
                                async with ceil_timeout(end_t - now):
                                    # read and ignore
                                    await payload.readany()
                                now = loop.time()
                        except (asyncio.CancelledError, TimeoutError):
                            if (t := asyncio.current_task()) and t.cancelling():
                                raise

                    # if payload still uncompleted
                    if not payload.is_eof() and not self._force_close:
                        self.log_debug("Uncompleted request.")
                        self.close()

                payload.set_exception(web_protocol._PAYLOAD_ACCESS_ERROR)

            except asyncio.CancelledError:
                self.log_debug("Ignored premature client disconnection")
                self.force_close()
                raise
            except Exception as exc:
                self.log_exception("Unhandled exception", exc_info=exc)
                self.force_close()
            except BaseException:
                self.force_close()
                raise
            finally:
                request._task = None  # type: ignore[assignment]  # break the reference cycle
                if self.transport is None and resp is not None:
                    self.log_debug("Ignored premature client disconnection.")

            if self._keepalive and not self._close and not self._force_close:
                # start keep-alive timer
                close_time = loop.time() + keepalive_timeout
                self._next_keepalive_close_time = close_time
                if self._keepalive_handle is None:
                    self._keepalive_handle = loop.call_at(close_time, self._process_keepalive)
            else:
                break

        # remove handler, close transport if no handlers left
        if not self._force_close:
            self._task_handler = None
            if self.transport is not None:
                self.transport.close()


def _source_hash(func: Callable[..., Any]) -> str | None:
    try:
        return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()
    except (OSError, TypeError):  # no source installed (a stripped image): not provably the same
        return None


# The copied loop runs only under the aiohttp release it was copied from.
INLINE_REQUESTS = _source_hash(web.RequestHandler.start) == InlineRequestHandler.COPIED_START


def inline_requests_note() -> str | None:
    """A warning for the log when the installed aiohttp's request loop is not the copied one."""
    if INLINE_REQUESTS:
        return None
    return (
        f"aiohttp {aiohttp.__version__}'s request loop differs from the one cognito-gate copied"
        " (3.14.5): proxied requests run in a Task of their own, as aiohttp runs them (correct,"
        " slightly slower)"
    )
