"""Forgot password (ForgotPassword → ConfirmForgotPassword) and confirm sign-up
(ConfirmSignUp, ResendConfirmationCode), bound to the same server-side pre-login state as the
sign-in: the username sent to Cognito is the stored one, never a form field on later steps.

No user enumeration: asking for a reset code looks the same whether or not the account exists.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from proxy.auth import csrf
from proxy.auth.challenge_routes import form_values
from proxy.auth.challenges import (
    Invalid,
    clean_code,
    code_field,
    new_password_from,
    password_fields,
)
from proxy.auth.context import context_data
from proxy.auth.flow import LoginState, password_policy_message
from proxy.auth.i18n import translate
from proxy.auth.redirects import safe_return_path
from proxy.cognito import errors
from proxy.sessions.store import StoreUnavailable

if TYPE_CHECKING:
    from proxy.auth.routes import AuthRoutes

log = logging.getLogger("proxy.auth")

MAX_USERNAME = 128


class RecoveryRoutes:
    def __init__(self, base: AuthRoutes) -> None:
        self.base = base

    def register(self, router: web.UrlDispatcher) -> None:
        p = self.base.prefix
        router.add_get(f"{p}/forgot", self.forgot_page)
        router.add_post(f"{p}/forgot", self.forgot_submit)
        router.add_get(f"{p}/forgot/confirm", self.reset_page)
        router.add_post(f"{p}/forgot/confirm", self.reset_submit)
        router.add_get(f"{p}/confirm", self.confirm_page)
        router.add_post(f"{p}/confirm", self.confirm_submit)

    # -- helpers -------------------------------------------------------------------------------

    def _t(self, request: web.Request, key: str, **fmt: str) -> str:
        return translate(self.base._lang(request), key, **fmt)

    async def _state(
        self, request: web.Request, *, create: bool
    ) -> tuple[LoginState, str | None] | web.StreamResponse:
        """The pre-login state (a new one, with its cookie value, when ``create``)."""
        base = self.base
        try:
            state = await base._load_flow(request)
            if state is not None:
                return state, None
            if not create:
                return await base._restart(request, "error.flow_expired")
            state = LoginState.new(safe_return_path(request.query.get("rd")))
            cookie = await base._flows.create(state.to_bytes(), base._login_timeout)
        except StoreUnavailable:
            return base.error_page(request, 503, "error.unavailable")
        return state, cookie

    async def _posted(
        self, request: web.Request
    ) -> tuple[LoginState, dict[str, str]] | web.StreamResponse:
        base = self.base
        if not csrf.same_origin(request):
            return base.error_page(request, 403, "error.csrf")
        form = await base._form(request)
        if isinstance(form, web.Response):
            return form
        values = form_values(form)
        loaded = await self._state(request, create=False)
        if isinstance(loaded, web.StreamResponse):
            return loaded
        state, _ = loaded
        if not csrf.tokens_match(state.csrf, values.get("csrf")):
            return base.error_page(request, 403, "error.csrf")
        return state, values

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
        base = self.base
        return base.render(
            request,
            template,
            status=status,
            csrf_token=state.csrf,
            error=self._t(request, error) if error else None,
            notice=self._t(request, notice, destination=state.code_destination or "")
            if notice
            else None,
            login_url=base._action(request, "login"),
            **ctx,
        )

    # -- forgot password -----------------------------------------------------------------------

    async def forgot_page(self, request: web.Request) -> web.StreamResponse:
        loaded = await self._state(request, create=True)
        if isinstance(loaded, web.StreamResponse):
            return loaded
        state, cookie = loaded
        # Sent here by PasswordResetRequiredException at sign-in: say why.
        notice = "error.password_reset_required" if state.reason == "reset_required" else None
        response = self._forgot_form(request, state, notice=notice)
        if cookie is not None:
            self.base._set_cookie(response, self.base._cookies.flow, cookie)
        return response

    def _forgot_form(
        self, request: web.Request, state: LoginState, *, status: int = 200, **kw: Any
    ) -> web.Response:
        return self._page(
            request,
            "forgot.html",
            state,
            status=status,
            action=self.base._action(request, "forgot"),
            username=state.username or "",
            **kw,
        )

    async def forgot_submit(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted(request)
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
            delivery = await self.base._cognito.forgot_password(username, context_data(request))
            state.code_destination = delivery.destination or None
        except errors.TooManyRequests:
            return self._forgot_form(request, state, status=429, error="error.too_many")
        except errors.Unavailable:
            return self._forgot_form(request, state, status=503, error="error.unavailable")
        except errors.CognitoError as exc:
            # UserNotFound (without prevent-user-existence-errors), no verified contact, ...:
            # the page looks the same; the log says why (loudly when it is our setup).
            level = logging.ERROR if isinstance(exc, errors.Misconfigured) else logging.INFO
            log.log(level, "ForgotPassword not sent: %s", exc.code)
            state.code_destination = None
        state.username = username
        state.challenge = None
        return await self.base.save_and_go(request, state, "forgot/confirm")

    async def reset_page(self, request: web.Request) -> web.StreamResponse:
        loaded = await self._state(request, create=False)
        if isinstance(loaded, web.StreamResponse):
            return loaded
        state, _ = loaded
        if not state.username:
            raise web.HTTPSeeOther(self.base._action(request, "forgot"))
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
            action=self.base._action(request, "forgot/confirm"),
            message=self._t(
                request,
                "forgot.sent_to" if state.code_destination else "forgot.sent_if_exists",
                destination=state.code_destination or "",
            ),
            fields=[code_field(t, label="forgot.code_label"), *password_fields(t)],
            **kw,
        )

    async def reset_submit(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        state, values = posted
        if not state.username:
            raise web.HTTPSeeOther(self.base._action(request, "forgot"))
        code = clean_code(values.get("code"))
        password = new_password_from(values)
        if code is None:
            return self._reset_form(request, state, status=400, error="error.invalid_code")
        if isinstance(password, Invalid):
            return self._reset_form(request, state, status=400, error=password.message)
        try:
            await self.base._cognito.confirm_forgot_password(
                state.username, code, password, context_data(request)
            )
        except errors.InvalidPassword as exc:
            return self._reset_form(request, state, status=400, error=password_policy_message(exc))
        except errors.ExpiredCode:
            return self._reset_form(request, state, status=400, error="error.code_expired")
        except (errors.CodeMismatch, errors.BadCredentials):
            # An unknown user looks like a wrong code: no enumeration.
            return self._reset_form(request, state, status=400, error="error.invalid_code")
        except errors.TooManyRequests:
            return self._reset_form(request, state, status=429, error="error.too_many")
        except errors.CognitoError as exc:
            log.warning("ConfirmForgotPassword failed: %s", exc.code)
            return self._reset_form(request, state, status=503, error="error.unavailable")
        log.info("password reset completed")
        return await self._back_to_login(request, state, "password_changed")

    async def _back_to_login(
        self, request: web.Request, state: LoginState, notice: str
    ) -> web.StreamResponse:
        base = self.base
        with contextlib.suppress(StoreUnavailable):  # it expires by itself otherwise
            await base._flows.delete(request.cookies.get(base._cookies.flow, ""))
        location = base._action(request, "login")
        location += ("&" if "?" in location else "?") + f"notice={notice}"
        if state.return_to != "/":
            location += "&rd=" + quote(state.return_to, safe="")
        raise web.HTTPSeeOther(location)

    # -- confirm sign-up -----------------------------------------------------------------------

    async def confirm_page(self, request: web.Request) -> web.StreamResponse:
        loaded = await self._state(request, create=False)
        if isinstance(loaded, web.StreamResponse):
            return loaded
        state, _ = loaded
        if not state.username:
            raise web.HTTPSeeOther(self.base._action(request, "login"))
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
            action=self.base._action(request, "confirm"),
            message=self._t(request, "confirm.message"),
            fields=[code_field(t, label="confirm.code_label")],
            **kw,
        )

    async def confirm_submit(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        state, values = posted
        if not state.username:
            raise web.HTTPSeeOther(self.base._action(request, "login"))
        context = context_data(request)
        if values.get("action") == "resend":
            try:
                delivery = await self.base._cognito.resend_confirmation_code(
                    state.username, context
                )
            except errors.TooManyRequests:
                return self._confirm_form(request, state, status=429, error="error.too_many")
            except errors.CognitoError as exc:
                log.warning("ResendConfirmationCode failed: %s", exc.code)
                return self._confirm_form(request, state, status=503, error="error.unavailable")
            state.code_destination = delivery.destination or None
            try:
                await self.base.save_state(request, state)
            except StoreUnavailable:
                return self.base.error_page(request, 503, "error.unavailable")
            return self._confirm_form(request, state, notice="confirm.resent")
        code = clean_code(values.get("code"))
        if code is None:
            return self._confirm_form(request, state, status=400, error="error.invalid_code")
        try:
            await self.base._cognito.confirm_sign_up(state.username, code, context)
        except errors.ExpiredCode:
            return self._confirm_form(request, state, status=400, error="error.code_expired")
        except (errors.CodeMismatch, errors.BadCredentials):
            return self._confirm_form(request, state, status=400, error="error.invalid_code")
        except errors.TooManyRequests:
            return self._confirm_form(request, state, status=429, error="error.too_many")
        except errors.CognitoError as exc:
            log.warning("ConfirmSignUp failed: %s", exc.code)
            return self._confirm_form(request, state, status=503, error="error.unavailable")
        log.info("sign-up confirmed")
        return await self._back_to_login(request, state, "confirmed")
