"""Which request methods reach the app (issue 13.9): the parser's table, as README.md states it.
Every method in the table is proxied; any other token is a 400 from the parser."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.stack import proxy_settings, recording_upstream, running_proxy

PROXIED = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "COPY",
    "LOCK",
    "MKCOL",
    "MOVE",
    "PROPFIND",
    "PROPPATCH",
    "SEARCH",
    "UNLOCK",
    "BIND",
    "REBIND",
    "UNBIND",
    "ACL",
    "REPORT",
    "MKCALENDAR",
    "MKACTIVITY",
    "CHECKOUT",
    "MERGE",
    "M-SEARCH",
    "NOTIFY",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "PURGE",
    "LINK",
    "UNLINK",
    "SOURCE",
    "QUERY",
]
REFUSED = [
    "FROB",
    "BAN",
    "VERSION-CONTROL",
    "CHECKIN",
    "UPDATE",
    "LABEL",
    "MKWORKSPACE",
    "ORDERPATCH",
]


async def _status(port: int, method: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"{method} /open/x HTTP/1.1\r\nHost: app\r\nContent-Length: 0\r\n"
    head += "Connection: close\r\n\r\n"
    writer.write(head.encode())
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return int(line.split()[1])


@pytest.mark.parametrize("method", [*PROXIED, *REFUSED])
async def test_the_documented_method_table(method: str) -> None:
    async with recording_upstream() as upstream:
        settings = proxy_settings(
            upstream_url=upstream.url,
            pool_id="us-east-1_AbC123xyZ",
            client_id="client",
            endpoint_url="http://127.0.0.1:9",
            jwks_url="http://127.0.0.1:9/jwks.json",  # never loaded: /open is public
            upstream={"url": upstream.url, "rules": [{"path": "/open", "public": True}]},
        )
        async with running_proxy(settings, keys=False) as base:
            status = await _status(int(base.rsplit(":", 1)[1]), method)
    if method in REFUSED:
        assert status == 400
        assert upstream.seen == []
    else:
        assert status == 200, method
        assert [s["method"] for s in upstream.seen] == [method]
