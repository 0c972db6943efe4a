"""A lease's keeper stops when its body ends, even when the cancellation that tells it so is
swallowed below it: Python 3.11's ``asyncio.wait_for`` (redis-py wraps every socket write in
one) returns the result instead of raising if the cancellation arrives in the loop turn its
inner call finishes. The 30-minute soak found a keeper that had renewed its lease for good
that way, and every request of its session waiting on the refresh behind it."""

from __future__ import annotations

import asyncio

from proxy.sessions.lock import StoreLock

LEASE = 0.03  # the keeper renews every 10 ms


class WriteRacingStore:
    """Leases whose renew goes through ``asyncio.wait_for``, as redis-py's socket write does;
    the first renew waits for ``go``, so a test can finish it and cancel in one step."""

    def __init__(self) -> None:
        self.renews = 0
        self.renewing = asyncio.Event()
        self.go = asyncio.Event()

    async def acquire(self, key: str, token: str, ttl: float) -> bool:
        return True

    async def renew(self, key: str, token: str, ttl: float) -> bool:
        self.renews += 1
        self.renewing.set()
        await asyncio.wait_for(self.go.wait(), 5)
        return True

    async def release(self, key: str, token: str) -> None:
        return None


async def test_the_keeper_stops_with_its_body_even_if_its_cancellation_is_swallowed() -> None:
    store = WriteRacingStore()
    lock = StoreLock(store, "gate:lock:k", lease=LEASE)

    async def hold() -> None:
        async with lock.kept():
            await store.renewing.wait()
            # The renew's write completes in the same loop turn as the keeper's cancellation.
            store.go.set()

    held = asyncio.create_task(hold())
    finished, _ = await asyncio.wait([held], timeout=2)
    if not finished:
        held.cancel()  # (the second cancellation reaches the keeper)
    assert finished, "leaving kept() waits for a keeper that renews on"
    renews = store.renews
    await asyncio.sleep(10 * LEASE / 3)
    assert store.renews == renews  # and it renews no more


async def test_the_keeper_renews_while_the_body_runs() -> None:
    store = WriteRacingStore()
    store.go.set()
    async with StoreLock(store, "gate:lock:k", lease=LEASE).kept():
        await asyncio.sleep(8 * LEASE / 3)
    assert store.renews >= 3
