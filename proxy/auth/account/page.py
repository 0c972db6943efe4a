"""``/account``: the page that assembles the sections, and what their handlers share (the
posted form of a signed-in browser, the way back to the page, the page again with an error)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from proxy.auth.account.base import LiveSession, Section, Viewer
from proxy.auth.kit import AuthKit, Handler, see_other
from proxy.sessions.session import Session


class AccountPage:
    def __init__(
        self, kit: AuthKit, live_session: LiveSession, *, reauth_max_age: float = 300.0
    ) -> None:
        self.kit = kit
        self._live = live_session
        self.sections: list[Section] = []
        # Step-up: a sensitive action needs a sign-in at most this old (seconds).
        self.reauth_max_age = reauth_max_age

    def add(self, section: Section) -> None:
        self.sections.append(section)

    def register(self, router: web.UrlDispatcher) -> None:
        self.kit.route(router, "GET", "account", self.show)
        for section in self.sections:
            section.register(router)

    def route(self, router: web.UrlDispatcher, path: str, handler: Handler) -> None:
        """A form of the page (POST ``path``): its answers lead back to the page itself (their
        language links and "Try again"; the form's own path has no GET)."""
        self.kit.route(router, "POST", path, handler, page="account")

    def sensitive_route(self, router: web.UrlDispatcher, path: str, handler: Handler) -> None:
        """A route that changes how the user signs in (password, email, phone, MFA, passkeys):
        every such action registers here, so the step-up rule (a recent sign-in) has one place.

        A signed-in user whose last interactive sign-in is older than ``reauth_max_age`` is sent
        to "confirm it's you" (``/reauth``) and back to the page; what was posted is NOT acted on
        and never replayed after it (it may hold passwords, and replaying a POST after a
        redirect is a CSRF gadget): the page says so, and the user sends it again."""

        async def recent_sign_in(request: web.Request) -> web.StreamResponse:
            # The form's own checks first (same origin, body, CSRF token): a forged post is
            # refused like on any form, never answered "confirm it's you, then send it again"
            # (that would tell the user they sent it). The handler reads the same parsed form.
            posted = await self.kit.session_form(request)
            if isinstance(posted, web.StreamResponse):
                return posted
            cookie, _ = posted
            session = await self.kit.sessions.load(cookie) if cookie else None
            if session is not None and self.needs_reauth(session):
                return see_other(self.reauth_url(request, notice="post_lost"))
            return await handler(request)  # no session: the handler sends it to the login

        self.route(router, path, recent_sign_in)

    def needs_reauth(self, session: Session) -> bool:
        """The session's last interactive sign-in is too old for a sensitive action."""
        return session.auth_age() > self.reauth_max_age

    def reauth_url(self, request: web.Request, *, notice: str = "account") -> str:
        """Confirm it's you, then back to the account page."""
        query = {"rd": f"{self.kit.prefix}/account", "notice": notice}
        if lang := request.query.get("lang"):
            query["lang"] = lang
        return f"{self.kit.prefix}/reauth?{urlencode(query)}"

    def viewer(self, cookie: str, session: Session) -> Viewer:
        return Viewer(cookie, session, self._live)

    def to_login(self, request: web.Request, back: str = "account") -> web.Response:
        """Not signed in (or no longer): the login page, and back here afterwards."""
        query = {"rd": f"{self.kit.prefix}/{back}"}
        if lang := request.query.get("lang"):
            query["lang"] = lang
        return see_other(f"{self.kit.prefix}/login?{urlencode(query)}")

    async def ended(self, request: web.Request, viewer: Viewer) -> web.Response:
        """Cognito refused the session's access token (signed out globally, revoked): the
        session is over here too, and the browser goes to the login page."""
        await self.kit.sessions.delete(viewer.cookie, viewer.session)
        return self.to_login(request)

    def back(self, request: web.Request, done: str, anchor: str) -> web.Response:
        """After a form: the page again (303), saying ``done`` at the top, at the section."""
        query = {"done": done}
        if lang := request.query.get("lang"):
            query["lang"] = lang
        return see_other(f"{self.kit.prefix}/account?{urlencode(query)}#{anchor}")

    async def posted(
        self, request: web.Request
    ) -> tuple[Viewer, dict[str, str]] | web.StreamResponse:
        """A form of the account page: same origin, body limits, the session-bound CSRF
        token (kit.session_form), and a session behind the cookie; else the answer."""
        posted = await self.kit.session_form(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        cookie, form = posted
        session = await self.kit.sessions.load(cookie) if cookie else None
        if cookie is None or session is None:
            return self.to_login(request)
        return self.viewer(cookie, session), form

    async def show(self, request: web.Request) -> web.StreamResponse:
        kit = self.kit
        cookie = request.cookies.get(kit.cookies.session)
        session = await kit.session(request)
        if session is None or not cookie:
            return self.to_login(request)
        notices: dict[str, str] = {}
        for section in self.sections:
            notices.update(section.notices)
        notice = notices.get(request.query.get("done", ""))
        return await self.render(
            request, self.viewer(cookie, session), notice=kit.t(request, notice) if notice else None
        )

    async def again(
        self, request: web.Request, viewer: Viewer, section: str, status: int, key: str
    ) -> web.Response:
        """The page again with ``key`` (i18n) as ``section``'s error, answered ``status``."""
        return await self.render(
            request, viewer, status=status, errors={section: self.kit.t(request, key)}
        )

    async def render(
        self,
        request: web.Request,
        viewer: Viewer,
        *,
        status: int = 200,
        notice: str | None = None,
        errors: Mapping[str, str] | None = None,
    ) -> web.Response:
        kit = self.kit
        shown: list[dict[str, Any]] = []
        for section in self.sections:
            view = await section.view(request, viewer, (errors or {}).get(section.name))
            if view is not None:
                shown.append(
                    {"name": section.name, "template": f"account/_{section.name}.html", "v": view}
                )
        session = viewer.session
        response = kit.render(
            request,
            "account.html",
            status=status,
            user=session.claims.get("email") or session.username,
            csrf_token=kit.session_token(viewer.cookie),
            notice=notice,
            sections=shown,
            # The sign-in is too old for a sensitive change: say the password is asked first,
            # and offer to confirm now (before typing a form that would not be sent).
            reauth_url=self.reauth_url(request) if self.needs_reauth(session) else None,
        )
        response.headers["Cache-Control"] = "no-store"
        return response
