"""Session cards: the account page's view of a user's other sessions."""

from __future__ import annotations

import pytest

from proxy.auth.session_cards import SessionCards, describe_user_agent
from proxy.sessions.memory import MemoryStore

AGENTS = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        ("Edge", "Windows"),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Safari/605.1.15",
        ("Safari", "macOS"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1",
        ("Chrome", "iOS"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0 Mobile Safari/537.36",
        ("Chrome", "Android"),
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ("Firefox", "Linux"),
    ),
    ("curl/8.5.0", ("", "")),
    ("", ("", "")),
]


@pytest.mark.parametrize(("agent", "expected"), AGENTS)
def test_user_agents(agent: str, expected: tuple[str, str]) -> None:
    assert describe_user_agent(agent) == expected


def test_a_hostile_user_agent_is_only_ever_a_known_name() -> None:
    assert describe_user_agent("<script>Firefox/1</script>\x00" * 1000) == ("Firefox", "")


async def test_cards_are_sealed_and_live_as_long_as_their_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    store = MemoryStore(clock=lambda: clock[0])
    cards = SessionCards(store, b"k" * 32)
    record = "ab" * 32
    await cards.record(record, user_agent=AGENTS[0][0], ip="192.0.2.7", ttl=60, now=1000.0)
    raw = await store.get("gate:card:" + record)
    assert raw is not None and b"192.0.2.7" not in raw and b"Edge" not in raw
    assert await SessionCards(store, b"x" * 32).load(record) is None  # another key: unreadable
    card = await cards.load(record)
    assert card is not None and (card.browser, card.os, card.ip) == ("Edge", "Windows", "192.0.2.7")
    # A write of the record (activity at t=50, its record now lives 60 s more): the card too.
    clock[0] = 50.0
    monkeypatch.setattr("proxy.auth.session_cards.time.time", lambda: 1050.0)
    await cards.seen(record, 60)
    clock[0] = 100.0  # past the first ttl, within the second
    assert (await cards.load(record)).last_seen == 1050.0  # type: ignore[union-attr]
    clock[0] = 110.0  # the record's ttl has run out: so has the card's
    assert await cards.load(record) is None
    await cards.seen(record, 60)  # an expired card is not brought back
    assert await cards.load(record) is None
    await cards.record(record, user_agent="", ip="192.0.2.7", ttl=60)
    await cards.delete(record)
    await cards.seen(record, 60)  # nor an ended session's
    assert await cards.load(record) is None
