"""Large bodies stream through proxy.forward with bounded memory (all on 127.0.0.1)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import aiohttp
import pytest
from aiohttp import web

from proxy.forward import Forwarder, UpstreamConfig

CHUNK = b"\xa5" * 65536
N_CHUNKS = 800  # 50 MiB
TOTAL = len(CHUNK) * N_CHUNKS
# Client, proxy and upstream share this process, so buffering the body anywhere
# shows up here. Generous for allocator noise, far below the 50 MiB body.
MAX_RSS_GROWTH = 16 * 1024 * 1024


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")  # pragma: no cover


def expected_sha() -> str:
    h = hashlib.sha256()
    for _ in range(N_CHUNKS):
        h.update(CHUNK)
    return h.hexdigest()


async def download(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_length = TOTAL
    resp.content_type = "application/octet-stream"
    await resp.prepare(request)
    for _ in range(N_CHUNKS):
        await resp.write(CHUNK)
    return resp


async def upload(request: web.Request) -> web.Response:
    h = hashlib.sha256()
    n = 0
    async for chunk in request.content.iter_chunked(65536):
        h.update(chunk)
        n += len(chunk)
    return web.json_response(
        {
            "sha256": h.hexdigest(),
            "length": n,
            "content_length": request.headers.get("Content-Length"),
            "transfer_encoding": request.headers.get("Transfer-Encoding"),
        }
    )


@pytest.fixture(params=["lean", "aiohttp"])
async def proxied(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """A front proxy on either upstream client (GATE_UPSTREAM_CLIENT) before the upstream."""
    async with AsyncExitStack() as stack:
        up_app = web.Application()
        up_app.router.add_get("/download", download)
        up_app.router.add_post("/upload", upload)
        up_runner = web.AppRunner(up_app, shutdown_timeout=1)
        await up_runner.setup()
        stack.push_async_callback(up_runner.cleanup)
        await web.TCPSite(up_runner, "127.0.0.1", 0).start()
        up_port = up_runner.addresses[0][1]

        fwd = Forwarder(UpstreamConfig(url=f"http://127.0.0.1:{up_port}", client=request.param))
        await fwd.start()
        stack.push_async_callback(fwd.close)

        async def handler(request: web.Request) -> web.StreamResponse:
            return await fwd.forward(request)

        front_app = web.Application(client_max_size=1024)  # forward() must not read_body()
        front_app.router.add_route("*", "/{tail:.*}", handler)
        front_runner = web.AppRunner(front_app, shutdown_timeout=1)
        await front_runner.setup()
        stack.push_async_callback(front_runner.cleanup)
        await web.TCPSite(front_runner, "127.0.0.1", 0).start()
        port = front_runner.addresses[0][1]

        session = aiohttp.ClientSession(skip_auto_headers=("Content-Type",))
        stack.push_async_callback(session.close)
        yield f"http://127.0.0.1:{port}", session


async def test_large_download_streams_with_bounded_memory(
    proxied: tuple[str, aiohttp.ClientSession],
) -> None:
    base, session = proxied
    start = peak = rss()
    h = hashlib.sha256()
    n = 0
    async with session.get(f"{base}/download") as r:
        assert r.status == 200
        assert r.headers["Content-Length"] == str(TOTAL)
        assert "Transfer-Encoding" not in r.headers
        async for chunk in r.content.iter_chunked(65536):
            h.update(chunk)
            n += len(chunk)
            if n % (1 << 20) < len(chunk):
                peak = max(peak, rss())
    assert n == TOTAL
    assert h.hexdigest() == expected_sha()
    assert peak - start < MAX_RSS_GROWTH, f"RSS grew {(peak - start) >> 20} MiB"


@pytest.mark.parametrize("with_length", [False, True], ids=["chunked", "content-length"])
async def test_large_upload_streams_with_bounded_memory(
    proxied: tuple[str, aiohttp.ClientSession], with_length: bool
) -> None:
    base, session = proxied
    start = rss()
    peak = [start]

    async def body() -> AsyncIterator[bytes]:
        for i in range(N_CHUNKS):
            if i % 16 == 0:
                peak[0] = max(peak[0], rss())
            yield CHUNK

    headers = {"Content-Length": str(TOTAL)} if with_length else {}
    async with session.post(f"{base}/upload", data=body(), headers=headers) as r:
        assert r.status == 200
        got = await r.json()
    assert got["length"] == TOTAL
    assert got["sha256"] == expected_sha()
    if with_length:
        assert (got["content_length"], got["transfer_encoding"]) == (str(TOTAL), None)
    else:
        assert (got["content_length"], got["transfer_encoding"]) == (None, "chunked")
    assert peak[0] - start < MAX_RSS_GROWTH, f"RSS grew {(peak[0] - start) >> 20} MiB"
