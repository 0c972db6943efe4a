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

from proxy.forward import Forwarder
from proxy.gate.headers import HeaderPlan
from proxy.gate.identity import Identity, RefreshUnavailable
from proxy.observe import REQUEST_ID_HEADER, REQUEST_ID_KEY, SESSION_KEY, USER_KEY
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
    ) -> None:
        self._identity = identity
        self._forwarder = forwarder
        self._headers = headers
        self._check_headers = check_headers
        self._login_path = login_path
        self._error_page = error_page
        # X-Request-Id is ours to set (see observe.RequestObserver): a client's is dropped.
        reserved = headers.is_reserved

        def drop_header(name: str) -> bool:
            return name.lower() == "x-request-id" or reserved(name)

        self._drop_header = drop_header

    def _note(self, request: web.Request, sub: str | None) -> None:
        """Who this request is, for the access log: the user's sub and a session fingerprint."""
        if sub is not None:
            request[USER_KEY] = str(sub)
        cookie = request.cookies.get(self._identity.cookie_name)
        if cookie:
            request[SESSION_KEY] = self._identity.sessions.fingerprint(cookie)

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        try:
            session = await self._identity.resolve(request)
        except (StoreUnavailable, RefreshUnavailable):
            return self._unavailable(request)
        if session is None:
            return self._unauthenticated(request)
        self._note(request, session.claims.get("sub"))
        add = self._headers.identity_headers(session.claims)
        rid = request.get(REQUEST_ID_KEY)
        if rid is not None:
            add.append((REQUEST_ID_HEADER, rid))
        return await self._forwarder.forward(
            request, add_headers=add, drop_header=self._drop_header
        )

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
        """nginx ``auth_request`` / Traefik forwardAuth: 200 with identity headers, or 401."""
        try:
            session = await self._identity.resolve(request)
        except (StoreUnavailable, RefreshUnavailable):
            # auth_request maps anything but 2xx/401/403 to a 500: fail closed, visibly.
            return web.Response(status=500, text="session store unavailable")
        if session is None:
            return web.Response(status=401, headers={"Cache-Control": "no-store"})
        self._note(request, session.claims.get("sub"))
        response = web.Response(status=200, headers={"Cache-Control": "no-store"})
        for name, value in self._check_headers.identity_headers(session.claims):
            response.headers[name] = value
        return response

    async def userinfo(self, request: web.Request) -> web.StreamResponse:
        """The signed-in user's claims as JSON; never tokens."""
        try:
            session = await self._identity.resolve(request)
        except (StoreUnavailable, RefreshUnavailable):
            return web.json_response({"error": "unavailable"}, status=503)
        if session is None:
            return web.json_response({"error": "unauthenticated"}, status=401)
        claims: dict[str, Any] = {k: v for k, v in session.claims.items() if k not in _TOKEN_CLAIMS}
        return web.json_response(claims, headers={"Cache-Control": "no-store"})
