"""Passkeys: the user's WebAuthn credentials with names and dates (ListWebAuthnCredentials),
delete one (DeleteWebAuthnCredential), add one: StartWebAuthnRegistration, the browser's
``navigator.credentials.create`` (static/passkeys.js), CompleteWebAuthnRegistration.

Cognito's creation options reach the browser on our page together with a ticket: a MAC over
their challenge, this session's cookie and an expiry. A posted credential goes to Cognito only
when its clientDataJSON carries a challenge that this session was given here, in time; so a
credential made for another session's options (or for options that never came from us) is
refused before Cognito is asked.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from typing import Any

from aiohttp import web

from proxy.auth import csrf
from proxy.auth.account.base import Viewer, when
from proxy.auth.account.page import AccountPage
from proxy.cognito import errors
from proxy.cognito.account import AccessTokenRejected, AccountApi
from proxy.observe import audit

log = logging.getLogger("proxy.auth")

_TICKET_PURPOSE = "passkey-registration"
# WebAuthn credential ids are at most 1023 bytes: base64url, unpadded.
_CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{1,1364}")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
# A "none" attestation is well under 2 KB; the form's body limit (16 KB) bounds it anyway.
_MAX_CREDENTIAL = 16 * 1024
_TICKET = re.compile(r"(\d{1,12})\.([0-9a-f]{64})")
# How long the browser has between our page and the posted credential, unless Cognito's
# options ask for less: the user may have to find a security key.
_REGISTRATION_TIME = 300.0

# Cognito's refusals of CompleteWebAuthnRegistration → (status, what the user is told).
_REFUSALS = {
    "WebAuthnChallengeNotFoundException": (400, "account.passkeys.expired"),
    "WebAuthnCredentialNotSupportedException": (400, "account.passkeys.not_supported"),
    "LimitExceededException": (400, "account.passkeys.limit"),
    "WebAuthnRelyingPartyMismatchException": (400, "account.passkeys.wrong_site"),
    "WebAuthnOriginNotAllowedException": (400, "account.passkeys.wrong_site"),
    "WebAuthnClientMismatchException": (400, "account.passkeys.expired"),
    "WebAuthnNotEnabledException": (409, "account.passkeys.not_offered"),
    "WebAuthnConfigurationMissingException": (409, "account.passkeys.not_offered"),
    "InvalidParameterException": (400, "account.passkeys.failed"),
}


def registration_challenge(credential: dict[str, Any]) -> str | None:
    """The challenge a RegistrationResponseJSON's clientDataJSON answers (base64url), or None
    when the credential is not one ``navigator.credentials.create`` makes."""
    response = credential.get("response")
    if credential.get("type") != "public-key" or not isinstance(response, dict):
        return None
    encoded = response.get("clientDataJSON")
    if not isinstance(encoded, str) or len(encoded) > _MAX_CREDENTIAL:
        return None
    if not _B64URL.fullmatch(encoded):
        return None
    try:
        client = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(client, dict) or client.get("type") != "webauthn.create":
        return None
    challenge = client.get("challenge")
    return challenge if isinstance(challenge, str) and challenge else None


class PasskeysSection:
    name = "passkeys"
    notices = {
        "passkey_added": "account.passkeys.added",
        "passkey_deleted": "account.passkeys.deleted",
    }

    def __init__(self, page: AccountPage, *, api: AccountApi, enabled: bool) -> None:
        self._page = page
        self._api = api
        self._enabled = enabled

    def register(self, router: web.UrlDispatcher) -> None:
        if not self._enabled:
            return  # no routes: the section is not there
        page = self._page
        page.sensitive_route(router, "account/passkeys/start", self.start)
        page.sensitive_route(router, "account/passkeys/add", self.add)
        page.sensitive_route(router, "account/passkeys/delete", self.delete)

    async def view(
        self, request: web.Request, viewer: Viewer, error: str | None
    ) -> dict[str, Any] | None:
        """The user's passkeys and the way to add one; hidden when the deployment does not
        sign in with USER_AUTH (the only flow that offers passkeys) or turned it off."""
        if not self._enabled:
            return None
        kit = self._page.kit
        shown: dict[str, Any] = {
            "passkeys": [],
            "unavailable": False,
            "error": error,
            "start_action": kit.action(request, "account/passkeys/start"),
            "delete_action": kit.action(request, "account/passkeys/delete"),
            "script": "passkeys.js",  # account.html loads it: it shows the add button
        }
        try:
            live = await viewer.live()
            listed = await self._api.list_passkeys((live or viewer.session).access_token)
        except errors.CognitoError as exc:
            log.warning("ListWebAuthnCredentials failed: %s", exc.code)
            return shown | {"unavailable": True}
        listed.sort(key=lambda p: -(p.created or 0))
        shown["passkeys"] = [
            {
                "id": p.credential_id,
                "name": p.name,
                "kind": {"platform": "platform", "cross-platform": "roaming"}.get(p.attachment),
                "created": when(p.created) if p.created else None,
            }
            for p in listed
            if _CREDENTIAL_ID.fullmatch(p.credential_id)
        ]
        return shown

    # -- add ----------------------------------------------------------------------------------

    async def start(self, request: web.Request) -> web.StreamResponse:
        """StartWebAuthnRegistration, then the page that hands its options to the browser."""
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, _ = posted
        kit = page.kit
        try:
            live = await viewer.live()
            if live is None:
                return page.to_login(request)
            options = await self._api.start_passkey_registration(live.access_token)
        except AccessTokenRejected:
            return await page.ended(request, viewer)
        except errors.CognitoError as exc:
            return await self._refused(request, viewer, exc, "StartWebAuthnRegistration")
        timeout = options.get("timeout")
        seconds = _REGISTRATION_TIME
        if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 0:
            seconds = min(seconds, timeout / 1000)
        expires = int(time.time() + seconds)
        ticket = self._ticket(viewer.cookie, options["challenge"], expires)
        response = kit.render(
            request,
            "passkey_register.html",
            action=kit.action(request, "account/passkeys/add"),
            cancel_url=kit.action(request, "account") + "#passkeys",
            csrf_token=kit.session_token(viewer.cookie),
            options_json=json.dumps(options, separators=(",", ":")),
            ticket=ticket,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def _ticket(self, cookie: str, challenge: str, expires: int) -> str:
        data = f"{expires}|{challenge}"
        return f"{expires}.{self._page.kit.bound_token(_TICKET_PURPOSE, cookie, data)}"

    def _ticket_admits(self, cookie: str, ticket: str, challenge: str) -> bool:
        """``ticket`` is ours, for this session and this challenge, and not expired."""
        match = _TICKET.fullmatch(ticket)
        if match is None or int(match[1]) < time.time():
            return False
        return csrf.tokens_match(self._ticket(cookie, challenge, int(match[1])), ticket)

    async def add(self, request: web.Request) -> web.StreamResponse:
        """The browser's new credential: checked against this session's ticket, then
        CompleteWebAuthnRegistration."""
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, form = posted

        async def again(status: int, key: str) -> web.Response:
            return await page.again(request, viewer, self.name, status, key)

        raw = form.get("credential", "")
        if not raw or len(raw) > _MAX_CREDENTIAL:
            return await again(400, "account.passkeys.failed")
        try:
            credential = json.loads(raw)
        except (ValueError, RecursionError):
            return await again(400, "account.passkeys.failed")
        challenge = registration_challenge(credential) if isinstance(credential, dict) else None
        if challenge is None:
            return await again(400, "account.passkeys.failed")
        if not self._ticket_admits(viewer.cookie, form.get("ticket", ""), challenge):
            # Not options this session was given here, or too late: start again.
            audit("account.passkey_refused", user=viewer.session.sub, reason="ticket")
            return await again(400, "account.passkeys.expired")
        try:
            live = await viewer.live()
            if live is None:
                return page.to_login(request)
            await self._api.complete_passkey_registration(live.access_token, credential)
        except AccessTokenRejected:
            return await page.ended(request, viewer)
        except errors.CognitoError as exc:
            return await self._refused(request, viewer, exc, "CompleteWebAuthnRegistration")
        audit("account.passkey_added", user=viewer.session.sub)
        return page.back(request, "passkey_added", anchor=self.name)

    async def _refused(
        self, request: web.Request, viewer: Viewer, exc: errors.CognitoError, call: str
    ) -> web.Response:
        status, key = _REFUSALS.get(exc.code, (0, ""))
        if isinstance(exc, errors.TooManyRequests) and exc.code != "LimitExceededException":
            status, key = 429, "error.too_many"
        if not status:
            status, key = 503, "account.passkeys.unavailable"
        if status in (409, 503) or key == "account.passkeys.wrong_site":
            log.warning("%s failed: %s", call, exc.code)  # the pool's settings, not the user
        return await self._page.again(request, viewer, self.name, status, key)

    # -- delete -------------------------------------------------------------------------------

    async def delete(self, request: web.Request) -> web.StreamResponse:
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, form = posted
        kit = page.kit
        credential_id = form.get("credential", "")
        if not _CREDENTIAL_ID.fullmatch(credential_id):
            return kit.error_page(request, 400, "error.bad_request")
        try:
            live = await viewer.live()
            if live is None:
                return page.to_login(request)
            await self._api.delete_passkey(live.access_token, credential_id)
        except AccessTokenRejected:
            return await page.ended(request, viewer)
        except errors.Misconfigured as exc:
            if exc.code != "ResourceNotFoundException":
                log.warning("DeleteWebAuthnCredential failed: %s", exc.code)
                return await page.again(
                    request, viewer, self.name, 503, "account.passkeys.unavailable"
                )
            # Not (or no longer) this user's passkey: it is gone either way.
        except errors.TooManyRequests:
            return await page.again(request, viewer, self.name, 429, "error.too_many")
        except errors.CognitoError as exc:
            log.warning("DeleteWebAuthnCredential failed: %s", exc.code)
            return await page.again(request, viewer, self.name, 503, "account.passkeys.unavailable")
        audit("account.passkey_deleted", user=viewer.session.sub)
        return page.back(request, "passkey_deleted", anchor=self.name)
