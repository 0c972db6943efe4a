"""Step-up tests: make a session's last sign-in older, as time would (the test plays the clock).

The proxy under test keeps its sessions in a Redis the test also reaches; the record is opened
with the same derived key the proxy uses, ``auth_time`` moved back, and saved (no session cache
may serve the old copy: run the proxy with ``session.cache_ttl: 0``)."""

from __future__ import annotations

from proxy.app import derive_key
from proxy.sessions.backends import open_store
from proxy.sessions.session import Session, SessionManager
from tests.support.stack import COOKIE_SECRET


async def session_record(store_url: str, cookie: str) -> Session | None:
    store = open_store(store_url)
    try:
        manager = SessionManager(store, derive_key(COOKIE_SECRET, "session"), lifetime=12 * 3600)
        return await manager.load(cookie)
    finally:
        await store.close()


async def age_sign_in(store_url: str, cookie: str, seconds: float) -> None:
    """The session's user last signed in ``seconds`` longer ago than they did."""
    store = open_store(store_url)
    try:
        manager = SessionManager(store, derive_key(COOKIE_SECRET, "session"), lifetime=12 * 3600)
        session = await manager.load(cookie)
        assert session is not None, "no such session"
        session.auth_time -= seconds
        assert await manager.save(cookie, session)
    finally:
        await store.close()
