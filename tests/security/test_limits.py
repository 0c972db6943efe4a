"""What one client may make the server hold: body, headers, time, connections."""

from __future__ import annotations

import asyncio
import time

from tests.security.conftest import USER, Stack, raw_exchange, stack_for, status_of
from tests.support.cognito_double import CognitoDouble


async def test_oversize_login_form_is_413_before_any_cognito_call(stack: Stack) -> None:
    token = await stack.browser.login_form()
    before = len(stack.double.calls)
    resp = await stack.browser.post(
        "/_auth/login", {"csrf": token, "username": USER, "password": "x" * 20_000}
    )
    assert resp.status == 413
    assert len(stack.double.calls) == before


async def test_oversize_header_is_431(stack: Stack) -> None:
    head = f"GET / HTTP/1.1\r\nHost: {stack.host}\r\nX-Big: {'a' * 9000}\r\n\r\n"
    answer = await raw_exchange(stack.host, stack.port, head.encode())
    assert status_of(answer) == 431


async def test_too_many_headers_is_431(stack: Stack) -> None:
    many = "".join(f"X-H{i}: v\r\n" for i in range(150))
    answer = await raw_exchange(stack.host, stack.port, f"GET / HTTP/1.1\r\n{many}\r\n".encode())
    assert status_of(answer) == 431


async def test_slow_request_head_is_cut_at_the_header_deadline(double: CognitoDouble) -> None:
    async with stack_for(double, server={"header_timeout": 0.5}) as stack:
        reader, writer = await asyncio.open_connection(stack.host, stack.port)
        started = time.monotonic()
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        closed_after = None
        try:
            for i in range(40):  # slowloris: one header every 0.1 s, never finishing
                writer.write(f"X-Drip-{i}: a\r\n".encode())
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), 0.1) == b"":
                        closed_after = time.monotonic() - started
                        break
                except TimeoutError:
                    continue
        except ConnectionError:
            closed_after = time.monotonic() - started
        finally:
            writer.close()
        assert closed_after is not None and closed_after < 2.0, closed_after


async def test_slow_form_body_is_408(double: CognitoDouble) -> None:
    async with stack_for(double, server={"body_timeout": 0.3}) as stack:
        token = await stack.browser.login_form()
        cookie = stack.browser.cookie("gate-login")
        head = (
            f"POST /_auth/login HTTP/1.1\r\nHost: {stack.host}:{stack.port}\r\n"
            f"Cookie: gate-login={cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: 500\r\n\r\n"
            f"csrf={token}&username=carol"
        )
        calls = len(double.calls)
        answer = await raw_exchange(stack.host, stack.port, head.encode(), within=3)
        assert status_of(answer) == 408
        assert len(double.calls) == calls


async def test_connections_past_the_cap_get_503_and_are_closed(double: CognitoDouble) -> None:
    async with stack_for(double, server={"max_connections": 2}) as stack:
        held = [await asyncio.open_connection(stack.host, stack.port) for _ in range(2)]
        try:
            await asyncio.sleep(0.05)
            answer = await raw_exchange(stack.host, stack.port, b"", within=2)
            assert status_of(answer) == 503
            assert b"Retry-After: 1" in answer
        finally:
            for _, writer in held:
                writer.close()
        await asyncio.sleep(0.1)  # the held connections are gone: room again
        resp = await stack.browser.get("/_auth/healthz")
        assert resp.status == 200
