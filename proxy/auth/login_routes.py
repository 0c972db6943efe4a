"""``/login``: the sign-in form and its post (username and password, or username first for
USER_AUTH). Thin: parse → regulation → flow step → page or redirect."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from urllib.parse import urlencode

from aiohttp import web

from proxy.auth.completion import Completion
from proxy.auth.context import client_ip, context_data
from proxy.auth.flow import Authenticator, enter_challenge
from proxy.auth.kit import AuthKit, see_other
from proxy.auth.outcomes import Blocked, Broken, Detour, NeedsChallenge, Rejected, SignedIn, Step
from proxy.auth.redirects import safe_return_path
from proxy.auth.regulation import Regulator
from proxy.auth.state import LoginState
from proxy.cognito.client import Device
from proxy.observe import audit
from proxy.sessions.session import Session
from proxy.sessions.store import StoreUnavailable

log = logging.getLogger("proxy.auth")

MAX_USERNAME = 128
MAX_PASSWORD = 256

_NOTICES = {
    "expired": "notice.session_expired",
    "signed_out": "notice.signed_out",
    "password_changed": "notice.password_changed",
    "confirmed": "notice.confirmed",
    "expired_post": "notice.expired_post",
    "post_lost": "notice.post_lost",
}


_REAUTH_NOTICES = {
    "account": "reauth.account",
    "post_lost": "reauth.post_lost",
}


class LoginRoutes:
    def __init__(
        self,
        kit: AuthKit,
        *,
        authenticator: Authenticator,
        completion: Completion,
        regulator: Regulator,
        remember: bool,
    ) -> None:
        self._kit = kit
        self._auth = authenticator
        self._completion = completion
        self._regulator = regulator
        self._remember = remember

    def register(self, router: web.UrlDispatcher) -> None:
        self._kit.route(router, "GET", "login", self.login_page)
        self._kit.route(router, "POST", "login", self.login_submit)
        self._kit.route(router, "GET", "reauth", self.reauth_page)
        self._kit.route(router, "POST", "reauth", self.reauth_submit)

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        kit = self._kit
        if await kit.session(request) is not None:
            raise web.HTTPSeeOther(safe_return_path(request.query.get("rd")))
        state, flow_cookie = await kit.new_flow(request)
        notice = _NOTICES.get(request.query.get("notice", ""))
        response = kit.login_form(request, state, notice=kit.t(request, notice) if notice else None)
        kit.set_cookie(response, kit.cookies.flow, flow_cookie)
        return response

    async def login_submit(self, request: web.Request) -> web.StreamResponse:
        kit = self._kit
        posted = await kit.flow_form(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        state, form = posted
        username = (form.get("username") or "").strip()
        password = form.get("password") or ""
        state.remember = self._remember and form.get("remember") == "1"
        if not username or (not password and kit.password_mode == "required"):  # noqa: S105
            return kit.login_form(
                request,
                state,
                status=400,
                error=kit.t(request, "error.missing_fields"),
                username=username[:MAX_USERNAME],
            )
        if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
            return kit.login_form(
                request, state, status=401, error=kit.t(request, "error.bad_credentials")
            )

        state.typed_username = username
        device = await self._completion.remembered_device(request, username)
        step = await self._regulated_sign_in(request, username, password, device, state)

        def again(status: int, error: str) -> web.Response:
            return kit.login_form(request, state, status=status, error=error, username=username)

        return await self._after_first_step(request, state, step, again)

    async def _after_first_step(
        self,
        request: web.Request,
        state: LoginState,
        step: Step,
        again: Callable[[int, str], web.Response],
    ) -> web.StreamResponse:
        """The first step's outcome as a page (``again``: the form with an error) or redirect."""
        kit = self._kit
        if isinstance(step, Blocked):
            log.warning("Cognito threat protection blocked a sign-in")
            audit("login.blocked", reason="threat_protection", ip=client_ip(request))
        if isinstance(step, Broken):
            return kit.error_page(request, step.status, step.message)
        if isinstance(step, Detour):
            state.username = step.username
            state.reason = "reset_required" if step.page == "forgot" else None
            return await kit.save_and_go(request, state, step.page)
        if isinstance(step, Rejected):
            reason = step.message.removeprefix("error.")
            audit("login.failure", reason=reason, ip=client_ip(request))
            response = again(step.status, kit.t(request, step.message))
            if step.retry_after is not None:
                response.headers["Retry-After"] = str(math.ceil(step.retry_after))
            return response
        if isinstance(step, NeedsChallenge):
            enter_challenge(state, step, state.typed_username or "")
            log.info("sign-in needs challenge %s", step.name)
            audit("login.challenge", challenge=step.name, ip=client_ip(request))
            return await kit.save_and_go(request, state, "challenge")
        assert isinstance(step, SignedIn)
        return await self._completion.finish(request, state, step)

    # -- confirm it's you (step-up) -------------------------------------------------------------

    async def _signed_in(self, request: web.Request) -> tuple[str, Session] | None:
        kit = self._kit
        cookie = request.cookies.get(kit.cookies.session)
        session = await kit.sessions.load(cookie) if cookie else None
        return None if cookie is None or session is None else (cookie, session)

    def _to_login(self, request: web.Request, return_to: str) -> web.Response:
        """Not signed in (any more): the ordinary login, then the same place (saying the session
        expired only to a browser that had one)."""
        query = {"rd": return_to}
        if self._kit.cookies.session in request.cookies:
            query["notice"] = "expired"
        if lang := request.query.get("lang"):
            query["lang"] = lang
        return see_other(f"{self._kit.prefix}/login?{urlencode(query)}")

    def _reauth_form(
        self,
        request: web.Request,
        state: LoginState,
        session: Session,
        *,
        mfa: bool,
        status: int = 200,
        error: str | None = None,
        notice: str | None = None,
    ) -> web.Response:
        kit = self._kit
        response = kit.render(
            request,
            "reauth.html",
            status=status,
            action=kit.action(request, "reauth"),
            csrf_token=state.csrf,
            user=session.claims.get("email") or session.username,
            error=error,
            notice=notice,
            mfa=mfa,
            password_mode=kit.password_mode,
            logout_url=kit.action(request, "logout"),
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def reauth_page(self, request: web.Request) -> web.StreamResponse:
        """ "Confirm it's you": the signed-in user signs in again (the same user: the name is
        the session's, never the form's) and comes back to ``rd``."""
        kit = self._kit
        signed_in = await self._signed_in(request)
        if signed_in is None:
            return self._to_login(request, safe_return_path(request.query.get("rd")))
        _, session = signed_in
        state, flow_cookie = await kit.new_flow(request)
        mfa = request.query.get("mfa") == "1"
        why = _REAUTH_NOTICES.get(request.query.get("notice", ""))
        if why is None:
            why = "reauth.mfa" if mfa else None
        notice = kit.t(request, why) if why else None
        response = self._reauth_form(request, state, session, mfa=mfa, notice=notice)
        kit.set_cookie(response, kit.cookies.flow, flow_cookie)
        return response

    async def reauth_submit(self, request: web.Request) -> web.StreamResponse:
        kit = self._kit
        posted = await kit.flow_form(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        form_state, form = posted
        signed_in = await self._signed_in(request)
        record = kit.sessions.record_hash(signed_in[0]) if signed_in else None
        if signed_in is None or record is None:
            return self._to_login(request, form_state.return_to)
        _, session = signed_in
        # A fresh state: nothing of another sign-in this flow cookie may have held (its
        # factors, its user) carries over. Whose session is renewed comes from the cookie.
        state = LoginState(
            csrf=form_state.csrf, return_to=form_state.return_to, started_at=time.time()
        )
        state.reauth_record, state.reauth_sub = record, session.sub
        state.reauth_mfa = form.get("mfa") == "1"
        state.remember = session.remember
        state.typed_username = session.username
        password = form.get("password") or ""

        def again(status: int, error: str) -> web.Response:
            if error == kit.t(request, "error.bad_credentials"):
                # No username was typed here (it is the session's own): only the password.
                error = kit.t(request, "reauth.wrong_password")
            return self._reauth_form(
                request, state, session, mfa=state.reauth_mfa, status=status, error=error
            )

        if not password and kit.password_mode == "required":  # noqa: S105
            return again(400, kit.t(request, "error.required_field"))
        if len(password) > MAX_PASSWORD:
            return again(401, kit.t(request, "error.bad_credentials"))
        # No remembered device: it would stand in for the second factor this is about.
        step = await self._regulated_sign_in(request, session.username, password, None, state)
        return await self._after_first_step(request, state, step, again)

    async def _regulated_sign_in(
        self,
        request: web.Request,
        username: str,
        password: str,
        device: Device | None,
        state: LoginState,
    ) -> Step:
        """The one door to Cognito's password check: banned names/addresses never reach it.
        Raises StoreUnavailable when the ban cannot be checked (fail closed)."""
        address = client_ip(request)
        wait = await self._regulator.banned(username, address)
        if wait is not None:
            return Rejected("error.too_many", 429, retry_after=wait)
        step = await self._auth.sign_in(username, password, context_data(request), device, state)
        try:
            if isinstance(step, Rejected) and step.message == "error.bad_credentials":
                await self._regulator.failed(username, address, user_id=step.user_id)
            elif isinstance(step, SignedIn):
                await self._regulator.succeeded(username)
        except StoreUnavailable:
            log.warning("could not record a sign-in attempt: session store unavailable")
        return step
