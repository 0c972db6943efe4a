"""``/account``: a signed-in user's own account (issue 16). Password: ChangePassword with the
current one, the pool's policy shown and checked first, wrong current passwords counted by the
brute-force regulation like sign-ins. Sessions: this user's cognito-gate sessions (per-user
index + their cards), end one or every other. Every form posts back here through
``kit.session_form`` (same origin, body limits, the session-bound CSRF token).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from proxy.auth.challenges import Invalid, new_password_from, password_fields
from proxy.auth.context import client_ip
from proxy.auth.kit import AuthKit, see_other
from proxy.auth.messages import password_policy_message
from proxy.auth.regulation import Regulator
from proxy.auth.session_cards import Card, SessionCards
from proxy.cognito import errors
from proxy.cognito.account import AccessTokenRejected, AccountApi, PasswordPolicy, unmet_rules
from proxy.observe import audit
from proxy.sessions.session import Session
from proxy.sessions.store import StoreUnavailable

# The session behind a cookie with tokens fresh enough to call Cognito (the gate's Identity:
# the one refresh path, single-flight under the session's lease), None when it is gone.
# Raises errors.Unavailable when the tokens expired and cannot be refreshed now.
LiveSession = Callable[[str], Awaitable[Session | None]]

log = logging.getLogger("proxy.auth")

_RECORD_HASH = re.compile(r"[0-9a-f]{64}")
# ?done=<key>: what the page says after a form came back (only these; anything else: nothing).
_NOTICES = {
    "session_ended": "account.sessions.ended",
    "others_ended": "account.sessions.others_ended",
    "password_changed": "account.password.changed",
    "device_forgotten": "account.devices.forgotten",
}
# Cognito's device keys: "<region>_<uuid>".
_DEVICE_KEY = re.compile(
    r"[a-z]{2}(?:-[a-z]+)+-\d_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
_MAX_PASSWORD = 256


def _when(moment: float) -> dict[str, Any]:
    """A time as the page shows it: machine-readable and in UTC (the server knows no zone)."""
    at = datetime.fromtimestamp(moment, UTC)
    return {
        "iso": at.isoformat(timespec="seconds"),
        "text": at.strftime("%Y-%m-%d %H:%M UTC"),
        "t": moment,
    }


class AccountRoutes:
    def __init__(
        self,
        kit: AuthKit,
        *,
        cards: SessionCards,
        api: AccountApi,
        live_session: LiveSession,
        regulator: Regulator,
        password_policy: PasswordPolicy,
    ) -> None:
        self._kit = kit
        self._cards = cards
        self._api = api
        self._live_session = live_session
        self._regulator = regulator
        self._policy = password_policy

    def register(self, router: web.UrlDispatcher) -> None:
        kit = self._kit
        kit.route(router, "GET", "account", self.account_page)
        kit.route(router, "POST", "account/sessions/end", self.end_session)
        kit.route(router, "POST", "account/sessions/end-others", self.end_others)
        kit.route(router, "POST", "account/password", self.change_password)
        kit.route(router, "POST", "account/devices/forget", self.forget_device)

    def _to_login(self, request: web.Request) -> web.Response:
        """Not signed in: the login page, and back here afterwards."""
        query = {"rd": f"{self._kit.prefix}/account"}
        if lang := request.query.get("lang"):
            query["lang"] = lang
        return see_other(f"{self._kit.prefix}/login?{urlencode(query)}")

    def _back(self, request: web.Request, done: str, anchor: str = "sessions") -> web.Response:
        query = {"done": done}
        if lang := request.query.get("lang"):
            query["lang"] = lang
        return see_other(f"{self._kit.prefix}/account?{urlencode(query)}#{anchor}")

    async def account_page(self, request: web.Request) -> web.StreamResponse:
        kit = self._kit
        cookie = request.cookies.get(kit.cookies.session)
        session = await kit.session(request)
        if session is None or not cookie:
            return self._to_login(request)
        notice = _NOTICES.get(request.query.get("done", ""))
        return await self._page(
            request, cookie, session, notice=kit.t(request, notice) if notice else None
        )

    async def _page(
        self,
        request: web.Request,
        cookie: str,
        session: Session,
        *,
        status: int = 200,
        notice: str | None = None,
        password_error: str | None = None,
    ) -> web.Response:
        kit = self._kit
        t = kit.t

        def tr(key: str, **fmt: str) -> str:
            return t(request, key, **fmt)

        fields = [
            {
                "name": "current_password",
                "label": tr("account.password.current"),
                "type": "password",
                "autocomplete": "current-password",
            },
            *password_fields(tr),
        ]
        response = kit.render(
            request,
            "account.html",
            status=status,
            user=session.claims.get("email") or session.username,
            csrf_token=kit.session_token(cookie),
            sessions=await self._session_rows(session, kit.sessions.record_hash(cookie)),
            end_action=kit.action(request, "account/sessions/end"),
            end_others_action=kit.action(request, "account/sessions/end-others"),
            logout_url=kit.action(request, "logout"),
            notice=notice,
            password_action=kit.action(request, "account/password"),
            password_fields=fields,
            password_rules=self._rules(request),
            password_error=password_error,
            forget_action=kit.action(request, "account/devices/forget"),
            **await self._devices(cookie, session),
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _devices(self, cookie: str, session: Session) -> dict[str, Any]:
        """The remembered-devices section: its rows, or that they could not be read now (the
        rest of the page does not depend on Cognito answering)."""
        try:
            live = await self._live_session(cookie)
            listed = await self._api.list_devices((live or session).access_token)
        except errors.CognitoError as exc:
            log.warning("ListDevices failed: %s", exc.code)
            return {"devices": [], "devices_unavailable": True}
        rows: list[dict[str, Any]] = [
            {
                "key": device.key,
                "name": device.name,
                "ip": device.last_ip,
                "current": device.key == session.device_key,
                "last_signed_in": _when(device.last_signed_in) if device.last_signed_in else None,
            }
            for device in listed
        ]
        rows.sort(key=lambda r: (not r["current"], -(r["last_signed_in"] or {}).get("t", 0)))
        return {"devices": rows, "devices_unavailable": False}

    def _rules(self, request: web.Request) -> list[str]:
        """The pool's policy in words, shown above the form."""
        policy, t = self._policy, self._kit.t
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

    async def _session_rows(self, session: Session, current: str | None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for record in await self._kit.sessions.live_records(session.sub):
            card: Card | None = await self._cards.load(record)
            if card is None and record != current:
                continue  # signed in before cards existed: nothing true to show but the end
            rows.append(
                {
                    "id": record,
                    "current": record == current,
                    "browser": card.browser if card else "",
                    "os": card.os if card else "",
                    "ip": card.ip if card else "",
                    "signed_in_at": _when(card.signed_in_at if card else session.created_at),
                    "last_seen": _when(card.last_seen if card else time.time()),
                }
            )
        # The current session first, then the most recently active.
        current_rows = [r for r in rows if r["current"]]
        others = sorted(
            (r for r in rows if not r["current"]), key=lambda r: r["last_seen"]["iso"], reverse=True
        )
        return current_rows + others

    async def _posted(
        self, request: web.Request
    ) -> tuple[str, Session, dict[str, str]] | web.StreamResponse:
        kit = self._kit
        posted = await kit.session_form(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        cookie, form = posted
        session = await kit.sessions.load(cookie) if cookie else None
        if cookie is None or session is None:
            return self._to_login(request)
        return cookie, session, form

    async def end_session(self, request: web.Request) -> web.StreamResponse:
        """End one of this user's OTHER sessions (this one ends through /logout, which also
        revokes its refresh token)."""
        posted = await self._posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        cookie, session, form = posted
        kit = self._kit
        record = form.get("session", "")
        if not _RECORD_HASH.fullmatch(record):
            return kit.error_page(request, 400, "error.bad_request")
        if record == kit.sessions.record_hash(cookie):
            raise web.HTTPSeeOther(kit.action(request, "logout"))
        # Only a member of this user's own index can be ended: another user's id is "gone".
        if await kit.sessions.end_record(session.sub, record):
            await self._cards.delete(record)
            audit("account.session_ended", user=session.sub, session=record[:16])
        return self._back(request, "session_ended")

    async def end_others(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        cookie, session, _ = posted
        kit = self._kit
        current = kit.sessions.record_hash(cookie)
        ended = 0
        for record in await kit.sessions.live_records(session.sub):
            if record != current and await kit.sessions.end_record(session.sub, record):
                await self._cards.delete(record)
                ended += 1
        audit("account.others_ended", user=session.sub, count=ended)
        return self._back(request, "others_ended")

    async def change_password(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        cookie, session, form = posted
        kit = self._kit

        async def again(status: int, key: str) -> web.Response:
            return await self._page(
                request, cookie, session, status=status, password_error=kit.t(request, key)
            )

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
            live = await self._live_session(cookie)
            if live is None:
                return self._to_login(request)
            await self._api.change_password(live.access_token, current, proposed)
        except AccessTokenRejected:
            await kit.sessions.delete(cookie, session)  # Cognito ended it (e.g. signed out)
            return self._to_login(request)
        except errors.BadCredentials:  # a wrong current password, or Cognito's lockout
            await self._count_failure(session, address)
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
        return self._back(request, "password_changed", anchor="password")

    async def _count_failure(self, session: Session, address: str) -> None:
        try:
            await self._regulator.failed(session.username, address)
        except StoreUnavailable:
            log.warning("could not record a password attempt: session store unavailable")

    async def forget_device(self, request: web.Request) -> web.StreamResponse:
        """ForgetDevice: that device signs in with MFA again (and this browser, if it is this
        one, no longer offers its device key)."""
        posted = await self._posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        cookie, session, form = posted
        kit = self._kit
        key = form.get("device", "")
        if not _DEVICE_KEY.fullmatch(key):
            return kit.error_page(request, 400, "error.bad_request")
        try:
            live = await self._live_session(cookie)
            if live is None:
                return self._to_login(request)
            await self._api.forget_device(live.access_token, key)
        except AccessTokenRejected:
            await kit.sessions.delete(cookie, session)
            return self._to_login(request)
        except errors.Misconfigured:  # ResourceNotFound: not (or no longer) this user's device
            return self._back(request, "device_forgotten", anchor="devices")
        except errors.CognitoError as exc:
            log.warning("ForgetDevice failed: %s", exc.code)
            return kit.error_page(request, 503, "error.unavailable")
        audit("account.device_forgotten", user=session.sub)
        response = self._back(request, "device_forgotten", anchor="devices")
        if key == session.device_key:
            kit.clear_cookie(response, kit.cookies.device)
        return response
