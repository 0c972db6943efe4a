"""``/account``: a signed-in user's own account (issue 16). Sessions: this user's cognito-gate
sessions (per-user index + their cards), end one or every other. Every form posts back here
through ``kit.session_form`` (same origin, body limits, the session-bound CSRF token).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from proxy.auth.kit import AuthKit, see_other
from proxy.auth.session_cards import Card, SessionCards
from proxy.observe import audit
from proxy.sessions.session import Session

log = logging.getLogger("proxy.auth")

_RECORD_HASH = re.compile(r"[0-9a-f]{64}")
# ?done=<key>: what the page says after a form came back (only these; anything else: nothing).
_NOTICES = {
    "session_ended": "account.sessions.ended",
    "others_ended": "account.sessions.others_ended",
}


def _when(moment: float) -> dict[str, str]:
    """A time as the page shows it: machine-readable and in UTC (the server knows no zone)."""
    at = datetime.fromtimestamp(moment, UTC)
    return {"iso": at.isoformat(timespec="seconds"), "text": at.strftime("%Y-%m-%d %H:%M UTC")}


class AccountRoutes:
    def __init__(self, kit: AuthKit, *, cards: SessionCards) -> None:
        self._kit = kit
        self._cards = cards

    def register(self, router: web.UrlDispatcher) -> None:
        kit = self._kit
        kit.route(router, "GET", "account", self.account_page)
        kit.route(router, "POST", "account/sessions/end", self.end_session)
        kit.route(router, "POST", "account/sessions/end-others", self.end_others)

    def _to_login(self, request: web.Request) -> web.Response:
        """Not signed in: the login page, and back here afterwards."""
        query = {"rd": f"{self._kit.prefix}/account"}
        if lang := request.query.get("lang"):
            query["lang"] = lang
        return see_other(f"{self._kit.prefix}/login?{urlencode(query)}")

    def _back(self, request: web.Request, done: str) -> web.Response:
        query = {"done": done}
        if lang := request.query.get("lang"):
            query["lang"] = lang
        return see_other(f"{self._kit.prefix}/account?{urlencode(query)}#sessions")

    async def account_page(self, request: web.Request) -> web.StreamResponse:
        kit = self._kit
        cookie = request.cookies.get(kit.cookies.session)
        session = await kit.session(request)
        if session is None or not cookie:
            return self._to_login(request)
        notice = _NOTICES.get(request.query.get("done", ""))
        response = kit.render(
            request,
            "account.html",
            user=session.claims.get("email") or session.username,
            csrf_token=kit.session_token(cookie),
            sessions=await self._session_rows(session, kit.sessions.record_hash(cookie)),
            end_action=kit.action(request, "account/sessions/end"),
            end_others_action=kit.action(request, "account/sessions/end-others"),
            logout_url=kit.action(request, "logout"),
            notice=kit.t(request, notice) if notice else None,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

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
