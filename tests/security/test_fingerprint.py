"""No answer of ours names the stack and its version (``Server: Python/3.11 aiohttp/3.14.5``)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from proxy.settings import ServerSettings
from tests.security.conftest import Stack, raw_exchange, stack_for, status_of
from tests.support.cognito_double import CognitoDouble


def _server_headers(answer: bytes) -> list[bytes]:
    head = answer.partition(b"\r\n\r\n")[0]
    return [line for line in head.split(b"\r\n")[1:] if line.lower().startswith(b"server:")]


REQUESTS = {
    "login page": b"GET /_auth/login HTTP/1.1\r\nHost: x\r\n\r\n",
    "404": b"GET /_auth/nothing-here HTTP/1.1\r\nHost: x\r\n\r\n",
    "redirect to login": b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n",
    "parser error": b"GET / HTTP/1.1\r\nbad\r\n\r\n",
    "431": b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
}


async def _answers(stack: Stack) -> dict[str, bytes]:
    return {what: await raw_exchange(stack.host, stack.port, req) for what, req in REQUESTS.items()}


async def test_our_answers_name_the_product_without_a_version(stack: Stack) -> None:
    for what, answer in (await _answers(stack)).items():
        assert _server_headers(answer) == [b"Server: cognito-gate"], (what, answer[:300])
    assert status_of((await _answers(stack))["431"]) == 431


async def test_the_server_header_is_a_setting(double: CognitoDouble) -> None:
    async with stack_for(double, server={"header": "Gateway"}) as stack:
        for what, answer in (await _answers(stack)).items():
            assert _server_headers(answer) == [b"Server: Gateway"], what
    for bad in ("", "a\r\nX-Injected: 1", " padded", "caf\u00e9"):
        with pytest.raises(ValidationError):
            ServerSettings(header=bad)
