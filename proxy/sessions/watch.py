"""Per-process signals that a session has ended, for whatever outlives one request (WebSockets).

Ends decided in this process (logout, sign-out everywhere, a rejected refresh) fire at once;
ends decided by another replica are noticed by the holder re-checking the store (see
``gate.websocket``). Keys are store keys, never cookie values.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class EndSignals:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def watch(self, record_key: str) -> Iterator[asyncio.Event]:
        """An Event set when the session at ``record_key`` ends in this process."""
        event = asyncio.Event()
        self._waiting.setdefault(record_key, set()).add(event)
        try:
            yield event
        finally:
            events = self._waiting.get(record_key)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[record_key]

    def ended(self, record_key: str) -> None:
        for event in self._waiting.get(record_key, ()):
            event.set()
