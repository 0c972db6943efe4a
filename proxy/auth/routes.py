"""Handlers under the auth prefix: parse → flow step → page or redirect. Thin on purpose."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from proxy.auth import csrf
from proxy.auth.flow import Authenticator, LoginState, NeedsChallenge, Rejected, SignedIn
from proxy.auth.i18n import pick_language, translate
from proxy.auth.pages import Pages, static_dir
from proxy.auth.redirects import safe_return_path
from proxy.cognito.client import CognitoClient, ContextData
from proxy.cognito.errors import CognitoError
from proxy.sessions.sealed import SealedStore
from proxy.sessions.session import Session, SessionManager
from proxy.sessions.store import StoreUnavailable

log = logging.getLogger("proxy.auth")

MAX_USERNAME = 128
MAX_PASSWORD = 256
# Forwarded to Cognito's threat protection; never Cookie or Authorization.
_CONTEXT_HEADERS = ("User-Agent", "Accept-Language", "Accept", "Referer")


@dataclass(frozen=True)
class CookieNames:
    session: str
    flow: str
    secure: bool


class AuthRoutes:
    def __init__(
        self,
        *,
        prefix: str,
        pages: Pages,
        sessions: SessionManager,
        flows: SealedStore,
        authenticator: Authenticator,
        cognito: CognitoClient,
        cookies: CookieNames,
        csrf_key: bytes,
        login_timeout: float,
    ) -> None:
        self.prefix = prefix
        self._pages = pages
        self._sessions = sessions
        self._flows = flows
        self._auth = authenticator
        self._cognito = cognito
        self._cookies = cookies
        self._csrf_key = csrf_key
        self._login_timeout = login_timeout

    def register(self, router: web.UrlDispatcher) -> None:
        p = self.prefix
        router.add_get(f"{p}/login", self.login_page)
        router.add_post(f"{p}/login", self.login_submit)
        router.add_get(f"{p}/challenge", self.challenge_page)
        router.add_get(f"{p}/logout", self.logout_page)
        router.add_post(f"{p}/logout", self.logout_submit)
        router.add_get(f"{p}/static/brand.css", self.brand_css)
        router.add_static(f"{p}/static", static_dir(), append_version=False)

    # -- rendering helpers -----------------------------------------------------------------

    def _lang(self, request: web.Request) -> str:
        return pick_language(request.headers.get("Accept-Language"), request.query.get("lang"))

    def render(
        self, request: web.Request, name: str, *, status: int = 200, **ctx: Any
    ) -> web.Response:
        lang = self._lang(request)
        links = [
            (code, label, str(request.rel_url.update_query(lang=code)))
            for code, label in (("en", "English"), ("ja", "日本語"))
        ]
        return self._pages.render(name, lang=lang, status=status, lang_links=links, **ctx)

    def error_page(self, request: web.Request, status: int, key: str) -> web.Response:
        lang = self._lang(request)
        return self.render(
            request,
            "error.html",
            status=status,
            heading=translate(lang, f"status.{status}"),
            message=translate(lang, key),
            retry_url=None,
        )

    def _set_cookie(self, response: web.StreamResponse, name: str, value: str) -> None:
        response.set_cookie(
            name, value, path="/", secure=self._cookies.secure, httponly=True, samesite="Lax"
        )

    def _clear_cookie(self, response: web.StreamResponse, name: str) -> None:
        response.del_cookie(
            name, path="/", secure=self._cookies.secure, httponly=True, samesite="Lax"
        )

    def _action(self, request: web.Request, path: str) -> str:
        lang = request.query.get("lang")
        return f"{self.prefix}/{path}" + (f"?{urlencode({'lang': lang})}" if lang else "")

    async def _session(self, request: web.Request) -> Session | None:
        cookie = request.cookies.get(self._cookies.session)
        return await self._sessions.load(cookie) if cookie else None

    async def _end_session(self, cookie: str) -> None:
        session = await self._sessions.load(cookie)
        await self._sessions.delete(cookie)
        if session is not None and session.refresh_token:
            # Revocation makes the refresh token useless even if it leaked from a store dump.
            try:
                await self._cognito.revoke(session.refresh_token)
            except CognitoError as exc:
                log.warning("refresh token revocation failed: %s", exc.code)
        log.info("signed out session=%s", self._sessions.fingerprint(cookie))

    async def _form(self, request: web.Request) -> MultiDictProxy[str | Any] | web.Response:
        """The posted form, or the error page to answer with (413 past the size cap)."""
        try:
            return await request.post()
        except web.HTTPRequestEntityTooLarge:
            return self.error_page(request, 413, "error.bad_request")
        except (ValueError, web.HTTPException):
            return self.error_page(request, 400, "error.bad_request")

    # -- login -------------------------------------------------------------------------------

    async def _load_flow(self, request: web.Request) -> LoginState | None:
        cookie = request.cookies.get(self._cookies.flow)
        if not cookie:
            return None
        raw = await self._flows.load(cookie)
        return LoginState.from_bytes(raw) if raw is not None else None

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        return_to = safe_return_path(request.query.get("rd"))
        try:
            if await self._session(request) is not None:
                raise web.HTTPSeeOther(return_to)
            state = LoginState.new(return_to)
            flow_cookie = await self._flows.create(state.to_bytes(), self._login_timeout)
        except StoreUnavailable:
            return self.error_page(request, 503, "error.unavailable")
        notice = {
            "expired": "notice.session_expired",
            "signed_out": "notice.signed_out",
            "expired_post": "notice.expired_post",
            "post_lost": "notice.post_lost",
        }.get(request.query.get("notice", ""))
        lang = self._lang(request)
        response = self._login_form(
            request, state, notice=translate(lang, notice) if notice else None
        )
        self._set_cookie(response, self._cookies.flow, flow_cookie)
        return response

    def _login_form(
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
            action=self._action(request, "login"),
            csrf_token=state.csrf,
            username=username,
            error=error,
            notice=notice,
            forgot_url=None,
        )

    async def login_submit(self, request: web.Request) -> web.StreamResponse:
        lang = self._lang(request)
        if not csrf.same_origin(request):
            return self.error_page(request, 403, "error.csrf")
        form = await self._form(request)
        if isinstance(form, web.Response):
            return form
        try:
            state = await self._load_flow(request)
        except StoreUnavailable:
            return self.error_page(request, 503, "error.unavailable")
        if state is None:
            # No (or an expired) sign-in in progress: start a fresh one, say why.
            return await self._restart(request, "error.flow_expired")
        if not csrf.tokens_match(state.csrf, _field(form, "csrf")):
            return self.error_page(request, 403, "error.csrf")

        username = (_field(form, "username") or "").strip()
        password = _field(form, "password") or ""
        if not username or not password:
            return self._login_form(
                request,
                state,
                status=400,
                error=translate(lang, "error.missing_fields"),
                username=username[:MAX_USERNAME],
            )
        if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
            return self._login_form(
                request, state, status=401, error=translate(lang, "error.bad_credentials")
            )

        step = await self._auth.sign_in(username, password, _context(request))
        if isinstance(step, Rejected):
            return self._login_form(
                request,
                state,
                status=step.status,
                error=translate(lang, step.message),
                username=username,
            )
        if isinstance(step, NeedsChallenge):
            # The full challenge loop (MFA, new password, ...) builds on this state.
            state.username = username
            state.challenge = step.name
            state.cognito_session = step.cognito_session
            state.parameters = step.parameters
            log.info("sign-in needs challenge %s", step.name)
            return await self._save_and_go(request, state, "challenge")
        assert isinstance(step, SignedIn)
        return await self._finish(request, state, step)

    async def _restart(self, request: web.Request, message: str) -> web.StreamResponse:
        state = LoginState.new(safe_return_path(request.query.get("rd")))
        try:
            flow_cookie = await self._flows.create(state.to_bytes(), self._login_timeout)
        except StoreUnavailable:
            return self.error_page(request, 503, "error.unavailable")
        response = self._login_form(
            request, state, status=400, error=translate(self._lang(request), message)
        )
        self._set_cookie(response, self._cookies.flow, flow_cookie)
        return response

    async def _save_and_go(
        self, request: web.Request, state: LoginState, page: str
    ) -> web.StreamResponse:
        cookie = request.cookies.get(self._cookies.flow, "")
        try:
            saved = await self._flows.save(cookie, state.to_bytes(), self._login_timeout)
        except StoreUnavailable:
            return self.error_page(request, 503, "error.unavailable")
        if not saved:
            return await self._restart(request, "error.flow_expired")
        raise web.HTTPSeeOther(self._action(request, page))

    async def _finish(
        self, request: web.Request, state: LoginState, step: SignedIn
    ) -> web.StreamResponse:
        try:
            session_cookie = await self._sessions.create(step.session)
            await self._flows.delete(request.cookies.get(self._cookies.flow, ""))
            old = request.cookies.get(self._cookies.session)
            if old:
                await self._sessions.delete(old)  # no fixation: a fresh id each login
        except StoreUnavailable:
            return self.error_page(request, 503, "error.unavailable")
        log.info("sign-in succeeded session=%s", self._sessions.fingerprint(session_cookie))
        response = _see_other(state.return_to)
        self._set_cookie(response, self._cookies.session, session_cookie)
        self._clear_cookie(response, self._cookies.flow)
        return response

    async def challenge_page(self, request: web.Request) -> web.StreamResponse:
        try:
            state = await self._load_flow(request)
        except StoreUnavailable:
            return self.error_page(request, 503, "error.unavailable")
        if state is None or state.challenge is None:
            raise web.HTTPSeeOther(self._action(request, "login"))
        log.warning("challenge %s has no page yet", state.challenge)
        return self.error_page(request, 501, "challenge.unsupported")

    # -- logout ------------------------------------------------------------------------------

    async def logout_page(self, request: web.Request) -> web.StreamResponse:
        # A GET never signs anyone out: it shows a form that POSTs back here.
        cookie = request.cookies.get(self._cookies.session)
        try:
            session = await self._session(request)
        except StoreUnavailable:
            return self.error_page(request, 503, "error.unavailable")
        if session is None or not cookie:
            raise web.HTTPSeeOther(f"{self.prefix}/login?notice=signed_out")
        return self.render(
            request,
            "logout.html",
            action=self._action(request, "logout"),
            csrf_token=csrf.session_token(self._csrf_key, cookie),
            user=session.claims.get("email") or session.username,
        )

    async def logout_submit(self, request: web.Request) -> web.StreamResponse:
        if not csrf.same_origin(request):
            return self.error_page(request, 403, "error.csrf")
        form = await self._form(request)
        if isinstance(form, web.Response):
            return form
        cookie = request.cookies.get(self._cookies.session)
        if cookie:
            expected = csrf.session_token(self._csrf_key, cookie)
            if not csrf.tokens_match(expected, _field(form, "csrf")):
                return self.error_page(request, 403, "error.csrf")
            try:
                await self._end_session(cookie)
            except StoreUnavailable:
                return self.error_page(request, 503, "error.unavailable")
        response = _see_other(f"{self.prefix}/login?notice=signed_out")
        self._clear_cookie(response, self._cookies.session)
        response.headers["Clear-Site-Data"] = '"cookies"'
        return response

    async def brand_css(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text=self._pages.brand_css(),
            content_type="text/css",
            headers={"Cache-Control": "public, max-age=300"},
        )


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _context(request: web.Request) -> ContextData:
    return ContextData(
        ip_address=request.remote or "",
        server_name=request.host,
        server_path=request.path,
        headers=tuple((h, request.headers[h]) for h in _CONTEXT_HEADERS if h in request.headers),
    )
