"""The Gate's decisions as a table: no sockets, no store, no Cognito.

Who the caller is comes from a stub identify() step (a session, a bearer token, nobody, or
one of its two failures); the forwarder records what it was asked to send. Integration tests
(test_policy_e2e.py, test_login_flow.py, ...) prove the same through real servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from proxy.cookies import OurCookies
from proxy.gate.decision import Answers, CheckAnswer, Gate, ToUpstream, Upstreams
from proxy.gate.headers import build_plan
from proxy.gate.identify import Caller, InvalidToken, Unavailable
from proxy.gate.outgoing import Outgoing
from proxy.gate.policy import Policy, Route, Rule, Unauthenticated
from proxy.sessions.session import Session

HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}
COOKIES = OurCookies("gate", secure=False)


def session(groups: list[str] | None = None) -> Session:
    claims: dict[str, Any] = {"sub": "s-1", "cognito:username": "ann", "email": "a@x.test"}
    if groups is not None:
        claims["cognito:groups"] = groups
    return Session(
        username="ann",
        sub="s-1",
        claims=claims,
        id_token="id-tok",
        access_token="acc-tok",
        refresh_token="ref",
        expires_at=2e9,
        created_at=1.0,
    )


SIGNED_IN = Caller(session().claims, session=session())
OPS = Caller(session(["ops"]).claims, session=session(["ops"]))
BEARER = Caller(
    {"sub": "s-2", "username": "api", "cognito:username": "api"}, token="tok", token_use="access"
)


@dataclass
class Recorder:
    """A Forwarder stand-in: records each forward() call and answers 200."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    async def forward(self, request: web.Request, **kw: Any) -> web.StreamResponse:
        self.calls.append(kw)
        return web.Response(status=200, text="upstream")


class StubIdentify:
    def __init__(self, result: Caller | Exception | None) -> None:
        self.result = result
        self.calls = 0
        self.identity = SimpleNamespace(
            cookie_name=COOKIES.session, sessions=SimpleNamespace(fingerprint=lambda c: "fp")
        )

    async def __call__(self, request: web.Request) -> Caller | None:
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


RULES = (
    Rule(path="/public", public=True),
    Rule(path="/ops", groups=frozenset({"ops"})),
    Rule(path="/api401", unauthenticated=Unauthenticated.UNAUTHORIZED),
    Rule(path="/open", unauthenticated=Unauthenticated.ALLOW),
)


def gate(
    result: Caller | Exception | None, *, access_token: bool = False
) -> tuple[Gate, Recorder, StubIdentify]:
    forwarder = Recorder()
    identify = StubIdentify(result)
    g = Gate(
        identify=identify,
        guard=None,  # no WebSocket here
        upstreams=Upstreams(Policy([Route(name="default", rules=RULES)]), {"default": forwarder}),
        to_upstream=ToUpstream(Outgoing.build(build_plan()), COOKIES),
        answers=Answers(
            login_path="/_auth/login",
            error_page=lambda request, status, key: web.Response(status=status, text=key),
        ),
        check=CheckAnswer(build_plan("auth-request"), access_token=access_token),
    )
    return g, forwarder, identify


def request(path: str, method: str = "GET", **headers: str) -> web.Request:
    return make_mocked_request(method, path, headers=CIMultiDict(headers), app=web.Application())


# (caller, method, path, headers) -> status, and whether it was forwarded
PROXY_TABLE = [
    ("public needs nobody", None, "GET", "/public/x", HTML, 200, True),
    ("public never identifies", Unavailable(), "GET", "/public/x", JSON, 200, True),
    ("signed in", SIGNED_IN, "GET", "/app", HTML, 200, True),
    ("bearer", BEARER, "GET", "/app", JSON, 200, True),
    ("navigation without session", None, "GET", "/app", HTML, 302, False),
    ("api call without session", None, "GET", "/app", JSON, 401, False),
    ("xhr without session", None, "GET", "/app", {**HTML, "X-Requested-With": "x"}, 401, False),
    ("rule says 401", None, "GET", "/api401/x", HTML, 401, False),
    ("rule says allow", None, "GET", "/open/x", HTML, 200, True),
    ("not in the group", SIGNED_IN, "GET", "/ops/x", JSON, 403, False),
    ("in the group", OPS, "GET", "/ops/x", JSON, 200, True),
    ("bearer not in the group", BEARER, "GET", "/ops/x", JSON, 403, False),
    ("bad token", InvalidToken("BadSignature"), "GET", "/app", JSON, 401, False),
    ("outage, api", Unavailable(), "GET", "/app", JSON, 503, False),
    ("outage, browser", Unavailable(), "GET", "/app", HTML, 503, False),
    ("our prefix, spelt otherwise", SIGNED_IN, "GET", "//_auth/x", JSON, 404, False),
    ("a path that cannot be made safe", SIGNED_IN, "GET", "/a/%2e%2e%2f", JSON, 400, False),
    ("form post without session", None, "POST", "/app",
     {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, 303, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("caller", "method", "path", "headers", "status", "forwarded"),
    [pytest.param(*row[1:], id=row[0]) for row in PROXY_TABLE],
)
async def test_proxy_decides(
    caller: Caller | Exception | None,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    forwarded: bool,
) -> None:
    g, forwarder, _ = gate(caller)
    response = await g.proxy(request(path, method, **headers))
    assert response.status == status
    assert bool(forwarder.calls) is forwarded
    assert response.headers.get("Cache-Control") == (None if forwarded else "no-store")
    if status == 503:
        assert response.headers["Retry-After"]


async def test_a_bad_token_gets_the_bearer_challenge() -> None:
    g, _, _ = gate(InvalidToken("Expired"))
    response = await g.proxy(request("/app", **JSON))
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_the_login_redirect_carries_the_return_path() -> None:
    g, _, _ = gate(None)
    response = await g.proxy(request("/app/page?q=1", **HTML))
    assert response.headers["Location"] == "/_auth/login?rd=%2Fapp%2Fpage%3Fq%3D1"


async def test_a_signed_in_request_carries_identity_and_not_our_cookie() -> None:
    g, forwarder, _ = gate(SIGNED_IN)
    await g.proxy(request("/app", Cookie=f"{COOKIES.session}=c; theirs=1", **HTML))
    added = dict(forwarder.calls[0]["add_headers"])
    assert added["Cookie"] == "theirs=1"
    assert "ann" in added.values()


async def test_a_bearer_request_forwards_the_tokens_claims_only() -> None:
    g, forwarder, _ = gate(BEARER)
    await g.proxy(request("/app", **JSON))
    added = dict(forwarder.calls[0]["add_headers"])
    assert "api" in added.values()
    assert "ann" not in added.values()


# (caller) -> /_auth/check status: only 200, 401, 403 and 500
CHECK_TABLE = [
    ("signed in", SIGNED_IN, 200),
    ("bearer", BEARER, 200),
    ("nobody", None, 401),
    ("bad token", InvalidToken("BadSignature"), 401),
    ("outage", Unavailable(), 500),
]


@pytest.mark.parametrize(
    ("caller", "status"), [pytest.param(*row[1:], id=row[0]) for row in CHECK_TABLE]
)
async def test_check_answers_with_four_statuses(
    caller: Caller | Exception | None, status: int
) -> None:
    g, _, _ = gate(caller)
    response = await g.check(request("/_auth/check"))
    assert response.status == status
    assert response.headers["Cache-Control"] == "no-store"


async def test_check_passes_the_access_token_only_when_opted_in() -> None:
    g, _, _ = gate(SIGNED_IN)
    assert "X-Auth-Request-Access-Token" not in (await g.check(request("/_auth/check"))).headers
    g, _, _ = gate(SIGNED_IN, access_token=True)
    answer = await g.check(request("/_auth/check"))
    assert answer.headers["X-Auth-Request-Access-Token"] == "acc-tok"


USERINFO_TABLE = [
    ("signed in", SIGNED_IN, 200),
    ("bearer", BEARER, 200),
    ("nobody", None, 401),
    ("bad token", InvalidToken("BadSignature"), 401),
    ("outage", Unavailable(), 503),
]


@pytest.mark.parametrize(
    ("caller", "status"), [pytest.param(*row[1:], id=row[0]) for row in USERINFO_TABLE]
)
async def test_userinfo_is_json_for_every_answer(
    caller: Caller | Exception | None, status: int
) -> None:
    g, _, _ = gate(caller)
    response = await g.userinfo(request("/_auth/userinfo", **HTML))  # even for a browser
    assert response.status == status
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"


async def test_userinfo_never_returns_tokens_or_token_claims() -> None:
    caller = Caller({**session().claims, "jti": "j", "aud": "c"}, session=session())
    g, _, _ = gate(caller)
    body = (await g.userinfo(request("/_auth/userinfo"))).text or ""
    assert "acc-tok" not in body and "id-tok" not in body
    assert '"jti"' not in body and '"aud"' not in body
    assert '"email"' in body
