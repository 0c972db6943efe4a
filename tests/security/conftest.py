"""The adversarial suite's stack: the strict Cognito double, a recording upstream, the proxy.

Every attack here runs against the real server (``proxy.server.start``) on loopback, with a
signed-in session where it matters: a malformed request that carries a valid session cookie
and still reaches nobody proves the defence, not the missing login.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.cognito_double import CognitoDouble
from tests.support.stack import (
    Browser,
    Upstream,
    cognito_kwargs,
    proxy_settings,
    recording_upstream,
    running_proxy,
)

PASSWORD = "Correct-horse-9!"
USER = "carol"
EMAIL = "carol@example.com"


def pool_settings(double: CognitoDouble, *, secret: bool = True) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, client_secret = double.create_client(pool_id, secret=secret)
    double.add_user(pool_id, USER, PASSWORD, attributes={"email": EMAIL, "email_verified": "true"})
    return cognito_kwargs(double, pool_id, client_id, client_secret)


@dataclass
class Stack:
    base: str
    host: str
    port: int
    upstream: Upstream
    browser: Browser
    double: CognitoDouble

    async def signed_in_cookie(self) -> str:
        resp = await self.browser.login(USER, PASSWORD)
        assert resp.status == 303, resp.status
        cookie = self.browser.cookie("gate")
        assert cookie
        return cookie


@asynccontextmanager
async def stack_for(
    double: CognitoDouble, rules: list[dict[str, Any]] | None = None, **sections: Any
) -> AsyncIterator[Stack]:
    """The stack with these settings ``sections``; ``rules`` are the default upstream's."""
    async with recording_upstream() as upstream:
        if rules is not None:
            sections["upstream"] = {"url": upstream.url, "rules": rules}
        kw = pool_settings(double) | {"upstream_url": upstream.url} | sections
        async with running_proxy(proxy_settings(**kw)) as base:
            browser = Browser(base)
            host, port = base.removeprefix("http://").split(":")
            try:
                yield Stack(base, host, int(port), upstream, browser, double)
            finally:
                await browser.close()


@pytest.fixture
async def stack(double: CognitoDouble) -> AsyncIterator[Stack]:
    async with stack_for(double) as s:
        yield s


async def raw_exchange(host: str, port: int, data: bytes, *, within: float = 5.0) -> bytes:
    """Send raw bytes; return what the server answers until it closes or one response is whole.

    Raises TimeoutError after `within` seconds.
    """
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        answer = b""
        async with asyncio.timeout(within):
            while chunk := await reader.read(65536):
                answer += chunk
                if _complete(answer):
                    break
        return answer
    finally:
        writer.close()


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return bool(sep) and match is not None and len(body) >= int(match.group(1))


def status_of(answer: bytes) -> int:
    assert answer.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), answer[:100]
    return int(answer[9:12])
