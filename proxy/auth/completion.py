"""The end of every successful sign-in (from the password form or the last challenge): the
remembered device it may use, then the session, its cookie and the way back to the app."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

from proxy.auth.context import client_ip
from proxy.auth.devices import DeviceStore
from proxy.auth.flow import second_factor
from proxy.auth.kit import AuthKit, see_other
from proxy.auth.outcomes import SignedIn
from proxy.auth.session_cards import SessionCards
from proxy.auth.state import LoginState
from proxy.cognito.client import Device
from proxy.observe import audit
from proxy.sessions.session import Session
from proxy.sessions.store import StoreUnavailable

log = logging.getLogger("proxy.auth")

Revoke = Callable[[Session], Awaitable[bool]]


class Completion:
    def __init__(
        self,
        kit: AuthKit,
        *,
        devices: DeviceStore | None,
        remember_lifetime: float,
        cards: SessionCards | None = None,
        revoke: Revoke | None = None,
    ) -> None:
        self._kit = kit
        self._cards = cards
        # RevokeToken for a session's refresh token nobody will hold (refresh.Refresher.revoke).
        self._revoke = revoke
        self.devices = devices
        self._remember_lifetime = remember_lifetime

    async def remembered_device(self, request: web.Request, username: str) -> Device | None:
        """The device this browser confirmed for ``username`` earlier, if any."""
        if self.devices is None:
            return None
        cookie = request.cookies.get(self._kit.cookies.device)
        if not cookie:
            return None
        try:
            return await self.devices.load(cookie, username)
        except StoreUnavailable:
            return None  # no device: Cognito asks for MFA, which still signs the user in

    async def _reauth_refused(
        self, request: web.Request, state: LoginState, step: SignedIn
    ) -> web.Response | Session:
        """A re-authentication renews the session it was started for, of the same user, or
        nothing: that session when this sign-in may replace it, else the answer."""
        kit = self._kit
        cookie = request.cookies.get(kit.cookies.session)
        current = await kit.sessions.load(cookie) if cookie else None
        await kit.delete_flow(request)  # used up either way: never replayed
        if step.session.sub != state.reauth_sub:
            # Someone else's credentials at "confirm it's you" (only /login takes a typed name):
            # never a swap of identity. Whoever is at this browser is not the session's user:
            # it is signed out too.
            log.warning("re-authentication by a different user refused")
            audit("reauth.other_user", user=state.reauth_sub, ip=client_ip(request))
            if cookie and current is not None and current.sub == state.reauth_sub:
                await kit.sessions.delete(cookie, current)
                await self._revoked(current)
            await self._revoked(step.session)  # the other account's fresh tokens: kept by nobody
            response = kit.error_page(request, 403, "error.reauth_other_user")
            kit.clear_cookie(response, kit.cookies.session)
            kit.clear_cookie(response, kit.cookies.flow)
            return response
        if (
            cookie is None
            or current is None
            or current.sub != state.reauth_sub
            or kit.sessions.record_hash(cookie) != state.reauth_record
        ):
            # The session it was for ended meanwhile (signed out elsewhere), or this flow was
            # started by another browser's session: a plain sign-in again, nothing renewed.
            response = see_other(
                f"{kit.prefix}/login?" + urlencode({"rd": state.return_to, "notice": "expired"})
            )
            kit.clear_cookie(response, kit.cookies.flow)
            await self._revoked(step.session)
            return response
        return current

    async def _revoked(self, session: Session) -> None:
        if self._revoke is not None:
            await self._revoke(session)  # best effort: logged when Cognito cannot be asked

    async def finish(
        self, request: web.Request, state: LoginState, step: SignedIn
    ) -> web.StreamResponse:
        kit = self._kit
        replaced: Session | None = None
        if state.reauth_record is not None:
            checked = await self._reauth_refused(request, state, step)
            if isinstance(checked, web.Response):
                return checked
            replaced = checked
        step.session.remember = state.remember
        # The user proved who they are just now, with these factors (never from the browser).
        step.session.auth_time = time.time()
        step.session.factors = list(state.factors)
        location = state.return_to
        device_cookie = None
        if step.new_device is not None and self.devices is not None:
            # Confirm every device Cognito tracks (its refresh tokens need the device key);
            # offer to remember it only after a second factor, which it then stands in for.
            device_cookie, ask = await self.devices.confirm(
                step.session, step.new_device, state, request.headers.get("User-Agent", "")
            )
            if device_cookie is not None:
                step.session.device_key = step.new_device.device_key
            spared = second_factor(state) or state.second_factor
            if ask and spared:
                # Cognito remembers this device only with the user's consent: ask first, saying
                # which step it spares.
                location = f"{kit.prefix}/device?" + urlencode(
                    {
                        "rd": state.return_to,
                        "spares": spared,
                        **({"lang": lang} if (lang := request.query.get("lang")) else {}),
                    }
                )
        session_cookie = await kit.sessions.create(step.session)
        record = kit.sessions.record_hash(session_cookie)
        if self._cards is not None and record is not None:
            # What the account page shows of this session to the user's other browsers.
            await self._cards.record(
                record,
                user_agent=request.headers.get("User-Agent", ""),
                ip=client_ip(request),
                # As long as the record: each write of the record moves both (idle timeout).
                ttl=kit.sessions.remaining(step.session),
            )
        await kit.delete_flow(request)
        old = request.cookies.get(kit.cookies.session)
        if old:
            await kit.sessions.delete(old)  # no fixation: a fresh id each login
        if replaced is not None:
            # The renewed sign-in has tokens of its own: the replaced session's refresh token
            # would outlive it at Cognito, held by nobody.
            await self._revoked(replaced)
        log.info("sign-in succeeded session=%s", kit.sessions.fingerprint(session_cookie))
        audit(
            "login.success",
            user=step.session.claims.get("sub"),
            session=kit.sessions.fingerprint(session_cookie),
            ip=client_ip(request),
        )
        response = see_other(location)
        if state.reauth_record is not None:
            audit("reauth.success", user=step.session.sub, factors=",".join(state.factors))
            if state.reauth_mfa and not step.session.multi_factor:
                # The page wants a second factor this account has none of: say so, rather than
                # send the user back there (and round again).
                response = kit.error_page(request, 403, "error.reauth_mfa_missing")
        max_age = int(self._remember_lifetime) if state.remember else None
        kit.set_cookie(response, kit.cookies.session, session_cookie, max_age)
        kit.clear_cookie(response, kit.cookies.flow)
        if device_cookie is not None and self.devices is not None:
            kit.set_cookie(response, kit.cookies.device, device_cookie, int(self.devices.lifetime))
        return response
