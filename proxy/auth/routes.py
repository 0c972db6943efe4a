"""Handlers under the auth prefix: parse → flow step → page or redirect. Thin on purpose."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from proxy.auth import csrf
from proxy.auth.challenge_routes import ChallengeRoutes
from proxy.auth.context import client_ip, context_data
from proxy.auth.devices import DeviceStore
from proxy.auth.flow import (
    MFA_CHALLENGES,
    Authenticator,
    Broken,
    Detour,
    LoginState,
    NeedsChallenge,
    Rejected,
    SignedIn,
    Step,
    enter_challenge,
)
from proxy.auth.i18n import pick_language, translate
from proxy.auth.pages import Pages, static_dir
from proxy.auth.recovery_routes import RecoveryRoutes
from proxy.auth.redirects import safe_return_path
from proxy.auth.regulation import Regulator
from proxy.cognito.client import CognitoClient, Device
from proxy.cognito.errors import CognitoError
from proxy.observe import audit
from proxy.sessions.sealed import SealedStore
from proxy.sessions.session import Session, SessionManager
from proxy.sessions.store import StoreUnavailable

log = logging.getLogger("proxy.auth")

MAX_USERNAME = 128
MAX_PASSWORD = 256


@dataclass(frozen=True)
class CookieNames:
    session: str
    flow: str
    secure: bool
    device: str = "gate-device"


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
        allowed_redirect_origins: Collection[str] = (),
        remember_lifetime: float = 0.0,
        regulator: Regulator,
        body_timeout: float = 15.0,
        devices: DeviceStore | None = None,
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
        self._allowed_origins = tuple(allowed_redirect_origins)
        self._remember_lifetime = remember_lifetime
        self._regulator = regulator
        self._body_timeout = body_timeout
        self.devices = devices
        # USER_AUTH asks for the factor after the username; CUSTOM_AUTH may run SRP first.
        self._password_mode = {"USER_AUTH": "none", "CUSTOM_AUTH": "optional"}.get(
            cognito.auth_flow, "required"
        )

    @property
    def cookies_secure(self) -> bool:
        """Served over HTTPS (possibly TLS-terminated in front): decides the Origin we expect."""
        return self._cookies.secure

    def register(self, router: web.UrlDispatcher) -> None:
        p = self.prefix
        router.add_get(f"{p}/login", self.login_page)
        router.add_post(f"{p}/login", self.login_submit)
        # The challenge loop, account recovery and confirmation live in their own modules.
        ChallengeRoutes(self).register(router)
        RecoveryRoutes(self).register(router)
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

    def _set_cookie(
        self, response: web.StreamResponse, name: str, value: str, max_age: int | None = None
    ) -> None:
        # A session cookie (no Max-Age) unless the user asked to stay signed in.
        response.set_cookie(
            name,
            value,
            path="/",
            secure=self._cookies.secure,
            httponly=True,
            samesite="Lax",
            max_age=max_age,
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

    async def _end_session(self, cookie: str, *, everywhere: bool = False) -> None:
        session = await self._sessions.load(cookie)
        if session is None:
            await self._sessions.delete(cookie)
            return
        if everywhere:
            # Every session of this user in the shared store, on every replica; and at Cognito
            # every refresh token of the user (other apps' too). Local ends first: they do
            # not depend on Cognito answering.
            await self._sessions.end_all(session.sub)
            await self._sessions.delete(cookie, session)
            try:
                await self._cognito.global_sign_out(await self._live_access_token(session))
                log.info("signed out everywhere session=%s", self._sessions.fingerprint(cookie))
                return
            except CognitoError as exc:
                log.warning("GlobalSignOut failed (%s); revoking this session's token", exc.code)
        else:
            await self._sessions.delete(cookie, session)
        if session.refresh_token:
            # Revocation makes the refresh token useless even if it leaked from a store dump.
            try:
                await self._cognito.revoke(session.refresh_token)
            except CognitoError as exc:
                log.warning("refresh token revocation failed: %s", exc.code)
        log.info("signed out session=%s", self._sessions.fingerprint(cookie))
        audit(
            "logout",
            user=session.claims.get("sub") if session is not None else None,
            session=self._sessions.fingerprint(cookie),
        )

    async def _live_access_token(self, session: Session) -> str:
        """GlobalSignOut needs an unexpired access token; an idle session's may have expired."""
        if session.expires_at > time.time() + 30 or not session.refresh_token:
            return session.access_token
        tokens = await self._cognito.refresh(session.refresh_token, session.username)
        return tokens.access_token

    async def _form(self, request: web.Request) -> MultiDictProxy[str | Any] | web.Response:
        """The posted form, or the error page to answer with (413 past the size cap)."""
        try:
            async with asyncio.timeout(self._body_timeout):  # a slow client holds no slot long
                return await request.post()
        except TimeoutError:
            response = self.error_page(request, 408, "error.bad_request")
            response.force_close()  # and no lingering read of the rest of a trickled body
            return response
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
            "password_changed": "notice.password_changed",
            "confirmed": "notice.confirmed",
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
            remember=bool(self._remember_lifetime),
            forgot_url=self._action(request, "forgot"),
            password_mode=self._password_mode,
        )

    async def login_submit(self, request: web.Request) -> web.StreamResponse:
        lang = self._lang(request)
        if not csrf.same_origin(request, https=self._cookies.secure):
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
        state.remember = bool(self._remember_lifetime) and _field(form, "remember") == "1"
        if not username or (not password and self._password_mode == "required"):  # noqa: S105
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

        state.typed_username = username
        device = await self.remembered_device(request, username)
        step = await self._regulated_sign_in(request, username, password, device)
        if isinstance(step, web.Response):
            return step
        if isinstance(step, Broken):
            return self.error_page(request, step.status, step.message)
        if isinstance(step, Detour):
            state.username = step.username
            state.reason = "reset_required" if step.page == "forgot" else None
            return await self.save_and_go(request, state, step.page)
        if isinstance(step, Rejected):
            reason = step.message.removeprefix("error.")
            audit("login.failure", reason=reason, ip=client_ip(request))
            response = self._login_form(
                request,
                state,
                status=step.status,
                error=translate(lang, step.message),
                username=username,
            )
            if step.retry_after is not None:
                response.headers["Retry-After"] = str(math.ceil(step.retry_after))
            return response
        if isinstance(step, NeedsChallenge):
            enter_challenge(state, step, username)
            log.info("sign-in needs challenge %s", step.name)
            audit("login.challenge", challenge=step.name, ip=client_ip(request))
            return await self.save_and_go(request, state, "challenge")
        assert isinstance(step, SignedIn)
        return await self.finish(request, state, step)

    async def remembered_device(self, request: web.Request, username: str) -> Device | None:
        """The device this browser confirmed for ``username`` earlier, if any."""
        if self.devices is None:
            return None
        cookie = request.cookies.get(self._cookies.device)
        if not cookie:
            return None
        try:
            return await self.devices.load(cookie, username)
        except StoreUnavailable:
            return None  # no device: Cognito asks for MFA, which still signs the user in

    async def _regulated_sign_in(
        self, request: web.Request, username: str, password: str, device: Device | None
    ) -> Step | web.Response:
        """The one door to Cognito's password check: banned names/addresses never reach it."""
        address = client_ip(request)
        try:
            wait = await self._regulator.banned(username, address)
        except StoreUnavailable:
            return self.error_page(request, 503, "error.unavailable")
        if wait is not None:
            return Rejected("error.too_many", 429, retry_after=wait)
        step = await self._auth.sign_in(username, password, context_data(request), device)
        try:
            if isinstance(step, Rejected) and step.message == "error.bad_credentials":
                await self._regulator.failed(username, address, user_id=step.user_id)
            elif isinstance(step, SignedIn):
                await self._regulator.succeeded(username)
        except StoreUnavailable:
            log.warning("could not record a sign-in attempt: session store unavailable")
        return step

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

    async def save_state(self, request: web.Request, state: LoginState) -> bool:
        """Save the sign-in state; False when it expired meanwhile (raises StoreUnavailable)."""
        cookie = request.cookies.get(self._cookies.flow, "")
        return await self._flows.save(cookie, state.to_bytes(), self._login_timeout)

    async def save_and_go(
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

    async def finish(
        self, request: web.Request, state: LoginState, step: SignedIn
    ) -> web.StreamResponse:
        step.session.remember = state.remember
        location = state.return_to
        device_cookie = None
        if step.new_device is not None and self.devices is not None:
            # Confirm every device Cognito tracks (its refresh tokens need the device key);
            # offer to remember it only after a second factor, which it then stands in for.
            device_cookie, ask = await self.devices.confirm(
                step.session, step.new_device, state, request.headers.get("User-Agent", "")
            )
            if device_cookie is not None:
                step.session.device_key = step.new_device.device_key
            if ask and (state.mfa_done or state.challenge in MFA_CHALLENGES):
                # Cognito remembers this device only with the user's consent: ask first.
                location = f"{self.prefix}/device?" + urlencode(
                    {
                        "rd": state.return_to,
                        **({"lang": lang} if (lang := request.query.get("lang")) else {}),
                    }
                )
        try:
            session_cookie = await self._sessions.create(step.session)
            await self._flows.delete(request.cookies.get(self._cookies.flow, ""))
            old = request.cookies.get(self._cookies.session)
            if old:
                await self._sessions.delete(old)  # no fixation: a fresh id each login
        except StoreUnavailable:
            return self.error_page(request, 503, "error.unavailable")
        log.info("sign-in succeeded session=%s", self._sessions.fingerprint(session_cookie))
        audit(
            "login.success",
            user=step.session.claims.get("sub"),
            session=self._sessions.fingerprint(session_cookie),
            ip=client_ip(request),
        )
        response = _see_other(location)
        max_age = int(self._remember_lifetime) if state.remember else None
        self._set_cookie(response, self._cookies.session, session_cookie, max_age)
        self._clear_cookie(response, self._cookies.flow)
        if device_cookie is not None and self.devices is not None:
            response.set_cookie(
                self._cookies.device,
                device_cookie,
                path="/",
                secure=self._cookies.secure,
                httponly=True,
                samesite="Lax",
                max_age=int(self.devices.lifetime),
            )
        return response

    # -- logout ------------------------------------------------------------------------------

    async def logout_page(self, request: web.Request) -> web.StreamResponse:
        # A GET never signs anyone out: it shows a form that POSTs back here.
        cookie = request.cookies.get(self._cookies.session)
        try:
            session = await self._session(request)
        except StoreUnavailable:
            return self.error_page(request, 503, "error.unavailable")
        if session is None or not cookie:
            raise web.HTTPSeeOther(self._after_logout(request.query.get("rd")))
        return self.render(
            request,
            "logout.html",
            action=self._action(request, "logout"),
            csrf_token=csrf.session_token(self._csrf_key, cookie),
            user=session.claims.get("email") or session.username,
            rd=request.query.get("rd", "")[:2048],
        )

    def _after_logout(self, rd: str | None) -> str:
        """Where a signed-out browser goes: a validated ``rd``, else the login page."""
        return safe_return_path(
            rd,
            default=f"{self.prefix}/login?notice=signed_out",
            allowed_origins=self._allowed_origins,
        )

    async def logout_submit(self, request: web.Request) -> web.StreamResponse:
        if not csrf.same_origin(request, https=self._cookies.secure):
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
                await self._end_session(cookie, everywhere=_field(form, "everywhere") == "1")
            except StoreUnavailable:
                return self.error_page(request, 503, "error.unavailable")
        response = _see_other(self._after_logout(_field(form, "rd") or request.query.get("rd")))
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
