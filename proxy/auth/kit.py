"""The shared toolkit of the auth handlers: rendering, our cookies, the pre-login state, the
one check every posted form goes through (``read_form``) and the one place a store outage
becomes the 503 page (``guarded``). Handler modules use this and never each other's insides.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from aiohttp import web

from proxy.auth import csrf
from proxy.auth.i18n import pick_language, translate
from proxy.auth.pages import Pages
from proxy.auth.prelogin import PreLoginTokens
from proxy.auth.redirects import safe_return_path
from proxy.auth.state import LoginState
from proxy.cookies import OurCookies
from proxy.sessions.sealed import SealedStore
from proxy.sessions.session import Session, SessionManager
from proxy.sessions.store import StoreUnavailable

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# An expired or foreign form is not a permission problem: "Forbidden" would tell the user they
# may not do what they were doing; the heading says the page was left open too long instead.
_HEADINGS = {"error.csrf": "error.csrf.heading"}


def form_values(form: Any) -> dict[str, str]:
    """The first string value of each posted field (files and repeats ignored)."""
    values: dict[str, str] = {}
    for key, value in form.items():
        if isinstance(value, str) and key not in values:
            values[key] = value
    return values


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


# Answers whose message says "try again": the page gets a button that does so.
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
# The page a POST-only route's answers lead back to (its own path has no GET: the language
# links and "Try again" of a page drawn for such a post go there).
PAGE_KEY = web.RequestKey("auth_page", str)


def retry_url(request: web.Request, status: int, key: str = "") -> str | None:
    """Where "Try again" goes: the same page (a form page's GET is a fresh form, with the same
    ?lang), or None when trying again cannot help. Read through safe_return_path: the path is
    the browser's."""
    if status not in RETRYABLE and key != "error.csrf":
        return None
    if request.method in ("GET", "HEAD"):
        return safe_return_path(request.raw_path)
    lang = request.query.get("lang")
    path = request.get(PAGE_KEY) or safe_return_path(request.path, default="")
    if not path:
        return None
    return path + (f"?{urlencode({'lang': lang})}" if lang in ("en", "ja") else "")


class AuthKit:
    def __init__(
        self,
        *,
        prefix: str,
        pages: Pages,
        sessions: SessionManager,
        flows: SealedStore,
        tokens: PreLoginTokens,
        cookies: OurCookies,
        csrf_key: bytes,
        login_timeout: float,
        body_timeout: float,
        remember: bool,
        password_mode: str,
    ) -> None:
        self.prefix = prefix
        self.pages = pages
        self.sessions = sessions
        self.flows = flows
        self._tokens = tokens
        self.cookies = cookies
        self._csrf_key = csrf_key
        self._login_timeout = login_timeout
        self._body_timeout = body_timeout
        self._remember = remember
        # "required", "optional" (CUSTOM_AUTH may run SRP first) or "none" (USER_AUTH asks
        # for the factor after the username).
        self.password_mode = password_mode

    # -- routes ------------------------------------------------------------------------------

    def route(
        self,
        router: web.UrlDispatcher,
        method: str,
        path: str,
        handler: Handler,
        *,
        page: str | None = None,
    ) -> None:
        """Register ``handler`` under the prefix, guarded against store outages. ``page``: the
        GET page a POST-only route belongs to (its answers' language links and "Try again")."""
        if page is not None:
            inner, back = handler, f"{self.prefix}/{page}"

            async def handler(request: web.Request) -> web.StreamResponse:
                request[PAGE_KEY] = back
                return await inner(request)

        router.add_route(method, f"{self.prefix}/{path}", self.guarded(handler))

    def guarded(self, handler: Handler) -> Handler:
        """The one place a store outage becomes the 503 page, for every handler of ours.
        Calls that may fail softly (remembered devices, attempt counters) catch it themselves."""

        @functools.wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except StoreUnavailable:
                return self.error_page(request, 503, "error.unavailable")

        return run

    # -- rendering ---------------------------------------------------------------------------

    def lang(self, request: web.Request) -> str:
        return pick_language(request.headers.get("Accept-Language"), request.query.get("lang"))

    def t(self, request: web.Request, key: str, **fmt: str) -> str:
        return translate(self.lang(request), key, **fmt)

    def render(
        self, request: web.Request, name: str, *, status: int = 200, **ctx: Any
    ) -> web.Response:
        lang = self.lang(request)
        page = request.get(PAGE_KEY)
        links = [
            (
                code,
                label,
                f"{page}?lang={code}" if page else str(request.rel_url.update_query(lang=code)),
            )
            for code, label in (("en", "English"), ("ja", "日本語"))
        ]
        return self.pages.render(name, lang=lang, status=status, lang_links=links, **ctx)

    def error_page(self, request: web.Request, status: int, key: str) -> web.Response:
        lang = self.lang(request)
        return self.render(
            request,
            "error.html",
            status=status,
            # A message with a heading of its own says what happened; else the status's name.
            heading=translate(lang, _HEADINGS.get(key, f"status.{status}")),
            message=translate(lang, key),
            retry_url=retry_url(request, status, key),
        )

    def action(self, request: web.Request, path: str) -> str:
        """Our URL for ``path``, keeping the page's explicit language choice."""
        lang = request.query.get("lang")
        return f"{self.prefix}/{path}" + (f"?{urlencode({'lang': lang})}" if lang else "")

    def login_form(
        self,
        request: web.Request,
        state: LoginState,
        *,
        status: int = 200,
        error: str | None = None,
        notice: str | None = None,
        username: str = "",
    ) -> web.Response:
        return self.render(
            request,
            "login.html",
            status=status,
            action=self.action(request, "login"),
            csrf_token=state.csrf,
            username=username,
            error=error,
            notice=notice,
            remember=self._remember,
            forgot_url=self.action(request, "forgot"),
            password_mode=self.password_mode,
        )

    # -- cookies -----------------------------------------------------------------------------

    def set_cookie(
        self, response: web.StreamResponse, name: str, value: str, max_age: int | None = None
    ) -> None:
        self.cookies.set(response, name, value, max_age)

    def clear_cookie(self, response: web.StreamResponse, name: str) -> None:
        self.cookies.clear(response, name)

    async def session(self, request: web.Request) -> Session | None:
        cookie = request.cookies.get(self.cookies.session)
        return await self.sessions.load(cookie) if cookie else None

    def session_token(self, cookie: str) -> str:
        """The CSRF token of forms bound to the session (logout, remember this device)."""
        return csrf.session_token(self._csrf_key, cookie)

    def bound_token(self, purpose: str, cookie: str, data: str) -> str:
        """A MAC tying ``data`` to this session cookie for ``purpose`` (csrf.bound_token)."""
        return csrf.bound_token(self._csrf_key, purpose, cookie, data)

    # -- the pre-login state -------------------------------------------------------------------

    async def load_flow(self, request: web.Request) -> LoginState | None:
        cookie = request.cookies.get(self.cookies.flow)
        if not cookie:
            return None
        if self._tokens.is_token(cookie):
            return self._tokens.read(cookie)
        raw = await self.flows.load(cookie)
        return LoginState.from_bytes(raw) if raw is not None else None

    async def new_flow(self, request: web.Request) -> tuple[LoginState, str]:
        """A fresh sign-in state for this request's ``rd``, and the cookie value holding it: a
        signed token, so that showing a form writes nothing to the store (prelogin.py)."""
        state = LoginState.new(safe_return_path(request.query.get("rd")))
        return state, self._tokens.issue(state)

    async def save_flow(self, request: web.Request, state: LoginState) -> bool:
        """Save the sign-in state; False when it expired meanwhile. Only a stored state can be
        saved in place: the steps that save this way (a challenge page, a resend) exist only
        after ``save_and_go`` stored it, so a token here means the sign-in is not where the
        page thinks (start again)."""
        cookie = request.cookies.get(self.cookies.flow, "")
        if self._tokens.is_token(cookie):
            return False
        return await self.flows.save(cookie, state.to_bytes(), self._login_timeout)

    async def delete_flow(self, request: web.Request) -> None:
        """End the pre-login state (a token has nothing stored to delete)."""
        cookie = request.cookies.get(self.cookies.flow, "")
        if not self._tokens.is_token(cookie):
            await self.flows.delete(cookie)

    async def restart(self, request: web.Request, message: str) -> web.StreamResponse:
        """The login form of a fresh sign-in, saying why the last one cannot go on."""
        state, cookie = await self.new_flow(request)
        response = self.login_form(request, state, status=400, error=self.t(request, message))
        self.set_cookie(response, self.cookies.flow, cookie)
        return response

    async def save_and_go(
        self, request: web.Request, state: LoginState, page: str
    ) -> web.StreamResponse:
        """Keep ``state`` for the next page and go there. The first such step of a sign-in
        (a form was posted, a challenge or a detour follows) stores it: the cookie becomes the
        sealed record's handle."""
        location = self.action(request, page)
        if self._tokens.is_token(request.cookies.get(self.cookies.flow, "")):
            cookie = await self.flows.create(state.to_bytes(), self._login_timeout)
            response = see_other(location)
            self.set_cookie(response, self.cookies.flow, cookie)
            return response
        if not await self.save_flow(request, state):
            return await self.restart(request, "error.flow_expired")
        raise web.HTTPSeeOther(location)

    # -- posted forms --------------------------------------------------------------------------

    async def read_form(
        self, request: web.Request, bound_to: Literal["flow", "session"]
    ) -> Posted | web.StreamResponse:
        """The one check of every form we accept: posted from our origin, a body that arrives
        in time, fits and parses, and the CSRF token of what it is bound to: the pre-login
        state (which must still exist) or the session cookie (when there is one)."""
        if not csrf.same_origin(request, https=self.cookies.secure):
            return self.error_page(request, 403, "error.csrf")
        try:
            async with asyncio.timeout(self._body_timeout):  # a slow client holds no slot long
                values = form_values(await request.post())
        except TimeoutError:
            response = self.error_page(request, 408, "error.bad_request")
            response.force_close()  # and no lingering read of the rest of a trickled body
            return response
        except web.HTTPRequestEntityTooLarge:
            return self.error_page(request, 413, "error.bad_request")
        except (ValueError, LookupError, web.HTTPException):
            # LookupError: a charset Python has no codec for (``charset=x-no-such-charset``);
            # ValueError covers bodies that do not decode in the charset they name.
            return self.error_page(request, 400, "error.bad_request")
        if bound_to == "session":
            cookie = request.cookies.get(self.cookies.session) or None
            if cookie is not None and not csrf.tokens_match(
                self.session_token(cookie), values.get("csrf")
            ):
                return self.error_page(request, 403, "error.csrf")
            return Posted(values, session_cookie=cookie)
        state = await self.load_flow(request)
        if state is None:
            # No (or an expired) sign-in in progress: start a fresh one, say why.
            return await self.restart(request, "error.flow_expired")
        if not csrf.tokens_match(state.csrf, values.get("csrf")):
            return self.error_page(request, 403, "error.csrf")
        return Posted(values, state=state)

    async def flow_form(
        self, request: web.Request
    ) -> tuple[LoginState, dict[str, str]] | web.StreamResponse:
        """``read_form`` for forms of a sign-in in progress."""
        posted = await self.read_form(request, "flow")
        if isinstance(posted, web.StreamResponse):
            return posted
        assert posted.state is not None
        return posted.state, posted.values

    async def session_form(
        self, request: web.Request
    ) -> tuple[str | None, dict[str, str]] | web.StreamResponse:
        """``read_form`` for forms of a signed-in browser: (its session cookie or None, form)."""
        posted = await self.read_form(request, "session")
        if isinstance(posted, web.StreamResponse):
            return posted
        return posted.session_cookie, posted.values


@dataclass(frozen=True)
class Posted:
    values: dict[str, str]
    state: LoginState | None = None  # bound to the pre-login state: the state it matched
    session_cookie: str | None = None  # bound to the session: the cookie it matched, if any
