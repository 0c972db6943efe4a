"""The account page's Cognito calls: the user's own access-token APIs (public, no IAM).

Each takes the session's access token; Cognito refuses it when it expired, was revoked or
signed out globally, or lacks the aws.cognito.signin.user.admin scope: ``AccessTokenRejected``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from proxy.cognito.client import CognitoClient
from proxy.cognito.errors import BadCredentials, CognitoError


class AccessTokenRejected(CognitoError):
    """Cognito no longer accepts this session's access token: the session is over."""


@dataclass(frozen=True, slots=True)
class RememberedDevice:
    """One device Cognito tracks for the user (ListDevices' DeviceType)."""

    key: str
    name: str
    last_ip: str
    last_signed_in: float | None  # epoch seconds


def _epoch(value: Any) -> float | None:
    # botocore parses Cognito's timestamps into datetimes.
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """The pool's password policy (PasswordPolicyType), as configured for the proxy."""

    min_length: int = 8
    require_lowercase: bool = True
    require_uppercase: bool = True
    require_numbers: bool = True
    require_symbols: bool = True


# Cognito's symbol characters (developer guide, "Password requirements"); a space counts when
# it is neither first nor last.
SYMBOLS = frozenset("^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+-")


def unmet_rules(policy: PasswordPolicy, password: str) -> list[str]:
    """The rules ``password`` breaks, as i18n keys (the ones Cognito's own refusals map to)."""
    inner_space = " " in password.strip(" ")
    broken = [
        (len(password) >= policy.min_length, "error.password_policy.length"),
        (
            not policy.require_uppercase or any(c.isupper() for c in password),
            "error.password_policy.upper",
        ),
        (
            not policy.require_lowercase or any(c.islower() for c in password),
            "error.password_policy.lower",
        ),
        (
            not policy.require_numbers or any(c.isdigit() for c in password),
            "error.password_policy.digit",
        ),
        (
            not policy.require_symbols or inner_space or any(c in SYMBOLS for c in password),
            "error.password_policy.symbol",
        ),
    ]
    return [key for ok, key in broken if not ok]


def _token_refused(exc: CognitoError) -> bool:
    # The one place the account calls read Cognito's message: a refused access token and a
    # wrong previous password share NotAuthorizedException.
    return exc.code == "NotAuthorizedException" and "access token" in exc.detail.lower()


class AccountApi:
    def __init__(self, client: CognitoClient) -> None:
        self._client = client

    async def _call(self, operation: str, access_token: str, **kwargs: object) -> dict[str, Any]:
        try:
            return await self._client.user_api(operation, AccessToken=access_token, **kwargs)
        except BadCredentials as exc:
            if _token_refused(exc):
                raise AccessTokenRejected(exc.code, exc.detail) from None
            raise

    async def change_password(self, access_token: str, previous: str, proposed: str) -> None:
        """ChangePassword. BadCredentials: the previous password is wrong (or Cognito's
        lockout: PasswordAttemptsExceeded); InvalidPassword: the pool's policy refused it."""
        await self._call(
            "change_password", access_token, PreviousPassword=previous, ProposedPassword=proposed
        )

    async def list_devices(self, access_token: str) -> list[RememberedDevice]:
        """ListDevices, every page of it (60 per page, Cognito's maximum)."""
        devices: list[RememberedDevice] = []
        token: str | None = None
        for _ in range(50):  # a bound: Cognito keeps few devices per user
            extra: dict[str, object] = {"Limit": 60}
            if token:
                extra["PaginationToken"] = token
            answer = await self._call("list_devices", access_token, **extra)
            for device in answer.get("Devices") or []:
                attributes = {
                    a.get("Name"): a.get("Value", "") for a in device.get("DeviceAttributes") or []
                }
                devices.append(
                    RememberedDevice(
                        key=str(device.get("DeviceKey", "")),
                        name=str(attributes.get("device_name") or ""),
                        last_ip=str(attributes.get("last_ip_used") or ""),
                        last_signed_in=_epoch(device.get("DeviceLastAuthenticatedDate")),
                    )
                )
            token = answer.get("PaginationToken")
            if not token:
                break
        return devices

    async def forget_device(self, access_token: str, device_key: str) -> None:
        await self._call("forget_device", access_token, DeviceKey=device_key)
