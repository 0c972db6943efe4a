"""Streaming HTTP and WebSocket reverse proxying to a single upstream.

Knows nothing about authentication: the caller decides whether a request may pass
and which identity headers to add (``add_headers``) or strip (``drop_header``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from proxy.aiohttp_internals import WholeBodyResponse
from proxy.upgrade import HOP_BY_HOP, connection_tokens, is_websocket_upgrade
from proxy.upstream import UpstreamPool, UpstreamResponse

__all__ = ["Forwarder", "UpstreamConfig"]

log = logging.getLogger("proxy.forward")

# Set by us after filtering (client values are never trusted). Expect is answered
# by our own server (100 Continue), so it must not reach the upstream as well.
_REQUEST_DROP = HOP_BY_HOP | {
    "host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "expect",
}
# ws_connect negotiates its own key/version/protocol; extensions are per hop
# (we relay messages, not frames), so the client's offer must not reach upstream.
_WS_REQUEST_DROP = _REQUEST_DROP | {
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
}
_EMPTY: list[str] = []  # shared getall() default; never mutated
# Set by the forwarder itself, whatever else a caller's drop set holds.
_SET_HERE = frozenset({"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})
# Methods whose body-less request goes without "Content-Length: 0"; every other one says it
# (as aiohttp's client does: ClientRequest.GET_METHODS).
_NO_LENGTH_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Left as they are in a request target that must be percent-encoded (RFC 3986 pchar, "/", "?").
_TARGET_SAFE = "/?:@!$&'()*+,;=-._~%"
_RESPONSE_REWRITE = frozenset({"location", "refresh", "set-cookie"})

# Close codes that may appear in a close frame (RFC 6455 §7.4).
_SENDABLE_CLOSE = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015))

_REFRESH_RE = re.compile(
    r"""^(\s*[0-9.]*\s*[;,]\s*(?:url\s*=\s*)?)(["']?)(.*?)\2(\s*)$""",
    re.IGNORECASE | re.DOTALL,
)


def _default_error_page(request: web.Request, status: int) -> web.Response:
    if status == 504:
        title, text = "504 Gateway Timeout", "Gateway timeout"
    elif status == 400:
        title, text = "400 Bad Request", "Bad request"
    else:
        title, text = "502 Bad Gateway", "Bad gateway \u2013 the application is not reachable"
    body = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><h1>{title}</h1><p>{text}</p></body></html>"
    )
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


def _exc_summary(exc: BaseException) -> str:
    # aiohttp messages can embed the full URL (path + query may carry secrets).
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, OSError) and os_error.strerror:
        return f"{type(exc).__name__} ({os_error.strerror})"
    return type(exc).__name__


@dataclass(frozen=True)
class UpstreamConfig:
    url: str
    preserve_host: bool = True
    connect_timeout: float = 5.0  # includes waiting for a free pooled connection
    read_timeout: float = 60.0  # waiting for response headers / between body chunks
    max_connections: int = 512
    ws_max_message: int = 4 * 1024 * 1024
    # "lean": proxy/upstream.py (asyncio protocol + llhttp); "aiohttp": aiohttp's ClientSession,
    # the fallback for one release (GATE_UPSTREAM_CLIENT). WebSockets use aiohttp's either way.
    client: Literal["lean", "aiohttp"] = "lean"


class _WSMessage(Protocol):
    @property
    def type(self) -> WSMsgType: ...
    @property
    def data(self) -> Any: ...  # bytes (decode_text=False), int for CLOSE
    @property
    def extra(self) -> str | None: ...


class _WSEndpoint(Protocol):
    """The part of aiohttp's client and server WebSocket APIs the relay uses."""

    @property
    def close_code(self) -> int | None: ...

    async def receive(self) -> _WSMessage: ...

    async def send_frame(
        self, message: bytes, opcode: WSMsgType, compress: int | None = None
    ) -> None: ...

    async def ping(self, message: bytes = b"") -> None: ...

    async def pong(self, message: bytes = b"") -> None: ...

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool: ...


class Forwarder:
    """Proxies requests to ``config.url`` over one shared keep-alive session.

    Before response headers: unreachable/refused/closed upstream → 502, connect or
    read timeout → 504 (``error_page`` renders both). After they are sent, an
    upstream failure cuts the client connection instead.
    """

    def __init__(
        self,
        config: UpstreamConfig,
        *,
        # (request, status) -> the page; the request gives the page its language.
        error_page: Callable[[web.Request, int], web.Response] | None = None,
        timing: Callable[[web.Request, float, float], None] | None = None,
        refused_set_cookie: Callable[[str], bool] | None = None,
    ) -> None:
        """``timing(request, sent_at, headers_at)`` (``time.perf_counter`` values), if given,
        is called once the upstream's response headers (or WebSocket handshake) arrived.
        ``refused_set_cookie(value)``: an upstream ``Set-Cookie`` it is true for is dropped
        (the proxy's own cookies: an app must not set or fix them)."""
        url = URL(config.url)
        if url.scheme not in ("http", "https") or not url.host or url.port is None:
            raise ValueError(f"upstream url must be absolute http(s): {config.url!r}")
        if url.raw_query_string or url.raw_fragment:
            raise ValueError("upstream url must not have a query or fragment")
        self.config = config
        self._error_page = error_page or _default_error_page
        self._timing = timing
        self._refused_set_cookie = refused_set_cookie
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._scheme = url.scheme
        self._host = url.host.lower()
        self._port = url.port
        self._default_port = 443 if url.scheme == "https" else 80
        # host[:port] as the upstream expects it in Host (port omitted when default).
        self._host_header = url.host_port_subcomponent or url.host
        self._origin = f"{url.scheme}://{url.raw_authority}"
        self._base = url.raw_path.rstrip("/")  # "" or "/base"
        self._head_deadline = config.connect_timeout + config.read_timeout
        self._session: aiohttp.ClientSession | None = None
        self._ws_session: aiohttp.ClientSession | None = None
        self._pool: UpstreamPool | None = None
        if config.client not in ("lean", "aiohttp"):
            raise ValueError(f"upstream client must be lean or aiohttp: {config.client!r}")

    async def start(self) -> None:
        if self._ws_session is not None:
            return
        cfg = self.config
        if cfg.client == "lean":
            self._pool = UpstreamPool(
                self._host,
                self._port,
                ssl=ssl.create_default_context() if self._scheme == "https" else None,
                limit=cfg.max_connections,
                connect_timeout=cfg.connect_timeout,
                read_timeout=cfg.read_timeout,
            )
        else:
            self._session = self._client_session(
                aiohttp.TCPConnector(limit=cfg.max_connections, limit_per_host=0)
            )
        # WebSockets hold their upstream connection for as long as the client's, one to one:
        # in the HTTP pool, max_connections open sockets would starve every other request
        # (and the next WebSocket) until connect_timeout. Their own connector, no limit.
        self._ws_session = self._client_session(aiohttp.TCPConnector(limit=0))

    def _client_session(self, connector: aiohttp.TCPConnector) -> aiohttp.ClientSession:
        cfg = self.config
        return aiohttp.ClientSession(
            connector=connector,
            # One session serves every user: a real jar would replay user A's
            # upstream Set-Cookie on user B's requests.
            cookie_jar=aiohttp.DummyCookieJar(),
            # Bytes pass through untouched; Content-Encoding/Length stay valid.
            auto_decompress=False,
            trust_env=False,
            # Don't invent headers the client didn't send.
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=cfg.connect_timeout, sock_read=cfg.read_timeout
            ),
        )

    async def close_websockets(self, code: int = 1001, message: bytes = b"going away") -> None:
        """Close every relayed WebSocket (1001 Going Away at shutdown); the relay then closes
        the upstream side with the same code."""
        sockets = list(self._sockets)
        if sockets:
            log.info("closing %d websocket(s) with %d", len(sockets), code)
        await asyncio.gather(
            *(ws.close(code=code, message=message) for ws in sockets), return_exceptions=True
        )

    async def close(self) -> None:
        for session in (self._session, self._ws_session):
            if session is not None:
                await session.close()
        self._session = self._ws_session = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # -- request side ---------------------------------------------------------

    def _target(self, request: web.Request, path_qs: str | None) -> URL | None:
        target = request.raw_path if path_qs is None else path_qs
        if not target.startswith("/"):
            # Absolute-form request target ("GET http://h/x HTTP/1.1"): keep only
            # the path; anything else ("*", garbage) is not proxyable.
            try:
                parsed = URL(target, encoded=True)
            except ValueError:
                return None
            if not parsed.absolute:
                return None
            target = parsed.raw_path_qs
        # encoded=True: aiohttp sends the path exactly as received, no re-quoting.
        return URL(self._origin + self._base + target, encoded=True)

    def _request_fields(
        self,
        request: web.Request,
        drop: frozenset[str],
        add_headers: Sequence[tuple[str, str]],
        drop_header: Callable[[str], bool] | None,
        client_ip: str | None,
        tokens: frozenset[str],
        proto: str | None = None,
        forwarded_host: str | None = None,
    ) -> tuple[list[tuple[str, str]], bool]:
        """The headers the upstream receives, in order, and whether one is Content-Length."""
        if tokens:
            drop = drop | tokens
        if not drop >= _SET_HERE:
            drop = drop | _SET_HERE
        out: list[tuple[str, str]] = []
        add = out.append
        length = False
        for name, value in request.headers.items():
            lname = name.lower()
            if lname in drop or (drop_header is not None and drop_header(name)):
                continue
            if lname == "content-length":
                length = True
            add((name, value))
        # Never the client's (dropped above): ours.
        host = request.headers.get("Host")
        add(("Host", host if self.config.preserve_host and host else self._host_header))
        ip = client_ip if client_ip is not None else request.remote
        if ip:
            add(("X-Forwarded-For", ip))
        add(("X-Forwarded-Proto", proto or request.scheme))
        public_host = forwarded_host or host
        if public_host:
            add(("X-Forwarded-Host", public_host))
        # Appended last, so neither Connection-listed names nor drop rules touch them.
        for name, value in add_headers:
            if not length and name.lower() == "content-length":
                length = True
            add((name, value))
        return out, length

    def _request_headers(
        self,
        request: web.Request,
        drop: frozenset[str],
        add_headers: Sequence[tuple[str, str]],
        drop_header: Callable[[str], bool] | None,
        client_ip: str | None,
        tokens: frozenset[str],
        proto: str | None = None,
        forwarded_host: str | None = None,
    ) -> CIMultiDict[str]:
        fields, _ = self._request_fields(
            request, drop, add_headers, drop_header, client_ip, tokens, proto, forwarded_host
        )
        return CIMultiDict(fields)

    # -- response side --------------------------------------------------------

    def _public_origin(self, request: web.Request) -> str:
        host = request.headers.get("Host")
        # Without a Host header, a path-only Location is valid (RFC 9110 §10.2.2).
        return f"{request.scheme}://{host}" if host else ""

    def rewrite_url(self, value: str, public_origin: str) -> str | None:
        """Map an absolute URL on the upstream's origin (and base path) to the public
        origin, like nginx ``proxy_redirect default``. None if it isn't ours."""
        if value.startswith("/") and not value.startswith("//"):
            return None  # relative: already on the public host
        try:
            url = URL(value, encoded=True)
        except ValueError:
            return None
        if not url.absolute or url.scheme not in ("", self._scheme):
            return None
        if (url.host or "").lower() != self._host:
            return None
        port = url.explicit_port or (url.port if url.scheme else self._default_port)
        if port != self._port:
            return None
        path = url.raw_path or "/"
        if self._base:
            if path == self._base:
                path = "/"
            elif path.startswith(self._base + "/"):
                path = path[len(self._base) :]
            else:
                return None
        out = public_origin + path
        if url.raw_query_string:
            out += "?" + url.raw_query_string
        if url.raw_fragment:
            out += "#" + url.raw_fragment
        return out

    def _rewrite_refresh(self, value: str, public_origin: str) -> str:
        m = _REFRESH_RE.match(value)
        if m is None or not m.group(3):
            return value
        new = self.rewrite_url(m.group(3), public_origin)
        if new is None:
            return value
        return f"{m.group(1)}{m.group(2)}{new}{m.group(2)}{m.group(4)}"

    def rewrite_set_cookie(self, value: str) -> str:
        """Drop ``Domain=<upstream host>`` and strip the base path from ``Path=``."""
        low = value.lower()
        if "domain" not in low and (not self._base or "path" not in low):
            return value
        parts = value.split(";")
        out = [parts[0]]
        changed = False
        for attr in parts[1:]:
            key, _, val = attr.partition("=")
            key = key.strip().lower()
            if key == "domain" and val.strip().lstrip(".").lower() == self._host:
                changed = True
                continue
            if key == "path" and self._base:
                path = val.strip()
                if path == self._base or path.startswith(self._base + "/"):
                    attr = " Path=" + (path[len(self._base) :] or "/")
                    changed = True
            out.append(attr)
        return ";".join(out) if changed else value

    def _response(
        self,
        request: web.Request,
        up: aiohttp.ClientResponse | UpstreamResponse,
        cls: type[web.StreamResponse],
    ) -> web.StreamResponse:
        resp = cls(status=up.status, reason=up.reason)
        headers = resp.headers
        drop = HOP_BY_HOP
        fields: Iterable[tuple[str, str, str]]
        if isinstance(up, UpstreamResponse):
            conn = up.connection
            fields = up.fields  # decoded and lower-cased once, by the lean client
        else:
            up_headers: CIMultiDictProxy[str] = up.headers
            conn = up_headers.getall("Connection", _EMPTY)
            fields = ((name, name.lower(), value) for name, value in up_headers.items())
        if conn:
            drop = drop | connection_tokens(conn)
        public: str | None = None
        for name, lname, value in fields:
            if lname in drop:
                continue
            if lname in _RESPONSE_REWRITE:
                if lname == "set-cookie":
                    if self._refused_set_cookie is not None and self._refused_set_cookie(value):
                        name = value.split(";", 1)[0].split("=", 1)[0].strip()[:64]
                        log.warning("upstream Set-Cookie for our cookie %r dropped", name)
                        continue
                    value = self.rewrite_set_cookie(value)
                else:
                    if public is None:
                        public = self._public_origin(request)
                    if lname == "location":
                        value = self.rewrite_url(value, public) or value
                    else:
                        value = self._rewrite_refresh(value, public)
            headers.add(name, value)
        return resp

    # -- entry point ----------------------------------------------------------

    async def forward(
        self,
        request: web.Request,
        *,
        add_headers: Sequence[tuple[str, str]] = (),
        drop_header: Callable[[str], bool] | None = None,
        client_ip: str | None = None,
        path_qs: str | None = None,
        forwarded_proto: str | None = None,
        forwarded_host: str | None = None,
        ws_stop: asyncio.Event | None = None,
    ) -> web.StreamResponse:
        """Stream ``request`` to the upstream.

        ``client_ip`` becomes X-Forwarded-For (a whole trusted chain may be passed),
        ``forwarded_proto``/``forwarded_host`` X-Forwarded-Proto/-Host (default: this
        connection's scheme and Host). A WebSocket is relayed until either side closes or
        ``ws_stop`` is set (the caller's reason, e.g. the session ended: close code 1008).
        """
        if self._ws_session is None:
            raise RuntimeError("Forwarder.start() has not been called")
        tokens = connection_tokens(request.headers.getall("Connection", _EMPTY))
        fwd = (forwarded_proto, forwarded_host)
        pool = self._pool
        if pool is not None and not is_websocket_upgrade(request.headers):
            target = self._target_text(request, path_qs)
            if target is None:
                return self._error_page(request, 400)
            fields, length = self._request_fields(
                request, _REQUEST_DROP, add_headers, drop_header, client_ip, tokens, *fwd
            )
            return await self._forward_lean(pool, request, target, fields, length)
        url = self._target(request, path_qs)
        if url is None:
            return self._error_page(request, 400)
        if is_websocket_upgrade(request.headers):
            headers = self._request_headers(
                request, _WS_REQUEST_DROP, add_headers, drop_header, client_ip, tokens, *fwd
            )
            assert self._ws_session is not None  # started with self._session
            return await self._forward_ws(self._ws_session, request, url, headers, ws_stop)
        headers = self._request_headers(
            request, _REQUEST_DROP, add_headers, drop_header, client_ip, tokens, *fwd
        )
        session = self._session
        assert session is not None  # client "aiohttp"
        sent_at = time.perf_counter()
        # sock_read restarts on every byte: an upstream trickling its headers a byte a second
        # would hold the request for ever. Headers get one deadline (a body-less request only:
        # an upload goes at the client's pace).
        head = None if request.body_exists else self._head_deadline
        try:
            async with asyncio.timeout(head):
                up = await session.request(
                    request.method,
                    url,
                    headers=headers,
                    # Streamed; a client Content-Length is kept in headers, so aiohttp
                    # only chunks when the client did.
                    data=request.content if request.body_exists else None,
                    allow_redirects=False,
                )
        except TimeoutError as exc:  # before OSError: TimeoutError is an OSError
            log.warning("upstream timeout: %s %s", request.method, _exc_summary(exc))
            return self._error_page(request, 504)
        except (aiohttp.ClientError, OSError) as exc:
            transport = request.transport
            if transport is None or transport.is_closing():
                # e.g. the client aborted its upload, which fails the upstream send
                log.info("client disconnected before the response: %s", _exc_summary(exc))
            else:
                log.warning("upstream unreachable: %s %s", request.method, _exc_summary(exc))
            return self._error_page(request, 502)
        if self._timing is not None:
            self._timing(request, sent_at, time.perf_counter())
        content = up.content
        try:
            if content.is_eof():
                # Typical small response: the body came with the headers.
                resp = self._response(request, up, WholeBodyResponse)
                await resp.prepare(request)
                await resp.write_eof(content.read_nowait())
            else:
                resp = self._response(request, up, web.StreamResponse)
                await resp.prepare(request)
                async for chunk in content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
        except ConnectionResetError as exc:
            # resp.write/prepare: the client went away. Expected; no traceback.
            log.info("client disconnected mid-response: %s", _exc_summary(exc))
            up.close()  # don't let the upstream keep streaming into a dead pool slot
            return resp
        except (aiohttp.ClientError, OSError) as exc:  # OSError covers TimeoutError
            # Upstream failed mid-body. Headers (maybe a Content-Length) are out:
            # cut the client connection so it sees a truncated response, never a
            # "complete" one with an error page appended.
            log.warning("upstream failed mid-response: %s", _exc_summary(exc))
            up.close()
            if request.transport is not None:
                request.transport.close()
            return resp
        except BaseException:
            up.close()  # cancellation: never return a half-read connection to the pool
            raise
        up.release()
        return resp

    # -- the lean client -------------------------------------------------------

    def _target_text(self, request: web.Request, path_qs: str | None) -> str | None:
        """The request target the upstream receives, as sent (no re-quoting)."""
        target = request.raw_path if path_qs is None else path_qs
        if not target.startswith("/"):
            url = self._target(request, path_qs)  # absolute-form: keep the path (rare)
            return None if url is None else url.raw_path_qs
        target = self._base + target
        if not target.isascii() or not target.isprintable() or " " in target:
            # What yarl would send for such a path: the bytes percent-encoded, never raw.
            target = quote(target, safe=_TARGET_SAFE)
        return target

    async def _forward_lean(
        self,
        pool: UpstreamPool,
        request: web.Request,
        target: str,
        headers: list[tuple[str, str]],
        length: bool,
    ) -> web.StreamResponse:
        body = request.content if request.body_exists else None
        if body is None and request.method not in _NO_LENGTH_METHODS and not length:
            headers.append(("Content-Length", "0"))  # as aiohttp's client (and browsers) send it
            length = True
        sent_at = time.perf_counter()
        try:
            up, conn, sender = await pool.request(
                request.method, target, headers, body, content_length=length
            )
        except TimeoutError as exc:  # before OSError: TimeoutError is an OSError
            log.warning("upstream timeout: %s %s", request.method, exc)
            return self._error_page(request, 504)
        except OSError as exc:  # UpstreamError, or the client's upload failing
            transport = request.transport
            if transport is None or transport.is_closing():
                log.info("client disconnected before the response: %s", _exc_summary(exc))
            else:
                log.warning("upstream unreachable: %s %s", request.method, exc)
            return self._error_page(request, 502)
        if self._timing is not None:
            self._timing(request, sent_at, time.perf_counter())
        ok = False
        try:
            if up.complete:
                # Typical small response: the body came with the headers.
                resp = self._response(request, up, WholeBodyResponse)
                await resp.prepare(request)
                await resp.write_eof(up.take_body())
            else:
                resp = self._response(request, up, web.StreamResponse)
                await resp.prepare(request)
                while chunk := await up.read():
                    await resp.write(chunk)
                await resp.write_eof()
            ok = True
        except ConnectionResetError as exc:
            # resp.write/prepare: the client went away. Expected; no traceback.
            log.info("client disconnected mid-response: %s", _exc_summary(exc))
            return resp
        except OSError as exc:  # UpstreamError / UpstreamTimeout mid-body
            # Headers (maybe a Content-Length) are out: cut the client connection so it sees a
            # truncated response, never a "complete" one with an error page appended.
            log.warning("upstream failed mid-response: %s", exc)
            if request.transport is not None:
                request.transport.close()
            return resp
        finally:
            pool.finish(conn, sender, ok)  # never a half-read connection back into the pool
        return resp

    # -- WebSocket ------------------------------------------------------------

    async def _forward_ws(
        self,
        session: aiohttp.ClientSession,
        request: web.Request,
        url: URL,
        headers: CIMultiDict[str],
        stop: asyncio.Event | None = None,
    ) -> web.StreamResponse:
        if not web.WebSocketResponse().can_prepare(_handshake_view(request, None)):
            return self._error_page(request, 400)
        offered = [
            p
            for v in request.headers.getall("Sec-WebSocket-Protocol", _EMPTY)
            for tok in v.split(",")
            if (p := tok.strip())
        ]
        max_msg = self.config.ws_max_message
        sent_at = time.perf_counter()
        try:
            upstream = await session.ws_connect(
                url,
                headers=headers,
                protocols=offered,
                autoclose=False,
                autoping=False,
                max_msg_size=max_msg,
                decode_text=False,
            )
        except TimeoutError as exc:
            log.warning("upstream websocket timeout: %s", _exc_summary(exc))
            return self._error_page(request, 504)
        except aiohttp.WSServerHandshakeError as exc:
            log.warning("upstream refused websocket: status %s", exc.status)
            return self._error_page(request, 502)
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("upstream websocket unreachable: %s", _exc_summary(exc))
            return self._error_page(request, 502)
        if self._timing is not None:
            self._timing(request, sent_at, time.perf_counter())
        client = web.WebSocketResponse(
            protocols=(upstream.protocol,) if upstream.protocol else (),
            autoclose=False,
            autoping=False,
            compress=False,
            max_msg_size=max_msg,
            decode_text=False,
        )
        try:
            await client.prepare(_handshake_view(request, upstream.protocol))
            self._sockets.add(client)
            await _relay(client, upstream, stop)
        finally:
            self._sockets.discard(client)
            if not upstream.closed:
                await upstream.close(code=1001)
        return client


def _handshake_view(request: web.Request, protocol: str | None) -> web.Request:
    """The request as aiohttp's handshake should see it: offering exactly the subprotocol the
    upstream chose, or none. The negotiation already happened with the upstream; left to
    aiohttp, an offer the upstream declined logs a warning per connection ("Client protocols
    ... don't overlap"), and an offer spread over several headers loses the upstream's choice
    (aiohttp reads only the first)."""
    offered = request.headers.getall("Sec-WebSocket-Protocol", _EMPTY)
    if not offered or (protocol is not None and offered == [protocol]):
        return request
    headers = CIMultiDict(request.headers)
    headers.popall("Sec-WebSocket-Protocol")
    if protocol is not None:
        headers["Sec-WebSocket-Protocol"] = protocol
    return request.clone(headers=headers)


def _close_code(code: int | None, default: int = 1000) -> int:
    """A code that may be sent in a close frame; 1005/1006/1015 and junk are not."""
    if code is not None and (code in _SENDABLE_CLOSE or 3000 <= code <= 4999):
        return code
    return default


async def _pump(src: _WSEndpoint, dst: _WSEndpoint) -> tuple[int, bytes] | None:
    """Copy messages src→dst. Returns the (code, reason) src closed with, or None if
    src vanished without a close (or dst stopped accepting)."""
    try:
        while True:
            msg = await src.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                await dst.send_frame(msg.data, kind)
            elif kind is WSMsgType.PING:
                await dst.ping(msg.data)
            elif kind is WSMsgType.PONG:
                await dst.pong(msg.data)
            elif kind is WSMsgType.CLOSE:
                return _close_code(msg.data), (msg.extra or "").encode()
            elif kind is WSMsgType.ERROR and isinstance(msg.data, aiohttp.WebSocketError):
                # Protocol error (e.g. message too big): aiohttp already closed src
                # with this code but then reports 1006, so take it from here.
                return _close_code(msg.data.code, 1001), b""
            else:  # CLOSING / CLOSED / other ERROR
                return None
    except (ConnectionError, aiohttp.ClientError) as exc:
        log.info("websocket relay stopped: %s", _exc_summary(exc))
        return None


# Sent to the client when the caller stops the relay (RFC 6455 1008: policy violation).
STOPPED_CLOSE = (1008, b"session ended")


async def _relay(
    client: _WSEndpoint, upstream: _WSEndpoint, stop: asyncio.Event | None = None
) -> None:
    c2u = asyncio.ensure_future(_pump(client, upstream))
    u2c = asyncio.ensure_future(_pump(upstream, client))
    stopped = asyncio.ensure_future(stop.wait()) if stop is not None else None
    waiting = (c2u, u2c) if stopped is None else (c2u, u2c, stopped)
    try:
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiting:
            if not task.done():
                task.cancel()
                # wait() rather than await: never swallow a cancellation of our own task
                await asyncio.wait((task,))
    if stopped is not None and stopped in done and not (c2u in done or u2c in done):
        await client.close(code=STOPPED_CLOSE[0], message=STOPPED_CLOSE[1])
        await upstream.close(code=1001)
        return
    first, src, dst = (c2u, client, upstream) if c2u in done else (u2c, upstream, client)
    frame = first.result()
    if frame is None:
        frame = (_close_code(src.close_code, 1001), b"")
    # Pass the close on, then complete the closing handshake with the side that
    # started it (it already sent its frame; this just answers it).
    await dst.close(code=frame[0], message=frame[1])
    await src.close(code=frame[0])
