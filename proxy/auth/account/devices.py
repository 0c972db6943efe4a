"""Remembered devices: ListDevices with name, IP and last sign-in, the current one marked;
ForgetDevice (that device signs in with MFA again)."""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web

from proxy.auth.account.base import Viewer, when
from proxy.auth.account.page import AccountPage
from proxy.auth.session_cards import describe_user_agent
from proxy.cognito import errors
from proxy.cognito.account import AccessTokenRejected, AccountApi
from proxy.observe import audit

log = logging.getLogger("proxy.auth")

# Cognito's device keys: "<region>_<uuid>".
_DEVICE_KEY = re.compile(
    r"[a-z]{2}(?:-[a-z]+)+-\d_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def device_label(name: str) -> str:
    """How a device is named on the page: the proxy names the devices it remembers by the
    browser's User-Agent (a line of 100+ characters nobody reads), shown as "Chrome · Windows"
    like a session; a name some other client gave is shown as it is."""
    browser, system = describe_user_agent(name)
    return " · ".join(part for part in (browser, system) if part) or name


class DevicesSection:
    name = "devices"
    notices = {"device_forgotten": "account.devices.forgotten"}

    def __init__(self, page: AccountPage, *, api: AccountApi) -> None:
        self._page = page
        self._api = api

    def register(self, router: web.UrlDispatcher) -> None:
        self._page.route(router, "account/devices/forget", self.forget_device)

    async def view(
        self, request: web.Request, viewer: Viewer, error: str | None
    ) -> dict[str, Any] | None:
        """Its rows, or that they could not be read now (the rest of the page does not depend
        on Cognito answering); hidden when the user has no remembered device."""
        action = self._page.kit.action(request, "account/devices/forget")
        try:
            live = await viewer.live()
            listed = await self._api.list_devices((live or viewer.session).access_token)
        except errors.CognitoError as exc:
            log.warning("ListDevices failed: %s", exc.code)
            return {"devices": [], "unavailable": True, "action": action}
        # Only remembered ones: a device the user chose not to remember is tracked all the same,
        # but it spares nothing, so it is not what this section speaks of.
        listed = [device for device in listed if device.remembered]
        if not listed:
            return None
        rows: list[dict[str, Any]] = [
            {
                "key": device.key,
                "name": device_label(device.name),
                "ip": device.last_ip,
                "current": device.key == viewer.session.device_key,
                "last_signed_in": when(device.last_signed_in) if device.last_signed_in else None,
            }
            for device in listed
        ]
        rows.sort(key=lambda r: (not r["current"], -(r["last_signed_in"] or {}).get("t", 0)))
        return {"devices": rows, "unavailable": False, "action": action}

    async def forget_device(self, request: web.Request) -> web.StreamResponse:
        """ForgetDevice (and this browser, if it is this one, no longer offers its key)."""
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, form = posted
        kit = page.kit
        key = form.get("device", "")
        if not _DEVICE_KEY.fullmatch(key):
            return kit.error_page(request, 400, "error.bad_request")
        try:
            live = await viewer.live()
            if live is None:
                return page.to_login(request)
            await self._api.forget_device(live.access_token, key)
        except AccessTokenRejected:
            return await page.ended(request, viewer)
        except errors.Misconfigured:  # ResourceNotFound: not (or no longer) this user's device
            return page.back(request, "device_forgotten", anchor=self.name)
        except errors.CognitoError as exc:
            log.warning("ForgetDevice failed: %s", exc.code)
            return kit.error_page(request, 503, "error.unavailable")
        audit("account.device_forgotten", user=viewer.session.sub)
        response = page.back(request, "device_forgotten", anchor=self.name)
        if key == viewer.session.device_key:
            kit.clear_cookie(response, kit.cookies.device)
        return response
