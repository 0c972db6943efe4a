"""The one WebSocket-upgrade test, and the parts that must agree with it."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from proxy.observe import Metrics, RequestObserver
from proxy.upgrade import connection_tokens, is_websocket_upgrade

CASES = [
    # (headers, a WebSocket upgrade?)
    ([("Upgrade", "websocket"), ("Connection", "Upgrade")], True),
    ([("Upgrade", "WebSocket"), ("Connection", "keep-alive, upgrade")], True),
    ([("Upgrade", " websocket "), ("Connection", "close"), ("Connection", "UPGRADE")], True),
    # Upgrade alone is not an upgrade: aiohttp serves it as plain HTTP (and so must the drain).
    ([("Upgrade", "websocket")], False),
    ([("Upgrade", "websocket"), ("Connection", "keep-alive")], False),
    ([("Upgrade", "websocket"), ("Connection", "upgraded")], False),
    ([("Upgrade", "h2c"), ("Connection", "Upgrade")], False),
    ([("Upgrade", "websocket, h2c"), ("Connection", "Upgrade")], False),
    ([("Connection", "Upgrade")], False),
    ([], False),
]


@pytest.mark.parametrize(("headers", "expected"), CASES)
def test_is_websocket_upgrade(headers: list[tuple[str, str]], expected: bool) -> None:
    assert is_websocket_upgrade(CIMultiDict(headers)) is expected


def test_connection_tokens_are_lower_cased_and_split_over_headers() -> None:
    assert connection_tokens(["Keep-Alive, X-Foo", " ,UPGRADE"]) == {
        "keep-alive",
        "x-foo",
        "upgrade",
    }


@pytest.mark.parametrize(("headers", "expected"), CASES)
def test_the_observer_counts_as_a_websocket_exactly_what_is_one(
    headers: list[tuple[str, str]], expected: bool
) -> None:
    """What the observer leaves out of the in-flight count, the drain does not wait for."""
    observer = RequestObserver(Metrics(), prefix="/_auth")
    request = make_mocked_request("GET", "/app", headers=CIMultiDict(headers))
    assert observer.route_class(request) == ("websocket" if expected else "proxy")
