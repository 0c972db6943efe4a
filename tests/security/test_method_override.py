"""Method-override headers: a POST the app runs as DELETE is judged as DELETE, or never one.

Express (method-override), ASP.NET Core, Laravel and Symfony run a POST carrying
``X-HTTP-Method-Override: DELETE`` (or ``X-HTTP-Method``, ``X-Method-Override``) as a DELETE.
A rule that limits DELETE to admins must therefore either strip those headers (the default) or
judge the method they name (``headers.pass_method_override``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from proxy.gate.headers import canonical_name
from proxy.gate.outgoing import METHOD_OVERRIDE
from tests.security.conftest import PASSWORD, USER, pool_settings
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import Browser, Upstream, proxy_settings, recording_upstream, running_proxy

ADMIN = "root"
RULES = [{"path": "/ops", "methods": ["DELETE", "PUT"], "groups": ["admins"]}]
JSON = {"Accept": "application/json"}
SPELLINGS = [
    *METHOD_OVERRIDE,
    "x-http-method-override",
    "X-HTTP-METHOD",
    "X_HTTP_Method_Override",
    "x.method.override",
]
_OVERRIDES = {canonical_name(n) for n in METHOD_OVERRIDE}


@dataclass
class Ops:
    browser: Browser
    upstream: Upstream

    def override_headers_seen(self) -> list[tuple[str, str]]:
        return [
            (k, v)
            for k, v in self.upstream.seen[-1]["all_headers"]
            if canonical_name(k) in _OVERRIDES
        ]


@asynccontextmanager
async def ops(double: CognitoDouble, user: str = USER, **sections: Any) -> AsyncIterator[Ops]:
    """A proxy whose rules give DELETE and PUT on /ops to admins only, signed in as ``user``."""
    kw = pool_settings(double)
    double.add_user(kw["pool_id"], ADMIN, PASSWORD, groups=["admins"])
    async with recording_upstream() as upstream:
        settings = proxy_settings(
            **kw,
            upstream_url=upstream.url,
            upstream={"url": upstream.url, "rules": RULES},
            **sections,
        )
        async with running_proxy(settings) as base:
            browser = Browser(base)
            try:
                assert (await browser.login(user, PASSWORD)).status == 303
                yield Ops(browser, upstream)
            finally:
                await browser.close()


async def _post(stack: Ops, headers: dict[str, str]) -> int:
    resp = await stack.browser.post("/ops/item", {}, headers={**JSON, **headers})
    return resp.status


async def test_override_headers_never_reach_the_app_by_default(double: CognitoDouble) -> None:
    async with ops(double) as stack:
        assert (await stack.browser.http.delete(stack.browser.base + "/ops/item")).status == 403
        assert stack.upstream.seen == []
        for spelling in SPELLINGS:
            assert await _post(stack, {spelling: "DELETE"}) == 200, spelling
            assert stack.upstream.seen[-1]["method"] == "POST"
            # so the app runs the POST it was judged as
            assert stack.override_headers_seen() == [], spelling


async def test_a_passed_override_is_judged_as_the_method_it_names(double: CognitoDouble) -> None:
    async with ops(double, headers={"pass_method_override": True}) as stack:
        for spelling in SPELLINGS:
            for value in ("DELETE", "delete", "GET, DELETE", " put "):
                assert await _post(stack, {spelling: value}) == 403, (spelling, value)
        assert stack.upstream.seen == []
        assert await _post(stack, {"X-HTTP-Method": "DEL ETE"}) == 400  # not a method
        assert await _post(stack, {"X-HTTP-Method-Override": "PATCH"}) == 200
        assert stack.override_headers_seen() == [("X-HTTP-Method-Override", "PATCH")]
        assert await _post(stack, {}) == 200


async def test_an_admin_may_send_a_passed_override(double: CognitoDouble) -> None:
    async with ops(double, ADMIN, headers={"pass_method_override": True}) as stack:
        assert await _post(stack, {"X-HTTP-Method-Override": "DELETE"}) == 200
        assert stack.override_headers_seen() == [("X-HTTP-Method-Override", "DELETE")]


async def test_check_judges_the_override_headers_the_auth_proxy_passes_on(
    double: CognitoDouble,
) -> None:
    """nginx auth_request and Traefik forwardAuth send the client's headers to the app
    themselves: the check must judge what the app will run, whatever our own setting."""
    async with ops(double, proxy={"trusted_cidrs": ["127.0.0.0/8"]}) as stack:
        original = {"X-Original-URI": "/ops/item", "X-Original-Method": "POST"}

        async def check(extra: dict[str, str]) -> int:
            resp = await stack.browser.get("/_auth/check", headers={**original, **extra})
            return resp.status

        assert await check({}) == 200
        assert await check({"X-HTTP-Method-Override": "DELETE"}) == 403
        assert await check({"x_method_override": "put"}) == 403
        assert await check({"X-HTTP-Method": "not a method"}) == 403
