"""A circuit breaker for the Cognito API: stop calling a service that keeps failing.

Closed: calls go through; ``threshold`` consecutive failures (unreachable, 5xx, throttled) open
it. Open: calls fail at once (the sign-in page says "try again later" without waiting for a
timeout) for ``cooldown`` seconds. Half-open: one probe call goes through; its success closes
the breaker, its failure opens it for another cooldown. An answer such as "wrong password" is a
success here: Cognito is up.

``RetryBudget`` bounds the retries of transient failures beside it: a wave of calls that all
fail together (every session reaching its refresh point in an outage) gets a few retries in
all, not two more attempts each, before the breaker has seen enough failed calls to open.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("threshold must be >= 1 and cooldown > 0")
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def cooldown(self) -> float:
        """Seconds an opened breaker refuses calls before its half-open probe."""
        return self._cooldown

    @property
    def is_open(self) -> bool:
        """Open and still cooling down (a half-open breaker is not "open")."""
        return self._opened_at is not None and self._clock() - self._opened_at < self._cooldown

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one probe at a time may."""
        if self._opened_at is None:
            return True
        if self._clock() - self._opened_at < self._cooldown or self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        self._failures = 0
        self._probing = False
        if self._opened_at is not None:
            self._opened_at = None
            self._changed(False)

    def failure(self) -> None:
        self._failures += 1
        was_open = self._opened_at is not None
        if self._probing or self._failures >= self._threshold:
            self._opened_at = self._clock()
            self._probing = False
            if not was_open:
                self._changed(True)

    def release(self) -> None:
        """A probe ended without telling us anything (e.g. cancelled): let another one try."""
        self._probing = False

    def _changed(self, is_open: bool) -> None:
        if self._on_change is not None:
            self._on_change(is_open)


class RetryBudget:
    """Retries may add ``ratio`` of the calls made, plus ``per_second``, saved up to ``burst``.

    A token bucket: each call deposits ``ratio``, time adds ``per_second``, a retry takes one.
    Steady flakiness (a call in five failing) is retried as before; a wave failing at once
    spends the bucket and the rest of it fails without a resend.
    """

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        per_second: float = 2.0,
        burst: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ratio < 0 or per_second < 0 or burst < 1:
            raise ValueError("ratio and per_second must be >= 0 and burst >= 1")
        self._ratio = ratio
        self._per_second = per_second
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._per_second)
        self._at = now

    def deposit(self) -> None:
        """A call is made (its first attempt)."""
        self._refill()
        self._tokens = min(self._burst, self._tokens + self._ratio)

    def withdraw(self) -> bool:
        """May a failed attempt be retried now? Takes a token if so."""
        self._refill()
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
