"""The Cognito circuit breaker: opens after consecutive failures, probes once after a cooldown."""

from __future__ import annotations

import pytest

from proxy.cognito.breaker import CircuitBreaker, RetryBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_consecutive_failures_only() -> None:
    changes: list[bool] = []
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=Clock(), on_change=changes.append)
    breaker.failure()
    breaker.failure()
    breaker.success()  # an answer resets the count
    breaker.failure()
    breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert breaker.is_open
    assert not breaker.allow()
    assert changes == [True]


def test_half_open_lets_one_probe_through_and_its_outcome_decides() -> None:
    clock = Clock()
    changes: list[bool] = []
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=clock, on_change=changes.append)
    breaker.failure()
    assert not breaker.allow()
    clock.now += 10
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    breaker.failure()  # probe failed: another full cooldown
    assert not breaker.allow()
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()
    breaker.success()
    assert breaker.allow() and breaker.allow()
    assert changes == [True, False]


def test_a_probe_that_ends_without_an_answer_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=1, clock=clock)
    breaker.failure()
    clock.now += 1
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_rejects_nonsense_configuration() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(cooldown=0)


def test_the_retry_budget_allows_a_burst_then_a_share_of_the_calls_and_time() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.2, per_second=2.0, burst=10, clock=clock)
    assert [budget.withdraw() for _ in range(11)] == [True] * 10 + [False]
    for _ in range(5):  # five calls: one retry's worth
        budget.deposit()
    assert budget.withdraw()
    assert not budget.withdraw()
    clock.now += 1.0  # two a second
    assert budget.withdraw() and budget.withdraw()
    assert not budget.withdraw()
    clock.now += 60  # saved up to the burst, no more
    assert sum(budget.withdraw() for _ in range(20)) == 10


def test_a_retry_budget_needs_sane_numbers() -> None:
    with pytest.raises(ValueError):
        RetryBudget(burst=0.5)
    with pytest.raises(ValueError):
        RetryBudget(ratio=-1)
