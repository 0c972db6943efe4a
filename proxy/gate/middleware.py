"""What happens on every proxied request: session → identity → decision → forward.

Decisions: a live session is forwarded with identity headers; otherwise a browser navigation is
sent to the login page and anything else (XHR, JSON, non-GET) gets a 401 JSON body. A store or
Cognito outage fails closed with 503 and keeps the cookie: a blip must not sign anyone out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from proxy.cognito.tokens import JwksUnavailable, TokenError
from proxy.forward import Forwarder
from proxy.gate.bearer import BearerAuth, bearer_token
from proxy.gate.headers import HeaderPlan, without_cookies
from proxy.gate.identity import Identity, RefreshUnavailable
from proxy.gate.websocket import SessionGuard, is_websocket
from proxy.sessions.store import StoreUnavailable

log = logging.getLogger("proxy.gate")

ErrorPage = Callable[[web.Request, int, str], web.Response]

# Claims that describe the token rather than the user; /userinfo leaves them out.
_TOKEN_CLAIMS = frozenset(
    {"at_hash", "origin_jti", "jti", "event_id", "token_use", "aud", "iss", "auth_time"}
)
RETRY_AFTER = "5"


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


class Gate:
    def __init__(
        self,
        *,
        identity: Identity,
        forwarder: Forwarder,
        headers: HeaderPlan,
        check_headers: HeaderPlan,
        login_path: str,
        error_page: ErrorPage,
        own_cookies: frozenset[str] = frozenset(),
        bearer: BearerAuth | None = None,
        ws_recheck_interval: float = 5.0,
        check_access_token: bool = False,
    ) -> None:
        self._identity = identity
        self._forwarder = forwarder
        self._headers = headers
        self._check_headers = check_headers
        self._login_path = login_path
        self._error_page = error_page
        self._own_cookies = own_cookies
        self._bearer = bearer
        self._check_access_token = check_access_token
        self._guard = SessionGuard(identity, interval=ws_recheck_interval)

    async def _bearer_claims(self, request: web.Request) -> dict[str, Any] | web.Response | None:
        """Claims of a verified bearer token, a 401/503 answer for a bad one, None without one.

        With a bearer token the cookie is not looked at: one request, one identity.
        """
        if self._bearer is None:
            return None
        token = bearer_token(request)
        if token is None:
            return None
        try:
            return await self._bearer.claims(token)
        except JwksUnavailable:
            return web.json_response(
                {"error": "unavailable"}, status=503, headers={"Retry-After": RETRY_AFTER}
            )
        except TokenError as exc:
            return web.json_response(
                {"error": "invalid_token", "reason": type(exc).__name__},
                status=401,
                headers={
                    "WWW-Authenticate": 'Bearer error="invalid_token"',
                    "Cache-Control": "no-store",
                },
            )

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        bearer = await self._bearer_claims(request)
        if isinstance(bearer, web.Response):
            return bearer
        session_cookie = None
        if bearer is not None:
            claims = bearer
        else:
            try:
                session = await self._identity.resolve(request)
            except (StoreUnavailable, RefreshUnavailable):
                return self._unavailable(request)
            if session is None:
                return self._unauthenticated(request)
            claims = session.claims
            session_cookie = request.cookies.get(self._identity.cookie_name)
        add_headers = self._headers.identity_headers(claims)
        drop_header: Callable[[str], bool] = self._headers.is_reserved
        cookies = request.headers.getall("Cookie", ())
        if cookies:
            # Our cookies stay between the browser and us; the app gets only its own.
            drop_header = self._drop_reserved_and_cookie
            kept = without_cookies(cookies, self._own_cookies)
            if kept is not None:
                add_headers.append(("Cookie", kept))
        if session_cookie and is_websocket(request):
            # Open as long as the session lives, not a moment longer.
            async with self._guard.watch(session_cookie) as ended:
                return await self._forwarder.forward(
                    request, add_headers=add_headers, drop_header=drop_header, ws_stop=ended
                )
        return await self._forwarder.forward(
            request, add_headers=add_headers, drop_header=drop_header
        )

    def _drop_reserved_and_cookie(self, name: str) -> bool:
        return self._headers.is_reserved(name) or name.lower() == "cookie"

    def _unavailable(self, request: web.Request) -> web.Response:
        if wants_login_page(request):
            response = self._error_page(request, 503, "error.unavailable")
        else:
            response = web.json_response({"error": "unavailable"}, status=503)
        response.headers["Retry-After"] = RETRY_AFTER
        return response

    def _unauthenticated(self, request: web.Request) -> web.Response:
        if not wants_login_page(request):
            return web.json_response(
                {"error": "unauthenticated", "login": self._login_path},
                status=401,
                headers={"Cache-Control": "no-store"},
            )
        target = f"{self._login_path}?rd={quote(request.raw_path, safe='')}"
        if self._identity.cookie_name in request.cookies:
            target += "&notice=expired"  # had a session once: say why they are here again
        response = web.Response(
            status=302, headers={"Location": target, "Cache-Control": "no-store"}
        )
        return response

    async def check(self, request: web.Request) -> web.StreamResponse:
        """nginx ``auth_request`` / Traefik forwardAuth: 200 with identity headers, or 401.

        Only 200, 401, 403 and 500: auth_request treats anything else as an error anyway.
        """
        bearer = await self._bearer_claims(request)
        if isinstance(bearer, web.Response):
            status = 500 if bearer.status == 503 else 401
            return web.Response(status=status, headers=_check_challenge(bearer))
        if bearer is not None:
            claims = bearer
            access_token = bearer_token(request) if self._bearer_is_access() else None
        else:
            try:
                session = await self._identity.resolve(request)
            except (StoreUnavailable, RefreshUnavailable):
                # auth_request maps anything but 2xx/401/403 to a 500: fail closed, visibly.
                return web.Response(status=500, text="session store unavailable")
            if session is None:
                return web.Response(status=401, headers={"Cache-Control": "no-store"})
            claims = session.claims
            access_token = session.access_token
        response = web.Response(status=200, headers={"Cache-Control": "no-store"})
        if self._check_access_token and access_token:
            # For an upstream that calls Cognito (or other APIs) as the user; opt-in.
            response.headers["X-Auth-Request-Access-Token"] = access_token
        for name, value in self._check_headers.identity_headers(claims):
            response.headers[name] = value
        return response

    def _bearer_is_access(self) -> bool:
        return self._bearer is not None and self._bearer.token_use == "access"  # noqa: S105

    async def userinfo(self, request: web.Request) -> web.StreamResponse:
        """The signed-in user's claims as JSON; never tokens."""
        bearer = await self._bearer_claims(request)
        if isinstance(bearer, web.Response):
            return bearer
        if bearer is not None:
            source = bearer
        else:
            try:
                session = await self._identity.resolve(request)
            except (StoreUnavailable, RefreshUnavailable):
                return web.json_response({"error": "unavailable"}, status=503)
            if session is None:
                return web.json_response({"error": "unauthenticated"}, status=401)
            source = session.claims
        claims: dict[str, Any] = {k: v for k, v in source.items() if k not in _TOKEN_CLAIMS}
        return web.json_response(claims, headers={"Cache-Control": "no-store"})


def _check_challenge(answer: web.Response) -> dict[str, str]:
    headers = {"Cache-Control": "no-store"}
    if "WWW-Authenticate" in answer.headers:
        headers["WWW-Authenticate"] = answer.headers["WWW-Authenticate"]
    return headers
