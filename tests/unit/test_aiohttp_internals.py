"""Each aiohttp internal cognito-gate relies on still exists and still does what it is used for.

A failure here means the installed aiohttp changed something proxy/aiohttp_internals.py wraps:
adapt that one module (and only it), or pin aiohttp to the version that works.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from pathlib import Path

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
