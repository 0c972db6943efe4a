"""Whether a request asks to become a WebSocket: ONE test for the forwarder (which relays it as
one), the gate (which watches its session while it is open) and the request observer (which
leaves it out of what a shutdown drain waits for). When they disagreed, a plain HTTP request
carrying ``Upgrade: websocket`` without ``Connection: upgrade`` was forwarded as HTTP but not
waited for by the drain.

The test is aiohttp's own handshake condition: ``Upgrade`` is exactly ``websocket`` (any case)
and ``Connection`` lists the ``upgrade`` token. Uses nothing of ours.
"""

from __future__ import annotations

from collections.abc import Iterable

from multidict import MultiMapping

_EMPTY: tuple[str, ...] = ()

# RFC 9110 §7.6.1 hop-by-hop headers, plus the non-standard Proxy-Connection: the one list the
# forwarder drops and the claim-header mapping refuses (gate/headers.py).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def connection_tokens(values: Iterable[str]) -> frozenset[str]:
    """Lower-cased tokens listed in Connection header(s)."""
    return frozenset(t for v in values for tok in v.split(",") if (t := tok.strip().lower()))


def is_websocket_upgrade(headers: MultiMapping[str]) -> bool:
    if headers.get("Upgrade", "").strip().lower() != "websocket":
        return False
    return "upgrade" in connection_tokens(headers.getall("Connection", _EMPTY))
