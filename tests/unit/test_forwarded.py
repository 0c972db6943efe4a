"""X-Forwarded-* is believed only from trusted proxies, walked from the right."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from proxy.forwarded import ClientAddress, parse_networks, resolve_client

TRUSTED = parse_networks(["10.0.0.0/8", "fd00::/8"])


def resolve(
    peer: str | None,
    xff: Sequence[str] = (),
    proto: Sequence[str] = (),
    host: Sequence[str] = (),
    trusted: Sequence[object] = TRUSTED,
) -> ClientAddress:
    return resolve_client(
        peer=peer,
        scheme="http",
        host="proxy.internal",
        forwarded_for=xff,
        forwarded_proto=proto,
        forwarded_host=host,
        trusted=trusted,  # type: ignore[arg-type]
    )


def test_nothing_is_trusted_by_default() -> None:
    got = resolve("10.1.2.3", ["198.51.100.7"], ["https"], ["app.example"], trusted=())
    assert got == ClientAddress("10.1.2.3", "http", "proxy.internal", "10.1.2.3")


def test_headers_from_an_untrusted_peer_are_ignored_and_replaced() -> None:
    got = resolve("203.0.113.9", ["10.0.0.1, 198.51.100.7"], ["https"], ["evil.example"])
    assert got.ip == "203.0.113.9"
    assert got.proto == "http" and got.host == "proxy.internal"
    assert got.forwarded_for == "203.0.113.9"


def test_trusted_peer_rightmost_untrusted_hop_is_the_client() -> None:
    # The client wrote "1.1.1.1" itself; our load balancer 10.0.0.5 appended the real address.
    got = resolve("10.0.0.5", ["1.1.1.1, 198.51.100.7"], ["https"], ["app.example"])
    assert got.ip == "198.51.100.7"
    assert got.proto == "https" and got.host == "app.example"
    assert got.forwarded_for == "198.51.100.7, 10.0.0.5"  # the spoofed part is not passed on


def test_several_trusted_hops_are_skipped() -> None:
    got = resolve("10.0.0.5", ["198.51.100.7", "10.9.9.9"])  # two header lines
    assert got.ip == "198.51.100.7"
    assert got.forwarded_for == "198.51.100.7, 10.9.9.9, 10.0.0.5"


def test_all_hops_trusted_gives_the_leftmost() -> None:
    assert resolve("10.0.0.5", ["10.0.0.7, 10.0.0.6"]).ip == "10.0.0.7"


def test_malformed_entry_stops_the_walk_at_the_trusted_hop_that_reported_it() -> None:
    got = resolve("10.0.0.5", ["198.51.100.7, unknown, 10.0.0.6"])
    assert got.ip == "10.0.0.6"
    assert got.forwarded_for == "10.0.0.6, 10.0.0.5"


def test_ipv6_ports_and_mapped_addresses() -> None:
    assert resolve("fd00::1", ["[2001:db8::1]:443"]).ip == "2001:db8::1"
    assert resolve("::ffff:10.0.0.5", ["198.51.100.7:5555"]).ip == "198.51.100.7"


@pytest.mark.parametrize("proto", ["ftp", "https\r\nX: 1", ""])
def test_odd_proto_from_a_trusted_peer_is_ignored(proto: str) -> None:
    assert resolve("10.0.0.5", [], [proto]).proto == "http"


def test_last_proto_and_host_values_win() -> None:
    got = resolve("10.0.0.5", [], ["http, https"], ["a.example, b.example:8443"])
    assert got.proto == "https" and got.host == "b.example:8443"
    assert resolve("10.0.0.5", [], [], ["bad host/"]).host == "proxy.internal"


def test_no_peer_address() -> None:
    assert resolve(None, ["198.51.100.7"]).ip == ""


def test_parse_networks_names_the_bad_entry() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33'"):
        parse_networks(["10.0.0.0/8", "10.0.0.0/33"])


def test_without_trusted_proxies_the_peer_is_taken_as_it_is() -> None:
    # Issue 12: no ipaddress parsing per request when nothing is trusted; a mapped address
    # still reads as the IPv4 one, as the trusted path writes it.
    assert resolve("::ffff:10.0.0.5", ["1.2.3.4"], trusted=()).ip == "10.0.0.5"
    assert resolve("2001:db8::1", [], trusted=()).forwarded_for == "2001:db8::1"
