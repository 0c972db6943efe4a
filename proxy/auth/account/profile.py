"""Profile: the user's own attributes (GetUser with the access token), those the settings list.

``GATE_ACCOUNT_PROFILE_ATTRIBUTES`` names the attributes a user may change here (the app
client's WriteAttributes must allow each: Cognito refuses the others, and saying which it
allows would take DescribeUserPoolClient, an IAM call), ``GATE_ACCOUNT_PROFILE_READ_ONLY``
ones only shown. Nothing else is ever shown or written: not sub, the ``*_verified`` flags,
identities, or an attribute the settings leave out, whatever a form posts.

Plain attributes (name, ...) change at once. A new email or phone number goes through
UpdateUserAttributes, which sends a code to it, then VerifyUserAttribute. In a pool that keeps
the original value active while an update is pending (AttributesRequireVerificationBeforeUpdate)
the old value stays in effect and GetUser keeps showing it; Cognito has no API that tells the
pending value, so it is remembered here (sealed, per user, for the code's 24 hours) and shown as
pending, with the code form and "send a new code" (GetUserAttributeVerificationCode). In a pool
that does not, the new value is in effect at once, unverified, with the same code form.

After every change the session gets new tokens (the gate's Identity, the one refresh path), so
the claims and identity headers the app receives say the new values on the next request; the
save drops every replica's cached copy. Changing the email or phone changes how the user signs in
(and where codes go): those routes are the page's sensitive routes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from proxy.auth.account.base import LiveSession, Viewer
from proxy.auth.account.page import AccountPage
from proxy.auth.challenges import ATTRIBUTE_INPUTS
from proxy.cognito import errors
from proxy.cognito.account import (
    AccessTokenRejected,
    AccountApi,
    AliasTaken,
    AttributeNotWritable,
    AttributeRefused,
    attributes_of,
)
from proxy.observe import audit
from proxy.sessions.store import KeyValue

log = logging.getLogger("proxy.auth")

# The attributes whose changes need a code (and change how the user signs in).
CONTACTS = ("email", "phone_number")
_MAX_VALUE = 2048  # Cognito's AttributeValueType
_MAX_CODE = 64  # Cognito's codes are 6 digits; a custom sender's may be longer, never this long
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")  # Cognito: "+", the country code, digits only
_PHONE_PUNCTUATION = str.maketrans("", "", " -().")
_BIRTHDATE = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
)  # OIDC: YYYY-MM-DD
_CODE = re.compile(r"\S+")
_FIELD_PREFIX = "attr:"

# Code lifetime at Cognito (attribute verification codes: 24 hours); the pending value is kept
# as long.
PENDING_TTL = 86400.0
_NONCE = 12


class PendingChanges:
    """New emails / phone numbers waiting for their code, per user, sealed (they are personal
    data) under a key derived from the cookie secret, addressed by a keyed hash of the sub."""

    def __init__(self, store: KeyValue, key: bytes) -> None:
        self._store = store
        self._aead = AESGCM(key)
        self._name_key = hashlib.sha256(b"pending names\x00" + key).digest()

    def _key(self, sub: str) -> str:
        return "gate:pending:" + hmac.new(self._name_key, sub.encode(), hashlib.sha256).hexdigest()

    async def load(self, sub: str) -> dict[str, str]:
        key = self._key(sub)
        sealed = await self._store.get(key)
        if sealed is None or len(sealed) <= _NONCE:
            return {}
        try:
            raw = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], key.encode())
            data = json.loads(raw)
        except (InvalidTag, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if k in CONTACTS and isinstance(v, str)}

    async def _save(self, sub: str, pending: dict[str, str]) -> None:
        key = self._key(sub)
        if not pending:
            await self._store.delete(key)
            return
        nonce = os.urandom(_NONCE)
        payload = json.dumps(pending, separators=(",", ":")).encode()
        await self._store.set(
            key, nonce + self._aead.encrypt(nonce, payload, key.encode()), PENDING_TTL
        )

    async def put(self, sub: str, name: str, value: str) -> None:
        pending = await self.load(sub)
        pending[name] = value
        await self._save(sub, pending)

    async def drop(self, sub: str, name: str) -> None:
        pending = await self.load(sub)
        if pending.pop(name, None) is not None:
            await self._save(sub, pending)


@dataclass(frozen=True, slots=True)
class ProfileOptions:
    """What the settings say (GATE_ACCOUNT_PROFILE_ATTRIBUTES / _READ_ONLY) and where pending
    changes are kept."""

    editable: tuple[str, ...]
    read_only: tuple[str, ...]
    pending: PendingChanges


@dataclass(frozen=True, slots=True)
class _Failed:
    """A refused form: which field the error belongs to and what was typed (shown again)."""

    field: str | None
    values: dict[str, str]


_FAILED = web.RequestKey("account_profile_failed", _Failed)


class Invalid(ValueError):
    """A value the form may not send; ``key`` is the i18n message."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def clean_value(name: str, raw: str) -> str:
    """The value to send Cognito for ``name`` as typed, or Invalid (i18n key) when Cognito
    would refuse it: too long, control characters, an email or phone number not in its format
    (phone numbers: E.164; spaces, dashes, dots and brackets are dropped first)."""
    value = raw.strip()
    if len(value) > _MAX_VALUE:
        raise Invalid("account.profile.too_long")
    if _CONTROL.search(value):
        raise Invalid("account.profile.bad_characters")
    if name == "email" and not (value and _EMAIL.fullmatch(value)):
        raise Invalid("account.profile.bad_email")
    if name == "phone_number":
        value = value.translate(_PHONE_PUNCTUATION)
        if not _E164.fullmatch(value):
            raise Invalid("account.profile.bad_phone")
    if name == "birthdate" and value and not _BIRTHDATE.fullmatch(value):
        raise Invalid("account.profile.bad_birthdate")
    return value


class ProfileSection:
    name = "profile"
    notices = {
        "profile_saved": "account.profile.saved",
        "code_sent": "account.profile.code_sent",
        "code_resent": "account.profile.code_resent",
        "contact_verified": "account.profile.verified",
    }

    def __init__(
        self,
        page: AccountPage,
        *,
        api: AccountApi,
        renew_session: LiveSession,
        options: ProfileOptions,
    ) -> None:
        self._page = page
        self._api = api
        self._renew = renew_session
        self._pending = options.pending
        self._editable = options.editable
        self._plain = tuple(a for a in options.editable if a not in CONTACTS)
        self._contacts = tuple(a for a in options.editable if a in CONTACTS)
        self._read_only = options.read_only

    def register(self, router: web.UrlDispatcher) -> None:
        page = self._page
        page.route(router, "account/profile", self.save)
        # A new email or phone number changes how the user signs in (and where codes go).
        page.sensitive_route(router, "account/profile/contact", self.change_contact)
        page.route(router, "account/profile/verify", self.verify)
        page.route(router, "account/profile/resend", self.resend)

    # -- the view ---------------------------------------------------------------------------

    def _label(self, request: web.Request, name: str) -> str:
        if name.startswith("custom:"):
            return name.removeprefix("custom:")
        return self._page.kit.t(request, f"account.profile.attr.{name}")

    async def view(
        self, request: web.Request, viewer: Viewer, error: str | None
    ) -> dict[str, Any] | None:
        if not self._editable and not self._read_only:
            return None
        kit = self._page.kit
        failed = request.get(_FAILED)
        field_error = error if failed is not None and failed.field else None
        base: dict[str, Any] = {
            "action": kit.action(request, "account/profile"),
            "contact_action": kit.action(request, "account/profile/contact"),
            "verify_action": kit.action(request, "account/profile/verify"),
            "resend_action": kit.action(request, "account/profile/resend"),
            "error": None if field_error else error,
            "unavailable": False,
            "fields": [],
            "contacts": [],
            "read_only": [],
        }
        try:
            current = attributes_of(await viewer.cognito_user(self._api.get_user_answer))
        except errors.CognitoError as exc:
            log.warning("GetUser failed: %s", exc.code)
            return base | {"unavailable": True}
        pending = await self._pending.load(viewer.session.sub) if self._contacts else {}
        typed = failed.values if failed is not None else {}

        def field_of(name: str, value: str) -> dict[str, Any]:
            kind, autocomplete = ATTRIBUTE_INPUTS.get(name, ("text", "off"))
            return {
                "name": name,
                "field": _FIELD_PREFIX + name,
                "id": "profile-" + name.replace(":", "-"),
                "label": self._label(request, name),
                "type": kind,
                "autocomplete": autocomplete,
                "value": value,
                "error": field_error if failed is not None and failed.field == name else None,
            }

        base["fields"] = [
            field_of(name, typed.get(_FIELD_PREFIX + name, current.get(name, "")))
            for name in self._plain
        ]
        for name in self._contacts:
            value = current.get(name, "")
            waiting = pending.get(name)
            if waiting == value:
                waiting = None  # in effect now (verified, or a pool that applies it at once)
            contact = field_of(name, typed.get(_FIELD_PREFIX + name, ""))
            contact |= {
                "current": value,
                "verified": current.get(f"{name}_verified") == "true",
                "pending": waiting,
                "code_error": (
                    field_error if failed is not None and failed.field == f"code:{name}" else None
                ),
            }
            base["contacts"].append(contact)
        base["read_only"] = [
            {"label": self._label(request, name), "value": current[name]}
            for name in self._read_only
            if current.get(name)
        ]
        return base

    # -- the forms --------------------------------------------------------------------------

    async def _again(
        self,
        request: web.Request,
        viewer: Viewer,
        status: int,
        key: str,
        *,
        field: str | None = None,
        values: dict[str, str] | None = None,
    ) -> web.Response:
        request[_FAILED] = _Failed(field, values or {})
        return await self._page.again(request, viewer, self.name, status, key)

    async def _refused(
        self,
        request: web.Request,
        viewer: Viewer,
        exc: errors.CognitoError,
        *,
        field: str | None,
        values: dict[str, str],
        operation: str,
    ) -> web.StreamResponse:
        """Cognito's refusal of an attribute call as the answer the user sees."""
        page = self._page
        if isinstance(exc, AccessTokenRejected):
            return await page.ended(request, viewer)
        status, key = 503, "error.unavailable"
        if isinstance(exc, AttributeNotWritable):
            log.warning(
                "%s: the app client may not write %s; remove it from"
                " GATE_ACCOUNT_PROFILE_ATTRIBUTES or allow it in the client's WriteAttributes",
                operation,
                field or "an attribute",
            )
            status, key = 403, "account.profile.not_writable"
        elif isinstance(exc, AttributeRefused):
            status, key = 400, "account.profile.refused"
        elif isinstance(exc, AliasTaken):
            status, key = 400, "account.profile.alias_taken"
        elif isinstance(exc, errors.CodeMismatch):
            status, key = 400, "account.profile.wrong_code"
        elif isinstance(exc, errors.ExpiredCode):
            status, key = 400, "account.profile.expired_code"
        elif isinstance(exc, errors.TooManyRequests):
            status, key = 429, "error.too_many"
        else:
            log.warning("%s failed: %s", operation, exc.code)
        return await self._again(request, viewer, status, key, field=field, values=values)

    async def _token(self, viewer: Viewer) -> str | None:
        live = await viewer.live()
        return None if live is None else live.access_token

    async def save(self, request: web.Request) -> web.StreamResponse:
        """The plain attributes (name, ...): UpdateUserAttributes, in effect at once."""
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, form = posted
        if not self._plain:
            return page.kit.error_page(request, 404, "status.404.message")
        typed: dict[str, str] = {}
        for name in self._plain:
            field = _FIELD_PREFIX + name
            if field not in form:
                continue  # not on the form that was posted: left as it is
            try:
                typed[name] = clean_value(name, form[field])
            except Invalid as bad:
                return await self._again(request, viewer, 400, bad.key, field=name, values=form)
        changes: dict[str, str] = {}
        try:
            token = await self._token(viewer)
            if token is None:
                return page.to_login(request)
            current = await self._api.get_user(token)
            changes = {k: v for k, v in typed.items() if v != current.get(k, "")}
            if changes:
                await self._api.update_attributes(token, changes)
        except errors.CognitoError as exc:
            only = next(iter(changes)) if len(changes) == 1 else None
            return await self._refused(
                request, viewer, exc, field=only, values=form, operation="UpdateUserAttributes"
            )
        if changes:
            # The names, never the values; not a metrics label (their combinations are many).
            audit("account.profile_changed", user=viewer.session.sub, attributes=",".join(changes))
            await self._renew(viewer.cookie)
        return page.back(request, "profile_saved", anchor=self.name)

    def _contact(self, form: dict[str, str]) -> str | None:
        name = form.get("attribute", "")
        return name if name in self._contacts else None

    async def change_contact(self, request: web.Request) -> web.StreamResponse:
        """A new email or phone number: UpdateUserAttributes sends a code to it."""
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, form = posted
        name = self._contact(form)
        if name is None:
            return page.kit.error_page(request, 400, "error.bad_request")
        try:
            value = clean_value(name, form.get(_FIELD_PREFIX + name, ""))
        except Invalid as bad:
            return await self._again(request, viewer, 400, bad.key, field=name, values=form)
        try:
            token = await self._token(viewer)
            if token is None:
                return page.to_login(request)
            sent = await self._api.update_attributes(token, {name: value})
        except errors.CognitoError as exc:
            return await self._refused(
                request, viewer, exc, field=name, values=form, operation="UpdateUserAttributes"
            )
        sub = viewer.session.sub
        audit("account.contact_change_requested", user=sub, reason=name)
        if any(d.attribute == name for d in sent):
            await self._pending.put(sub, name, value)
            done = "code_sent"
        else:  # the pool does not verify it: in effect now
            await self._pending.drop(sub, name)
            done = "profile_saved"
        await self._renew(viewer.cookie)
        return page.back(request, done, anchor=self.name)

    async def verify(self, request: web.Request) -> web.StreamResponse:
        """The code sent to the new (or unverified) value: VerifyUserAttribute."""
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, form = posted
        name = self._contact(form)
        if name is None:
            return page.kit.error_page(request, 400, "error.bad_request")
        code = "".join(form.get("code", "").split())
        field = f"code:{name}"
        if not code or len(code) > _MAX_CODE or not _CODE.fullmatch(code):
            return await self._again(
                request, viewer, 400, "account.profile.wrong_code", field=field
            )
        try:
            token = await self._token(viewer)
            if token is None:
                return page.to_login(request)
            await self._api.verify_attribute(token, name, code)
        except errors.CognitoError as exc:
            return await self._refused(
                request, viewer, exc, field=field, values={}, operation="VerifyUserAttribute"
            )
        audit("account.contact_verified", user=viewer.session.sub, reason=name)
        await self._pending.drop(viewer.session.sub, name)
        await self._renew(viewer.cookie)
        return page.back(request, "contact_verified", anchor=self.name)

    async def resend(self, request: web.Request) -> web.StreamResponse:
        """A new code: GetUserAttributeVerificationCode (to the pending value if one waits)."""
        page = self._page
        posted = await page.posted(request)
        if isinstance(posted, web.StreamResponse):
            return posted
        viewer, form = posted
        name = self._contact(form)
        if name is None:
            return page.kit.error_page(request, 400, "error.bad_request")
        try:
            token = await self._token(viewer)
            if token is None:
                return page.to_login(request)
            await self._api.send_attribute_code(token, name)
        except errors.CognitoError as exc:
            return await self._refused(
                request,
                viewer,
                exc,
                field=f"code:{name}",
                values={},
                operation="GetUserAttributeVerificationCode",
            )
        sub = viewer.session.sub
        pending = await self._pending.load(sub)
        if name in pending:  # the new code lives 24 hours: so does the pending value here
            await self._pending.put(sub, name, pending[name])
        return page.back(request, "code_resent", anchor=self.name)
