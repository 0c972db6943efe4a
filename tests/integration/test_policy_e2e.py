"""Routes, rules, header dialects, raw tokens, signed assertions and trusted proxies, end to end.

Browser → proxy → strict Cognito double (real SRP) → session → recording upstream(s). Hostile
paths are sent as raw bytes on a socket so no client library tidies them up first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from joserfc import jwt as jose_jwt
from joserfc.errors import BadSignatureError, InvalidClaimError
from joserfc.jwk import ECKey, KeySet

from tests.support.cognito_double import CognitoDouble
from tests.support.stack import (
    Browser,
    Upstream,
    cognito_kwargs,
    proxy_settings,
    recording_upstream,
    running_proxy,
)

PASSWORD = "Correct-horse-9!"
HOSTILE_NAME = "山田 太郎\r\nX-Injected: yes\x00"
RULES: list[dict[str, Any]] = [
    {"path": "/health", "match": "exact", "methods": ["GET"], "public": True},
    {"path": "/public", "public": True},
    {"path": "/admin", "groups": ["admins"]},
    {"path": "/api/", "unauthenticated": "401"},
    {"path": "/partners", "email_domains": ["partner.example"]},
    {"path": "/blog", "unauthenticated": "allow"},
    {"path": r"/reports/[0-9]{4}/public", "match": "regex", "public": True},
]


@pytest.fixture(scope="module")
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, client_secret = double.create_client(pool_id, secret=True)
    users = {
        "carol": ({"email": "carol@corp.example", "name": "Carol"}, ["admins", "staff"]),
        "dave": ({"email": "dave@partner.example", "name": "Dave"}, ["staff"]),
        "erin": ({"email": "erin@partner.example", "email_verified": "false"}, []),
        "taro": ({"email": "taro@corp.example", "name": HOSTILE_NAME}, ["管理者", "a,b", "x\r\ny"]),
    }
    for name, (attributes, groups) in users.items():
        double.add_user(pool_id, name, PASSWORD, attributes=attributes, groups=groups)
    return cognito_kwargs(double, pool_id, client_id, client_secret)


@asynccontextmanager
async def gate(pool: dict[str, Any], upstream: Upstream, **sections: Any) -> AsyncIterator[Browser]:
    """A proxy in front of ``upstream`` with RULES; ``sections`` replace whole settings sections."""
    upstream_section = {"url": upstream.url, "rules": RULES}
    settings = proxy_settings(
        **pool, upstream_url=upstream.url, upstream=upstream_section, **sections
    )
    async with running_proxy(settings) as base:
        browser = Browser(base)
        try:
            yield browser
        finally:
            await browser.close()


async def raw_get(base: str, target: str, headers: dict[str, str] | None = None) -> int:
    """Send ``GET target`` byte for byte; return the status code."""
    parts = urlsplit(base)
    assert parts.hostname and parts.port
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return int(data.split(b" ", 2)[1])


def cookie_header(browser: Browser) -> dict[str, str]:
    value = browser.cookie("gate")
    assert value, "not signed in"
    return {"Cookie": f"gate={value}"}


JSON = {"Accept": "application/json"}


# -- routes and rules ------------------------------------------------------------------------


async def test_public_routes_need_no_session(pool: dict[str, Any], upstream: Upstream) -> None:
    async with gate(pool, upstream) as b:
        assert (await b.get("/health")).status == 200
        assert (await b.get("/public/docs/a?x=1")).status == 200
        assert (await b.get("/reports/2026/public")).status == 200
        assert [s["path"] for s in upstream.seen] == [
            "/health",
            "/public/docs/a?x=1",
            "/reports/2026/public",
        ]
        # The method list and the exact/regex matches are honoured: these need a session.
        assert (await b.post("/health", {}, headers=JSON)).status == 401
        assert (await b.get("/health/x")).status == 302
        assert (await b.get("/reports/2026/public/x")).status == 302
        assert (await b.get("/publicity")).status == 302  # a prefix matches whole segments
        assert len(upstream.seen) == 3


@pytest.mark.parametrize(
    "target",
    [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2e/admin",
        "/public/.%2e/admin",
        "/public%2f..%2fadmin",
        "/public/..%2fadmin",
        "/public/%252e%252e/admin",
        "/public/..%252fadmin",
        "/public/..;/admin",
        "/public;/../admin",
        "/public/..%5cadmin",
        "/public/%c0%ae%c0%ae/admin",
        "/public/%ef%bc%8e%ef%bc%8e/admin",
        "/public/%00/../../admin",
        "/public//../admin",
        "/public/./../admin",
        "/admin?/public/x",
        "/admin#/public",
        "/%70ublic/../admin",
    ],
)
async def test_no_spelling_makes_a_protected_path_public(
    pool: dict[str, Any], upstream: Upstream, target: str
) -> None:
    async with gate(pool, upstream) as b:
        status = await raw_get(b.base, target, {"X-Forwarded-Uri": "/public/x", **JSON})
        assert status in (400, 401), status
        assert upstream.seen == []


@pytest.mark.parametrize(
    "target", ["/a%zz", "/a/%2f", "/a;b", "/%c0%ae", "/a\\b", "/../x", "/a%00", "/a%ef%bc%8f"]
)
async def test_refused_paths_get_a_400_page_for_browsers(
    pool: dict[str, Any], upstream: Upstream, target: str
) -> None:
    async with gate(pool, upstream) as b:
        assert await raw_get(b.base, target, {"Accept": "text/html"}) == 400
        assert upstream.seen == []


async def test_upstream_receives_exactly_the_path_that_was_authorised(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    async with gate(pool, upstream) as b:
        assert await raw_get(b.base, "//public/./a/%41b/../c%7e?q=/../..%2f&r=%00") == 200
        assert await raw_get(b.base, "/public/x/../y") == 200
        assert [s["path"] for s in upstream.seen] == [
            "/public/a/c~?q=/../..%2f&r=%00",  # the query passes untouched
            "/public/y",
        ]


async def test_reserved_prefix_is_not_forwarded_in_another_spelling(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    async with gate(pool, upstream) as b:
        assert await raw_get(b.base, "//_auth/userinfo", JSON) == 404
        assert await raw_get(b.base, "/public/../_auth/x", JSON) in (400, 404)
        assert upstream.seen == []


async def test_group_rule_admits_members_and_forbids_others(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    async with gate(pool, upstream) as carol, gate(pool, upstream) as dave:
        assert (await carol.login("carol", PASSWORD)).status == 303
        assert (await dave.login("dave", PASSWORD)).status == 303
        assert (await carol.get("/admin/users")).status == 200
        page = await dave.get("/admin/users")
        assert page.status == 403
        assert page.content_type == "text/html"
        assert page.headers["Cache-Control"] == "no-store"
        api = await dave.get("/admin/users", headers=JSON)
        assert api.status == 403 and api.content_type == "application/json"
        async with dave.http.get(dave.base + "/admin", headers={"Accept-Language": "ja"}) as r:
            assert r.status == 403
            assert "権限がありません" in await r.text()
        assert [s["path"] for s in upstream.seen] == ["/admin/users"]


async def test_email_domain_rule_needs_a_verified_email_in_that_exact_domain(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    async with AsyncExitStack() as stack:
        browsers = {
            name: await stack.enter_async_context(gate(pool, upstream))
            for name in ("carol", "dave", "erin")
        }
        for name, browser in browsers.items():
            assert (await browser.login(name, PASSWORD)).status == 303
        assert (await browsers["dave"].get("/partners/x")).status == 200
        assert (await browsers["erin"].get("/partners/x")).status == 403  # not verified
        assert (await browsers["carol"].get("/partners/x")).status == 403  # other domain


async def test_unauthenticated_choices(pool: dict[str, Any], upstream: Upstream) -> None:
    async with gate(pool, upstream) as b:
        api = await b.get("/api/items")  # a browser navigation, but the rule says 401
        assert api.status == 401 and api.content_type == "application/json"
        assert (await b.get("/reports")).status == 302  # default: the login page
        anon = await b.get("/blog/post", headers={"X-Forwarded-User": "admin"})
        assert anon.status == 200
        assert "X-Forwarded-User" not in upstream.last_headers
        assert (await b.login("dave", PASSWORD)).status == 303
        assert (await b.get("/blog/post")).status == 200
        assert upstream.last_headers["X-Forwarded-User"] == "dave"


async def test_our_cookies_never_reach_the_app_on_any_kind_of_route(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    async with gate(pool, upstream) as b:
        assert (await b.login("dave", PASSWORD)).status == 303
        session = cookie_header(b)["Cookie"]
        cookies = {"Cookie": f"theme=dark; {session}; gate-login=x"}
        for target in ("/public/x", "/blog/x", "/reports"):  # public, allow, signed in
            assert await raw_get(b.base, target, cookies) == 200
            sent = [v for k, v in upstream.seen[-1]["all_headers"] if k.lower() == "cookie"]
            assert sent == ["theme=dark"], target


async def test_several_upstreams_by_prefix_each_with_its_own_rules(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    async with recording_upstream() as other:
        routes = [
            {
                "name": "reports",
                "url": other.url,
                "prefix": "/svc/",
                "strip_prefix": True,
                "rules": [{"path": "/svc/open", "public": True}],
            }
        ]
        async with gate(pool, upstream, upstreams=routes) as b:
            assert (await b.get("/svc/open/x")).status == 200
            assert (await b.get("/svc/admin")).status == 302  # no rule here: sign in first
            assert (await b.get("/public/x")).status == 200  # the default upstream's rule
            assert (await b.login("dave", PASSWORD)).status == 303
            assert (await b.get("/svc/admin?q=1")).status == 200  # no /admin rule here
            assert [s["path"] for s in other.seen] == ["/open/x", "/admin?q=1"]
            assert other.last_headers["X-Forwarded-User"] == "dave"
            assert [s["path"] for s in upstream.seen] == ["/public/x"]


# -- headers to the upstream -------------------------------------------------------------------

SPOOFED = {
    "X-Forwarded-User": "admin",
    "x-forwarded-user": "admin2",
    "X_Forwarded_User": "admin3",
    "x.forwarded.email": "boss@corp.example",
    "X-FORWARDED-GROUPS": "admins",
    "Remote-User": "admin",
    "remote_groups": "admins",
    "REMOTE.EMAIL": "boss@corp.example",
    "X-Auth-Request-User": "admin",
    "X-Forwarded-Access-Token": "forged",
    "X-Gate-Assertion": "forged",
    "X-Tenant": "evil",
    "X-Original-URL": "forged",
    "x_rewrite_url": "forged",
    "Forwarded": "for=evil",
    "X-Real-IP": "evil",
}


def _assert_no_spoofed(upstream: Upstream) -> None:
    for name, value in upstream.seen[-1]["all_headers"]:
        assert value not in {"admin", "admin2", "admin3", "admins", "boss@corp.example"}, name
        assert value not in {"forged", "evil", "for=evil"}, name


@pytest.mark.parametrize("preset", ["oauth2-proxy", "authelia"])
async def test_every_spelling_of_our_headers_is_stripped_even_on_public_routes(
    pool: dict[str, Any], upstream: Upstream, preset: str
) -> None:
    headers = {"preset": preset, "extra": {"X-Tenant": "custom:tenant"}}
    async with gate(pool, upstream, headers=headers) as b:
        # aiohttp would merge same-name headers; a CIMultiDict keeps each spelling separate.
        from multidict import CIMultiDict

        spoof = CIMultiDict(SPOOFED.items())
        assert (await b.get("/public/x", headers=spoof)).status == 200
        _assert_no_spoofed(upstream)
        # Listing our names in Connection: must not remove the real ones either.
        assert (await b.login("dave", PASSWORD)).status == 303
        conn = {**SPOOFED, "Connection": "keep-alive, X-Forwarded-User, Remote-User"}
        assert (await b.get("/reports", headers=conn)).status == 200
        _assert_no_spoofed(upstream)
        user = "Remote-User" if preset == "authelia" else "X-Forwarded-User"
        assert [v for k, v in upstream.seen[-1]["all_headers"] if k.lower() == user.lower()] == [
            "dave"
        ]


async def test_authelia_preset_and_hostile_claim_values(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    async with gate(pool, upstream, headers={"preset": "authelia"}) as b:
        assert (await b.login("taro", PASSWORD)).status == 303
        assert (await b.get("/reports")).status == 200
        seen = upstream.last_headers
        assert seen["Remote-User"] == "taro"
        assert seen["Remote-Email"] == "taro@corp.example"
        name = seen["Remote-Name"]
        assert name == "%E5%B1%B1%E7%94%B0 %E5%A4%AA%E9%83%8E%0D%0AX-Injected: yes%00"
        assert unquote(name) == HOSTILE_NAME  # the documented rule decodes it back
        assert seen["Remote-Groups"] == "%E7%AE%A1%E7%90%86%E8%80%85,a%2Cb,x%0D%0Ay"
        assert "X-Injected" not in seen
        assert "X-Forwarded-User" not in seen


async def test_raw_tokens_on_request_replace_the_clients_authorization(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    headers = {"pass_access_token": True, "pass_id_token_as_authorization": True}
    async with gate(pool, upstream, headers=headers) as b:
        sent = {"Authorization": "Basic YWRtaW46YWRtaW4=", "X-Forwarded-Access-Token": "forged"}
        assert (await b.get("/public/x", headers=sent)).status == 200
        names = [k.lower() for k, _ in upstream.seen[-1]["all_headers"]]
        assert "authorization" not in names and "x-forwarded-access-token" not in names
        assert (await b.login("carol", PASSWORD)).status == 303
        assert (await b.get("/reports", headers=sent)).status == 200
        got = upstream.seen[-1]["all_headers"]
        auth = [v for k, v in got if k.lower() == "authorization"]
        access = [v for k, v in got if k.lower() == "x-forwarded-access-token"]
        assert len(auth) == 1 and auth[0].startswith("Bearer ey")
        assert len(access) == 1 and access[0].startswith("ey")
        claims = jose_jwt.decode(auth[0].removeprefix("Bearer "), _double_keys(pool)).claims
        assert claims["token_use"] == "id" and claims["cognito:username"] == "carol"


def _double_keys(pool: dict[str, Any]) -> KeySet:
    import json
    import urllib.request

    with urllib.request.urlopen(pool["jwks_url"], timeout=5) as resp:
        return KeySet.import_key_set(json.loads(resp.read()))


# -- signed identity assertion ---------------------------------------------------------------


async def test_signed_assertion_verifies_with_an_independent_library(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    assertion = {"enabled": True, "ttl": 60, "issuer": "https://gate.example"}
    async with gate(pool, upstream, assertion=assertion) as b:
        async with b.http.get(b.base + "/_auth/jwks.json") as resp:
            assert resp.status == 200
            jwks = await resp.json()
        keys = KeySet.import_key_set(jwks)
        assert len(jwks["keys"]) == 1 and "d" not in jwks["keys"][0]  # public only
        assert jwks["keys"][0]["kid"] == ECKey.import_key(jwks["keys"][0]).thumbprint()

        forged = {"X-Gate-Assertion": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."}
        assert (await b.get("/public/x", headers=forged)).status == 200
        assert "X-Gate-Assertion" not in upstream.last_headers
        assert (await b.login("carol", PASSWORD)).status == 303
        assert (await b.get("/reports", headers=forged)).status == 200
        token = upstream.last_headers["X-Gate-Assertion"]

        decoded = jose_jwt.decode(token, keys, algorithms=["ES256"])
        assert decoded.header["alg"] == "ES256" and decoded.header["kid"] == jwks["keys"][0]["kid"]
        registry = jose_jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": "https://gate.example"},
            aud={"essential": True, "value": "default"},
            exp={"essential": True},
            sub={"essential": True},
        )
        registry.validate(decoded.claims)
        claims = decoded.claims
        assert claims["username"] == "carol"
        assert claims["email"] == "carol@corp.example" and claims["email_verified"] is True
        assert claims["groups"] == ["admins", "staff"]
        assert claims["exp"] - claims["iat"] == 60

        with pytest.raises(InvalidClaimError):
            jose_jwt.JWTClaimsRegistry(aud={"essential": True, "value": "other-app"}).validate(
                claims
            )
        head, body, sig = token.split(".")
        other = jose_jwt.decode(
            await _assertion_for(b, upstream, "/reports?again"), keys, algorithms=["ES256"]
        )
        assert other.claims["jti"] == claims["jti"]  # reused within a quarter of its life
        tampered = f"{head}.{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{sig}"
        with pytest.raises((BadSignatureError, ValueError)):
            jose_jwt.decode(tampered, keys, algorithms=["ES256"])


async def _assertion_for(b: Browser, upstream: Upstream, path: str) -> str:
    assert (await b.get(path)).status == 200
    return upstream.last_headers["X-Gate-Assertion"]


async def test_jwks_is_not_published_when_assertions_are_off(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    async with gate(pool, upstream) as b:
        assert (await b.get("/_auth/jwks.json")).status == 404


# -- trusted proxies ---------------------------------------------------------------------------

XFF = {
    "X-Forwarded-For": "203.0.113.1, 198.51.100.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "app.example",
}


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(
    pool: dict[str, Any], upstream: Upstream, double: CognitoDouble
) -> None:
    async with gate(pool, upstream, cognito=_admin_flow(pool)) as b:
        assert (await b.get("/public/x", headers=XFF)).status == 200
        assert upstream.last_headers["X-Forwarded-For"] == "127.0.0.1"
        assert upstream.last_headers["X-Forwarded-Proto"] == "http"
        assert upstream.last_headers["X-Forwarded-Host"] == b.base.removeprefix("http://")
        b.http.headers.update(XFF)
        assert (await b.login("dave", PASSWORD)).status == 303
        context = double.calls_to("AdminInitiateAuth")[-1]["ContextData"]
        assert context["IpAddress"] == "127.0.0.1"


async def test_forwarded_headers_from_a_trusted_peer_are_used(
    pool: dict[str, Any], upstream: Upstream, double: CognitoDouble
) -> None:
    trusted = {"trusted_cidrs": ["127.0.0.0/8"]}
    async with gate(pool, upstream, cognito=_admin_flow(pool), proxy=trusted) as b:
        assert (await b.get("/public/x", headers=XFF)).status == 200
        assert upstream.last_headers["X-Forwarded-For"] == "198.51.100.7, 127.0.0.1"
        assert upstream.last_headers["X-Forwarded-Proto"] == "https"
        assert upstream.last_headers["X-Forwarded-Host"] == "app.example"
        b.http.headers.update(XFF)
        assert (await b.login("dave", PASSWORD)).status == 303
        context = double.calls_to("AdminInitiateAuth")[-1]["ContextData"]
        assert context["IpAddress"] == "198.51.100.7"


def _admin_flow(pool: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_pool_id": pool["pool_id"],
        "client_id": pool["client_id"],
        "client_secret": pool["client_secret"],
        "endpoint_url": pool["endpoint_url"],
        "jwks_url": pool["jwks_url"],
        "issuer": pool["issuer"],
        "auth_flow": "ADMIN_USER_PASSWORD_AUTH",
    }


# -- /_auth/check applies the rules of the original request (nginx auth_request, forwardAuth) -


async def test_check_judges_the_original_uri_from_a_trusted_proxy(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    async with gate(pool, upstream, proxy={"trusted_cidrs": ["127.0.0.0/8"]}) as browser:
        assert (await browser.login("dave", PASSWORD)).status == 303  # staff, not admins

        async def check(uri: str, header: str = "X-Original-URI") -> int:
            return (await browser.get("/_auth/check", headers={header: uri})).status

        assert await check("/reports/2026") == 200
        assert await check("/admin/users") == 403
        assert await check("/admin/users", "X-Forwarded-Uri") == 403  # Traefik's spelling
        assert await check("/a/%2e%2e/%2e%2e/admin") == 403  # cannot be made safe: refused
        assert await check("/_auth/userinfo") == 403  # our own prefix is never an app route
        browser.http.cookie_jar.clear()
        assert await check("/health") == 200  # public: no session needed
        assert await check("/reports/2026") == 401


async def test_check_ignores_original_uri_headers_from_untrusted_peers(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    async with gate(pool, upstream) as browser:  # no trusted proxies configured
        await browser.login("dave", PASSWORD)
        headers = {"X-Original-URI": "/admin/users"}
        assert (await browser.get("/_auth/check", headers=headers)).status == 200
        browser.http.cookie_jar.clear()
        assert (
            await browser.get("/_auth/check", headers={"X-Original-URI": "/health"})
        ).status == 401
