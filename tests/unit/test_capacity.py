"""The per-upstream cap (gate/capacity.py): a slot per request, none past the limit, each
refusal counted; and the setting behind it."""

from __future__ import annotations

import pytest

from proxy.gate.capacity import Capacity
from proxy.settings import UpstreamSettings


def test_slots_up_to_the_limit_then_refused_and_counted() -> None:
    refused: list[None] = []
    cap = Capacity(2, on_reject=lambda: refused.append(None))
    assert cap.acquire() and cap.acquire()
    assert cap.in_flight == 2
    assert not cap.acquire()
    assert len(refused) == 1 and cap.in_flight == 2
    cap.release()
    assert cap.acquire()
    assert cap.in_flight == 2


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        Capacity(0)


def test_max_requests_has_a_sane_default_and_refuses_zero() -> None:
    assert UpstreamSettings(url="http://127.0.0.1:3000").max_requests == 256
    with pytest.raises(ValueError, match="max_requests"):
        UpstreamSettings(url="http://127.0.0.1:3000", max_requests=0)
