"""The logged-in user's record and the manager that seals it behind the session cookie."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from proxy.sessions import record as record_codec
from proxy.sessions.lock import StoreLock
from proxy.sessions.sealed import SealedStore
from proxy.sessions.store import SessionBackend, StoreFull
from proxy.sessions.watch import EndSignals

log = logging.getLogger("proxy.sessions")

# What ``Session.factors`` names (flow.factor_answered records them as the challenges pass):
# first factors, then the second factors and the remembered device.
FACTORS = frozenset(
    {
        "password",  # USER_PASSWORD_AUTH / ADMIN_USER_PASSWORD_AUTH / USER_AUTH's PASSWORD
        "srp",  # the password proved by SRP (USER_SRP_AUTH, PASSWORD_SRP)
        "passkey",  # WEB_AUTHN (user verification: counts as multi-factor on its own)
        "email_otp",  # USER_AUTH's emailed code as the FIRST factor
        "sms_otp",  # USER_AUTH's texted code as the first factor
        "custom",  # CUSTOM_AUTH's Lambda challenges
        "totp",  # SOFTWARE_TOKEN_MFA, or MFA_SETUP (enrolled and answered)
        "sms_mfa",  # SMS_MFA
        "email_mfa",  # EMAIL_OTP as the second factor
        "device",  # a remembered device answered DEVICE_SRP_AUTH (Cognito skipped MFA)
    }
)
# Factors that make a sign-in multi-factor for ``require_mfa``: an MFA code answered in THIS
# sign-in, or a passkey. A remembered device does not: it stands in for the code, it is not one.
MFA_FACTORS = frozenset({"totp", "sms_mfa", "email_mfa", "passkey"})


@dataclass(slots=True)
class Session:
    """What the proxy keeps for one signed-in browser. Stored encrypted; never sent to it.

    Its stored bytes are sessions/record.py's: renaming, retyping or removing a field bumps
    RECORD_VERSION there (with an upgrade step), so the records already stored still read.
    """

    username: str  # Cognito's internal username (cognito:username), used for SECRET_HASH
    sub: str
    claims: dict[str, Any]  # the verified ID token's claims: the source of identity headers
    id_token: str
    access_token: str
    refresh_token: str | None
    expires_at: float  # when the ID/access tokens expire (epoch seconds)
    created_at: float
    # Last activity, recorded coarsely (see SessionManager.touch); 0 means "created_at".
    last_seen: float = 0.0
    remember: bool = False  # "keep me signed in": the longer timeouts apply
    # The Cognito device these tokens are linked to (device tracking): refresh must send it.
    device_key: str | None = None
    # When the user last proved who they are: the end of the last INTERACTIVE sign-in (our
    # clock, set by the sign-in's completion; a refresh keeps it), and the factors that sign-in
    # passed (FACTORS). Step-up (account page, max_auth_age / require_mfa rules) reads them.
    auth_time: float = 0.0
    factors: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Session(sub={self.sub!r}, expires_at={self.expires_at})"

    @property
    def multi_factor(self) -> bool:
        """The last interactive sign-in passed a second factor (or a passkey)."""
        return not MFA_FACTORS.isdisjoint(self.factors)

    def auth_age(self, now: float | None = None) -> float:
        """Seconds since the user last signed in interactively (0 if the clock went back)."""
        return max(0.0, (time.time() if now is None else now) - (self.auth_time or self.created_at))

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
        now = time.time()
        return cls(
            username=str(username or id_claims["sub"]),
            sub=str(id_claims["sub"]),
            claims=id_claims,
            id_token=id_token,
            access_token=access_token,
            refresh_token=refresh_token or (previous.refresh_token if previous else None),
            expires_at=float(min(id_claims["exp"], access_claims["exp"])),
            created_at=previous.created_at if previous else now,
            last_seen=now,
            remember=previous.remember if previous else False,
            device_key=previous.device_key if previous else None,
            # A refresh is no proof of who is there: the last sign-in's time and factors stay.
            auth_time=previous.auth_time if previous else now,
            factors=list(previous.factors) if previous else [],
        )

    def to_bytes(self) -> bytes:
        return record_codec.encode(asdict(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Session | None:
        """The stored record, upgraded from an older format; None if it cannot be read."""
        try:
            fields = record_codec.decode(raw)
            return None if fields is None else cls(**fields)
        except (ValueError, TypeError):
            return None  # unreadable or missing a field no upgrade supplies: signed out


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


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long a session may live (absolute) and sit unused (idle); 0 idle means no idle limit.

    A remembered session ("keep me signed in") uses the remember_* values instead.
    """

    lifetime: float
    idle: float = 0.0
    remember_lifetime: float = 0.0
    remember_idle: float = 0.0

    def idle_for(self, session: Session) -> float:
        return self.remember_idle if session.remember else self.idle

    def ends_at(self, session: Session) -> float:
        life = self.remember_lifetime if session.remember else self.lifetime
        end = session.created_at + life
        idle = self.idle_for(session)
        if idle > 0:
            end = min(end, (session.last_seen or session.created_at) + idle)
        return end


# Activity is written at most once per this fraction of the idle timeout: the hot path reads only.
TOUCH_FRACTION = 0.25
LOCK_LEASE = 10.0
_INDEX_PREFIX = "gate:u:"
_LOCK_PREFIX = "gate:lock:"


class SessionManager:
    """Creates, loads and ends sessions; the cookie value is the only handle to one.

    Keeps a per-user index (a set of store keys per ``sub``, in the store) so that "sign out
    everywhere" can end every session of a user on every replica sharing the store, in a
    number of round trips that does not grow with the user's sessions. The index lives until
    the absolute end of its longest-lived session, and members whose record has gone (expired,
    idle) are dropped at the user's next sign-in and whenever the index is read.
    """

    def __init__(
        self,
        store: SessionBackend,
        secret: bytes,
        *,
        lifetime: float,
        idle_timeout: float = 0.0,
        remember_lifetime: float = 0.0,
        remember_idle_timeout: float = 0.0,
        on_change: Callable[[str, float], Awaitable[None]] | None = None,
        on_end: Callable[[Sequence[str]], Awaitable[None]] | None = None,
        companions: Callable[[str], Sequence[str]] | None = None,
        on_retire: Callable[[Session], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._sealed = SealedStore(store, secret, namespace="s")
        self.lifetime = lifetime
        self.timeouts = Timeouts(lifetime, idle_timeout, remember_lifetime, remember_idle_timeout)
        self.ends = EndSignals()
        # Told the record hash and its ttl (seconds it lives from now) after every save, and
        # the record hashes after every end: session caches (this replica's and, through
        # pub/sub, the others') must not serve the old record any more, and companions take
        # the record's ttl (so one whose record expires expires with it).
        self._on_change = on_change
        self._on_end = on_end
        # Store keys that live and die with a record, by record hash (the account page's
        # session cards): written with its ttl, deleted with it, in the same round trip.
        self._companions = companions or (lambda record_hash: ())
        # Told the session of a record that was ended from another browser (set aside, see
        # end_record) when its own cookie comes back: the caller revokes its refresh token.
        self._on_retire = on_retire

    def remaining(self, session: Session) -> float:
        """Seconds the record of ``session`` lives when written now (its store ttl); what
        lives beside it (its card) is written with the same."""
        return max(1.0, self.timeouts.ends_at(session) - time.time())

    def _hard_ttl(self, session: Session) -> float:
        """Seconds until the session's absolute end: no write ever keeps its record longer."""
        t = self.timeouts
        life = t.remember_lifetime if session.remember else t.lifetime
        return max(1.0, session.created_at + life - time.time())

    @staticmethod
    def _index_key(sub: str) -> str:
        return _INDEX_PREFIX + hashlib.sha256(sub.encode()).hexdigest()

    @staticmethod
    def _hash_of(key: str) -> str:
        return key.rsplit(":", 1)[-1]  # a store key ends in the record hash (SealedStore)

    def _beside(self, keys: Iterable[str]) -> list[str]:
        return [k for key in keys for k in self._companions(self._hash_of(key))]

    def record_key(self, cookie: str) -> str | None:
        return self._sealed.record_key(cookie)

    async def create(self, session: Session) -> str:
        session.last_seen = time.time()
        cookie = await self._sealed.create(session.to_bytes(), self.remaining(session))
        key = self._sealed.record_key(cookie)
        assert key is not None  # we just issued it
        index = self._index_key(session.sub)
        await self._store.add_member(index, key, self._hard_ttl(session))
        await self._live_members(index, keep=key)
        return cookie

    async def load(self, cookie: str) -> Session | None:
        """None when there is no valid session; raises StoreUnavailable when the store is down."""
        raw = await self._sealed.load(cookie)
        if raw is None:
            await self._retire(cookie)
            return None
        session = Session.from_bytes(raw)
        if session is None or self.timeouts.ends_at(session) <= time.time():
            return None
        return session

    async def save(self, cookie: str, session: Session) -> bool:
        """False when the session ended meanwhile (e.g. a logout raced a refresh)."""
        ttl = self.remaining(session)
        saved = await self._sealed.save(cookie, session.to_bytes(), ttl)
        await self._changed(cookie, ttl)
        return saved

    def lock(self, cookie: str, *, lease: float = LOCK_LEASE) -> StoreLock | None:
        """The lease every writer of this session's record holds (refresh, activity)."""
        key = self._sealed.record_key(cookie)
        return None if key is None else StoreLock(self._store, _LOCK_PREFIX + key, lease=lease)

    async def touch(self, cookie: str, session: Session) -> None:
        """Record activity for the idle timeout, coarsely: one write per quarter idle period.

        Writes under the record's lock after re-reading it, so it can never put back tokens
        that a concurrent refresh (on any replica) just replaced. Busy lock: skip, the
        holder is writing a fresh ``last_seen`` anyway.
        """
        idle = self.timeouts.idle_for(session)
        now = time.time()
        if idle <= 0 or now - (session.last_seen or session.created_at) < idle * TOUCH_FRACTION:
            return
        lock = self.lock(cookie, lease=2.0)
        try:
            if lock is None or not await lock.obtain():
                return
            try:
                current = await self.load(cookie)
                if current is not None:
                    current.last_seen = now
                    await self.save(cookie, current)
            finally:
                await lock.release()
        except StoreFull:
            # Redis at maxmemory (noeviction) refuses writes, serves reads: the session goes on
            # and its idle time counts from the last activity written (gate_session_store_full).
            return

    async def delete(self, cookie: str, session: Session | None = None) -> None:
        """End the session behind ``cookie`` (and drop it from its user's index if known)."""
        key = self._sealed.record_key(cookie)
        if key is None:
            return  # not a cookie we issued: there is nothing to end
        if session is not None:
            await self._store.delete_members(
                self._index_key(session.sub), [key], self._beside([key])
            )
        else:
            # No session, no index to name: its member goes at the user's next prune.
            await self._store.delete_members("", (), [key, *self._beside([key])])
        await self._ended([key])

    async def _live_members(self, index: str, keep: str | None = None) -> list[str]:
        """The index's members whose record still exists; the others (expired, ended without
        the index knowing) are dropped from it, with their companions. ``keep``: known live."""
        members = await self._store.members(index)
        others = members - {keep} if keep else members
        if not others:
            return list(members)
        live = await self._store.existing(others)
        dead = others - live
        if dead:
            await self._store.delete_members(index, dead, self._beside(dead))
        return sorted(live | ({keep} if keep else set()))

    async def end_all(self, sub: str, *, keep: str | None = None) -> int:
        """End every session of user ``sub`` (all replicas share the store) but the one whose
        record hash is ``keep``; returns how many. Three round trips whatever their number:
        the index, one pipeline of deletes, one of announcements."""
        index = self._index_key(sub)
        # Members are store keys; only session keys of our namespace are ever added.
        keys = sorted(k for k in await self._store.members(index) if self._hash_of(k) != keep)
        if not keys:
            return 0
        await self._set_aside(index, keys)
        await self._ended(keys)
        log.info("ended %d session(s) of one user", len(keys))
        return len(keys)

    async def live_records(self, sub: str) -> list[str]:
        """The record hashes of user ``sub``'s sessions that still exist (the account page's
        session list); the index's stale members are dropped."""
        return [self._hash_of(k) for k in await self._live_members(self._index_key(sub))]

    async def end_record(self, sub: str, record_hash: str) -> bool:
        """End one session of user ``sub`` named by its record hash, as ``end_all`` ends each:
        only a member of that user's index, so one user can never end another's session."""
        index = self._index_key(sub)
        key = next(
            (k for k in await self._store.members(index) if self._hash_of(k) == record_hash),
            None,
        )
        if key is None:
            return False
        await self._set_aside(index, [key])
        await self._ended([key])
        return True

    async def _set_aside(self, index: str, keys: Sequence[str]) -> None:
        """End sessions this process cannot open (sealed under other browsers' cookies): each
        record is renamed to its aside key, keeping its ttl, and leaves the index; its
        companions (card) are deleted; one round trip. The record is no session any more (no
        load finds it), but its refresh token still waits in it, sealed as before, for the one
        browser that can open it: its next request hands it to ``_retire``. Redis full: the
        records are simply deleted (their refresh tokens then stay valid at Cognito, stored
        nowhere)."""
        try:
            await self._store.set_aside(
                index, {k: SealedStore.aside_key(k) for k in keys}, self._beside(keys)
            )
        except StoreFull:
            log.warning("session store full: %d ended session(s) deleted, not set aside", len(keys))
            await self._store.delete_members(index, keys, self._beside(keys))

    async def _retire(self, cookie: str) -> None:
        """No record behind ``cookie``: if it was set aside (ended from another browser), take
        it (only one request, on any replica, gets it), and hand its session to
        ``on_retire`` (which revokes its refresh token). The browser is signed out either way."""
        aside = self._sealed.aside_of(cookie)
        if aside is None:
            return
        try:
            raw = self._sealed.open_aside(cookie, await self._store.take(aside))
        except StoreFull:
            return  # Redis refuses the delete-by-script: it waits for the next request or its ttl
        session = None if raw is None else Session.from_bytes(raw)
        if session is None:
            return
        log.info("session ended from another browser retired session=%s", self.fingerprint(cookie))
        if self._on_retire is not None:
            await self._on_retire(session)

    async def _ended(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.ends.ended(key)
        if self._on_end is not None:
            await self._on_end([self._hash_of(k) for k in keys])

    async def _changed(self, cookie: str, ttl: float) -> None:
        if self._on_change is not None and (record := self._sealed.record_hash(cookie)):
            await self._on_change(record, ttl)

    def record_hash(self, cookie: str) -> str | None:
        return self._sealed.record_hash(cookie)

    @staticmethod
    def fingerprint(cookie: str) -> str:
        return SealedStore.fingerprint(cookie)
