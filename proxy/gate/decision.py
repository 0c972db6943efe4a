"""What happens on every proxied request: route → caller (gate/identify.py) → decision → forward.

Decisions: the raw path is made canonical once (400 when it cannot be, see gate/paths.py); the
policy (gate/policy.py) picks the upstream and the first matching rule; a public rule forwards
without looking at the session; a live session that the rule admits is forwarded with identity
headers, one it does not admit gets 403; without a session a browser navigation is sent to the
login page (and back afterwards); a top-level form POST is sent there too, told that the form
was not sent, and returned to the page that held the form; anything else (XHR, JSON, other
non-GET) gets a 401 JSON body, unless the rule says ``401`` or ``allow``. The upstream receives
exactly the canonical path that was authorised. A store or Cognito outage fails closed with 503
and keeps the cookie: a blip must not sign anyone out.

Step-up (:func:`step_up`): a rule with ``max_auth_age`` / ``require_mfa`` that the caller's last
interactive sign-in does not meet (the session's ``auth_time`` and ``factors``, set by our sign-in
pages; a bearer token's verified ``auth_time`` claim, and no factors: Cognito's tokens name none)
sends a browser navigation through ``<prefix>/reauth`` and back to the same URL; a form POST there
too, told the form was not sent (it is never replayed); anything else gets 401 with RFC 9470's
``WWW-Authenticate: Bearer error="insufficient_user_authentication"`` and ``max_age`` /
``acr_values="mfa"`` saying what is missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from aiohttp import web

from proxy.cookies import OurCookies
from proxy.forward import Forwarder
from proxy.forwarded import client_address, original_request
from proxy.gate.capacity import Capacity
from proxy.gate.cookies import cookie_value
from proxy.gate.headers import HeaderPlan
from proxy.gate.identify import Caller, Identify, InvalidToken, Unidentified
from proxy.gate.outgoing import BadOverride, Outgoing, override_methods
from proxy.gate.paths import BadPath, canonical_path, split_target
from proxy.gate.policy import (
    Access,
    AllRules,
    Policy,
    Rule,
    Unauthenticated,
    prefix_matches,
)
from proxy.gate.websocket import SessionGuard
from proxy.observe import REQUEST_ID_HEADER, REQUEST_ID_KEY, SESSION_KEY, USER_KEY
from proxy.upgrade import is_websocket_upgrade

log = logging.getLogger("proxy.gate")

ErrorPage = Callable[[web.Request, int, str], web.Response]

# Claims that describe the token rather than the user; /userinfo leaves them out.
_TOKEN_CLAIMS = frozenset(
    {"at_hash", "origin_jti", "jti", "event_id", "token_use", "aud", "iss", "auth_time"}
)
RETRY_AFTER = "5"
_BEARER_CHALLENGE = 'Bearer error="invalid_token"'
# RFC 9470's acr_values for "a second factor": Cognito defines no acr, and this is RFC 8176's
# amr name for multiple-factor authentication.
MFA_ACR = "mfa"


@dataclass(frozen=True, slots=True)
class StepUp:
    """What a signed-in caller's last interactive sign-in lacks for a rule: it is older than
    ``max_age`` (or of unknown age), and/or ``mfa``: it passed no second factor."""

    max_age: int | None
    mfa: bool

    @property
    def reason(self) -> str:
        if self.mfa:
            return "mfa" if self.max_age is None else "max_age+mfa"
        return "max_age"

    def challenge(self) -> str:
        """The WWW-Authenticate value (RFC 9470 section 3)."""
        description = (
            "A more recent sign-in is required"
            if not self.mfa
            else "A sign-in with a second factor is required"
        )
        parts = [
            'Bearer error="insufficient_user_authentication"',
            f'error_description="{description}"',
        ]
        if self.max_age is not None:
            parts.append(f'max_age="{self.max_age}"')
        if self.mfa:
            parts.append(f'acr_values="{MFA_ACR}"')
        return ", ".join(parts)


def auth_time_of(caller: Caller) -> float | None:
    """When the caller last signed in interactively: the session's own record (never the
    browser's word), or a bearer token's verified ``auth_time``; None when unknown."""
    if caller.session is not None:
        return caller.session.auth_time or caller.session.created_at
    value = caller.claims.get("auth_time")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def step_up(rule: Rule | AllRules, caller: Caller, now: float | None = None) -> StepUp | None:
    """None when the caller's sign-in meets the rule's ``max_auth_age`` and ``require_mfa``."""
    max_age, require_mfa = rule.max_auth_age, rule.require_mfa
    if max_age is None and not require_mfa:
        return None
    too_old = False
    if max_age is not None:
        at = auth_time_of(caller)
        too_old = at is None or (time.time() if now is None else now) - at > max_age
    # A bearer token cannot show its factors (Cognito puts no amr in it): never multi-factor.
    no_mfa = require_mfa and not (caller.session is not None and caller.session.multi_factor)
    if not too_old and not no_mfa:
        return None
    return StepUp(max_age if too_old else None, no_mfa)


def wants_login_page(request: web.Request) -> bool:
    """A top-level browser navigation, as opposed to an API call or a background request."""
    if request.method not in ("GET", "HEAD"):
        return False
    if request.headers.get("X-Requested-With") or request.headers.get("Sec-Fetch-Mode") in (
        "cors",
        "no-cors",
        "same-origin",
    ):
        return False
    return "text/html" in request.headers.get("Accept", "")


def is_form_navigation(request: web.Request) -> bool:
    """A top-level HTML form POST: the user pressed a button and expects a page back.

    Only Fetch metadata (sent by every current browser) says so reliably; without it the
    request is treated as an API call, as before."""
    return (
        request.method == "POST"
        and request.headers.get("Sec-Fetch-Mode") == "navigate"
        and request.headers.get("Sec-Fetch-Dest") == "document"
        and not request.headers.get("X-Requested-With")
    )


def referring_path(request: web.Request) -> str | None:
    """The path (and query) of the same-host page a request came from, if the browser said.

    Only a hint for the login page's ``rd``, which validates it again."""
    referer = request.headers.get("Referer", "")
    try:
        parts = urlsplit(referer)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != request.host.lower():
        return None
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


@dataclass(frozen=True, slots=True)
class Upstreams:
    """Where requests go: the policy's routes, and one Forwarder (one pool) per route name."""

    policy: Policy
    forwarders: Mapping[str, Forwarder]
    # Per route name, the cap on requests in flight (gate/capacity.py); a name without one is
    # uncapped.
    capacity: Mapping[str, Capacity] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [r.name for r in self.policy.routes if r.name not in self.forwarders]
        if missing:
            raise ValueError(f"no forwarder for upstream(s) {', '.join(missing)}")


@dataclass(frozen=True, slots=True)
class ToUpstream:
    """What changes on the way to the app: what is added (and reserved), and our cookies,
    which stay between the browser and us."""

    outgoing: Outgoing
    cookies: OurCookies


@dataclass(frozen=True, slots=True)
class Answers:
    """How the gate answers what it does not forward: where signing in starts (its folder is
    the reserved prefix) and the branded error page for browsers."""

    login_path: str
    error_page: ErrorPage

    @property
    def reauth_path(self) -> str:
        """Where a signed-in user proves who they are again (auth/login_routes.py)."""
        return self.login_path.rsplit("/", 1)[0] + "/reauth"


@dataclass(frozen=True, slots=True)
class CheckAnswer:
    """What ``/_auth/check`` tells the auth proxy: identity headers, and the access token only
    when opted in."""

    headers: HeaderPlan
    access_token: bool = False


class Gate:
    def __init__(
        self,
        *,
        identify: Identify,
        guard: SessionGuard,
        upstreams: Upstreams,
        to_upstream: ToUpstream,
        answers: Answers,
        check: CheckAnswer,
    ) -> None:
        self._identify = identify
        self._identity = identify.identity
        self._guard = guard
        self._policy = upstreams.policy
        self._forwarders = upstreams.forwarders
        self._capacity = upstreams.capacity
        self._outgoing = to_upstream.outgoing
        self._cookies = to_upstream.cookies
        self._login_path = answers.login_path
        self._reauth_path = answers.reauth_path
        self._reserved_prefix = answers.login_path.rsplit("/", 1)[0] or "/"
        self._error_page = answers.error_page
        self._check_headers = check.headers
        self._check_access_token = check.access_token
        # X-Request-Id is ours to set (see observe.RequestObserver): a client's is dropped.
        reserved = self._outgoing.is_reserved

        def drop_header(name: str) -> bool:
            return name.lower() == "x-request-id" or reserved(name)

        self._drop_header = drop_header

    def _note(self, request: web.Request, sub: str | None) -> None:
        """Who this request is, for the access log: the user's sub and a session fingerprint."""
        if sub is not None:
            request[USER_KEY] = str(sub)
        cookie = cookie_value(request, self._identity.cookie_name)
        if cookie:
            request[SESSION_KEY] = self._identity.sessions.fingerprint(cookie)

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        try:
            raw_path, query = split_target(request.raw_path)
            path = canonical_path(raw_path)
        except BadPath as exc:
            log.info("refused path: %s", exc)
            return self._status(request, 400, "bad_request")
        client = client_address(request)
        route = self._policy.select(client.host, path)
        if route is None or prefix_matches(self._reserved_prefix, path):
            # e.g. "//_auth/x": the router did not see our prefix, the canonical path is ours.
            return self._status(request, 404, "not_found")
        try:
            methods = self._outgoing.judged_methods(request.method, request.headers)
        except BadOverride as exc:
            log.info("refused method override: %s", exc)
            return self._status(request, 400, "bad_request")
        rule = route.rule_for_all(methods, path)
        cookie, drop_header = self._app_cookies(request)
        rid = request.get(REQUEST_ID_KEY)
        if rid is not None:
            cookie.append((REQUEST_ID_HEADER, rid))
        forward = partial(
            self._forward,
            route.name,
            request,
            drop_header=drop_header,
            client_ip=client.forwarded_for,
            forwarded_proto=client.proto,
            forwarded_host=client.host,
            path_qs=route.upstream_path(path) + query,
        )
        if rule.public:
            # No session lookup: public routes cost no store round-trip.
            return await forward(add_headers=cookie)
        try:
            caller = await self._identify(request)
        except Unidentified as exc:
            return self._refused(request, exc)
        if caller is None:
            if rule.unauthenticated is Unauthenticated.ALLOW:
                return await forward(add_headers=cookie)
            if rule.unauthenticated is Unauthenticated.UNAUTHORIZED:
                return self._unauthorized()
            return self._unauthenticated(request)
        self._note(request, caller.claims.get("sub"))
        if rule.access(caller.claims) is Access.FORBIDDEN:
            return self._status(request, 403, "forbidden")
        if (shortfall := step_up(rule, caller)) is not None:
            return self._step_up(request, shortfall, browser=caller.session is not None)
        session = caller.session
        if session is None:
            # An API client's verified token: its identity alone, never merged with a cookie.
            token = caller.token or ""
            extra = self._outgoing.claims_headers(caller.claims, route.name, cache_key=token)
            return await forward(add_headers=[*cookie, *extra])
        add_headers = [*cookie, *self._outgoing.headers(session, route.name)]
        if is_websocket_upgrade(request.headers) and (
            session_cookie := cookie_value(request, self._identity.cookie_name)
        ):
            # Open as long as the session lives, not a moment longer.
            async with self._guard.watch(session_cookie) as ended:
                return await forward(add_headers=add_headers, ws_stop=ended)
        return await forward(add_headers=add_headers)

    async def _forward(self, name: str, request: web.Request, **kw: Any) -> web.StreamResponse:
        """Forward within the upstream's cap (gate/capacity.py); past it, 503 at once."""
        forwarder = self._forwarders[name]
        capacity = self._capacity.get(name)
        if capacity is None or is_websocket_upgrade(request.headers):
            return await forwarder.forward(request, **kw)
        if not capacity.acquire():
            response = self._status(request, 503, "upstream_busy")
            response.headers["Retry-After"] = RETRY_AFTER
            return response
        try:
            return await forwarder.forward(request, **kw)
        finally:
            capacity.release()

    def _app_cookies(
        self, request: web.Request
    ) -> tuple[list[tuple[str, str]], Callable[[str], bool]]:
        """Our cookies stay between the browser and us, on every route; the app gets only its
        own. Returns the Cookie header to add (if any) and the drop rule for client headers."""
        cookies = request.headers.getall("Cookie", ())
        if not cookies:
            return [], self._drop_header
        kept = self._cookies.without_ours(cookies)
        return ([("Cookie", kept)] if kept is not None else []), self._drop_reserved_and_cookie

    def _status(self, request: web.Request, status: int, error: str) -> web.Response:
        """A page for browsers, JSON for API clients."""
        if wants_login_page(request):
            response = self._error_page(request, status, f"status.{status}.message")
            response.headers["Cache-Control"] = "no-store"
            return response
        return web.json_response(
            {"error": error}, status=status, headers={"Cache-Control": "no-store"}
        )

    def _unauthorized(self) -> web.Response:
        return web.json_response(
            {"error": "unauthenticated", "login": self._login_path},
            status=401,
            headers={"Cache-Control": "no-store"},
        )

    def _step_up(self, request: web.Request, need: StepUp, *, browser: bool) -> web.Response:
        """The caller must prove who they are again: a browser (a session's navigation or form
        post) through the re-authentication page and back; anything else a 401 saying why."""
        mfa = "&mfa=1" if need.mfa else ""
        if browser and wants_login_page(request):
            target = f"{self._reauth_path}?rd={quote(request.raw_path, safe='')}{mfa}"
            return web.Response(
                status=302, headers={"Location": target, "Cache-Control": "no-store"}
            )
        if browser and is_form_navigation(request):
            # Never replayed after the re-authentication (see _form_not_sent): said so there.
            target = f"{self._reauth_path}?notice=post_lost{mfa}"
            if (back := referring_path(request)) is not None:
                target += f"&rd={quote(back, safe='')}"
            return web.Response(
                status=303, headers={"Location": target, "Cache-Control": "no-store"}
            )
        body: dict[str, Any] = {"error": "insufficient_user_authentication", "reason": need.reason}
        if need.max_age is not None:
            body["max_age"] = need.max_age
        if browser:  # a session's script can send its user there (and back with ?rd=)
            body["reauth"] = self._reauth_path
        return web.json_response(
            body,
            status=401,
            headers={"WWW-Authenticate": need.challenge(), "Cache-Control": "no-store"},
        )

    def _drop_reserved_and_cookie(self, name: str) -> bool:
        return self._drop_header(name) or name.lower() == "cookie"

    def _refused(
        self, request: web.Request, failure: Unidentified, *, page: bool = True
    ) -> web.Response:
        """The one answer to a caller that cannot be identified (proxied path and userinfo;
        check has its own four statuses): 401 for a bad token, 503 for an outage, with a page
        instead of JSON for a browser navigation when ``page``."""
        if isinstance(failure, InvalidToken):
            return web.json_response(
                {"error": "invalid_token", "reason": failure.reason},
                status=401,
                headers={
                    "WWW-Authenticate": 'Bearer error="invalid_token"',
                    "Cache-Control": "no-store",
                },
            )
        if page and wants_login_page(request):
            response = self._error_page(request, 503, "error.unavailable")
        else:
            response = web.json_response({"error": "unavailable"}, status=503)
        response.headers["Retry-After"] = RETRY_AFTER
        response.headers["Cache-Control"] = "no-store"
        return response

    def _unauthenticated(self, request: web.Request) -> web.Response:
        if is_form_navigation(request):
            return self._form_not_sent(request)
        if not wants_login_page(request):
            return self._unauthorized()
        target = f"{self._login_path}?rd={quote(request.raw_path, safe='')}"
        if self._identity.cookie_name in request.cookies:
            target += "&notice=expired"  # had a session once: say why they are here again
        response = web.Response(
            status=302, headers={"Location": target, "Cache-Control": "no-store"}
        )
        return response

    def _form_not_sent(self, request: web.Request) -> web.Response:
        """A form posted without a live session cannot be kept (its body may be large or
        secret, and replaying it after sign-in would be a CSRF gadget): send the user to sign
        in, say that the form was not sent, and come back to the page that held the form."""
        had_session = self._identity.cookie_name in request.cookies
        target = f"{self._login_path}?notice={'expired_post' if had_session else 'post_lost'}"
        back = referring_path(request)
        if back is not None:
            target += f"&rd={quote(back, safe='')}"
        return web.Response(status=303, headers={"Location": target, "Cache-Control": "no-store"})

    def _original_rule(self, request: web.Request) -> Rule | AllRules | Literal[False] | None:
        """The rule for the request a trusted auth proxy asks about; False when its path is
        unusable or ours; None when no trusted proxy named one (then: signed in or not).

        The auth proxy passes the client's headers on to the app itself, override headers
        included: the rule of every method they name must admit the request too."""
        original = original_request(request)
        if original is None:
            return None
        method, uri = original
        try:
            raw_path, _ = split_target(uri)
            path = canonical_path(raw_path)
            methods = override_methods(request.headers) | {method}
        except (BadPath, BadOverride):
            return False
        route = self._policy.select(client_address(request).host, path)
        if route is None or prefix_matches(self._reserved_prefix, path):
            return False
        return route.rule_for_all(methods, path)

    async def check(self, request: web.Request) -> web.StreamResponse:
        """nginx ``auth_request`` / Traefik forwardAuth: 200 with identity headers, or 401.

        Only 200, 401, 403 and 500: auth_request treats anything else as an error anyway.
        When a trusted proxy names the original request, its path's rule decides: a public
        rule answers 200 without a session, a rule that does not admit the user 403.
        """
        rule = self._original_rule(request)
        if rule is False:
            return web.Response(status=403, headers={"Cache-Control": "no-store"})
        if rule is not None and rule.public:
            return web.Response(status=200, headers={"Cache-Control": "no-store"})
        try:
            caller = await self._identify(request)
        except Unidentified as exc:
            return _check_refused(exc)
        if caller is None:
            return web.Response(status=401, headers={"Cache-Control": "no-store"})
        self._note(request, caller.claims.get("sub"))
        if rule is not None and rule.access(caller.claims) is Access.FORBIDDEN:
            return web.Response(status=403, headers={"Cache-Control": "no-store"})
        if rule is not None and (shortfall := step_up(rule, caller)) is not None:
            return web.Response(
                status=401,
                headers={"WWW-Authenticate": shortfall.challenge(), "Cache-Control": "no-store"},
            )
        response = web.Response(status=200, headers={"Cache-Control": "no-store"})
        access_token = caller.access_token
        if self._check_access_token and access_token:
            # For an upstream that calls Cognito (or other APIs) as the user; opt-in.
            response.headers["X-Auth-Request-Access-Token"] = access_token
        for name, value in self._check_headers.identity_headers(caller.claims):
            response.headers[name] = value
        return response

    async def userinfo(self, request: web.Request) -> web.StreamResponse:
        """The signed-in user's claims as JSON; never tokens."""
        try:
            caller = await self._identify(request)
        except Unidentified as exc:
            return self._refused(request, exc, page=False)
        if caller is None:
            return self._unauthorized()
        claims = {k: v for k, v in caller.claims.items() if k not in _TOKEN_CLAIMS}
        return web.json_response(claims, headers={"Cache-Control": "no-store"})


def _check_refused(failure: Unidentified) -> web.Response:
    """auth_request knows only 200, 401, 403 and 500: a bad token is a 401 (with the bearer
    challenge), an outage a 500 (it maps anything else to a 500 anyway: fail closed, visibly)."""
    if isinstance(failure, InvalidToken):
        return web.Response(
            status=401,
            headers={
                "WWW-Authenticate": 'Bearer error="invalid_token"',
                "Cache-Control": "no-store",
            },
        )
    return web.Response(status=500, text="unavailable", headers={"Cache-Control": "no-store"})
