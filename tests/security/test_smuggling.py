"""Request smuggling and ambiguous requests: 400, and nothing reaches the upstream.

Each request carries a valid session cookie, so the only thing keeping it from the app is the
defence under test. The control test shows the same request, well formed, does get through.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.security.conftest import Stack, raw_exchange, status_of


def _request(stack: Stack, cookie: str, head: str, body: str = "") -> bytes:
    lines = head.format(host=f"{stack.host}:{stack.port}", cookie=f"gate={cookie}")
    return (lines.replace("\n", "\r\n") + "\r\n" + body).encode()


WELL_FORMED = (
    "POST /app HTTP/1.1\nHost: {host}\nCookie: {cookie}\nContent-Length: 5\nConnection: close\n"
)

SMUGGLING = {
    "content_length_and_transfer_encoding": (
        "POST /app HTTP/1.1\nHost: {host}\nCookie: {cookie}\nContent-Length: 5\n"
        "Transfer-Encoding: chunked\n",
        "0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
    "duplicate_content_length": (
        "POST /app HTTP/1.1\nHost: {host}\nCookie: {cookie}\nContent-Length: 5\n"
        "Content-Length: 41\n",
        "hello",
    ),
    "duplicate_host": (
        "GET /app HTTP/1.1\nHost: {host}\nHost: evil.example\nCookie: {cookie}\n",
        "",
    ),
    "obsolete_line_folding": (
        "GET /app HTTP/1.1\nHost: {host}\nCookie: {cookie}\nX-Folded: a\n  b\n",
        "",
    ),
    "absolute_form_target": (
        "GET http://evil.example/app HTTP/1.1\nHost: {host}\nCookie: {cookie}\n",
        "",
    ),
    "authority_form_target": (
        "CONNECT evil.example:443 HTTP/1.1\nHost: evil.example:443\nCookie: {cookie}\n",
        "",
    ),
    "asterisk_form_target": ("OPTIONS * HTTP/1.1\nHost: {host}\nCookie: {cookie}\n", ""),
    "space_before_colon": (
        "GET /app HTTP/1.1\nHost: {host}\nCookie: {cookie}\nTransfer-Encoding : chunked\n",
        "0\r\n\r\n",
    ),
    "transfer_encoding_not_ending_in_chunked": (
        "POST /app HTTP/1.1\nHost: {host}\nCookie: {cookie}\nTransfer-Encoding: chunked, gzip\n",
        "0\r\n\r\n",
    ),
    "bare_lf_chunk_size": (
        "POST /app HTTP/1.1\nHost: {host}\nCookie: {cookie}\nTransfer-Encoding: chunked\n",
        "5\nhello\r\n0\r\n\r\n",
    ),
    "nul_in_header_value": (
        "GET /app HTTP/1.1\nHost: {host}\nCookie: {cookie}\nX-Nul: a\x00b\n",
        "",
    ),
}


async def test_well_formed_request_with_the_same_cookie_reaches_the_upstream(
    stack: Stack,
) -> None:
    cookie = await stack.signed_in_cookie()
    answer = await raw_exchange(
        stack.host, stack.port, _request(stack, cookie, WELL_FORMED, "hello")
    )
    assert status_of(answer) == 200
    assert [r["path"] for r in stack.upstream.seen] == ["/app"]


@pytest.mark.parametrize("case", sorted(SMUGGLING))
async def test_ambiguous_request_is_refused_and_nothing_is_forwarded(
    stack: Stack, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    cookie = await stack.signed_in_cookie()
    head, body = SMUGGLING[case]
    caplog.set_level(logging.DEBUG)
    answer = await raw_exchange(stack.host, stack.port, _request(stack, cookie, head, body))
    assert status_of(answer) == 400, answer[:200]
    assert answer.count(b"HTTP/1.") == 1  # no second (smuggled) response
    await asyncio.sleep(0.05)  # anything forwarded would have arrived by now
    assert stack.upstream.seen == []


async def test_malformed_request_is_one_warning_line_without_traceback_or_bytes(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    cookie = await stack.signed_in_cookie()
    head, body = SMUGGLING["duplicate_content_length"]
    caplog.set_level(logging.DEBUG)
    await raw_exchange(stack.host, stack.port, _request(stack, cookie, head, body))
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1, [r.getMessage() for r in problems]
    (record,) = problems
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert "\n" not in record.getMessage()
    assert cookie not in caplog.text


async def test_handler_crash_still_logs_its_traceback(
    stack: Stack, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quiet path is for malformed requests only: a real 500 keeps its traceback."""
    from proxy.auth.routes import AuthRoutes

    async def boom(self: AuthRoutes, request: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(AuthRoutes, "brand_css", boom)
    # Routes hold bound methods made at build time: a fresh stack picks up the patch.
    from tests.security.conftest import stack_for

    async with stack_for(stack.double) as patched:
        caplog.set_level(logging.ERROR)
        resp = await patched.browser.get("/_auth/static/brand.css")
        assert resp.status == 500
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert errors and errors[0].exc_info is not None
