"""Step-up in the Gate as a table (gate/decision.py step_up): a rule's ``max_auth_age`` and
``require_mfa`` against the caller's last interactive sign-in (the session's record, a bearer
token's verified ``auth_time``) → forwarded, sent through /reauth and back, or 401 saying why."""

from __future__ import annotations

import json
import time
from ipaddress import ip_network
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from proxy.forwarded import TRUSTED_PROXIES
from proxy.gate.decision import Answers, CheckAnswer, Gate, StepUp, ToUpstream, Upstreams, step_up
from proxy.gate.headers import build_plan
from proxy.gate.identify import Caller
from proxy.gate.outgoing import Outgoing
from proxy.gate.policy import AllRules, Policy, Route, Rule
from proxy.sessions.session import Session
from tests.unit.test_gate_decisions import COOKIES, HTML, JSON, Recorder, StubIdentify, request

NOW = time.time()


@pytest.fixture(autouse=True)
def _clock_at_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate's clock reads NOW: the ages above are from import time, and a whole suite run
    takes longer than the 300 s max age (a fresh session was stale by the time its row ran)."""
    monkeypatch.setattr("proxy.gate.decision.time", SimpleNamespace(time=lambda: NOW))


NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


def caller(age: float, factors: tuple[str, ...] = ("srp",)) -> Caller:
    """A session whose user last signed in ``age`` seconds ago with ``factors``."""
    session = Session(
        username="ann",
        sub="s-1",
        claims={"sub": "s-1", "cognito:username": "ann"},
        id_token="i",
        access_token="a",
        refresh_token="r",
        expires_at=2e9,
        created_at=NOW - 86400,  # created long ago: refreshes do not renew auth_time
        auth_time=NOW - age,
        factors=list(factors),
    )
    return Caller(session.claims, session=session)


def bearer(claims: dict[str, Any]) -> Caller:
    return Caller({"sub": "s-2", **claims}, token="tok", token_use="access")


FRESH = caller(10)
OLD = caller(3600)
FRESH_MFA = caller(10, ("srp", "totp"))
OLD_MFA = caller(3600, ("srp", "totp"))
PASSKEY = caller(10, ("passkey",))
DEVICE = caller(10, ("srp", "device"))  # MFA skipped by a remembered device
# A record from before step-up: auth_time = created_at (the upgrade), no factors.
UPGRADED = Caller(
    {"sub": "s-1"},
    session=Session("ann", "s-1", {"sub": "s-1"}, "i", "a", "r", 2e9, NOW - 60, auth_time=0.0),
)
BEARER_FRESH = bearer({"auth_time": int(NOW) - 10})
BEARER_OLD = bearer({"auth_time": int(NOW) - 3600})
BEARER_NO_TIME = bearer({})
BEARER_BAD_TIME = bearer({"auth_time": "yesterday"})
BEARER_BOOL_TIME = bearer({"auth_time": True})

RULES = (
    Rule(path="/recent", max_auth_age=300),
    Rule(path="/mfa", require_mfa=True),
    Rule(path="/both", max_auth_age=300, require_mfa=True),
)

# (caller, path, max_age shortfall, mfa shortfall) for step_up() itself
STEP_UP_TABLE = [
    ("fresh enough", FRESH, "/recent", None),
    ("too old", OLD, "/recent", StepUp(300, False)),
    ("no rule, old", OLD, "/plain", None),
    ("password only at an mfa path", FRESH, "/mfa", StepUp(None, True)),
    ("an old mfa sign-in still counts as mfa", OLD_MFA, "/mfa", None),
    ("totp", FRESH_MFA, "/mfa", None),
    ("a passkey counts as multi-factor", PASSKEY, "/mfa", None),
    ("a remembered device does not", DEVICE, "/mfa", StepUp(None, True)),
    ("both met", FRESH_MFA, "/both", None),
    ("both missing", OLD, "/both", StepUp(300, True)),
    ("old mfa at both", OLD_MFA, "/both", StepUp(300, False)),
    ("an upgraded record counts from its sign-in", UPGRADED, "/recent", None),
    ("an upgraded record is not mfa", UPGRADED, "/mfa", StepUp(None, True)),
    ("bearer fresh", BEARER_FRESH, "/recent", None),
    ("bearer old", BEARER_OLD, "/recent", StepUp(300, False)),
    ("bearer without auth_time", BEARER_NO_TIME, "/recent", StepUp(300, False)),
    ("bearer auth_time not a number", BEARER_BAD_TIME, "/recent", StepUp(300, False)),
    ("bearer auth_time a bool", BEARER_BOOL_TIME, "/recent", StepUp(300, False)),
    ("bearer never shows mfa", BEARER_FRESH, "/mfa", StepUp(None, True)),
]


@pytest.mark.parametrize(
    ("who", "path", "expected"), [pytest.param(*r[1:], id=r[0]) for r in STEP_UP_TABLE]
)
def test_step_up_judges_the_last_interactive_sign_in(
    who: Caller, path: str, expected: StepUp | None
) -> None:
    rule = Route(name="default", rules=RULES).rule_for("GET", path)
    assert step_up(rule, who, NOW) == expected


def test_several_rules_take_the_strictest_of_each() -> None:
    rules = AllRules((Rule(path="/", max_auth_age=600), Rule(path="/", max_auth_age=60)))
    assert step_up(rules, caller(120), NOW) == StepUp(60, False)
    with_mfa = AllRules((Rule(path="/"), Rule(path="/", require_mfa=True)))
    assert step_up(with_mfa, FRESH, NOW) == StepUp(None, True)


def gate(who: Caller) -> tuple[Gate, Recorder]:
    forwarder = Recorder()
    g = Gate(
        identify=StubIdentify(who),  # type: ignore[arg-type]
        guard=None,  # type: ignore[arg-type]
        upstreams=Upstreams(Policy([Route(name="default", rules=RULES)]), {"default": forwarder}),  # type: ignore[dict-item]
        to_upstream=ToUpstream(Outgoing.build(build_plan()), COOKIES),
        answers=Answers(
            login_path="/_auth/login",
            error_page=lambda request, status, key: web.Response(status=status, text=key),
        ),
        check=CheckAnswer(build_plan("auth-request")),
    )
    return g, forwarder


# (caller, method, path, headers) -> status, Location's path, WWW-Authenticate
PROXY_TABLE = [
    ("fresh enough is forwarded", FRESH, "GET", "/recent/x", HTML, 200, None, None),
    ("old navigation re-authenticates", OLD, "GET", "/recent/x?q=1", HTML, 302,
     "/_auth/reauth", None),
    ("old xhr gets 401", OLD, "GET", "/recent/x", {**HTML, "X-Requested-With": "x"}, 401, None,
     'Bearer error="insufficient_user_authentication", '
     'error_description="A more recent sign-in is required", max_age="300"'),
    ("old json gets 401", OLD, "GET", "/recent/x", JSON, 401, None, "max_age"),
    ("old form post re-authenticates, not replayed", OLD, "POST", "/recent/x",
     {**NAVIGATE, "Referer": "http://127.0.0.1/recent/form"}, 303, "/_auth/reauth", None),
    ("old api post gets 401", OLD, "POST", "/recent/x", JSON, 401, None, "max_age"),
    ("mfa navigation", FRESH, "GET", "/mfa/x", HTML, 302, "/_auth/reauth", None),
    ("mfa api", FRESH, "GET", "/mfa/x", JSON, 401, None,
     'Bearer error="insufficient_user_authentication", '
     'error_description="A sign-in with a second factor is required", acr_values="mfa"'),
    ("mfa met", FRESH_MFA, "GET", "/mfa/x", HTML, 200, None, None),
    ("bearer old, even asking for html", BEARER_OLD, "GET", "/recent/x", HTML, 401, None,
     "max_age"),
    ("bearer fresh", BEARER_FRESH, "GET", "/recent/x", JSON, 200, None, None),
    ("bearer at an mfa path", BEARER_FRESH, "GET", "/mfa/x", JSON, 401, None, "acr_values"),
    ("both missing say both", OLD, "GET", "/both", JSON, 401, None,
     'max_age="300", acr_values="mfa"'),
]  # fmt: skip


@pytest.mark.parametrize(
    ("who", "method", "path", "headers", "status", "location", "challenge"),
    [pytest.param(*r[1:], id=r[0]) for r in PROXY_TABLE],
)
async def test_proxy_step_up(
    who: Caller,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    location: str | None,
    challenge: str | None,
) -> None:
    g, forwarder = gate(who)
    response = await g.proxy(request(path, method, **headers))
    assert response.status == status
    assert bool(forwarder.calls) is (status == 200)
    if location is not None:
        assert urlsplit(response.headers["Location"]).path == location
    if challenge is not None:
        assert challenge in response.headers["WWW-Authenticate"]
        assert response.headers["Cache-Control"] == "no-store"
    else:
        assert "WWW-Authenticate" not in response.headers


async def test_a_navigation_comes_back_to_the_same_url_after_re_authentication() -> None:
    g, _ = gate(FRESH)
    response = await g.proxy(request("/mfa/page?a=1&b=2", **HTML))
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query == {"rd": ["/mfa/page?a=1&b=2"], "mfa": ["1"]}


async def test_a_form_post_is_sent_back_to_its_page_and_said_to_be_lost() -> None:
    g, forwarder = gate(OLD)
    response = await g.proxy(
        request("/recent/x", "POST", **NAVIGATE, Referer="http://127.0.0.1/recent/form")
    )
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query == {"rd": ["/recent/form"], "notice": ["post_lost"]}
    assert not forwarder.calls


async def test_the_401_body_says_why_and_where_a_session_can_re_authenticate() -> None:
    g, _ = gate(OLD)
    response = await g.proxy(request("/both", **JSON))
    assert isinstance(response, web.Response) and response.text is not None
    assert json.loads(response.text) == {
        "error": "insufficient_user_authentication",
        "reason": "max_age+mfa",
        "max_age": 300,
        "reauth": "/_auth/reauth",
    }
    g, _ = gate(BEARER_OLD)
    response = await g.proxy(request("/recent", **JSON))
    assert isinstance(response, web.Response) and response.text is not None
    assert "reauth" not in json.loads(response.text)  # a token is renewed at Cognito, not here


@pytest.mark.parametrize(
    ("who", "uri", "status"),
    [(OLD, "/recent/x", 401), (FRESH, "/recent/x", 200), (FRESH, "/mfa", 401), (OLD, "/", 200)],
)
async def test_check_judges_the_original_request_with_the_step_up_challenge(
    who: Caller, uri: str, status: int
) -> None:
    """auth_request knows 200/401/403/500: a step-up is a 401 with RFC 9470's challenge."""
    g, _ = gate(who)
    app = web.Application()
    app[TRUSTED_PROXIES] = (ip_network("127.0.0.0/8"),)
    req = make_mocked_request(
        "GET",
        "/_auth/check",
        headers=CIMultiDict({"X-Original-URI": uri}),
        app=app,
        transport=_Peer(),
    )
    response = await g.check(req)
    assert response.status == status
    if status == 401:
        assert "insufficient_user_authentication" in response.headers["WWW-Authenticate"]


class _Peer:
    """A transport whose peer is loopback (the trusted auth proxy)."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False
