"""The lean upstream client (proxy/upstream.py) on what only raw sockets can send: trailers,
close-delimited bodies, interim answers, a keep-alive connection closed under a request."""

from __future__ import annotations

import asyncio
import ssl
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest

from tests.support.raw_upstream import RawUpstream, raw_upstream
from tests.unit.test_forward import Front, client, front


@pytest.fixture
async def stack() -> AsyncExitStack:  # type: ignore[misc]
    async with AsyncExitStack() as s:
        yield s


async def lean(stack: AsyncExitStack, **cfg: object) -> tuple[RawUpstream, Front]:
    up = await stack.enter_async_context(raw_upstream())
    return up, await front(stack, up.url, client="lean", **cfg)


async def test_chunked_body_arrives_whole_and_trailers_are_dropped(stack: AsyncExitStack) -> None:
    _up, f = await lean(stack)
    http = await client(stack)
    async with http.get(f.url("/chunked-trailers")) as r:
        assert r.status == 200
        assert await r.read() == b"hello world"
        assert "X-Checksum" not in r.headers and "Trailer" not in r.headers


async def test_close_delimited_body_is_read_to_the_end(stack: AsyncExitStack) -> None:
    up, f = await lean(stack)
    http = await client(stack)
    async with http.get(f.url("/close-delimited")) as r:
        assert await r.read() == b"until the end" + b"." * 5000
    async with http.get(f.url("/after")) as r:  # a fresh connection serves the next one
        assert r.status == 200
    assert up.connections == 2


async def test_no_body_answers_keep_the_connection(stack: AsyncExitStack) -> None:
    up, f = await lean(stack)
    http = await client(stack)
    async with http.get(f.url("/no-content")) as r:
        assert r.status == 204 and await r.read() == b"" and r.headers["X-A"] == "1"
    async with http.get(f.url("/not-modified")) as r:
        assert r.status == 304 and await r.read() == b"" and r.headers["ETag"] == '"v1"'
    for _ in range(3):
        async with http.get(f.url("/x")) as r:
            assert await r.read() == b"GET 0"
    assert up.connections == 1  # one keep-alive connection for all five


async def test_head_has_no_body_but_its_headers(stack: AsyncExitStack) -> None:
    _up, f = await lean(stack)
    http = await client(stack)
    async with http.head(f.url("/x")) as r:
        assert r.status == 200
        assert r.headers["Content-Length"] == "6"  # of "HEAD 0"
        assert await r.read() == b""
    async with http.get(f.url("/x")) as r:
        assert await r.read() == b"GET 0"


async def test_interim_answers_are_skipped(stack: AsyncExitStack) -> None:
    _up, f = await lean(stack)
    http = await client(stack)
    async with http.get(f.url("/interim")) as r:
        assert r.status == 200 and await r.read() == b"final"
        assert "Link" not in r.headers


async def test_a_stale_keepalive_connection_is_retried_only_for_idempotent_requests(
    stack: AsyncExitStack,
) -> None:
    up, f = await lean(stack)
    up.drop_reused = True
    http = await client(stack, connector=aiohttp.TCPConnector(force_close=True))
    async with http.get(f.url("/one")) as r:
        assert r.status == 200
    async with http.get(f.url("/two")) as r:  # pooled connection closed under it: retried
        assert r.status == 200 and await r.read() == b"GET 0"
    assert up.connections == 2
    async with http.post(f.url("/three")) as r:  # not idempotent: never sent twice
        assert r.status == 502
    assert [s.target for s in up.seen] == ["/one", "/two"]


async def test_silence_after_the_request_is_a_504(stack: AsyncExitStack) -> None:
    _up, f = await lean(stack, read_timeout=0.3)
    http = await client(stack)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with http.get(f.url("/hang")) as r:
        assert r.status == 504
    assert loop.time() - started < 3


async def test_a_header_with_a_line_break_is_never_written(stack: AsyncExitStack) -> None:
    up, f = await lean(stack)
    f.add_headers = [("X-Forwarded-User", "alice\r\nX-Admin: 1")]
    http = await client(stack)
    async with http.get(f.url("/x")) as r:
        assert r.status == 502
    assert up.seen == []


async def test_uploads_of_both_framings_arrive_whole(stack: AsyncExitStack) -> None:
    up, f = await lean(stack)
    http = await client(stack)
    payload = b"p" * 300_000

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(payload), 65536):
            yield payload[i : i + 65536]

    async with http.post(f.url("/chunked"), data=chunks()) as r:
        assert await r.read() == b"POST 300000"
    async with http.put(f.url("/sized"), data=payload) as r:
        assert await r.read() == b"PUT 300000"
    chunked, sized = up.seen
    assert ("Transfer-Encoding", "chunked") in chunked.headers
    assert ("Content-Length", "300000") in sized.headers


async def test_a_large_body_streams_through(stack: AsyncExitStack) -> None:
    _up, f = await lean(stack)
    http = await client(stack)
    async with http.get(f.url("/big")) as r:
        total = 0
        async for chunk in r.content.iter_chunked(65536):
            total += len(chunk)
            await asyncio.sleep(0)  # a client slower than the upstream: back-pressure holds
    assert total == 3 * 1024 * 1024


async def _https_upstream(stack: AsyncExitStack, tmp_path: Path) -> tuple[int, Path]:
    from aiohttp import web

    from tests.support.tls import make_tls_files

    files = make_tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="over tls")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    return runner.addresses[0][1], files.ca


async def test_an_https_upstream_is_verified(
    stack: AsyncExitStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ca = await _https_upstream(stack, tmp_path)
    http = await client(stack)
    untrusted = await front(stack, f"https://127.0.0.1:{port}", client="lean")
    async with http.get(untrusted.url("/x")) as r:
        assert r.status == 502  # a certificate no trusted CA signed: never proxied to
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # OpenSSL's default verify paths read it
    trusted = await front(stack, f"https://127.0.0.1:{port}", client="lean")
    async with http.get(trusted.url("/x")) as r:
        assert r.status == 200 and await r.read() == b"over tls"


async def test_a_second_answer_to_one_request_ends_the_connection(stack: AsyncExitStack) -> None:
    up, f = await lean(stack)
    http = await client(stack)
    async with http.get(f.url("/twice")) as r:
        assert r.status == 200 and await r.read() == b"first"
        assert "Location" not in r.headers
    async with http.get(f.url("/next")) as r:  # never the smuggled 302
        assert r.status == 200 and await r.read() == b"GET 0"
    assert up.connections == 2
