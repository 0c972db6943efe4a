"""Closing the invalidation subscriber ends its task even when redis-py swallows the cancel.

redis-py's ``PubSub.get_message`` can catch a cancellation that lands inside it and return
as if its timeout had passed; the subscriber then polled for ever and a worker whose start
failed (its metrics port taken) hung in cleanup instead of exiting with its one-line error.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from proxy.sessions.invalidation import RedisInvalidation


class SwallowingPubSub:
    """Confirms the subscription, then polls; the first cancel inside a poll is swallowed."""

    def __init__(self) -> None:
        self.swallowed = 0
        self.closed = False
        self._confirmed = False

    async def subscribe(self, channel: str) -> None:
        pass

    async def get_message(self, **kwargs: Any) -> dict[str, object] | None:
        if not self._confirmed:
            self._confirmed = True
            return {"type": "subscribe"}
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed += 1
        return None

    async def aclose(self) -> None:
        self.closed = True


class Client:
    def __init__(self) -> None:
        self.pubsubs: list[SwallowingPubSub] = []

    def pubsub(self) -> SwallowingPubSub:
        self.pubsubs.append(SwallowingPubSub())
        return self.pubsubs[-1]


async def test_close_ends_the_task_though_a_cancel_was_swallowed() -> None:
    client = Client()
    sub = RedisInvalidation(
        cast(Any, client), on_invalidate=print, on_suspend=lambda: None, on_resume=lambda: None
    )
    sub.start()
    await asyncio.wait_for(sub.subscribed.wait(), 2)
    await asyncio.wait_for(sub.close(), 5)  # hung for ever before
    assert client.pubsubs[0].swallowed == 1  # the case this is about did happen
    assert client.pubsubs[0].closed
    assert len(client.pubsubs) == 1  # no resubscription after close
