"""Telling every replica that a session changed or ended, over Redis pub/sub.

Each replica caches sessions for a few seconds (``proxy.gate.cache``). When one of them ends or
refreshes a session it publishes the record hash on ``CHANNEL``; every replica's subscriber
drops its cached copy when the message arrives (milliseconds on a LAN), so a logout or a
sign-out-everywhere holds everywhere long before the cache's ttl would have run out.

Pub/sub delivers at most once and only to connected subscribers. So while the subscription is
not confirmed live (starting, Redis down, reconnecting) the subscriber calls ``on_suspend`` and
the cache serves nothing; after it has resubscribed it calls ``on_resume`` (which clears the
cache: messages may have been missed). A publish that fails is logged, not raised: the store
change it announces already happened, and the cache's ttl still bounds what others serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from proxy.sessions.store import SessionStore

if TYPE_CHECKING:  # memory:// deployments never import redis-py
    from redis.asyncio import Redis

log = logging.getLogger("proxy.sessions")

CHANNEL = "gate:invalidate"
_POLL_SECONDS = 1.0
_MAX_BACKOFF = 5.0


class LocalInvalidation:
    """One process (memory store, or a store without pub/sub): invalidate here only."""

    def __init__(self, *, on_invalidate: Callable[[str], None]) -> None:
        self._on_invalidate = on_invalidate

    async def changed(self, record: str) -> None:
        """SessionManager's change hook: the record behind ``record`` changed or ended."""
        self._on_invalidate(record)

    async def ended(self, records: Sequence[str]) -> None:
        """SessionManager's end hook: these records ended (a sign-out, everywhere or not)."""
        for record in records:
            self._on_invalidate(record)

    def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


def _nothing(*args: object) -> None:
    pass


def invalidation_for(
    store: SessionStore,
    *,
    on_invalidate: Callable[[str], None] = _nothing,
    on_suspend: Callable[[], None] = _nothing,
    on_resume: Callable[[], None] = _nothing,
) -> LocalInvalidation | RedisInvalidation:
    """Pub/sub between replicas when the store is Redis (not Cluster), else this process only.

    Without callbacks (this replica caches nothing) it still publishes, for the replicas that
    do. On Redis Cluster other replicas stop serving an ended session within the cache ttl.
    """
    from proxy.sessions.redis import RedisStore  # lazily: memory deployments never load redis

    client = store.pubsub_client if isinstance(store, RedisStore) else None
    if client is None:
        return LocalInvalidation(on_invalidate=on_invalidate)
    return RedisInvalidation(
        client, on_invalidate=on_invalidate, on_suspend=on_suspend, on_resume=on_resume
    )


class RedisInvalidation:
    """Publishes record hashes and, in a background task, applies everyone else's."""

    def __init__(
        self,
        client: Redis,
        *,
        on_invalidate: Callable[[str], None],
        on_suspend: Callable[[], None],
        on_resume: Callable[[], None],
        channel: str = CHANNEL,
    ) -> None:
        self._client = client
        self._on_invalidate = on_invalidate
        self._on_suspend = on_suspend
        self._on_resume = on_resume
        self._channel = channel
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.subscribed = asyncio.Event()
        from redis.exceptions import RedisError

        self._failures = (RedisError, OSError)

    async def changed(self, record: str) -> None:
        """SessionManager's change hook: drop it here at once, then tell the others."""
        self._on_invalidate(record)
        await self.publish(record)

    async def ended(self, records: Sequence[str]) -> None:
        """SessionManager's end hook: drop them here, then tell the others in one round trip
        (a message per record, as ``changed`` sends, in one pipeline)."""
        for record in records:
            self._on_invalidate(record)
        if not records:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for record in records:
                    pipe.publish(self._channel, record)
                await pipe.execute()
        except self._failures as exc:
            log.warning("session invalidation not published (%s)", type(exc).__name__)

    async def publish(self, record: str) -> None:
        try:
            await self._client.publish(self._channel, record)
        except self._failures as exc:
            log.warning("session invalidation not published (%s)", type(exc).__name__)

    def start(self) -> None:
        self._on_suspend()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="session-invalidation")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        # redis-py can swallow a cancellation that lands inside get_message and go on polling
        # (a worker then hung on shutdown for ever): the flag ends the loop at the next poll,
        # and the cancel is repeated until the task has really ended.
        while not task.done():
            task.cancel()
            await asyncio.wait((task,), timeout=_POLL_SECONDS)

    async def _run(self) -> None:
        backoff = 0.1
        while not self._closing:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                await self._confirmed(pubsub)
                self._on_resume()
                self.subscribed.set()
                backoff = 0.1
                log.info("session invalidation subscribed")
                while not self._closing:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=_POLL_SECONDS
                    )
                    if message is not None and message.get("type") == "message":
                        self._apply(message.get("data"))
            except self._failures as exc:
                self.subscribed.clear()
                self._on_suspend()
                log.warning(
                    "session invalidation subscription lost (%s); session cache off until "
                    "it is back",
                    type(exc).__name__,
                )
            finally:
                # Shielded: a cancelled close would leak the pooled connection.
                await asyncio.shield(self._close_quietly(pubsub))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _confirmed(self, pubsub: Any) -> None:
        """Wait for the server's subscribe confirmation: only then are messages delivered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10 * _POLL_SECONDS
        while loop.time() < deadline:
            message = await pubsub.get_message(timeout=_POLL_SECONDS)
            if message is not None and message.get("type") == "subscribe":
                return
        raise OSError("no subscribe confirmation")  # handled as a lost subscription

    def _apply(self, data: object) -> None:
        if isinstance(data, bytes):
            data = data.decode("ascii", "replace")
        if isinstance(data, str) and len(data) == 64:
            self._on_invalidate(data)

    async def _close_quietly(self, pubsub: Any) -> None:
        with contextlib.suppress(*self._failures):
            await pubsub.aclose()
