"""Password: ChangePassword with the current one, the pool's policy shown and checked first,
wrong current passwords counted by the brute-force regulation like sign-ins."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from proxy.auth.account.base import Viewer
from proxy.auth.account.page import AccountPage
from proxy.auth.challenges import Invalid, new_password_from, password_fields
from proxy.auth.context import client_ip
from proxy.auth.messages import password_policy_message
from proxy.auth.regulation import Regulator
from proxy.cognito import errors
from proxy.cognito.account import AccessTokenRejected, AccountApi, PasswordPolicy, unmet_rules
from proxy.observe import audit
from proxy.sessions.store import StoreUnavailable

log = logging.getLogger("proxy.auth")

_MAX_PASSWORD = 256


class PasswordSection:
    name = "password"
    notices = {"password_changed": "account.password.changed"}

    def __init__(
        self, page: AccountPage, *, api: AccountApi, regulator: Regulator, policy: PasswordPolicy
    ) -> None:
        self._page = page
        self._api = api
        self._regulator = regulator
        self._policy = policy

    def register(self, router: web.UrlDispatcher) -> None:
        self._page.sensitive_route(router, "account/password", self.change_password)

    async def view(
        self, request: web.Request, viewer: Viewer, error: str | None
    ) -> dict[str, Any] | None:
        kit = self._page.kit

        def tr(key: str, **fmt: str) -> str:
            return kit.t(request, key, **fmt)

        return {
            "action": kit.action(request, "account/password"),
            "fields": [
                {
                    "name": "current_password",
                    "label": tr("account.password.current"),
                    "type": "password",
                    "autocomplete": "current-password",
                },
                *password_fields(tr),
            ],
            "rules": self._rules(request),
            "error": error,
        }

    def _rules(self, request: web.Request) -> list[str]:
        """The pool's policy in words, shown above the form."""
        policy, t = self._policy, self._page.kit.t
        rules = [t(request, "account.password.rule.length", n=str(policy.min_length))]
        for required, key in (
            (policy.require_uppercase, "upper"),
            (policy.require_lowercase, "lower"),
            (policy.require_numbers, "digit"),
            (policy.require_symbols, "symbol"),
        ):
            if required:
                rules.append(t(request, f"account.password.rule.{key}"))
        return rules

    async def change_password(self, request: web.Request) -> web.StreamResponse:
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, form = posted
        session = viewer.session

        async def again(status: int, key: str) -> web.Response:
            return await page.again(request, viewer, self.name, status, key)

        current = form.get("current_password", "")
        if not current or len(current) > _MAX_PASSWORD:
            return await again(400, "error.required_field")
        proposed = new_password_from(form)
        if isinstance(proposed, Invalid):
            return await again(400, proposed.message)
        unmet = unmet_rules(self._policy, proposed)
        if unmet:  # checked here first: Cognito is not asked about a password it would refuse
            return await again(400, unmet[0])
        address = client_ip(request)
        # The current password is a password check like a sign-in: the same bans and counts.
        if await self._regulator.banned(session.username, address) is not None:
            return await again(429, "error.too_many")
        try:
            live = await viewer.live()
            if live is None:
                return page.to_login(request)
            await self._api.change_password(live.access_token, current, proposed)
        except AccessTokenRejected:
            return await page.ended(request, viewer)
        except errors.BadCredentials:  # a wrong current password, or Cognito's lockout
            await self._count_failure(session.username, address)
            audit("account.password_change_failed", user=session.sub, ip=address)
            return await again(400, "account.password.wrong_current")
        except errors.InvalidPassword as exc:
            return await again(400, password_policy_message(exc))
        except errors.TooManyRequests:
            return await again(429, "error.too_many")
        except errors.CognitoError as exc:
            log.warning("ChangePassword failed: %s", exc.code)
            return await again(503, "error.unavailable")
        try:
            await self._regulator.succeeded(session.username)
        except StoreUnavailable:
            log.warning("could not clear failed attempts: session store unavailable")
        audit("account.password_changed", user=session.sub, ip=address)
        return page.back(request, "password_changed", anchor=self.name)

    async def _count_failure(self, username: str, address: str) -> None:
        try:
            await self._regulator.failed(username, address)
        except StoreUnavailable:
            log.warning("could not record a password attempt: session store unavailable")
