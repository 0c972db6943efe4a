"""A cap on the requests in flight to one upstream: past it, 503 at once instead of a queue.

An upstream that accepts and never answers (or trickles a byte a second) would otherwise
collect one waiting request, one client connection and one pooled upstream socket per
arrival until its read timeout: thousands of them under load, and the other upstreams'
clients waiting on the same event loop and file-descriptor budget. With the cap, a sick
upstream holds at most ``limit`` of each, and everything past that is told to retry.

The slot is taken where the gate picks the upstream, so whatever client the forwarder uses
underneath is covered; it is held until the response body has been relayed. WebSockets
are not counted: their upstream connection lives as long as the client's (bounded by the
server's connection cap, ``GATE_SERVER_MAX_CONNECTIONS``), and counting hours-long
connections would starve plain requests.
"""

from __future__ import annotations

from collections.abc import Callable


class Capacity:
    """A non-blocking counting semaphore for one upstream (one event loop, so no lock)."""

    __slots__ = ("_in_flight", "_on_reject", "limit")

    def __init__(self, limit: int, *, on_reject: Callable[[], None] | None = None) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._in_flight = 0
        self._on_reject = on_reject

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self) -> bool:
        """Take a slot; False (and counted as a rejection) when all ``limit`` are taken."""
        if self._in_flight >= self.limit:
            if self._on_reject is not None:
                self._on_reject()
            return False
        self._in_flight += 1
        return True

    def release(self) -> None:
        self._in_flight -= 1
