"""What happens on every proxied request: session → identity → decision → forward.

Decisions: a live session is forwarded with identity headers; otherwise a browser navigation is
sent to the login page (and back afterwards); a top-level form POST is sent there too, told that
the form was not sent, and returned to the page that held the form; anything else (XHR, JSON,
other non-GET) gets a 401 JSON body. A store or Cognito outage fails closed with 503 and keeps
the cookie: a blip must not sign anyone out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from proxy.forward import Forwarder
from proxy.gate.headers import HeaderPlan, without_cookies
from proxy.gate.identity import Identity, RefreshUnavailable
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
    ) -> None:
        self._identity = identity
        self._forwarder = forwarder
        self._headers = headers
        self._check_headers = check_headers
        self._login_path = login_path
        self._error_page = error_page
        self._own_cookies = own_cookies

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        try:
            session = await self._identity.resolve(request)
        except (StoreUnavailable, RefreshUnavailable):
            return self._unavailable(request)
        if session is None:
            return self._unauthenticated(request)
        add_headers = self._headers.identity_headers(session.claims)
        drop_header: Callable[[str], bool] = self._headers.is_reserved
        cookies = request.headers.getall("Cookie", ())
        if cookies:
            # Our cookies stay between the browser and us; the app gets only its own.
            drop_header = self._drop_reserved_and_cookie
            kept = without_cookies(cookies, self._own_cookies)
            if kept is not None:
                add_headers.append(("Cookie", kept))
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
        if is_form_navigation(request):
            return self._form_not_sent(request)
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

    async def check(self, request: web.Request) -> web.StreamResponse:
        """nginx ``auth_request`` / Traefik forwardAuth: 200 with identity headers, or 401."""
        try:
            session = await self._identity.resolve(request)
        except (StoreUnavailable, RefreshUnavailable):
            # auth_request maps anything but 2xx/401/403 to a 500: fail closed, visibly.
            return web.Response(status=500, text="session store unavailable")
        if session is None:
            return web.Response(status=401, headers={"Cache-Control": "no-store"})
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
