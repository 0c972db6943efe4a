"""Each aiohttp internal cognito-gate relies on still exists and still does what it is used for.

A failure here means the installed aiohttp changed something proxy/aiohttp_internals.py wraps:
adapt that one module (and only it), or pin aiohttp to the version that works.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from proxy import aiohttp_internals as internals
from proxy.server import GateRequestHandler, GateServer

ROOT = Path(__file__).parents[2]


async def _ok(request: web.BaseRequest) -> web.StreamResponse:
    return web.Response(text="ok")


def test_the_declared_aiohttp_floor_is_one_these_internals_exist_in() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if re.match(r"aiohttp\b", d)]
    floor = re.search(r">=([0-9.]+)", spec)
    assert floor is not None, spec
    assert tuple(int(p) for p in floor.group(1).split(".")[:2]) >= (3, 14), spec
    installed = tuple(int(p) for p in aiohttp.__version__.split(".")[:2])
    assert installed >= (3, 14)


def test_a_missing_internal_fails_at_import_naming_it() -> None:
    with pytest.raises(internals.AiohttpChanged, match=r"3\.\S+ has no StreamResponse\.gone"):
        internals._require(web.StreamResponse, "gone")


def test_the_private_cookie_parser_reads_quoted_values_whole() -> None:
    header = 'x="a; __Host-gate=V; y=b"; z=1'
    parsed = [(name, morsel.value) for name, morsel in internals.parse_cookie_header(header)]
    assert [name for name, _ in parsed] == ["x", "z"]
    assert parsed[1] == ("z", "1")


async def test_server_bookkeeping_survives_rebuilding_the_server() -> None:
    made = web.Server(_ok, handler_cancellation=True, keepalive_timeout=7.0, max_headers=33)
    handler, kwargs = internals.server_arguments(made)
    assert handler is _ok
    assert kwargs["loop"] is asyncio.get_running_loop()
    assert kwargs["handler_cancellation"] is True
    assert kwargs["keepalive_timeout"] == 7.0 and kwargs["max_headers"] == 33
    server = GateServer(made, max_connections=2)
    assert internals.connection_count(server) == 0
    protocol = internals.new_protocol(server, GateRequestHandler)
    assert isinstance(protocol, GateRequestHandler)
    assert protocol.max_headers == 33
    assert internals.handler_manager(protocol) is server
    internals.detach_from_manager(protocol)
    assert internals.handler_manager(protocol) is None


async def test_the_wrapping_runner_serves_with_the_wrapped_server() -> None:
    wrapped: list[web.Server] = []

    class Runner(internals.WrappingAppRunner):
        def wrap_server(self, made: web.Server) -> web.Server:
            server = GateServer(made, max_connections=5)
            wrapped.append(server)
            return server

    runner = Runner(web.Application())
    await runner.setup()
    try:
        assert runner.server is wrapped[0]
    finally:
        await runner.cleanup()


async def test_the_server_header_global_is_what_answers_carry() -> None:
    app = web.Application()
    app.router.add_get("/", _ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        internals.set_server_header("probe-name")
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/") as resp:
            assert resp.headers.getall("Server") == ["probe-name"]
    finally:
        internals.set_server_header("cognito-gate")
        await runner.cleanup()


def test_whole_body_responses_use_the_flag_aiohttps_own_response_uses() -> None:
    # web.Response (a body known up front) buffers its headers to write them with the body;
    # StreamResponse sends them at once. WholeBodyResponse takes Response's side.
    assert web.StreamResponse._send_headers_immediately is True
    assert web.Response._send_headers_immediately is False
    assert internals.WholeBodyResponse._send_headers_immediately is False


def test_the_copied_request_loop_runs_only_under_the_aiohttp_it_was_copied_from() -> None:
    # InlineRequestHandler.start is a copy of aiohttp 3.14.5's: under a release whose own loop
    # changed (a fix in pipelining, keep-alive or lingering) aiohttp's loop runs instead, and the
    # server says so at startup. A new aiohttp on PyPI must not break the gate, nor be shadowed.
    source = inspect.getsource(web.RequestHandler.start)
    same = (
        hashlib.sha256(source.encode()).hexdigest() == internals.InlineRequestHandler.COPIED_START
    )
    assert internals.INLINE_REQUESTS is same
    assert (internals.inline_requests_note() is None) is same


async def test_under_another_aiohttp_every_request_runs_as_aiohttp_runs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(internals, "INLINE_REQUESTS", False)
    note = internals.inline_requests_note()
    assert note is not None and aiohttp.__version__ in note and "Task of their own" in note
    assert await _pipelined() == [
        b"/inline/1 own_task=True saw=unset",
        b"/task/2 own_task=True saw=unset",  # each request in its own Task: nothing leaks
        b"/inline/3 own_task=True saw=unset",
        b"/task/4 own_task=True saw=unset",
    ]


class _Inline(internals.InlineRequestHandler):
    def inline_handler(self, message: internals.RawRequestMessage) -> Any:
        return _where if message.path.startswith("/inline") else None


_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("probe", default="unset")


async def _where(request: web.BaseRequest) -> web.StreamResponse:
    # What the request saw, then what it leaves behind for the next one.
    seen = _VAR.get()
    _VAR.set(request.path)
    own = asyncio.current_task() is not request.task
    await asyncio.sleep(0)
    return web.Response(text=f"{request.path} own_task={own} saw={seen};")


async def _serve_inline(handler: Any = _where) -> tuple[asyncio.AbstractServer, int]:
    server = web.Server(handler)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: internals.new_protocol(server, _Inline), "127.0.0.1", 0
    )
    return listener, listener.sockets[0].getsockname()[1]


async def _pipelined() -> list[bytes]:
    """Four pipelined requests on one connection, two of them named inline: what each saw."""
    listener, port = await _serve_inline()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /inline/1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /task/2 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /inline/3 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /task/4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        async with asyncio.timeout(5):
            answer = await reader.read()
        writer.close()
    finally:
        listener.close()
    return re.findall(rb"/\S+ own_task=\w+ saw=[^;]+", answer)


async def test_inline_requests_run_in_the_connection_task_and_pipeline_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(internals, "INLINE_REQUESTS", True)  # the copy, whatever is installed
    assert await _pipelined() == [
        b"/inline/1 own_task=False saw=unset",
        # A request in a Task of its own still starts from the connection's context.
        b"/task/2 own_task=True saw=/inline/1",
        b"/inline/3 own_task=False saw=/inline/1",
        # What /inline/3 set is seen by the next request: why only handlers that set no
        # context variable may be inline (the gate's proxied path sets none).
        b"/task/4 own_task=True saw=/inline/3",
    ]


async def test_an_inline_request_in_flight_is_drained_by_shutdown() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.BaseRequest) -> web.StreamResponse:
        started.set()
        await release.wait()
        return web.Response(text="finished")

    server = web.Server(slow)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: internals.new_protocol(server, _InlineAll), "127.0.0.1", 0
    )
    port = listener.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /inline HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(5):
            await started.wait()
        shutdown = asyncio.ensure_future(server.shutdown(timeout=5))
        await asyncio.sleep(0.05)
        assert not shutdown.done()  # waits for the request, does not cut it
        release.set()
        async with asyncio.timeout(5):
            await shutdown
            answer = await reader.read()
        writer.close()
    finally:
        listener.close()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"finished")


class _InlineAll(internals.InlineRequestHandler):
    def inline_handler(self, message: internals.RawRequestMessage) -> Any:
        return self._request_handler


async def test_a_client_gone_mid_inline_request_frees_the_connection() -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(request: web.BaseRequest) -> web.StreamResponse:
        started.set()
        try:
            await asyncio.sleep(0.2)
            response = web.StreamResponse()
            await response.prepare(request)  # the client is gone: ConnectionResetError
            await response.write(b"x")
            return response
        finally:
            finished.set()

    lost = asyncio.Event()

    class Watched(_InlineAll):
        def connection_lost(self, exc: BaseException | None) -> None:
            super().connection_lost(exc)
            lost.set()

    server = web.Server(slow)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: internals.new_protocol(server, Watched), "127.0.0.1", 0
    )
    port = listener.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /inline HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(5):
            await started.wait()
        writer.close()
        async with asyncio.timeout(5):
            await finished.wait()
            await lost.wait()
        # The server forgets the connection once its task (the one the request ran in) ended.
        for _ in range(200):
            if not internals.connection_count(server):
                break
            await asyncio.sleep(0.01)
        assert internals.connection_count(server) == 0
    finally:
        listener.close()
