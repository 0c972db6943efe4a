"""The logged-in user's record and the manager that seals it behind the session cookie."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from proxy.sessions.sealed import SealedStore
from proxy.sessions.store import SessionStore


@dataclass(slots=True)
class Session:
    """What the proxy keeps for one signed-in browser. Stored encrypted; never sent to it."""

    username: str  # Cognito's internal username (cognito:username), used for SECRET_HASH
    sub: str
    claims: dict[str, Any]  # the verified ID token's claims: the source of identity headers
    id_token: str
    access_token: str
    refresh_token: str | None
    expires_at: float  # when the ID/access tokens expire (epoch seconds)
    created_at: float
    # The Cognito device these tokens are linked to (device tracking): refresh must send it.
    device_key: str | None = None

    def __repr__(self) -> str:
        return f"Session(sub={self.sub!r}, expires_at={self.expires_at})"

    @classmethod
    def from_tokens(
        cls,
        *,
        id_claims: dict[str, Any],
        access_claims: dict[str, Any],
        id_token: str,
        access_token: str,
        refresh_token: str | None,
        previous: Session | None = None,
    ) -> Session:
        """Build from tokens the caller has VERIFIED; keeps what a refresh does not renew."""
        if access_claims.get("sub") != id_claims.get("sub"):
            raise ValueError("the ID and access tokens name different users")
        username = id_claims.get("cognito:username") or access_claims.get("username")
        return cls(
            username=str(username or id_claims["sub"]),
            sub=str(id_claims["sub"]),
            claims=id_claims,
            id_token=id_token,
            access_token=access_token,
            refresh_token=refresh_token or (previous.refresh_token if previous else None),
            expires_at=float(min(id_claims["exp"], access_claims["exp"])),
            created_at=previous.created_at if previous else time.time(),
            device_key=previous.device_key if previous else None,
        )

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Session | None:
        try:
            data = json.loads(raw)
            return cls(**data)
        except (ValueError, TypeError):
            return None  # a record from an older, incompatible version: treat as signed out


class Verify(Protocol):
    async def __call__(
        self, token: str, *, token_use: Literal["id", "access"]
    ) -> dict[str, Any]: ...


async def verified_session(
    verify: Verify,
    *,
    id_token: str,
    access_token: str,
    refresh_token: str | None,
    previous: Session | None = None,
) -> Session:
    """Verify both tokens Cognito returned (``verify`` raises on a bad one), then build the record.

    Raises ValueError when the verified tokens do not make a usable pair.
    """
    id_claims = await verify(id_token, token_use="id")  # noqa: S106 - not a password
    access_claims = await verify(access_token, token_use="access")  # noqa: S106
    try:
        return Session.from_tokens(
            id_claims=id_claims,
            access_claims=access_claims,
            id_token=id_token,
            access_token=access_token,
            refresh_token=refresh_token,
            previous=previous,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"unusable token pair: {type(exc).__name__}") from None


class SessionManager:
    """Creates, loads and ends sessions; the cookie value is the only handle to one."""

    def __init__(self, store: SessionStore, secret: bytes, *, lifetime: float) -> None:
        self._sealed = SealedStore(store, secret, namespace="s")
        self.lifetime = lifetime

    def _ttl(self, session: Session) -> float:
        return max(1.0, session.created_at + self.lifetime - time.time())

    async def create(self, session: Session) -> str:
        return await self._sealed.create(session.to_bytes(), self._ttl(session))

    async def load(self, cookie: str) -> Session | None:
        """None when there is no valid session; raises StoreUnavailable when the store is down."""
        raw = await self._sealed.load(cookie)
        if raw is None:
            return None
        session = Session.from_bytes(raw)
        if session is None or session.created_at + self.lifetime <= time.time():
            return None
        return session

    async def save(self, cookie: str, session: Session) -> bool:
        """False when the session ended meanwhile (e.g. a logout raced a refresh)."""
        return await self._sealed.save(cookie, session.to_bytes(), self._ttl(session))

    async def delete(self, cookie: str) -> None:
        await self._sealed.delete(cookie)

    @staticmethod
    def fingerprint(cookie: str) -> str:
        return SealedStore.fingerprint(cookie)
