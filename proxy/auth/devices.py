"""Devices: ConfirmDevice after sign-in, and the device's secrets kept server-side.

When the pool tracks devices, Cognito links the tokens to the browser's device: refreshes must
send its DEVICE_KEY (kept in the Session), so every tracked device is confirmed. Remembering it
(so it stands in for MFA) is offered only after a second factor.

The browser holds only the ``<cookie>-device`` cookie: an opaque handle to a sealed record
(AES-GCM under a key only the cookie holds) with the DeviceKey, DeviceGroupKey and device
password. Neither the device password nor the keys ever reach the browser in clear. On the next
sign-in of the same user the record is opened and the Cognito client answers DEVICE_SRP_AUTH /
DEVICE_PASSWORD_VERIFIER with it, so Cognito skips MFA for this device.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from proxy.cognito.client import CognitoClient, Device, NewDevice
from proxy.cognito.errors import CognitoError
from proxy.sessions.sealed import SealedStore
from proxy.sessions.session import Session
from proxy.sessions.store import StoreUnavailable

if TYPE_CHECKING:
    from proxy.auth.state import LoginState

log = logging.getLogger("proxy.auth")

DEFAULT_LIFETIME = 90 * 86400.0


@dataclass(frozen=True)
class _Record:
    username: str  # as Cognito knows it (cognito:username)
    typed: str  # what the user typed at sign-in (an alias, perhaps)
    device_key: str
    device_group_key: str
    device_password: str

    def device(self) -> Device:
        return Device(self.device_key, self.device_group_key, self.device_password)

    def __repr__(self) -> str:
        return f"_Record(username={self.username!r})"


class DeviceStore:
    def __init__(
        self, sealed: SealedStore, cognito: CognitoClient, lifetime: float = DEFAULT_LIFETIME
    ) -> None:
        self._sealed = sealed
        self._cognito = cognito
        self.lifetime = lifetime

    async def load(self, cookie: str, username: str) -> Device | None:
        """The device record behind ``cookie`` when it belongs to ``username``."""
        raw = await self._sealed.load(cookie)
        if raw is None:
            return None
        try:
            record = _Record(**json.loads(raw))
        except (ValueError, TypeError):
            return None
        if username not in (record.username, record.typed):
            return None  # another user on this browser: sign in without the device
        return record.device()

    async def confirm(
        self, session: Session, new_device: NewDevice, state: LoginState, user_agent: str
    ) -> tuple[str | None, bool]:
        """ConfirmDevice and seal its secrets. Returns (device cookie, ask the user to
        remember it). Best effort: a failure only means MFA is asked next time."""
        name = (user_agent or "browser")[:200]
        try:
            device, ask = await self._cognito.confirm_device(session.access_token, new_device, name)
        except CognitoError as exc:
            log.warning("ConfirmDevice failed: %s", exc.code)
            return None, False
        record = _Record(
            username=session.username,
            typed=state.typed_username or session.username,
            device_key=device.device_key,
            device_group_key=device.device_group_key,
            device_password=device.device_password,
        )
        try:
            cookie = await self._sealed.create(json.dumps(asdict(record)).encode(), self.lifetime)
        except StoreUnavailable:
            log.warning("device record not stored: session store unavailable")
            return None, False
        log.info("device confirmed for session user")
        return cookie, ask

    async def remember(self, session: Session, cookie: str) -> bool:
        """UpdateDeviceStatus(remembered) for the device behind ``cookie``."""
        device = await self.load(cookie, session.username)
        if device is None:
            return False
        try:
            await self._cognito.remember_device(session.access_token, device.device_key)
        except CognitoError as exc:
            log.warning("UpdateDeviceStatus failed: %s", exc.code)
            return False
        return True
