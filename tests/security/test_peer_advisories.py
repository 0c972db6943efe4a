"""The bug classes of a peer's 2025-2026 advisories (oauth2-proxy), each tried against us.

1. a skip-auth regex matched against the query string as well as the path;
2. ``X-Forwarded-Uri`` believed from anyone because trusted proxies defaulted to everything;
3. a ``#`` fragment in the request target widening what a rule matches;
4. a health-check ``User-Agent`` skipping authentication;
5. ``X_Forwarded_User`` (underscore and other spellings) reaching the app as identity.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from proxy.gate.headers import canonical_name
from proxy.settings import ProxySettings
from tests.security.conftest import Stack, raw_exchange, stack_for, status_of
from tests.support.cognito_double import CognitoDouble

RULES = [
    {"path": r"/static/.*", "match": "regex", "public": True},
    {"path": r"/.*\.css", "match": "regex", "public": True},  # the classic skip-auth pattern
    {"path": "/public", "public": True},
    {"path": "/admin", "groups": ["admins"]},
]
JSON = {"Accept": "application/json"}


@pytest.fixture
async def ruled(double: CognitoDouble) -> AsyncIterator[Stack]:
    async with stack_for(double, rules=RULES) as s:
        yield s


async def _status(stack: Stack, target: bytes, extra: bytes = b"") -> int:
    head = b"GET %s HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n%s\r\n" % (target, extra)
    return status_of(await raw_exchange(stack.host, stack.port, head))


async def test_a_public_pattern_is_never_matched_against_the_query(ruled: Stack) -> None:
    for target in (
        b"/admin?/static/x",
        b"/admin?x=/static/a.css",
        b"/admin?style=a.css",
        b"/private?next=/public",
        b"/admin/?/public/",
        b"/admin%3F/static/x",  # an encoded "?" is part of the path, which is then not public
    ):
        assert await _status(ruled, target) == 401, target
    assert ruled.upstream.seen == []
    assert await _status(ruled, b"/static/app.css?x=/admin") == 200
    assert ruled.upstream.seen[-1]["path"] == "/static/app.css?x=/admin"


async def test_forwarded_uri_headers_are_believed_from_nobody_by_default(ruled: Stack) -> None:
    assert ProxySettings().trusted_cidrs == []  # nothing is trusted unless configured
    spoofs = [b"X-Forwarded-Uri: /public", b"X-Original-URI: /public", b"X-Original-URL: /public"]
    for spoof in spoofs:
        # Judged by its own path, and the header never reaches the app to re-route it.
        assert await _status(ruled, b"/admin", spoof + b"\r\n") == 401, spoof
        assert await _status(ruled, b"/public", spoof.replace(b"/public", b"/x") + b"\r\n") == 200
        names = {canonical_name(k) for k, _ in ruled.upstream.seen[-1]["all_headers"]}
        assert not names & {"x-forwarded-uri", "x-original-uri", "x-original-url"}
    # /_auth/check without a session: the spoofed URI of a public path does not admit it.
    for header in (b"X-Forwarded-Uri: /public", b"X-Original-URI: /static/a"):
        answer = await raw_exchange(
            ruled.host, ruled.port, b"GET /_auth/check HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % header
        )
        assert status_of(answer) == 401, header


async def test_a_fragment_cannot_widen_a_match(ruled: Stack) -> None:
    for target in (b"/admin#/public", b"/admin#/static/x", b"/public#/../admin"):
        assert await _status(ruled, target) == 400, target  # a raw "#" is never a path character
    # Encoded, it is an ordinary character of the path the app receives and the rule judged.
    assert await _status(ruled, b"/admin%23/public") == 401
    assert await _status(ruled, b"/static/a%23/../../admin") == 401  # resolves to /admin
    assert ruled.upstream.seen == []


async def test_a_health_check_user_agent_gets_no_pass(ruled: Stack) -> None:
    for agent in (b"kube-probe/1.31", b"ELB-HealthChecker/2.0", b"GoogleHC/1.0", b"Go-http-client"):
        assert await _status(ruled, b"/admin", b"User-Agent: %s\r\n" % agent) == 401, agent
        assert await _status(ruled, b"/", b"User-Agent: %s\r\n" % agent) == 401, agent
    assert ruled.upstream.seen == []
    answer = await raw_exchange(
        ruled.host, ruled.port, b"GET /_auth/healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert status_of(answer) == 200  # our own probe endpoints, which forward nothing


SPOOFS = [
    ("X_Forwarded_User", "admin"),
    ("x_forwarded_email", "root@example.com"),
    ("X-Forwarded_Groups", "admins"),
    ("x.forwarded.preferred.username", "admin"),
    ("X-FORWARDED-USER", "admin"),
    ("X-Auth-Request-User", "admin"),
    ("X_Auth_Request_Groups", "admins"),
]


async def test_no_spelling_of_an_identity_header_reaches_the_app(ruled: Stack) -> None:
    spoofed = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in SPOOFS)
    assert await _status(ruled, b"/public/page", spoofed) == 200  # public: still stripped
    cookie = await ruled.signed_in_cookie()
    extra = spoofed + b"Cookie: gate=" + cookie.encode() + b"\r\n"
    head = b"GET /page HTTP/1.1\r\nHost: x\r\n%s\r\n" % extra
    assert status_of(await raw_exchange(ruled.host, ruled.port, head)) == 200
    public, signed_in = ruled.upstream.seen[-2:]
    assert all(value not in {v for _, v in SPOOFS} for _, value in public["all_headers"])
    identity = {
        canonical_name(k): v
        for k, v in signed_in["all_headers"]
        if canonical_name(k).startswith(("x-forwarded-", "x-auth-request-"))
    }
    assert identity.get("x-forwarded-user") == "carol"
    assert identity.get("x-forwarded-email") == "carol@example.com"
    assert "admin" not in identity.values() and "admins" not in identity.values()
    assert not any(k.startswith("x-auth-request-") for k in identity)
    assert [k for k, _ in signed_in["all_headers"] if canonical_name(k) == "x-forwarded-user"] == [
        "X-Forwarded-User"
    ]
