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

from typing import Any, TypeVar

import aiohttp
from aiohttp import web, web_response
from aiohttp._cookie_helpers import parse_cookie_header
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong

_H = TypeVar("_H", bound=web.RequestHandler)

__all__ = [
    "AiohttpChanged",
    "BadHttpMessage",
    "HttpProcessingError",
    "LineTooLong",
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
