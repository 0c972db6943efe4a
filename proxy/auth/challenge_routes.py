"""``/challenge`` (every Cognito challenge, one page per step) and ``/device`` (remember this
device?). Thin: load the server-side state → flow step → page or redirect."""

from __future__ import annotations

import logging

from aiohttp import web

from proxy.auth.challenges import step_for
from proxy.auth.completion import Completion
from proxy.auth.context import client_ip, context_data
from proxy.auth.flow import Authenticator, enter_challenge
from proxy.auth.kit import AuthKit
from proxy.auth.outcomes import (
    Blocked,
    Broken,
    Detour,
    NeedsChallenge,
    Rejected,
    Restart,
    Retry,
    SignedIn,
)
from proxy.auth.redirects import safe_return_path
from proxy.auth.state import LoginState
from proxy.observe import audit

log = logging.getLogger("proxy.auth")

# The second factors a remembered device can spare (flow.second_factor), each with its wording.
DEVICE_SPARES = frozenset({"SOFTWARE_TOKEN_MFA", "SMS_MFA", "EMAIL_OTP"})


class ChallengeRoutes:
    def __init__(
        self, kit: AuthKit, *, authenticator: Authenticator, completion: Completion
    ) -> None:
        self._kit = kit
        self._auth = authenticator
        self._completion = completion

    def register(self, router: web.UrlDispatcher) -> None:
        kit = self._kit
        kit.route(router, "GET", "challenge", self.page)
        kit.route(router, "POST", "challenge", self.submit)
        kit.route(router, "GET", "device", self.device_page)
        kit.route(router, "POST", "device", self.device_submit)

    def render_step(
        self,
        request: web.Request,
        state: LoginState,
        *,
        status: int = 200,
        error: str | None = None,
    ) -> web.Response:
        kit = self._kit
        step = step_for(state)
        if step is None:
            log.error("no page for Cognito challenge %s", state.challenge)
            return kit.error_page(request, 502, "error.unsupported_challenge")

        def t(key: str, **fmt: str) -> str:
            return kit.t(request, key, **fmt)

        error = error or state.retry_message
        if error and status == 200:
            status = 400
        template = step.template_for(state, kit.pages.has_template)
        context = step.context(state, t, kit.pages.branding.product_name)
        return kit.render(
            request,
            template,
            status=status,
            action=kit.action(request, "challenge"),
            csrf_token=state.csrf,
            error=t(error) if error else None,
            cancel_url=kit.action(request, "login"),
            **context,
        )

    async def page(self, request: web.Request) -> web.StreamResponse:
        kit = self._kit
        state = await kit.load_flow(request)
        if state is None or state.challenge is None:
            raise web.HTTPSeeOther(kit.action(request, "login"))
        prepared = await self._auth.prepare(state)
        if isinstance(prepared, Restart):
            return await kit.restart(request, prepared.message)
        if isinstance(prepared, Broken):
            return kit.error_page(request, prepared.status, prepared.message)
        if prepared and not await kit.save_flow(request, state):
            return await kit.restart(request, "error.flow_expired")
        return self.render_step(request, state)

    async def submit(self, request: web.Request) -> web.StreamResponse:
        kit = self._kit
        posted = await kit.flow_form(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        state, values = posted
        if state.challenge is None:
            raise web.HTTPSeeOther(kit.action(request, "login"))
        # A re-authentication (step-up) offers no remembered device: it would spare the very
        # second factor the user is asked to prove.
        device = (
            None
            if state.reauth_record is not None
            else await self._completion.remembered_device(
                request, state.typed_username or state.username or ""
            )
        )
        step = await self._auth.answer(state, values, context_data(request), device)
        log.info("challenge %s answered: %s", state.challenge, type(step).__name__)
        if isinstance(step, Retry):
            # before_answer may have moved the Cognito session on (MFA_SETUP): keep it.
            await kit.save_flow(request, state)
            return self.render_step(request, state, status=step.status, error=step.message)
        if isinstance(step, Restart):
            return await kit.restart(request, step.message)
        if isinstance(step, Blocked):
            log.warning("Cognito threat protection blocked a sign-in at %s", state.challenge)
            audit(
                "login.blocked",
                reason="threat_protection",
                challenge=state.challenge,
                ip=client_ip(request),
            )
        if isinstance(step, Broken | Rejected):
            return kit.error_page(request, step.status, step.message)
        if isinstance(step, Detour):
            return await kit.save_and_go(request, state, step.page)
        if isinstance(step, NeedsChallenge):
            enter_challenge(state, step, state.username or "")
            log.info("sign-in needs challenge %s", step.name)
            return await kit.save_and_go(request, state, "challenge")
        assert isinstance(step, SignedIn)
        return await self._completion.finish(request, state, step)

    # -- remember this device? ---------------------------------------------------------------

    async def device_page(self, request: web.Request) -> web.StreamResponse:
        kit = self._kit
        cookie = request.cookies.get(kit.cookies.session)
        return_to = safe_return_path(request.query.get("rd"))
        session = await kit.session(request)
        if session is None or not cookie or not request.cookies.get(kit.cookies.device):
            raise web.HTTPSeeOther(return_to)
        # Which second factor the device would spare: a word from our own list, or the
        # general wording (the parameter is only ever set by us, but is read as hostile).
        spares = request.query.get("spares", "")
        key = f"device.message.{spares}" if spares in DEVICE_SPARES else "device.message"
        return kit.render(
            request,
            "remember_device.html",
            action=kit.action(request, "device"),
            csrf_token=kit.session_token(cookie),
            return_to=return_to,
            message=kit.t(request, key),
        )

    async def device_submit(self, request: web.Request) -> web.StreamResponse:
        kit = self._kit
        posted = await kit.session_form(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        cookie, values = posted
        if cookie is None:
            return kit.error_page(request, 403, "error.csrf")
        return_to = safe_return_path(values.get("rd"))
        session = await kit.session(request)
        device_cookie = request.cookies.get(kit.cookies.device)
        devices = self._completion.devices
        if session is not None and device_cookie and values.get("remember") == "yes":
            assert devices is not None
            await devices.remember(session, device_cookie)
        raise web.HTTPSeeOther(return_to)
