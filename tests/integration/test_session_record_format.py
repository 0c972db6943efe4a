"""The stored record's format through a running gate on Redis: a record the release before
version 3 wrote is served (a deploy signs no one out), and a record that does not read is a
clean "not signed in" (the login page, or 401 for an API client), never an error.

The test plays the store's other writer: it opens the sealed record with the cookie and the
deployment's derived key, as the gate does, and seals other bytes in its place.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

import pytest

from proxy.app import derive_key
from proxy.sessions.backends import open_store
from proxy.sessions.sealed import SealedStore
from proxy.sessions.session import Session
from proxy.sessions.store import SessionBackend
from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import RedisProcess
from tests.support.stack import (
    COOKIE_SECRET,
    Browser,
    Upstream,
    cognito_kwargs,
    proxy_settings,
    running_proxy,
)

pytestmark = pytest.mark.integration

PASSWORD = "Format-pass-1!"
SESSION = "gate"
JSON = {"Accept": "application/json"}
IDLE = 4


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, "vera", PASSWORD, attributes={"email": "vera@example.com"})
    return cognito_kwargs(double, pool_id, client_id, secret)


@pytest.fixture
async def store(redis_server: RedisProcess) -> AsyncIterator[SessionBackend]:
    backend = open_store(redis_server.url)
    yield backend
    await backend.close()


@pytest.fixture
async def signed_in(
    pool: dict[str, Any], upstream: Upstream, redis_server: RedisProcess
) -> AsyncIterator[tuple[Browser, str]]:
    # No session cache: every request reads the record the test may just have replaced. An
    # idle timeout of 4 s: activity is written (the record saved) a second after the last.
    settings = proxy_settings(
        upstream_url=upstream.url,
        session={"store_url": redis_server.url, "cache_ttl": 0, "idle_timeout": IDLE},
        **pool,
    )
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            assert (await browser.login("vera", PASSWORD)).status == 303
            cookie = browser.cookie(SESSION)
            assert cookie
            yield browser, cookie
        finally:
            await browser.close()


def sealed(store: SessionBackend) -> SealedStore:
    return SealedStore(store, derive_key(COOKIE_SECRET, "session"), namespace="s")


async def stored(store: SessionBackend, cookie: str) -> bytes:
    payload = await sealed(store).load(cookie)
    assert payload is not None
    return payload


def as_version_2(session: Session) -> bytes:
    """What the release before version 3 stored (its Session.to_bytes, as it was)."""
    return json.dumps({"v": 2, **asdict(session)}, separators=(",", ":")).encode()


async def test_a_version_2_record_is_served_and_rewritten_as_version_3_at_its_next_save(
    signed_in: tuple[Browser, str], store: SessionBackend, upstream: Upstream
) -> None:
    browser, cookie = signed_in
    written = await stored(store, cookie)
    assert written[0] == 3  # this release writes version 3
    session = Session.from_bytes(written)
    assert session is not None
    old = as_version_2(session)
    assert old.startswith(b'{"v":2,"username":') and session.refresh_token
    assert session.refresh_token.encode() in old  # the tokens inside the JSON, as they were
    assert await sealed(store).save(cookie, old, 3600)

    answer = await browser.get("/after-upgrade")
    assert answer.status == 200
    assert upstream.last_headers["X-Forwarded-User"] == "vera"
    assert upstream.seen[-1]["path"] == "/after-upgrade"
    assert await stored(store, cookie) == old  # reading writes nothing

    # The gate's next save of it (activity, a quarter of the idle timeout later) writes the
    # same session in the new format.
    await asyncio.sleep(IDLE / 4 + 0.2)
    assert (await browser.get("/later")).status == 200
    rewritten = await stored(store, cookie)
    assert rewritten[0] == 3
    saved = Session.from_bytes(rewritten)
    assert saved is not None and saved.last_seen > session.last_seen
    saved.last_seen = session.last_seen
    assert saved == session
    assert (await browser.get("/again")).status == 200


def unreadable(good: bytes) -> list[tuple[str, bytes]]:
    return [
        ("truncated", good[: len(good) - 10]),
        ("one byte more", good + b"\x00"),
        ("garbage", b"\x03" + bytes(range(256)) * 8),
        ("a length past the end", good[:1] + struct.pack(">I", 2**32 - 2) + good[5:]),
        ("lengths that overflow together", b"\x03" + b"\xff" * 16 + good[17:]),
        ("oversized", good[:17] + good[17:] * 200),  # ~1 MB: the lengths still say ~4 KB
        ("a later release's version", b"\x04" + good[1:]),
        ("empty", b""),
        ("JSON that is no record", b'{"v":2}'),
    ]


async def test_a_record_that_does_not_read_is_signed_out_cleanly(
    signed_in: tuple[Browser, str], store: SessionBackend, upstream: Upstream
) -> None:
    browser, cookie = signed_in
    good = await stored(store, cookie)
    for name, raw in unreadable(good):
        assert await sealed(store).save(cookie, raw, 3600), name
        seen = len(upstream.seen)
        page = await browser.get("/private")
        assert page.status == 302, (name, page.status)
        assert page.headers["Location"].startswith("/_auth/login"), name
        api = await browser.get("/api/private", headers=JSON)
        assert api.status == 401, (name, api.status)
        assert len(upstream.seen) == seen, name  # nothing reached the app
    # The same cookie with its record back is signed in again: nothing else was broken.
    assert await sealed(store).save(cookie, good, 3600)
    assert (await browser.get("/private")).status == 200
    assert upstream.last_headers["X-Forwarded-User"] == "vera"
