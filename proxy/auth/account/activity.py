"""Recent activity (when the Admin API is configured): the user's sign-ins as Cognito's threat
protection logged them (AdminListUserAuthEvents: time, IP and city, event, result, risk), and
"This wasn't me" (AdminUpdateAuthEventFeedback, FeedbackValue Invalid).

Which user's events: always the session's own Cognito username, never a form field. The form
names only an event id, checked by shape and then against this user's own list before Cognito
is told; Cognito itself refuses another user's event for that username. UpdateAuthEventFeedback
(the public call) is not used: it needs the FeedbackToken of Cognito's notification email,
which no API returns.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web

from proxy.auth.account.base import Viewer, when
from proxy.auth.account.page import AccountPage
from proxy.cognito import errors
from proxy.cognito.account import AccountApi, AddOnNotEnabled, AuthEvent
from proxy.observe import audit

log = logging.getLogger("proxy.auth")

# EventIdType: [\w+-]+, 1..50.
_EVENT_ID = re.compile(r"[A-Za-z0-9_+-]{1,50}")
SHOWN = 20  # the most recent sign-ins the page lists
_KINDS = frozenset({"SignIn", "SignUp", "ForgotPassword", "PasswordChange", "ResendCode"})
_RESULTS = frozenset({"Pass", "Fail", "InProgress"})
_LEVELS = frozenset({"Low", "Medium", "High"})


class ActivitySection:
    name = "activity"
    notices = {"activity_reported": "account.activity.reported"}

    def __init__(self, page: AccountPage, *, api: AccountApi) -> None:
        self._page = page
        self._api = api

    def register(self, router: web.UrlDispatcher) -> None:
        self._page.route(router, "account/activity/report", self.report)

    async def view(
        self, request: web.Request, viewer: Viewer, error: str | None
    ) -> dict[str, Any] | None:
        """The rows, or that they cannot be read now; hidden when the pool keeps no history
        (no threat protection)."""
        action = self._page.kit.action(request, "account/activity/report")
        try:
            events = await self._api.auth_events(viewer.session.username, SHOWN)
        except AddOnNotEnabled:
            return None
        except errors.CognitoError as exc:
            log.warning("AdminListUserAuthEvents failed: %s", exc.code)
            return {"events": [], "unavailable": True, "action": action, "error": error}
        return {
            "events": [_row(event) for event in events],
            "unavailable": False,
            "action": action,
            "error": error,
        }

    async def report(self, request: web.Request) -> web.StreamResponse:
        """ "This wasn't me" for one of the user's own recent sign-ins."""
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, form = posted
        kit = page.kit
        event_id = form.get("event", "")
        if not _EVENT_ID.fullmatch(event_id):
            return kit.error_page(request, 400, "error.bad_request")
        username = viewer.session.username
        try:
            # Only an event this user's own history lists (the page's list, as of now).
            own = {e.event_id for e in await self._api.auth_events(username, 60)}
            if event_id not in own:
                return await page.again(request, viewer, self.name, 404, "account.activity.gone")
            await self._api.report_auth_event(username, event_id)
        except AddOnNotEnabled:  # the pool keeps no history (any more): nothing to report
            return kit.error_page(request, 404, "status.404.message")
        except errors.CognitoError as exc:
            if exc.code == "ResourceNotFoundException":  # not (or no longer) this user's event
                return await page.again(request, viewer, self.name, 404, "account.activity.gone")
            log.warning("AdminUpdateAuthEventFeedback failed: %s", exc.code)
            return kit.error_page(request, 503, "error.unavailable")
        audit("account.activity_reported", user=viewer.session.sub, auth_event=event_id)
        return page.back(request, "activity_reported", anchor=self.name)


def _row(event: AuthEvent) -> dict[str, Any]:
    """What the template shows of one event: Cognito's enumerations as i18n key suffixes
    (unknown values shown as they are), free text as text."""
    place = ", ".join(part for part in (event.city, event.country) if part)
    return {
        "id": event.event_id,
        "when": when(event.created) if event.created is not None else None,
        "kind": event.kind if event.kind in _KINDS else "",
        "kind_raw": event.kind,
        "result": event.result if event.result in _RESULTS else "",
        "result_raw": event.result,
        "risk": event.risk_level if event.risk_level in _LEVELS else "",
        "blocked": event.risk_decision == "Block",
        "compromised": event.compromised,
        "ip": event.ip,
        "place": place,
        "reported": event.feedback == "Invalid",
    }
