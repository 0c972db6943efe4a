"""``/challenge`` (every Cognito challenge, one page per step) and ``/device`` (remember this
device?). Thin: load the server-side state → flow step → page or redirect."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from proxy.auth import csrf
from proxy.auth.challenges import step_for
from proxy.auth.context import context_data
from proxy.auth.flow import (
    Broken,
    Detour,
    LoginState,
    NeedsChallenge,
    Rejected,
    Restart,
    Retry,
    SignedIn,
    enter_challenge,
)
from proxy.auth.i18n import translate
from proxy.auth.redirects import safe_return_path
from proxy.sessions.store import StoreUnavailable

if TYPE_CHECKING:
    from proxy.auth.routes import AuthRoutes

log = logging.getLogger("proxy.auth")


def form_values(form: Any) -> dict[str, str]:
    """The first string value of each posted field (files and repeats ignored)."""
    values: dict[str, str] = {}
    for key, value in form.items():
        if isinstance(value, str) and key not in values:
            values[key] = value
    return values


class ChallengeRoutes:
    def __init__(self, base: AuthRoutes) -> None:
        self.base = base

    def register(self, router: web.UrlDispatcher) -> None:
        p = self.base.prefix
        router.add_get(f"{p}/challenge", self.page)
        router.add_post(f"{p}/challenge", self.submit)
        router.add_get(f"{p}/device", self.device_page)
        router.add_post(f"{p}/device", self.device_submit)

    def render_step(
        self,
        request: web.Request,
        state: LoginState,
        *,
        status: int = 200,
        error: str | None = None,
    ) -> web.Response:
        base = self.base
        step = step_for(state)
        if step is None:
            log.error("no page for Cognito challenge %s", state.challenge)
            return base.error_page(request, 502, "error.unsupported_challenge")
        lang = base._lang(request)

        def t(key: str, **fmt: str) -> str:
            return translate(lang, key, **fmt)

        error = error or state.retry_message
        if error and status == 200:
            status = 400
        template = step.template_for(state, base._pages.has_template)
        context = step.context(state, t, base._pages.branding.product_name)
        return base.render(
            request,
            template,
            status=status,
            action=base._action(request, "challenge"),
            csrf_token=state.csrf,
            error=translate(lang, error) if error else None,
            cancel_url=base._action(request, "login"),
            **context,
        )

    async def _state(self, request: web.Request) -> LoginState | web.Response | None:
        try:
            return await self.base._load_flow(request)
        except StoreUnavailable:
            return self.base.error_page(request, 503, "error.unavailable")

    async def page(self, request: web.Request) -> web.StreamResponse:
        base = self.base
        state = await self._state(request)
        if isinstance(state, web.Response):
            return state
        if state is None or state.challenge is None:
            raise web.HTTPSeeOther(base._action(request, "login"))
        prepared = await base._auth.prepare(state)
        if isinstance(prepared, Restart):
            return await base._restart(request, prepared.message)
        if isinstance(prepared, Broken):
            return base.error_page(request, prepared.status, prepared.message)
        if prepared:
            try:
                if not await base.save_state(request, state):
                    return await base._restart(request, "error.flow_expired")
            except StoreUnavailable:
                return base.error_page(request, 503, "error.unavailable")
        return self.render_step(request, state)

    async def submit(self, request: web.Request) -> web.StreamResponse:
        base = self.base
        if not csrf.same_origin(request):
            return base.error_page(request, 403, "error.csrf")
        form = await base._form(request)
        if isinstance(form, web.Response):
            return form
        state = await self._state(request)
        if isinstance(state, web.Response):
            return state
        if state is None:
            return await base._restart(request, "error.flow_expired")
        if not csrf.tokens_match(
            state.csrf, form.get("csrf") if isinstance(form.get("csrf"), str) else None
        ):
            return base.error_page(request, 403, "error.csrf")
        if state.challenge is None:
            raise web.HTTPSeeOther(base._action(request, "login"))
        values: Mapping[str, str] = form_values(form)
        device = await base.remembered_device(request, state.typed_username or state.username or "")
        step = await base._auth.answer(state, values, context_data(request), device)
        log.info("challenge %s answered: %s", state.challenge, type(step).__name__)
        if isinstance(step, Retry):
            # before_answer may have moved the Cognito session on (MFA_SETUP): keep it.
            try:
                await base.save_state(request, state)
            except StoreUnavailable:
                return base.error_page(request, 503, "error.unavailable")
            return self.render_step(request, state, status=step.status, error=step.message)
        if isinstance(step, Restart):
            return await base._restart(request, step.message)
        if isinstance(step, Broken | Rejected):
            return base.error_page(request, step.status, step.message)
        if isinstance(step, Detour):
            return await base.save_and_go(request, state, step.page)
        if isinstance(step, NeedsChallenge):
            enter_challenge(state, step, state.username or "")
            log.info("sign-in needs challenge %s", step.name)
            return await base.save_and_go(request, state, "challenge")
        assert isinstance(step, SignedIn)
        return await base.finish(request, state, step)

    # -- remember this device? ---------------------------------------------------------------

    async def device_page(self, request: web.Request) -> web.StreamResponse:
        base = self.base
        cookie = request.cookies.get(base._cookies.session)
        return_to = safe_return_path(request.query.get("rd"))
        try:
            session = await base._session(request)
        except StoreUnavailable:
            return base.error_page(request, 503, "error.unavailable")
        if session is None or not cookie or not request.cookies.get(base._cookies.device):
            raise web.HTTPSeeOther(return_to)
        return base.render(
            request,
            "remember_device.html",
            action=base._action(request, "device"),
            csrf_token=csrf.session_token(base._csrf_key, cookie),
            return_to=return_to,
        )

    async def device_submit(self, request: web.Request) -> web.StreamResponse:
        base = self.base
        if not csrf.same_origin(request):
            return base.error_page(request, 403, "error.csrf")
        form = await base._form(request)
        if isinstance(form, web.Response):
            return form
        values = form_values(form)
        return_to = safe_return_path(values.get("rd"))
        cookie = request.cookies.get(base._cookies.session)
        device_cookie = request.cookies.get(base._cookies.device)
        if not cookie or not csrf.tokens_match(
            csrf.session_token(base._csrf_key, cookie), values.get("csrf")
        ):
            return base.error_page(request, 403, "error.csrf")
        try:
            session = await base._session(request)
        except StoreUnavailable:
            return base.error_page(request, 503, "error.unavailable")
        if session is not None and device_cookie and values.get("remember") == "yes":
            assert base.devices is not None
            try:
                await base.devices.remember(session, device_cookie)
            except StoreUnavailable:
                return base.error_page(request, 503, "error.unavailable")
        raise web.HTTPSeeOther(return_to)
