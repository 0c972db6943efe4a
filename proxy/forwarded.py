"""Who the client really is: ``X-Forwarded-*`` believed only from configured trusted proxies.

Anyone can send ``X-Forwarded-For: 10.0.0.1``. The header is read only when the direct peer is in
``proxy.trusted_cidrs`` (empty by default, so by default it is never read), and then from the
right: each hop a trusted proxy added is skipped until the first address that is not a trusted
proxy, which is the client. Entries left of it were written by the client and are ignored. A
malformed entry ends the walk: the trusted hop that reported it is taken as the client (we cannot
know better, and must not believe the garbage).

``X-Forwarded-Proto`` and ``X-Forwarded-Host`` are taken from a trusted peer only, using the last
value (the one the proxy in front of us set), and only when they look like a scheme / a host.

The result feeds logs, rate limits, Cognito ``ContextData`` and the ``X-Forwarded-*`` headers the
upstream receives (``forwarded_for``: the chain from the client through our trusted peer).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiohttp import web

__all__ = [
    "TRUSTED_PROXIES",
    "ClientAddress",
    "IPNetwork",
    "client_address",
    "parse_networks",
    "resolve_client",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple)  # tuple[IPNetwork, ...]
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$")


@dataclass(frozen=True, slots=True)
class ClientAddress:
    ip: str  # the client's address ("" when the transport has none, e.g. a unix socket)
    proto: str  # "http" or "https", as the client used it
    host: str | None  # the Host the client asked for
    forwarded_for: str  # X-Forwarded-For for the upstream


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) → networks; ValueError names the bad entry."""
    nets: list[IPNetwork] = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR") from None
    return tuple(nets)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:1234"
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Sequence[IPNetwork]
) -> bool:
    return any(addr in net for net in nets if net.version == addr.version)


def resolve_client(
    *,
    peer: str | None,
    scheme: str,
    host: str | None,
    forwarded_for: Sequence[str],
    forwarded_proto: Sequence[str],
    forwarded_host: Sequence[str],
    trusted: Sequence[IPNetwork],
) -> ClientAddress:
    """The rule in the module doc, as a pure function of the request's parts."""
    if not trusted:
        # Nothing is trusted (the default): the peer is the client, and its address needs no
        # parsing (a socket's peername is already an address). Only an IPv4-mapped IPv6
        # address is written the way the trusted path (ipaddress) writes it.
        text = peer or ""
        if text.startswith("::ffff:") and "." in text:
            text = text[7:]
        return ClientAddress(ip=text, proto=scheme, host=host, forwarded_for=text)
    peer_ip = _ip(peer) if peer else None
    peer_text = str(peer_ip) if peer_ip is not None else (peer or "")
    if peer_ip is None or not trusted or not _trusted(peer_ip, trusted):
        return ClientAddress(ip=peer_text, proto=scheme, host=host, forwarded_for=peer_text)
    hops = [h.strip() for value in forwarded_for for h in value.split(",")]
    client = peer_text
    chain = [peer_text]
    for hop in reversed(hops):
        addr = _ip(hop)
        if addr is None:
            break
        client = str(addr)
        chain.append(client)
        if not _trusted(addr, trusted):
            break
    proto = _last(forwarded_proto)
    fwd_host = _last(forwarded_host)
    return ClientAddress(
        ip=client,
        proto=proto.lower() if proto and proto.lower() in ("http", "https") else scheme,
        host=fwd_host if fwd_host and _HOST.match(fwd_host) else host,
        forwarded_for=", ".join(reversed(chain)),
    )


def _last(values: Sequence[str]) -> str | None:
    if not values:
        return None
    last = values[-1].rsplit(",", 1)[-1].strip()
    return last or None


def client_address(request: web.Request) -> ClientAddress:
    """The request's :class:`ClientAddress` (cheap: callers need not cache it)."""
    trusted: tuple[IPNetwork, ...] = request.app.get(TRUSTED_PROXIES, ())
    headers = request.headers
    return resolve_client(
        peer=request.remote,
        scheme=request.scheme,
        host=headers.get("Host"),
        forwarded_for=headers.getall("X-Forwarded-For", []),
        forwarded_proto=headers.getall("X-Forwarded-Proto", []),
        forwarded_host=headers.getall("X-Forwarded-Host", []),
        trusted=trusted,
    )


def original_request(request: web.Request) -> tuple[str, str] | None:
    """(method, URI) of the request an auth_request/forwardAuth proxy is asking about.

    Believed only from a trusted peer (``proxy.trusted_cidrs``): nginx's ``X-Original-URI`` /
    ``X-Original-Method``, or Traefik's ``X-Forwarded-Uri`` / ``X-Forwarded-Method``. From anyone
    else these headers are ignored, so a client cannot pick the rule its request is judged by.
    """
    trusted: tuple[IPNetwork, ...] = request.app.get(TRUSTED_PROXIES, ())
    peer = _ip(request.remote) if request.remote else None
    if peer is None or not trusted or not _trusted(peer, trusted):
        return None
    headers = request.headers
    uri = headers.get("X-Original-URI") or headers.get("X-Forwarded-Uri")
    if not uri:
        return None
    method = headers.get("X-Original-Method") or headers.get("X-Forwarded-Method") or "GET"
    return method.upper(), uri
