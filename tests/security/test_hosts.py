"""One canonical form for the Host: ``admin.example.com.`` is ``admin.example.com``.

DNS and every virtual-host server treat the name with a trailing dot (its absolute form) as the
same site. If the gate did not, that spelling would skip the host-bound upstream and its rules and
land on the default upstream, which may well serve the same virtual host.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from proxy.gate.policy import canonical_host
from tests.security.conftest import PASSWORD, USER, pool_settings
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import Browser, Upstream, proxy_settings, recording_upstream, running_proxy

ADMIN_HOST = "admin.example.com"
JSON = {"Accept": "application/json"}


@dataclass
class Hosts:
    browser: Browser
    default: Upstream
    admin: Upstream


@asynccontextmanager
async def hosts(double: CognitoDouble, **sections: Any) -> AsyncIterator[Hosts]:
    """A default upstream, and one bound to ADMIN_HOST that admits the "admins" group only;
    signed in as a user who is not an admin."""
    async with AsyncExitStack() as stack:
        default = await stack.enter_async_context(recording_upstream())
        admin = await stack.enter_async_context(recording_upstream())
        routes = [
            {
                "name": "admin",
                "url": admin.url,
                "host": ADMIN_HOST,
                "rules": [{"path": "/", "groups": ["admins"]}],
            }
        ]
        settings = proxy_settings(
            **pool_settings(double), upstream_url=default.url, upstreams=routes, **sections
        )
        base = await stack.enter_async_context(running_proxy(settings))
        browser = Browser(base)
        stack.push_async_callback(browser.close)
        assert (await browser.login(USER, PASSWORD)).status == 303
        yield Hosts(browser, default, admin)


SPELLINGS = [ADMIN_HOST, f"{ADMIN_HOST}.", "ADMIN.Example.COM.", f"{ADMIN_HOST}.:8080"]


async def test_every_spelling_of_a_bound_host_gets_its_rules(double: CognitoDouble) -> None:
    async with hosts(double) as h:
        for host in SPELLINGS:
            resp = await h.browser.get("/anything", headers={**JSON, "Host": host})
            assert resp.status == 403, host  # the admin upstream's rule, not the default's
        assert h.default.seen == [] and h.admin.seen == []
        other = await h.browser.get("/anything", headers={"Host": "www.example.com."})
        assert other.status == 200
        assert len(h.default.seen) == 1


async def test_check_normalises_a_trusted_forwarded_host(double: CognitoDouble) -> None:
    async with hosts(double, proxy={"trusted_cidrs": ["127.0.0.0/8"]}) as h:
        for forwarded in (ADMIN_HOST, f"{ADMIN_HOST}.", "Admin.Example.Com.:443"):
            headers = {"X-Original-URI": "/x", "X-Forwarded-Host": forwarded}
            assert (await h.browser.get("/_auth/check", headers=headers)).status == 403, forwarded
        headers = {"X-Original-URI": "/x", "X-Forwarded-Host": "www.example.com."}
        assert (await h.browser.get("/_auth/check", headers=headers)).status == 200


@given(st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}", fullmatch=True), st.booleans())
def test_canonical_host_ignores_case_port_and_one_trailing_dot(name: str, dot: bool) -> None:
    spelled = name.upper() + ("." if dot else "") + ":8443"
    assert canonical_host(spelled) == canonical_host(name) == name
    assert canonical_host(name + "..") != name  # not a DNS name: matches no bound host
