"""rediss+sentinel:// and rediss+cluster://: TLS, an optional CA file, nothing else in the query."""

from __future__ import annotations

import pytest

from proxy.sessions.redis import ClusterURL, SentinelURL, Tls
from proxy.settings import SessionSettings


def test_rediss_schemes_turn_tls_on_with_an_optional_ca_file() -> None:
    s = SentinelURL.parse("rediss+sentinel://u:p@s1:26379,s2/gate/2?ssl_ca_certs=/etc/ca.pem")
    assert s.tls == Tls("/etc/ca.pem")
    assert (s.service_name, s.db, s.sentinels) == ("gate", 2, (("s1", 26379), ("s2", 26379)))
    c = ClusterURL.parse("rediss+cluster://n1:7000,n2:7001")
    assert c.tls == Tls(None)
    assert c.tls.kwargs() == {"ssl": True, "ssl_ca_certs": None}


def test_plain_schemes_have_no_tls() -> None:
    assert SentinelURL.parse("redis+sentinel://s1/gate").tls is None
    assert ClusterURL.parse("redis+cluster://n1:7000").tls is None


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://n1:7000?ssl_ca_certs=/ca.pem",  # a CA file without TLS: a mistake
        "rediss+cluster://n1:7000?ssl_cert_reqs=none",  # no way to switch verification off
        "rediss+cluster://n1:7000?ssl_ca_certs=/a&ssl_ca_certs=/b",
        "rediss+sentinel://s1/gate#frag",
    ],
)
def test_anything_else_in_the_query_is_refused(url: str) -> None:
    parse = ClusterURL.parse if "cluster" in url else SentinelURL.parse
    with pytest.raises(ValueError):
        parse(url)


def test_settings_accept_the_tls_schemes() -> None:
    for url in ("rediss+sentinel://s1/gate", "rediss+cluster://n1:7000"):
        assert SessionSettings(store_url=url).store_url == url
