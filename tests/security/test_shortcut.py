"""The server's shortcut for proxied paths (proxy/server.py Shortcut) decides nothing itself:
what it does not hand to the gate goes through the app's router and middlewares as before.

Each case here is one the shortcut must leave to the app: a target that is not a path, the auth
prefix in a spelling the router decodes, a request waiting for ``100 Continue``.
"""

from __future__ import annotations

import asyncio

from tests.security.conftest import Stack, raw_exchange, status_of


async def test_an_upload_waiting_for_100_continue_gets_it_and_reaches_the_app(
    stack: Stack,
) -> None:
    cookie = await stack.signed_in_cookie()
    reader, writer = await asyncio.open_connection(stack.host, stack.port)
    try:
        writer.write(
            f"POST /upload HTTP/1.1\r\nHost: {stack.host}:{stack.port}\r\n"
            f"Cookie: gate={cookie}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        async with asyncio.timeout(5):
            interim = await reader.readuntil(b"\r\n\r\n")
        # A client that waits for it before sending its body would otherwise hang.
        assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
        writer.write(b"hello")
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
        assert status_of(head) == 200
    finally:
        writer.close()
    assert [(r["path"], r["body"]) for r in stack.upstream.seen] == [("/upload", b"hello")]


async def test_the_auth_prefix_percent_encoded_is_still_the_gates_own_page(stack: Stack) -> None:
    answer = await raw_exchange(
        stack.host,
        stack.port,
        f"GET /%5Fauth/login HTTP/1.1\r\nHost: {stack.host}:{stack.port}\r\n"
        "Accept: text/html\r\nConnection: close\r\n\r\n".encode(),
    )
    assert status_of(answer) == 200
    assert b'name="password"' in answer  # the login form, not the app's page
    assert stack.upstream.seen == []


async def test_a_target_that_is_not_a_path_is_refused_even_for_a_signed_in_user(
    stack: Stack,
) -> None:
    cookie = await stack.signed_in_cookie()
    for target in ("http://evil.example/app", "*"):
        answer = await raw_exchange(
            stack.host,
            stack.port,
            f"GET {target} HTTP/1.1\r\nHost: {stack.host}:{stack.port}\r\n"
            f"Cookie: gate={cookie}\r\n\r\n".encode(),
        )
        assert status_of(answer) == 400, (target, answer[:200])
    await asyncio.sleep(0.05)
    assert stack.upstream.seen == []


async def test_a_proxied_request_is_observed_like_any_other(stack: Stack) -> None:
    cookie = await stack.signed_in_cookie()
    answer = await raw_exchange(
        stack.host,
        stack.port,
        f"GET /app HTTP/1.1\r\nHost: {stack.host}:{stack.port}\r\nCookie: gate={cookie}\r\n"
        "X-Request-Id: from-the-load-balancer\r\nConnection: close\r\n\r\n".encode(),
    )
    assert status_of(answer) == 200
    # The observer ran: the app got the request id it set (the client's, well-formed).
    seen = {k.lower(): v for k, v in stack.upstream.seen[0]["all_headers"]}
    assert seen["x-request-id"] == "from-the-load-balancer"
