"""Sign-in methods: the user's MFA factors (GetUser), an authenticator app enrolled here
(AssociateSoftwareToken / VerifySoftwareToken with the access token, a QR code rendered on the
server), removed or made preferred, SMS and email codes on / off / preferred
(SetUserMFAPreference).

The pending enrolment's secret never travels in a form: it is kept server-side in an entry
addressed by the session's record hash and sealed with a key derived from the session cookie
(``TotpEnrolments``), so only the browser that started the enrolment can see it, and no posted
field can name another one. Wrong codes are counted per enrolment; after a few it ends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from proxy.auth import qr
from proxy.auth.account.base import Viewer
from proxy.auth.account.page import AccountPage
from proxy.auth.challenges import totp_code
from proxy.auth.context import client_ip
from proxy.auth.kit import see_other
from proxy.cognito import errors
from proxy.cognito.account import (
    MFA_FACTORS,
    AccessTokenRejected,
    AccountApi,
    MfaSettings,
    mfa_of,
)
from proxy.observe import audit
from proxy.sessions.store import CountingStore

log = logging.getLogger("proxy.auth")

_PREFIX = "gate:totp:"
_NONCE = 12
# How long a started enrolment waits for its code, and how many wrong codes it takes.
ENROL_TTL = 600.0
MAX_WRONG_CODES = 5
_ACTIONS = ("on", "off", "preferred")
_TOTP = "SOFTWARE_TOKEN_MFA"


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    started_at: float
    verified: bool = False  # Cognito accepted its code; turning it on failed (try again)


class TotpEnrolments:
    """Authenticator-app enrolments in progress, one per session, kept in the store.

    Addressed by the session's record hash (which the session cookie alone determines) and
    sealed with AES-GCM under a key derived from the cookie itself and this store's key: a
    store dump opens nothing, and a browser can only ever reach its own session's entry.
    The wrong-code counter beside it is an atomic INCR (parallel guesses all count)."""

    def __init__(self, store: CountingStore, key: bytes) -> None:
        self._store = store
        self._key = key

    @staticmethod
    def key(record_hash: str) -> str:
        return _PREFIX + record_hash

    @staticmethod
    def counter_key(record_hash: str) -> str:
        return _PREFIX + "n:" + record_hash

    def companions(self, record_hash: str) -> tuple[str, str]:
        """The keys that end with the session (sign-out deletes them with the record)."""
        return self.key(record_hash), self.counter_key(record_hash)

    def _aead(self, cookie: str) -> AESGCM:
        return AESGCM(hmac.new(self._key, cookie.encode(), hashlib.sha256).digest())

    async def begin(
        self, cookie: str, record_hash: str, sub: str, secret: str, now: float | None = None
    ) -> None:
        await self._store.delete(self.counter_key(record_hash))
        await self._seal(
            cookie, record_hash, sub, Enrolment(secret, time.time() if now is None else now)
        )

    async def verified(self, cookie: str, record_hash: str, sub: str, enrolment: Enrolment) -> None:
        """Cognito accepted the code but the factor is not on yet: the next try only turns it
        on (VerifySoftwareToken has nothing pending to check any more)."""
        done = Enrolment(enrolment.secret, enrolment.started_at, verified=True)
        await self._seal(cookie, record_hash, sub, done)

    async def _seal(self, cookie: str, record_hash: str, sub: str, enrolment: Enrolment) -> None:
        key = self.key(record_hash)
        payload = json.dumps(
            {
                "sub": sub,
                "secret": enrolment.secret,
                "at": enrolment.started_at,
                "verified": enrolment.verified,
            }
        ).encode()
        nonce = os.urandom(_NONCE)
        sealed = nonce + self._aead(cookie).encrypt(nonce, payload, (key + "|" + sub).encode())
        await self._store.set(key, sealed, ENROL_TTL)

    async def pending(self, cookie: str, record_hash: str, sub: str) -> Enrolment | None:
        key = self.key(record_hash)
        raw = await self._store.get(key)
        if raw is None:
            return None
        try:
            data = json.loads(
                self._aead(cookie).decrypt(raw[:_NONCE], raw[_NONCE:], (key + "|" + sub).encode())
            )
            if data.get("sub") != sub:
                return None
            return Enrolment(
                secret=str(data["secret"]),
                started_at=float(data["at"]),
                verified=data.get("verified") is True,
            )
        except (InvalidTag, ValueError, TypeError, KeyError, AttributeError):
            return None

    async def attempt(self, record_hash: str) -> int:
        """Count one code tried, before Cognito is asked (so parallel tries all count and at
        most MAX_WRONG_CODES reach it); the count so far. Past the limit the setup ends."""
        count = await self._store.incr(self.counter_key(record_hash), ENROL_TTL)
        if count > MAX_WRONG_CODES:
            await self.close(record_hash)
        return count

    async def close(self, record_hash: str) -> None:
        """End the setup but keep its count (parallel tries still in flight stay counted;
        a new start resets it)."""
        await self._store.delete(self.key(record_hash))

    async def end(self, record_hash: str) -> None:
        await self._store.delete(self.key(record_hash))
        await self._store.delete(self.counter_key(record_hash))


@dataclass(frozen=True, slots=True)
class MethodsOptions:
    """What the section needs beyond the page: which factors the pool offers (settings
    order ignored: the page lists them in MFA_FACTORS order) and where enrolments wait."""

    factors: Sequence[str]
    enrolments: TotpEnrolments


def _group(secret: str) -> str:
    """The secret as apps show it for typing: groups of four."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


class MethodsSection:
    name = "methods"
    notices = {
        "totp_added": "account.methods.totp_added",
        "totp_removed": "account.methods.totp_removed",
        "totp_cancelled": "account.methods.totp_cancelled",
        "mfa_on": "account.methods.turned_on",
        "mfa_off": "account.methods.turned_off",
        "mfa_preferred": "account.methods.made_preferred",
    }

    def __init__(self, page: AccountPage, *, api: AccountApi, options: MethodsOptions) -> None:
        self._page = page
        self._api = api
        self._factors = tuple(f for f in MFA_FACTORS if f in options.factors)
        self._enrolments = options.enrolments

    def register(self, router: web.UrlDispatcher) -> None:
        page = self._page
        page.sensitive_route(router, "account/methods/totp/start", self.start_totp)
        page.sensitive_route(router, "account/methods/totp/verify", self.verify_totp)
        page.sensitive_route(router, "account/methods/mfa", self.set_factor)
        # Cancelling changes nothing about how the user signs in.
        page.route(router, "account/methods/totp/cancel", self.cancel_totp)

    # -- the view ----------------------------------------------------------------------------

    def _offered(self, settings: MfaSettings) -> list[str]:
        """The factors this user may turn on here: offered by the pool, and for codes sent by
        SMS or email a verified phone number / email address to send them to."""
        usable = {
            "SOFTWARE_TOKEN_MFA": True,
            "SMS_MFA": settings.phone_verified,
            "EMAIL_OTP": settings.email_verified,
        }
        return [f for f in self._factors if usable[f] or f in settings.enabled]

    def _listed(self, settings: MfaSettings) -> list[str]:
        """What the section lists: the factors offered here, and any other the user has on
        (set elsewhere, or before the settings changed), which can still be turned off."""
        offered = self._offered(settings)
        return [f for f in MFA_FACTORS if f in offered or f in settings.enabled]

    async def view(
        self, request: web.Request, viewer: Viewer, error: str | None
    ) -> dict[str, Any] | None:
        if not self._factors:
            return None
        kit = self._page.kit
        base = {
            "error": error,
            "mfa_action": kit.action(request, "account/methods/mfa"),
            "start_action": kit.action(request, "account/methods/totp/start"),
            "verify_action": kit.action(request, "account/methods/totp/verify"),
            "cancel_action": kit.action(request, "account/methods/totp/cancel"),
        }
        try:
            settings = mfa_of(await viewer.cognito_user(self._api.get_user_answer))
        except errors.CognitoError as exc:
            log.warning("GetUser (sign-in methods) failed: %s", exc.code)
            return {**base, "unavailable": True, "factors": [], "enrolment": None}
        rows = [
            {
                "factor": factor,
                "label": kit.t(request, f"factor.{factor}"),
                "on": factor in settings.enabled,
                "preferred": factor == settings.preferred,
                # "Preferred" means something when there is a choice to make.
                "can_prefer": factor in settings.enabled
                and factor in self._factors
                and factor != settings.preferred
                and len(settings.enabled) > 1,
                "offered": factor in self._factors,
            }
            for factor in self._listed(settings)
        ]
        enrolment = None
        if _TOTP in self._factors:
            enrolment = await self._enrolment_view(request, viewer)
        return {
            **base,
            "unavailable": False,
            "factors": rows,
            "none_on": not settings.enabled,
            "enrolment": enrolment,
        }

    async def _enrolment_view(self, request: web.Request, viewer: Viewer) -> dict[str, Any] | None:
        record = self._page.kit.sessions.record_hash(viewer.cookie)
        if record is None:
            return None
        pending = await self._enrolments.pending(viewer.cookie, record, viewer.session.sub)
        if pending is None:
            return None
        session = viewer.session
        account = str(session.claims.get("email") or session.username)
        issuer = self._page.kit.pages.branding.product_name
        return {
            "qr_code": qr.svg_data_uri(
                qr.otpauth_uri(issuer=issuer, account=account, secret=pending.secret)
            ),
            "secret": _group(pending.secret),
        }

    # -- the forms ---------------------------------------------------------------------------

    async def start_totp(self, request: web.Request) -> web.StreamResponse:
        """AssociateSoftwareToken: a new secret, kept for this session; the page shows it."""
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, _ = posted
        if _TOTP not in self._factors:
            return page.kit.error_page(request, 404, "error.bad_request")
        record = page.kit.sessions.record_hash(viewer.cookie)
        assert record is not None  # the cookie loaded a session
        try:
            live = await viewer.live()
            if live is None:
                return page.to_login(request)
            secret = await self._api.associate_software_token(live.access_token)
        except AccessTokenRejected:
            return await page.ended(request, viewer)
        except errors.CognitoError as exc:
            log.warning("AssociateSoftwareToken failed: %s", exc.code)
            return await page.again(request, viewer, self.name, 503, "account.methods.failed")
        await self._enrolments.begin(viewer.cookie, record, viewer.session.sub, secret)
        audit("account.totp_enrolment_started", user=viewer.session.sub, ip=client_ip(request))
        return self._to_section(request)

    async def verify_totp(self, request: web.Request) -> web.StreamResponse:
        """VerifySoftwareToken with the code the app shows, then SetUserMFAPreference on (and
        preferred when no other factor is)."""
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, form = posted
        session = viewer.session
        record = page.kit.sessions.record_hash(viewer.cookie)
        assert record is not None

        async def again(status: int, key: str) -> web.Response:
            return await page.again(request, viewer, self.name, status, key)

        if _TOTP not in self._factors:
            return page.kit.error_page(request, 404, "error.bad_request")
        pending = await self._enrolments.pending(viewer.cookie, record, session.sub)
        if pending is None:
            # Never started here, ended (too many wrong codes, cancelled) or expired.
            return await again(400, "account.methods.enrol_expired")
        code = totp_code(form.get("code", "")[:64])
        if code is None:
            return await again(400, "error.invalid_code")
        tries = await self._enrolments.attempt(record)
        if tries > MAX_WRONG_CODES:
            return await again(429, "account.methods.too_many_codes")
        try:
            live = await viewer.live()
            if live is None:
                return page.to_login(request)
            if not pending.verified:
                await self._api.verify_software_token(live.access_token, code)
                await self._enrolments.verified(viewer.cookie, record, session.sub, pending)
            current = await self._api.mfa_settings(live.access_token)
            others_preferred = current.preferred not in (None, _TOTP)
            await self._api.set_mfa_preference(
                live.access_token, _TOTP, enabled=True, preferred=not others_preferred
            )
        except AccessTokenRejected:
            return await page.ended(request, viewer)
        except errors.CodeMismatch:
            audit("account.totp_code_wrong", user=session.sub, ip=client_ip(request))
            if tries >= MAX_WRONG_CODES:
                await self._enrolments.close(record)
                return await again(429, "account.methods.too_many_codes")
            return await again(400, "error.invalid_code")
        except errors.TooManyRequests:
            return await again(429, "error.too_many")
        except errors.CognitoError as exc:
            log.warning("TOTP enrolment failed: %s", exc.code)
            return await again(503, "account.methods.failed")
        await self._enrolments.end(record)
        audit("account.totp_added", user=session.sub, ip=client_ip(request))
        return page.back(request, "totp_added", anchor=self.name)

    async def cancel_totp(self, request: web.Request) -> web.StreamResponse:
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, _ = posted
        record = page.kit.sessions.record_hash(viewer.cookie)
        if record is not None:
            await self._enrolments.end(record)
        return page.back(request, "totp_cancelled", anchor=self.name)

    async def set_factor(self, request: web.Request) -> web.StreamResponse:
        """SetUserMFAPreference: factor=<one the pool offers>, action=on|off|preferred (off
        also for a factor not offered that the user has on)."""
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, form = posted
        factor, action = form.get("factor", ""), form.get("action", "")
        if action not in _ACTIONS or factor not in MFA_FACTORS:
            return page.kit.error_page(request, 400, "error.bad_request")
        if factor not in self._factors and action != "off":
            # Only turning off a factor the settings do not offer (the user has it from before).
            return page.kit.error_page(request, 400, "error.bad_request")
        if factor == _TOTP and action == "on":
            # An authenticator app is turned on by enrolling one (start / verify).
            return page.kit.error_page(request, 400, "error.bad_request")
        try:
            live = await viewer.live()
            if live is None:
                return page.to_login(request)
            if action != "off":
                settings = await self._api.mfa_settings(live.access_token)
                if factor not in self._offered(settings):
                    return await page.again(
                        request, viewer, self.name, 400, "account.methods.not_verified"
                    )
                if action == "preferred" and factor not in settings.enabled:
                    return page.kit.error_page(request, 400, "error.bad_request")
            await self._api.set_mfa_preference(
                live.access_token, factor, enabled=action != "off", preferred=action == "preferred"
            )
        except AccessTokenRejected:
            return await page.ended(request, viewer)
        except errors.TooManyRequests:
            return await page.again(request, viewer, self.name, 429, "error.too_many")
        except errors.CognitoError as exc:
            log.warning("SetUserMFAPreference failed: %s", exc.code)
            return await page.again(request, viewer, self.name, 503, "account.methods.failed")
        ip = client_ip(request)
        audit(f"account.mfa_{action}", user=viewer.session.sub, ip=ip, factor=factor)
        done = "totp_removed" if factor == _TOTP and action == "off" else f"mfa_{action}"
        return page.back(request, done, anchor=self.name)

    def _to_section(self, request: web.Request) -> web.Response:
        """The page at this section (no notice: the enrolment itself is what it shows)."""
        return see_other(self._page.kit.action(request, "account") + "#" + self.name)
