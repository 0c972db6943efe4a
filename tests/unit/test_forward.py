"""proxy.forward against real aiohttp servers on 127.0.0.1 (front + upstream)."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from proxy.demo import free_port
from proxy.forward import Forwarder, UpstreamConfig
from proxy.upgrade import connection_tokens

# --------------------------------------------------------------------------- helpers

# Every test here runs against both upstream clients (GATE_UPSTREAM_CLIENT): the lean one
# (proxy/upstream.py, the default) and aiohttp's ClientSession (the fallback).
_CLIENT = ["lean"]


@pytest.fixture(autouse=True, params=["lean", "aiohttp"])
def upstream_client(request: pytest.FixtureRequest) -> str:
    _CLIENT[0] = request.param
    return str(request.param)


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as s:
        yield s


@dataclass
class Served:
    port: int


async def serve(
    stack: AsyncExitStack, app: web.Application, *, handler_cancellation: bool = False
) -> Served:
    # Like production (web.run_app defaults), unlike aiohttp's TestServer, handlers
    # are not cancelled on client disconnect unless asked for.
    runner = web.AppRunner(app, handler_cancellation=handler_cancellation, shutdown_timeout=1)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return Served(runner.addresses[0][1])


@dataclass
class Front:
    server: Served
    fwd: Forwarder
    # Per-request forward() arguments, mutable so one test can vary them.
    add_headers: Sequence[tuple[str, str]] = ()
    drop_header: Callable[[str], bool] | None = None
    client_ip: str | None = None
    path_qs: str | None = None

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


async def front(
    stack: AsyncExitStack,
    upstream_url: str,
    *,
    error_page: Callable[[web.Request, int], web.Response] | None = None,
    handler_cancellation: bool = False,
    **cfg: object,
) -> Front:
    cfg.setdefault("client", _CLIENT[0])
    fwd = Forwarder(UpstreamConfig(url=upstream_url, **cfg), error_page=error_page)  # type: ignore[arg-type]
    await fwd.start()
    stack.push_async_callback(fwd.close)
    holder: list[Front] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        f = holder[0]
        return await fwd.forward(
            request,
            add_headers=f.add_headers,
            drop_header=f.drop_header,
            client_ip=f.client_ip,
            path_qs=f.path_qs,
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    f = Front(await serve(stack, app, handler_cancellation=handler_cancellation), fwd)
    holder.append(f)
    return f


async def client(stack: AsyncExitStack, **kw: object) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(**kw)  # type: ignore[arg-type]
    stack.push_async_callback(session.close)
    return session


async def echo(request: web.Request) -> web.Response:
    """Upstream handler: report exactly what arrived."""
    h = hashlib.sha256()
    n = 0
    async for chunk in request.content.iter_any():
        h.update(chunk)
        n += len(chunk)
    return web.json_response(
        {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": [[k, v] for k, v in request.headers.items()],
            "sha256": h.hexdigest(),
            "length": n,
        }
    )


def echo_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def values(headers: list[list[str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


async def read_response(reader: asyncio.StreamReader, *, head: bool = False) -> RawResponse:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    while raw.startswith(b"HTTP/1.1 1"):  # interim (100 Continue from our front)
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = raw.decode("latin-1").split("\r\n")[:-2]
    resp = RawResponse(int(lines[0].split(" ", 2)[1]))
    for line in lines[1:]:
        k, _, v = line.partition(":")
        resp.headers.append((k, v.strip()))
    if head or resp.status in (204, 304):
        return resp
    if resp.get("Transfer-Encoding") == ["chunked"]:
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await reader.readexactly(size)
            await reader.readexactly(2)
            if size == 0:
                break
        resp.body = bytes(body)
    elif cl := resp.get("Content-Length"):
        resp.body = await asyncio.wait_for(reader.readexactly(int(cl[0])), 10)
    else:
        resp.body = await asyncio.wait_for(reader.read(), 10)
    return resp


async def raw_request(port: int, data: bytes, *, head: bool = False) -> RawResponse:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await read_response(reader, head=head)
    finally:
        writer.close()


# ------------------------------------------------------------------ request headers


async def test_request_headers_filtered_forwarded_and_added(stack: AsyncExitStack) -> None:
    up = await serve(stack, echo_app())
    f = await front(stack, f"http://127.0.0.1:{up.port}")
    f.add_headers = [("X-Forwarded-User", "alice"), ("X-Forwarded-Groups", "a,b")]
    f.drop_header = lambda n: n.lower() in ("x-forwarded-user", "x-forwarded-groups")
    req = (
        b"GET /echo HTTP/1.1\r\n"
        b"Host: public.example:8443\r\n"
        # Listed names are hop-by-hop, but must never remove what the gate adds.
        b"Connection: keep-alive, X-Secret, X-Forwarded-User\r\n"
        b"Connection: x-forwarded-groups\r\n"
        b"Keep-Alive: timeout=5\r\n"
        b"X-Secret: s3cret\r\n"
        b"TE: trailers\r\n"
        b"Trailer: X-Checksum\r\n"
        b"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"
        b"Proxy-Connection: keep-alive\r\n"
        b"Upgrade: h2c\r\n"
        b"Expect: 100-continue\r\n"
        b"X-Forwarded-For: 6.6.6.6, 7.7.7.7\r\n"
        b"X-Forwarded-Proto: https\r\n"
        b"X-Forwarded-Host: evil.example\r\n"
        b"X-Forwarded-User: mallory\r\n"
        b"x-FORWARDED-user: mallory2\r\n"
        b"Cookie: a=1\r\n"
        b"Cookie: b=2\r\n"
        b"X-Dup: 1\r\n"
        b"X-Dup: 2\r\n"
        b"Accept: text/x-test\r\n"
        b"\r\n"
    )
    resp = await raw_request(f.port, req)
    assert resp.status == 200
    got = json.loads(resp.body)
    h = got["headers"]
    names = {k.lower() for k, _ in h}
    for gone in (
        "connection",
        "keep-alive",
        "x-secret",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "upgrade",
        "expect",
        "transfer-encoding",
        # not sent by the client, so not invented by us either
        "user-agent",
        "accept-encoding",
        "content-type",
        "content-length",
    ):
        assert gone not in names, gone
    assert values(h, "Host") == ["public.example:8443"]
    assert values(h, "X-Forwarded-For") == ["127.0.0.1"]
    assert values(h, "X-Forwarded-Proto") == ["http"]
    assert values(h, "X-Forwarded-Host") == ["public.example:8443"]
    assert values(h, "X-Forwarded-User") == ["alice"]
    assert values(h, "X-Forwarded-Groups") == ["a,b"]
    assert values(h, "Cookie") == ["a=1", "b=2"]
    assert values(h, "X-Dup") == ["1", "2"]
    assert values(h, "Accept") == ["text/x-test"]
    assert got["raw_path"] == "/echo"


async def test_client_ip_overrides_remote(stack: AsyncExitStack) -> None:
    up = await serve(stack, echo_app())
    f = await front(stack, f"http://127.0.0.1:{up.port}")
    f.client_ip = "203.0.113.9"
    s = await client(stack)
    async with s.get(f.url("/"), headers={"X-Forwarded-For": "1.2.3.4"}) as r:
        h = (await r.json())["headers"]
    assert values(h, "X-Forwarded-For") == ["203.0.113.9"]


async def test_host_replaced_when_not_preserved(stack: AsyncExitStack) -> None:
    up = await serve(stack, echo_app())
    f = await front(stack, f"http://127.0.0.1:{up.port}", preserve_host=False)
    s = await client(stack)
    async with s.get(f.url("/"), headers={"Host": "public.example"}) as r:
        h = (await r.json())["headers"]
    assert values(h, "Host") == [f"127.0.0.1:{up.port}"]
    assert values(h, "X-Forwarded-Host") == ["public.example"]


def test_default_port_host_header_has_no_port() -> None:
    fwd = Forwarder(UpstreamConfig(url="http://app", preserve_host=False))
    req = make_mocked_request("GET", "/", headers={"Host": "public.example"})
    out = fwd._request_headers(req, frozenset(), (), None, None, frozenset())
    assert out["Host"] == "app"


_NAMES = st.sampled_from(
    [
        "Connection",
        "Keep-Alive",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Proxy-Connection",
        "Proxy-Authorization",
        "X-A",
        "X-B",
        "Cookie",
        "X-Forwarded-User",
        "Accept",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    headers=st.lists(st.tuples(_NAMES, st.sampled_from(["1", "2", "x"])), max_size=12),
    listed=st.lists(_NAMES, max_size=4),
    case=st.booleans(),
)
def test_request_header_filter_properties(
    headers: list[tuple[str, str]], listed: list[str], case: bool
) -> None:
    fwd = Forwarder(UpstreamConfig(url="http://app:3000"))
    raw = [(n.upper() if case else n, v) for n, v in headers]
    if listed:
        raw.append(("Connection", ", ".join(listed)))
    raw.append(("Host", "pub"))
    req = make_mocked_request("GET", "/", headers=CIMultiDict(raw))
    from proxy import forward as mod

    tokens = connection_tokens(req.headers.getall("Connection", []))
    added = [("X-Forwarded-User", "alice")]
    out = fwd._request_headers(
        req,
        mod._REQUEST_DROP,
        added,
        lambda n: n.lower() == "x-forwarded-user",
        "10.0.0.1",
        tokens,
    )
    removed = mod.HOP_BY_HOP | {t.lower() for t in listed} | {"x-forwarded-user"}
    # Everything else passes through, in order, duplicates included.
    expect = [(n.lower(), v) for n, v in raw if n.lower() not in removed and n != "Host"]
    got = [(n.lower(), v) for n, v in out.items()]
    passed = [p for p in got if p[0] not in ("host", "x-forwarded-for", "x-forwarded-proto")]
    passed = [p for p in passed if p[0] not in ("x-forwarded-host", "x-forwarded-user")]
    assert passed == expect
    assert out.getall("X-Forwarded-User") == ["alice"]
    assert out["Host"] == "pub"
    assert out["X-Forwarded-For"] == "10.0.0.1"


# ------------------------------------------------------------------- cookie isolation


def cookie_app(seen: list[str | None]) -> web.Application:
    async def set_cookie(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        resp = web.Response(text="set")
        resp.headers.add("Set-Cookie", "sid=user-a-session; Path=/")
        resp.headers.add("Set-Cookie", "pref=dark; Path=/")
        return resp

    async def show(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/set", set_cookie)
    app.router.add_get("/show", show)
    return app


async def leak_scenario(stack: AsyncExitStack, using: str | None = None) -> list[str | None]:
    seen: list[str | None] = []
    up = await serve(stack, cookie_app(seen))
    # A hostname, not an IP: aiohttp's CookieJar silently ignores IP hosts.
    f = await front(stack, f"http://localhost:{up.port}", client=using or _CLIENT[0])
    user_a = await client(stack, cookie_jar=aiohttp.DummyCookieJar())
    user_b = await client(stack, cookie_jar=aiohttp.DummyCookieJar())
    async with user_a.get(f.url("/set")) as r:
        assert r.status == 200
        assert r.headers.getall("Set-Cookie") == ["sid=user-a-session; Path=/", "pref=dark; Path=/"]
    async with user_b.get(f.url("/show")) as r:
        assert r.status == 200
    return seen


async def test_no_cookie_jar_leak_between_users(stack: AsyncExitStack) -> None:
    assert await leak_scenario(stack) == [None, None]


async def test_cookie_leak_control_detects_a_shared_jar(
    stack: AsyncExitStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Proves the test above can fail: with a real jar, user B receives A's cookie.
    monkeypatch.setattr(aiohttp, "DummyCookieJar", aiohttp.CookieJar)
    seen = await leak_scenario(stack, using="aiohttp")  # the lean client has no jar at all
    assert seen[1] is not None and "sid=user-a-session" in seen[1]


# ------------------------------------------------------- Location / Refresh / cookies


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://app:3000/base/x?y=1#f", "https://pub.example/x?y=1#f"),
        ("http://APP:3000/base", "https://pub.example/"),
        ("http://app:3000/base/", "https://pub.example/"),
        ("//app:3000/base/x", "https://pub.example/x"),
        ("http://app:3000/base/a%2Fb", "https://pub.example/a%2Fb"),
        ("http://app:3000/basement", None),  # not under the base path
        ("http://app:3000/other", None),
        ("http://app:3001/base/x", None),  # other port
        ("https://app:3000/base/x", None),  # other scheme
        ("http://elsewhere.example/base/x", None),  # foreign
        ("/base/x", None),  # relative: untouched
        ("x/y", None),
        ("http://[bad", None),
    ],
)
def test_rewrite_url(value: str, expected: str | None) -> None:
    fwd = Forwarder(UpstreamConfig(url="http://app:3000/base/"))
    assert fwd.rewrite_url(value, "https://pub.example") == expected


def test_rewrite_url_default_port() -> None:
    fwd = Forwarder(UpstreamConfig(url="http://app"))
    assert fwd.rewrite_url("http://app:80/x", "https://p") == "https://p/x"
    assert fwd.rewrite_url("http://app/x", "https://p") == "https://p/x"
    assert fwd.rewrite_url("http://app:8080/x", "https://p") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sid=1; Domain=app; Path=/base/x; HttpOnly", "sid=1; Path=/x; HttpOnly"),
        ("sid=1; domain=.APP; path=/base", "sid=1; Path=/"),
        ("sid=1; Domain=other.example; Path=/", "sid=1; Domain=other.example; Path=/"),
        ("sid=1; Path=/basement", "sid=1; Path=/basement"),
        (
            "sid=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT",
            "sid=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT",
        ),
        ("domain=app", "domain=app"),  # the cookie's own name/value is never touched
    ],
)
def test_rewrite_set_cookie(value: str, expected: str) -> None:
    fwd = Forwarder(UpstreamConfig(url="http://app:3000/base"))
    assert fwd.rewrite_set_cookie(value) == expected


async def test_redirect_headers_rewritten_through_proxy(stack: AsyncExitStack) -> None:
    port = free_port()
    origin = f"http://localhost:{port}"

    async def redir(request: web.Request) -> web.Response:
        resp = web.Response(status=302, headers={"Location": f"{origin}/base/next?x=1"})
        resp.headers["Refresh"] = f"5; url={origin}/base/r"
        resp.headers.add("Set-Cookie", "a=1; Domain=localhost; Path=/base/app")
        resp.headers.add("Set-Cookie", "b=2; Domain=other.example; Path=/")
        resp.headers.add("Set-Cookie", "c=3")
        return resp

    async def relative(request: web.Request) -> web.Response:
        return web.Response(status=303, headers={"Location": "/base/rel"})

    async def foreign(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": "https://idp.example/login"})

    app = web.Application()
    app.router.add_get("/base/redir", redir)
    app.router.add_get("/base/relative", relative)
    app.router.add_get("/base/foreign", foreign)
    runner = web.AppRunner(app)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, "127.0.0.1", port).start()

    f = await front(stack, f"{origin}/base", preserve_host=False)
    s = await client(stack)
    hdr = {"Host": "pub.example"}
    async with s.get(f.url("/redir"), headers=hdr, allow_redirects=False) as r:
        assert r.status == 302  # the forwarder never follows redirects itself
        assert r.headers["Location"] == "http://pub.example/next?x=1"
        assert r.headers["Refresh"] == "5; url=http://pub.example/r"
        assert r.headers.getall("Set-Cookie") == [
            "a=1; Path=/app",
            "b=2; Domain=other.example; Path=/",
            "c=3",
        ]
    async with s.get(f.url("/relative"), headers=hdr, allow_redirects=False) as r:
        assert r.headers["Location"] == "/base/rel"
    async with s.get(f.url("/foreign"), headers=hdr, allow_redirects=False) as r:
        assert r.headers["Location"] == "https://idp.example/login"


# ---------------------------------------------------------------------------- paths


async def test_raw_path_passes_byte_identical(stack: AsyncExitStack) -> None:
    up = await serve(stack, echo_app())
    f = await front(stack, f"http://127.0.0.1:{up.port}")
    for path in ("/a%2Fb/..%2f?x=%20", "/a/../b/./c?q=%zz&a=b+c", "//double//slash"):
        r = await raw_request(f.port, f"GET {path} HTTP/1.1\r\nHost: p\r\n\r\n".encode())
        assert json.loads(r.body)["raw_path"] == path


async def test_absolute_form_target_keeps_only_path(stack: AsyncExitStack) -> None:
    up = await serve(stack, echo_app())
    f = await front(stack, f"http://127.0.0.1:{up.port}/base")
    r = await raw_request(f.port, b"GET http://evil.example/a%2Fb?x=1 HTTP/1.1\r\nHost: p\r\n\r\n")
    assert json.loads(r.body)["raw_path"] == "/base/a%2Fb?x=1"
    f.path_qs = "*"
    r = await raw_request(f.port, b"GET /x HTTP/1.1\r\nHost: p\r\n\r\n")
    assert r.status == 400


async def test_base_path_prefix_and_path_qs_override(stack: AsyncExitStack) -> None:
    up = await serve(stack, echo_app())
    f = await front(stack, f"http://127.0.0.1:{up.port}/base/")
    r = await raw_request(f.port, b"GET /a%2Fb/..%2f?x=%20 HTTP/1.1\r\nHost: p\r\n\r\n")
    assert json.loads(r.body)["raw_path"] == "/base/a%2Fb/..%2f?x=%20"
    f.path_qs = "/normalised?q=1"
    r = await raw_request(f.port, b"GET /ignored HTTP/1.1\r\nHost: p\r\n\r\n")
    assert json.loads(r.body)["raw_path"] == "/base/normalised?q=1"


# ------------------------------------------------------------------- bodies & methods


async def test_request_body_content_length_kept(stack: AsyncExitStack) -> None:
    up = await serve(stack, echo_app())
    f = await front(stack, f"http://127.0.0.1:{up.port}")
    s = await client(stack)
    body = b"x" * 100_000
    async with s.post(f.url("/up"), data=body) as r:
        got = await r.json()
    assert values(got["headers"], "Content-Length") == ["100000"]
    assert values(got["headers"], "Transfer-Encoding") == []
    assert got["sha256"] == hashlib.sha256(body).hexdigest()


async def test_chunked_request_body_stays_chunked(stack: AsyncExitStack) -> None:
    up = await serve(stack, echo_app())
    f = await front(stack, f"http://127.0.0.1:{up.port}")
    parts = [bytes([i]) * (1000 + i) for i in range(50)]
    s = await client(stack, skip_auto_headers=("Content-Type",))

    async def gen() -> AsyncIterator[bytes]:
        for p in parts:
            yield p

    async with s.put(f.url("/up"), data=gen()) as r:
        got = await r.json()
    assert values(got["headers"], "Transfer-Encoding") == ["chunked"]
    assert values(got["headers"], "Content-Length") == []
    assert values(got["headers"], "Content-Type") == []  # not invented
    assert got["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert got["method"] == "PUT"


def status_app() -> web.Application:
    async def head_or_get(request: web.Request) -> web.Response:
        return web.Response(body=b"b" * 1234, content_type="application/x-test")

    async def no_content(request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"X-Y": "1"})

    async def not_modified(request: web.Request) -> web.Response:
        return web.Response(status=304, headers={"ETag": '"abc"'})

    async def gz(request: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(b"hello " * 1000),
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
        )

    app = web.Application()
    app.router.add_get("/res", head_or_get)
    app.router.add_get("/204", no_content)
    app.router.add_get("/304", not_modified)
    app.router.add_get("/gz", gz)
    return app


async def test_head_204_304_framing_on_one_connection(stack: AsyncExitStack) -> None:
    up = await serve(stack, status_app())
    f = await front(stack, f"http://127.0.0.1:{up.port}")
    reader, writer = await asyncio.open_connection("127.0.0.1", f.port)
    try:
        for method, path in (("HEAD", "/res"), ("GET", "/204"), ("GET", "/304"), ("GET", "/res")):
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: p\r\n\r\n".encode())
            r = await read_response(reader, head=method == "HEAD")
            if path == "/res":
                assert r.status == 200
                assert r.get("Content-Length") == ["1234"]
                assert r.body == (b"" if method == "HEAD" else b"b" * 1234)
            elif path == "/204":
                assert (r.status, r.get("X-Y")) == (204, ["1"])
            else:
                assert (r.status, r.get("ETag")) == (304, ['"abc"'])
    finally:
        writer.close()


async def test_encoded_body_passes_unchanged(stack: AsyncExitStack) -> None:
    up = await serve(stack, status_app())
    f = await front(stack, f"http://127.0.0.1:{up.port}")
    s = await client(stack, auto_decompress=False)
    async with s.get(f.url("/gz"), headers={"Accept-Encoding": "gzip"}) as r:
        body = await r.read()
        assert r.headers["Content-Encoding"] == "gzip"
        assert r.headers["Content-Length"] == str(len(body))
    assert gzip.decompress(body) == b"hello " * 1000


async def test_response_hop_by_hop_removed(stack: AsyncExitStack) -> None:
    async def handler(request: web.Request) -> web.Response:
        resp = web.Response(text="ok")
        resp.headers["Connection"] = "X-Internal"
        resp.headers["X-Internal"] = "secret"
        resp.headers["Keep-Alive"] = "timeout=99"
        resp.headers["Proxy-Authenticate"] = "Basic"
        resp.headers["X-Kept"] = "1"
        return resp

    app = web.Application()
    app.router.add_get("/", handler)
    up = await serve(stack, app)
    f = await front(stack, f"http://127.0.0.1:{up.port}")
    r = await raw_request(f.port, b"GET / HTTP/1.1\r\nHost: p\r\n\r\n")
    assert r.status == 200 and r.body == b"ok"
    names = {k.lower() for k, _ in r.headers}
    assert not names & {"x-internal", "keep-alive", "proxy-authenticate"}
    assert r.get("X-Kept") == ["1"]


async def test_response_streams_without_buffering(stack: AsyncExitStack) -> None:
    release = asyncio.Event()

    async def sse(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: first\n\n")
        await asyncio.wait_for(release.wait(), 10)
        await resp.write(b"data: second\n\n")
        return resp

    app = web.Application()
    app.router.add_get("/sse", sse)
    up = await serve(stack, app)
    f = await front(stack, f"http://127.0.0.1:{up.port}")
    s = await client(stack)
    async with s.get(f.url("/sse")) as r:
        # Arrives while the upstream is still blocked: nothing is buffered.
        first = await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5)
        assert first == b"data: first\n\n"
        release.set()
        assert await r.content.read() == b"data: second\n\n"


# --------------------------------------------------------------------------- errors


async def test_upstream_down_is_502(
    stack: AsyncExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    f = await front(stack, f"http://127.0.0.1:{free_port()}")
    s = await client(stack)
    with caplog.at_level(logging.INFO):
        async with s.get(f.url("/x?token=SECRET"), headers={"Authorization": "B SECRET"}) as r:
            assert r.status == 502
            assert r.content_type == "text/html"
            assert "Bad gateway \u2013 the application is not reachable" in await r.text()
    assert not [rec for rec in caplog.records if rec.exc_info]
    assert not [
        r for r in caplog.records if r.name == "proxy.forward" and "SECRET" in r.getMessage()
    ]


async def test_upstream_closes_before_headers_is_502(stack: AsyncExitStack) -> None:
    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(slam, "127.0.0.1", 0)
    stack.push_async_callback(server.wait_closed)
    stack.callback(server.close)
    port = server.sockets[0].getsockname()[1]
    f = await front(stack, f"http://127.0.0.1:{port}")
    s = await client(stack)
    async with s.get(f.url("/")) as r:
        assert r.status == 502


async def test_slow_upstream_is_504(stack: AsyncExitStack) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/", slow)
    up = await serve(stack, app)
    f = await front(stack, f"http://127.0.0.1:{up.port}", read_timeout=0.2)
    s = await client(stack)
    async with s.get(f.url("/")) as r:
        assert r.status == 504
        assert "Gateway timeout" in await r.text()


async def test_connect_timeout_covers_pool_wait(stack: AsyncExitStack) -> None:
    hold, entered = asyncio.Event(), asyncio.Event()

    async def busy(request: web.Request) -> web.Response:
        entered.set()
        await asyncio.wait_for(hold.wait(), 10)
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/", busy)
    up = await serve(stack, app)
    f = await front(stack, f"http://127.0.0.1:{up.port}", max_connections=1, connect_timeout=0.3)
    s = await client(stack)
    first = asyncio.ensure_future(s.get(f.url("/")))
    await asyncio.wait_for(entered.wait(), 5)  # the only pooled connection is now busy
    async with s.get(f.url("/")) as r:
        assert r.status == 504
    hold.set()
    async with await first as r:
        assert await r.text() == "done"


async def test_custom_error_page(stack: AsyncExitStack) -> None:
    def page(request: web.Request, status: int) -> web.Response:
        # The request is there for the page's language.
        lang = request.headers.get("Accept-Language", "-")
        return web.Response(status=status, text=f"custom {status} {lang}")

    f = await front(stack, f"http://127.0.0.1:{free_port()}", error_page=page)
    s = await client(stack)
    async with s.get(f.url("/"), headers={"Accept-Language": "ja"}) as r:
        assert (r.status, await r.text()) == (502, "custom 502 ja")


@pytest.mark.parametrize(
    ("chunked", "stall"),
    [(False, False), (True, False), (False, True)],
    ids=["length-dies", "chunked-dies", "length-stalls"],
)
async def test_upstream_fails_mid_body_aborts_client(
    stack: AsyncExitStack, chunked: bool, stall: bool
) -> None:
    async def dying(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        if chunked:
            resp.enable_chunked_encoding()
        else:
            resp.content_length = 100_000
        await resp.prepare(request)
        await resp.write(b"a" * 1000)
        await asyncio.sleep(2 if stall else 0.05)  # stall: > read_timeout between chunks
        assert request.transport is not None
        request.transport.close()
        return resp

    app = web.Application()
    app.router.add_get("/", dying)
    up = await serve(stack, app)
    f = await front(stack, f"http://127.0.0.1:{up.port}", read_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", f.port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: p\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        rest = await asyncio.wait_for(reader.read(), 5)  # EOF: connection was cut
    finally:
        writer.close()
    assert b"Bad gateway" not in rest
    if chunked:
        assert not rest.endswith(b"0\r\n\r\n")  # no terminating chunk
        assert rest.count(b"a") == 1000
    else:
        assert rest == b"a" * 1000  # short of the promised 100000


@pytest.mark.parametrize("cancel", [False, True], ids=["no-cancel", "handler-cancellation"])
async def test_client_disconnect_releases_upstream(
    stack: AsyncExitStack, caplog: pytest.LogCaptureFixture, cancel: bool
) -> None:
    upstream_done = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        try:
            while True:
                await resp.write(b"z" * 65536)
                await asyncio.sleep(0.001)
        except ConnectionError:
            return resp
        finally:  # also on CancelledError, with handler_cancellation
            upstream_done.set()

    async def small(request: web.Request) -> web.Response:
        return web.Response(text="small")

    app = web.Application()
    app.router.add_get("/endless", endless)
    app.router.add_get("/small", small)
    up = await serve(stack, app)
    # One pooled connection: a leaked one would make the next request wait → 504.
    f = await front(
        stack,
        f"http://127.0.0.1:{up.port}",
        max_connections=1,
        connect_timeout=2,
        handler_cancellation=cancel,
    )
    with caplog.at_level(logging.INFO):
        reader, writer = await asyncio.open_connection("127.0.0.1", f.port)
        writer.write(b"GET /endless HTTP/1.1\r\nHost: p\r\n\r\n")
        await reader.readexactly(200_000)
        writer.close()
        await asyncio.wait_for(upstream_done.wait(), 5)
        s = await client(stack)
        async with s.get(f.url("/small")) as r:
            assert (r.status, await r.text()) == (200, "small")
    assert not [rec for rec in caplog.records if rec.exc_info or rec.levelno >= logging.ERROR]


async def test_client_aborting_upload_is_not_an_upstream_failure(
    stack: AsyncExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    got_part = asyncio.Event()

    async def sink(request: web.Request) -> web.Response:
        try:
            async for _ in request.content.iter_any():
                got_part.set()
        except (ConnectionError, aiohttp.ClientPayloadError):
            pass
        return web.Response(text="done")

    app = web.Application()
    app.router.add_post("/", sink)
    up = await serve(stack, app)
    f = await front(stack, f"http://127.0.0.1:{up.port}")
    with caplog.at_level(logging.INFO, logger="proxy.forward"):
        _, writer = await asyncio.open_connection("127.0.0.1", f.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: p\r\nContent-Length: 1000000\r\n\r\n")
        writer.write(b"u" * 10_000)
        await asyncio.wait_for(got_part.wait(), 5)
        writer.close()
        for _ in range(250):
            if any(r.name == "proxy.forward" for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    ours = [r for r in caplog.records if r.name == "proxy.forward"]
    assert ours and all(r.levelno == logging.INFO and not r.exc_info for r in ours)


async def test_forward_before_start_raises() -> None:
    fwd = Forwarder(UpstreamConfig(url="http://app:3000"))
    with pytest.raises(RuntimeError):
        await fwd.forward(make_mocked_request("GET", "/"))


@pytest.mark.parametrize("url", ["app:3000", "ftp://app/", "http:///x", "http://app/?q=1"])
def test_bad_upstream_url_rejected(url: str) -> None:
    with pytest.raises(ValueError):
        Forwarder(UpstreamConfig(url=url))


# ------------------------------------------------------------------------ websocket


@dataclass
class WSUpstream:
    closes: list[int | None] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def ws_app(state: WSUpstream) -> web.Application:
    async def echo_ws(request: web.Request) -> web.WebSocketResponse:
        state.headers.append(dict(request.headers))
        ws = web.WebSocketResponse(protocols=("chat.v2", "chat.v1"))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                if msg.data == "close-me":
                    await ws.close(code=4002, message=b"bye from upstream")
                    break
                await ws.send_str("echo:" + msg.data)
            elif msg.type is WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        state.closes.append(ws.close_code)
        return ws

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=403, text="no")

    app = web.Application()
    app.router.add_get("/ws", echo_ws)
    app.router.add_get("/refuse", refuse)
    return app


async def ws_setup(
    stack: AsyncExitStack, ws_max_message: int = 4 * 1024 * 1024
) -> tuple[Front, WSUpstream]:
    state = WSUpstream()
    up = await serve(stack, ws_app(state))
    f = await front(stack, f"http://127.0.0.1:{up.port}", ws_max_message=ws_max_message)
    f.add_headers = [("X-Forwarded-User", "alice")]
    return f, state


async def test_websocket_echo_and_client_close_code(stack: AsyncExitStack) -> None:
    f, state = await ws_setup(stack)
    s = await client(stack)
    async with s.ws_connect(
        f.url("/ws"), protocols=("chat.v1", "other"), headers={"Cookie": "c=1"}
    ) as ws:
        assert ws.protocol == "chat.v1"
        await ws.send_str("héllo")
        assert await ws.receive_str(timeout=5) == "echo:héllo"
        await ws.send_bytes(b"\x00\x01\x02")
        assert await ws.receive_bytes(timeout=5) == b"\x02\x01\x00"
        await ws.close(code=4001, message=b"bye from client")
    for _ in range(250):
        if state.closes:
            break
        await asyncio.sleep(0.02)
    assert state.closes == [4001]
    h = state.headers[0]
    assert h["X-Forwarded-User"] == "alice"
    assert h["Cookie"] == "c=1"
    assert h["Host"] == f"127.0.0.1:{f.port}"
    assert h["Sec-WebSocket-Protocol"] == "chat.v1,other"
    assert "Sec-WebSocket-Extensions" not in h


async def test_websocket_upstream_close_code_reaches_client(stack: AsyncExitStack) -> None:
    f, _ = await ws_setup(stack)
    s = await client(stack)
    async with s.ws_connect(f.url("/ws")) as ws:
        assert ws.protocol is None
        await ws.send_str("close-me")
        msg = await ws.receive(timeout=5)
        assert msg.type is WSMsgType.CLOSE
        assert (msg.data, msg.extra) == (4002, "bye from upstream")
    assert ws.close_code == 4002


async def test_websocket_ping_passes_through(stack: AsyncExitStack) -> None:
    f, _ = await ws_setup(stack)
    s = await client(stack)
    async with s.ws_connect(f.url("/ws"), autoping=False) as ws:
        await ws.ping(b"are-you-there")
        msg = await ws.receive(timeout=5)
        # The upstream answered (autoping); the proxy relayed ping and pong.
        assert (msg.type, msg.data) == (WSMsgType.PONG, b"are-you-there")


async def test_websocket_refused_is_502(stack: AsyncExitStack) -> None:
    f, _ = await ws_setup(stack)
    s = await client(stack)
    with pytest.raises(aiohttp.WSServerHandshakeError) as ei:
        await s.ws_connect(f.url("/refuse"))
    assert ei.value.status == 502


async def test_websocket_upstream_down_is_502(stack: AsyncExitStack) -> None:
    f = await front(stack, f"http://127.0.0.1:{free_port()}")
    s = await client(stack)
    with pytest.raises(aiohttp.WSServerHandshakeError) as ei:
        await s.ws_connect(f.url("/ws"))
    assert ei.value.status == 502


async def test_websocket_message_size_capped(stack: AsyncExitStack) -> None:
    f, state = await ws_setup(stack, ws_max_message=64 * 1024)
    s = await client(stack)
    async with s.ws_connect(f.url("/ws")) as ws:
        await ws.send_bytes(b"x" * (65 * 1024))
        msg = await ws.receive(timeout=5)
        assert msg.type is WSMsgType.CLOSE
        assert msg.data == 1009  # MESSAGE_TOO_BIG
    for _ in range(250):
        if state.closes:
            break
        await asyncio.sleep(0.02)
    assert state.closes and state.closes[0] == 1009


async def test_websocket_client_vanishing_closes_upstream(
    stack: AsyncExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    f, state = await ws_setup(stack)
    s = aiohttp.ClientSession()
    with caplog.at_level(logging.INFO):
        ws = await s.ws_connect(f.url("/ws"))
        await ws.send_str("hi")
        assert await ws.receive_str(timeout=5) == "echo:hi"
        assert s.connector is not None
        await s.connector.close()  # drops the TCP connection: no close frame
        for _ in range(250):
            if state.closes:
                break
            await asyncio.sleep(0.02)
        await s.close()
    assert state.closes == [1001]  # going away
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_open_websockets_do_not_exhaust_the_http_connection_pool(
    stack: AsyncExitStack,
) -> None:
    # WebSockets live as long as their client; sharing max_connections with HTTP would let
    # a few of them block every other request until connect_timeout (then 504).
    state = WSUpstream()
    up = await serve(stack, ws_app(state))
    f = await front(stack, f"http://127.0.0.1:{up.port}", max_connections=2, connect_timeout=1.0)
    s = await client(stack)
    sockets = [await stack.enter_async_context(s.ws_connect(f.url("/ws"))) for _ in range(3)]
    for i, ws in enumerate(sockets):
        await ws.send_str(f"m{i}")
        assert await ws.receive_str(timeout=5) == f"echo:m{i}"
    async with s.get(f.url("/refuse")) as resp:  # plain HTTP still gets a pooled connection
        assert resp.status == 403
