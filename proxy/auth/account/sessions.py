"""Sessions: this user's cognito-gate sessions from the per-user index and their cards
(browser/OS, IP, signed in, last active), the current one marked; end one, or all others."""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from proxy.auth.account.base import Viewer, when
from proxy.auth.account.page import AccountPage
from proxy.auth.session_cards import Card, SessionCards
from proxy.observe import audit

_RECORD_HASH = re.compile(r"[0-9a-f]{64}")


class SessionsSection:
    name = "sessions"
    notices = {
        "session_ended": "account.sessions.ended",
        "others_ended": "account.sessions.others_ended",
    }

    def __init__(self, page: AccountPage, *, cards: SessionCards) -> None:
        self._page = page
        self._cards = cards

    def register(self, router: web.UrlDispatcher) -> None:
        page = self._page
        page.route(router, "account/sessions/end", self.end_session)
        page.route(router, "account/sessions/end-others", self.end_others)

    async def view(
        self, request: web.Request, viewer: Viewer, error: str | None
    ) -> dict[str, Any] | None:
        kit = self._page.kit
        current = kit.sessions.record_hash(viewer.cookie)
        return {
            "sessions": await self._rows(viewer, current),
            "end_action": kit.action(request, "account/sessions/end"),
            "end_others_action": kit.action(request, "account/sessions/end-others"),
            "logout_url": kit.action(request, "logout"),
        }

    async def _rows(self, viewer: Viewer, current: str | None) -> list[dict[str, Any]]:
        session = viewer.session
        rows: list[dict[str, Any]] = []
        for record in await self._page.kit.sessions.live_records(session.sub):
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
                    "signed_in_at": when(card.signed_in_at if card else session.created_at),
                    "last_seen": when(card.last_seen if card else time.time()),
                }
            )
        # The current session first, then the most recently active.
        current_rows = [r for r in rows if r["current"]]
        others = sorted(
            (r for r in rows if not r["current"]), key=lambda r: r["last_seen"]["iso"], reverse=True
        )
        return current_rows + others

    async def end_session(self, request: web.Request) -> web.StreamResponse:
        """End one of this user's OTHER sessions (this one ends through /logout, which also
        revokes its refresh token)."""
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, form = posted
        kit = page.kit
        record = form.get("session", "")
        if not _RECORD_HASH.fullmatch(record):
            return kit.error_page(request, 400, "error.bad_request")
        if record == kit.sessions.record_hash(viewer.cookie):
            raise web.HTTPSeeOther(kit.action(request, "logout"))
        # Only a member of this user's own index can be ended: another user's id is "gone".
        if await kit.sessions.end_record(viewer.session.sub, record):  # its card goes with it
            audit("account.session_ended", user=viewer.session.sub, session=record[:16])
        return page.back(request, "session_ended", anchor=self.name)

    async def end_others(self, request: web.Request) -> web.StreamResponse:
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, _ = posted
        kit = page.kit
        # The live ones are counted (reading the index drops expired members), then all of
        # them but this one end at once, cards included.
        sub = viewer.session.sub
        await kit.sessions.live_records(sub)
        ended = await kit.sessions.end_all(sub, keep=kit.sessions.record_hash(viewer.cookie))
        audit("account.others_ended", user=viewer.session.sub, count=ended)
        return page.back(request, "others_ended", anchor=self.name)
