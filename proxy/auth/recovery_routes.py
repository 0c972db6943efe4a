"""Forgot password (ForgotPassword → ConfirmForgotPassword) and confirm sign-up
(ConfirmSignUp, ResendConfirmationCode), bound to the same server-side pre-login state as the
sign-in: the username sent to Cognito is the stored one, never a form field on later steps.

No user enumeration: asking for a reset code looks the same whether or not the account exists.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web

from proxy.auth.challenges import (
    Invalid,
    clean_code,
    code_field,
    new_password_from,
    password_fields,
)
from proxy.auth.context import context_data
from proxy.auth.kit import AuthKit
from proxy.auth.messages import code_failure
from proxy.auth.state import LoginState
from proxy.cognito import errors
from proxy.cognito.client import CognitoClient
from proxy.sessions.store import StoreUnavailable

log = logging.getLogger("proxy.auth")

MAX_USERNAME = 128


class RecoveryRoutes:
    def __init__(self, kit: AuthKit, *, cognito: CognitoClient) -> None:
        self._kit = kit
        self._cognito = cognito

    def register(self, router: web.UrlDispatcher) -> None:
        kit = self._kit
        kit.route(router, "GET", "forgot", self.forgot_page)
        kit.route(router, "POST", "forgot", self.forgot_submit)
        kit.route(router, "GET", "forgot/confirm", self.reset_page)
        kit.route(router, "POST", "forgot/confirm", self.reset_submit)
        kit.route(router, "GET", "confirm", self.confirm_page)
        kit.route(router, "POST", "confirm", self.confirm_submit)

    # -- helpers -------------------------------------------------------------------------------

    def _t(self, request: web.Request, key: str, **fmt: str) -> str:
        return self._kit.t(request, key, **fmt)

    async def _state(self, request: web.Request) -> LoginState | web.StreamResponse:
        """The pre-login state, or a fresh sign-in when it expired."""
        state = await self._kit.load_flow(request)
        return (
            state if state is not None else await self._kit.restart(request, "error.flow_expired")
        )

    def _page(
        self,
        request: web.Request,
        template: str,
        state: LoginState,
        *,
        status: int = 200,
        error: str | None = None,
        notice: str | None = None,
        **ctx: Any,
    ) -> web.Response:
        kit = self._kit
        return kit.render(
            request,
            template,
            status=status,
            csrf_token=state.csrf,
            error=self._t(request, error) if error else None,
            notice=self._t(request, notice, destination=state.code_destination or "")
            if notice
            else None,
            login_url=kit.action(request, "login"),
            **ctx,
        )

    # -- forgot password -----------------------------------------------------------------------

    async def forgot_page(self, request: web.Request) -> web.StreamResponse:
        kit = self._kit
        state = await kit.load_flow(request)
        cookie = None
        if state is None:
            state, cookie = await kit.new_flow(request)
        # Sent here by PasswordResetRequiredException at sign-in: say why.
        notice = "error.password_reset_required" if state.reason == "reset_required" else None
        response = self._forgot_form(request, state, notice=notice)
        if cookie is not None:
            kit.set_cookie(response, kit.cookies.flow, cookie)
        return response

    def _forgot_form(
        self, request: web.Request, state: LoginState, *, status: int = 200, **kw: Any
    ) -> web.Response:
        return self._page(
            request,
            "forgot.html",
            state,
            status=status,
            action=self._kit.action(request, "forgot"),
            username=state.username or "",
            **kw,
        )

    async def forgot_submit(self, request: web.Request) -> web.StreamResponse:
        posted = await self._kit.flow_form(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        state, values = posted
        username = (values.get("username") or "").strip()
        if not username or len(username) > MAX_USERNAME:
            return self._forgot_form(request, state, status=400, error="error.required_field")
        return await self.send_reset_code(request, state, username)

    async def send_reset_code(
        self, request: web.Request, state: LoginState, username: str
    ) -> web.StreamResponse:
        """ForgotPassword, then the reset page. Unknown users go the same way (no enumeration)."""
        try:
            delivery = await self._cognito.forgot_password(username, context_data(request))
            state.code_destination = delivery.destination or None
        except (errors.TooManyRequests, errors.Unavailable) as exc:
            failed = code_failure(exc, "ForgotPassword")
            return self._forgot_form(request, state, status=failed.status, error=failed.message)
        except errors.CognitoError as exc:
            # UserNotFound (without prevent-user-existence-errors), no verified contact, ...:
            # the page looks the same; the log says why (loudly when it is our setup).
            level = logging.ERROR if isinstance(exc, errors.Misconfigured) else logging.INFO
            log.log(level, "ForgotPassword not sent: %s", exc.code)
            state.code_destination = None
        state.username = username
        state.challenge = None
        return await self._kit.save_and_go(request, state, "forgot/confirm")

    async def reset_page(self, request: web.Request) -> web.StreamResponse:
        state = await self._state(request)
        if isinstance(state, web.StreamResponse):
            return state
        if not state.username:
            raise web.HTTPSeeOther(self._kit.action(request, "forgot"))
        return self._reset_form(request, state)

    def _reset_form(
        self, request: web.Request, state: LoginState, *, status: int = 200, **kw: Any
    ) -> web.Response:
        t = lambda key, **fmt: self._t(request, key, **fmt)  # noqa: E731
        return self._page(
            request,
            "forgot_confirm.html",
            state,
            status=status,
            action=self._kit.action(request, "forgot/confirm"),
            message=self._t(
                request,
                "forgot.sent_to" if state.code_destination else "forgot.sent_if_exists",
                destination=state.code_destination or "",
            ),
            fields=[code_field(t, label="forgot.code_label"), *password_fields(t)],
            **kw,
        )

    async def reset_submit(self, request: web.Request) -> web.StreamResponse:
        posted = await self._kit.flow_form(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        state, values = posted
        if not state.username:
            raise web.HTTPSeeOther(self._kit.action(request, "forgot"))
        code = clean_code(values.get("code"))
        password = new_password_from(values)
        if code is None:
            return self._reset_form(request, state, status=400, error="error.invalid_code")
        if isinstance(password, Invalid):
            return self._reset_form(request, state, status=400, error=password.message)
        try:
            await self._cognito.confirm_forgot_password(
                state.username, code, password, context_data(request)
            )
        except errors.CognitoError as exc:
            failed = code_failure(exc, "ConfirmForgotPassword")
            return self._reset_form(request, state, status=failed.status, error=failed.message)
        log.info("password reset completed")
        return await self._back_to_login(request, state, "password_changed")

    async def _back_to_login(
        self, request: web.Request, state: LoginState, notice: str
    ) -> web.StreamResponse:
        with contextlib.suppress(StoreUnavailable):  # it expires by itself otherwise
            await self._kit.delete_flow(request)
        location = self._kit.action(request, "login")
        location += ("&" if "?" in location else "?") + f"notice={notice}"
        if state.return_to != "/":
            location += "&rd=" + quote(state.return_to, safe="")
        raise web.HTTPSeeOther(location)

    # -- confirm sign-up -----------------------------------------------------------------------

    async def confirm_page(self, request: web.Request) -> web.StreamResponse:
        state = await self._state(request)
        if isinstance(state, web.StreamResponse):
            return state
        if not state.username:
            raise web.HTTPSeeOther(self._kit.action(request, "login"))
        return self._confirm_form(request, state)

    def _confirm_form(
        self, request: web.Request, state: LoginState, *, status: int = 200, **kw: Any
    ) -> web.Response:
        t = lambda key, **fmt: self._t(request, key, **fmt)  # noqa: E731
        kw.setdefault("notice", None)
        return self._page(
            request,
            "confirm_signup.html",
            state,
            status=status,
            action=self._kit.action(request, "confirm"),
            message=self._t(request, "confirm.message"),
            fields=[code_field(t, label="confirm.code_label")],
            **kw,
        )

    async def confirm_submit(self, request: web.Request) -> web.StreamResponse:
        posted = await self._kit.flow_form(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        state, values = posted
        if not state.username:
            raise web.HTTPSeeOther(self._kit.action(request, "login"))
        context = context_data(request)
        if values.get("action") == "resend":
            try:
                delivery = await self._cognito.resend_confirmation_code(state.username, context)
            except errors.CognitoError as exc:
                failed = code_failure(exc, "ResendConfirmationCode")
                return self._confirm_form(
                    request, state, status=failed.status, error=failed.message
                )
            state.code_destination = delivery.destination or None
            await self._kit.save_flow(request, state)
            return self._confirm_form(request, state, notice="confirm.resent")
        code = clean_code(values.get("code"))
        if code is None:
            return self._confirm_form(request, state, status=400, error="error.invalid_code")
        try:
            await self._cognito.confirm_sign_up(state.username, code, context)
        except errors.CognitoError as exc:
            failed = code_failure(exc, "ConfirmSignUp")
            return self._confirm_form(request, state, status=failed.status, error=failed.message)
        log.info("sign-up confirmed")
        return await self._back_to_login(request, state, "confirmed")
