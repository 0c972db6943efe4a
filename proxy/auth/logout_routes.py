"""``/logout``: a GET shows a form, only its POST signs out (here, or everywhere)."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from aiohttp import web

from proxy.auth.kit import AuthKit, see_other
from proxy.auth.redirects import safe_return_path
from proxy.cognito.client import CognitoClient
from proxy.cognito.errors import CognitoError
from proxy.observe import audit
from proxy.refresh import NoRefreshToken, Refresher
from proxy.sessions.session import Session

log = logging.getLogger("proxy.auth")


class LogoutRoutes:
    def __init__(
        self,
        kit: AuthKit,
        *,
        cognito: CognitoClient,
        refresher: Refresher,
        allowed_redirect_origins: Collection[str],
        account: bool = False,
    ) -> None:
        self._kit = kit
        self._account = account  # the account page is on: link to it
        self._cognito = cognito
        self._refresher = refresher
        self._allowed_origins = tuple(allowed_redirect_origins)

    def register(self, router: web.UrlDispatcher) -> None:
        self._kit.route(router, "GET", "logout", self.logout_page)
        self._kit.route(router, "POST", "logout", self.logout_submit)

    async def logout_page(self, request: web.Request) -> web.StreamResponse:
        # A GET never signs anyone out: it shows a form that POSTs back here.
        kit = self._kit
        cookie = request.cookies.get(kit.cookies.session)
        session = await kit.session(request)
        if session is None or not cookie:
            raise web.HTTPSeeOther(self._after_logout(request.query.get("rd")))
        return kit.render(
            request,
            "logout.html",
            action=kit.action(request, "logout"),
            csrf_token=kit.session_token(cookie),
            user=session.claims.get("email") or session.username,
            rd=request.query.get("rd", "")[:2048],
            account_url=kit.action(request, "account") if self._account else None,
        )

    def _after_logout(self, rd: str | None) -> str:
        """Where a signed-out browser goes: a validated ``rd``, else the login page."""
        return safe_return_path(
            rd,
            default=f"{self._kit.prefix}/login?notice=signed_out",
            allowed_origins=self._allowed_origins,
        )

    async def logout_submit(self, request: web.Request) -> web.StreamResponse:
        kit = self._kit
        posted = await kit.session_form(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        cookie, form = posted
        if cookie is not None:
            await self._end_session(cookie, everywhere=form.get("everywhere") == "1")
        response = see_other(self._after_logout(form.get("rd") or request.query.get("rd")))
        kit.clear_cookie(response, kit.cookies.session)
        # Pages seen while signed in leave the browser's cache. Not "cookies": that wipes every
        # cookie of the whole registrable domain (the app's, sibling sites', and the remembered
        # device, so MFA would be asked after every sign-out); ours is cleared by name above.
        response.headers["Clear-Site-Data"] = '"cache"'
        return response

    async def _end_session(self, cookie: str, *, everywhere: bool = False) -> None:
        sessions = self._kit.sessions
        session = await sessions.load(cookie)
        if session is None:
            await sessions.delete(cookie)
            return
        if everywhere:
            # Every session of this user in the shared store, on every replica; and at Cognito
            # every refresh token of the user (other apps' too). Local ends first: they do
            # not depend on Cognito answering.
            await sessions.end_all(session.sub)
            await sessions.delete(cookie, session)
            live = await self._live_session(session)
            # A refresh with rotation replaced the refresh token: the new one is the one to
            # revoke if GlobalSignOut fails.
            session = live or session
            try:
                if live is not None:
                    await self._cognito.global_sign_out(live.access_token)
                    log.info("signed out everywhere session=%s", sessions.fingerprint(cookie))
                    return
            except CognitoError as exc:
                log.warning("GlobalSignOut failed (%s); revoking this session's token", exc.code)
        else:
            await sessions.delete(cookie, session)
        # Revocation makes the refresh token useless even if it leaked from a store dump.
        await self._refresher.revoke(session)
        log.info("signed out session=%s", sessions.fingerprint(cookie))
        audit(
            "logout",
            user=session.claims.get("sub") if session is not None else None,
            session=sessions.fingerprint(cookie),
        )

    async def _live_session(self, session: Session) -> Session | None:
        """GlobalSignOut needs an unexpired access token; an idle session's may have expired.
        Refreshed the one way every refresh goes (the device key included). None: there is no
        live token to be had (the caller revokes this session's refresh token instead)."""
        if session.expires_at > time.time() + 30:
            return session
        fresh = await self._refresher.refresh(session)
        if isinstance(fresh, Session):
            return fresh
        if isinstance(fresh, NoRefreshToken):
            return session  # Cognito judges its access token: refused, we revoke below
        log.warning(
            "refresh before GlobalSignOut failed (%s); revoking this session's token", fresh.code
        )
        return None
