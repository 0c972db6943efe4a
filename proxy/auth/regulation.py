"""Brute-force regulation in front of Cognito's own lockout.

Failed sign-ins are counted per username and per client address in sliding windows; past the
limit the name (or address) is banned for a while and the login form answers "try again later"
without asking Cognito. Counters live in the SessionStore, so every replica sharing the store
shares them.

Sliding window: two fixed buckets, the previous one weighted by how much of it still overlaps
the window (the approximation Cloudflare and nginx-style limiters use); one INCR per failure.

Usernames: Cognito lets a user sign in with aliases (username, email, phone) that cannot be
resolved before asking it. We count the name as typed (NFKC, trimmed, case-folded), and when
Cognito's SRP answer names the internal user (``USER_ID_FOR_SRP``) the failure also counts
against that id, and the typed name is remembered as its alias: later attempts through any
remembered alias are refused while the internal id is banned. The first attempt through an
alias not seen yet still reaches Cognito (whose own lockout is the backstop).

Store keys carry an HMAC of the name or address, never the value itself.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from proxy.sessions.store import CountingStore

log = logging.getLogger("proxy.auth")

_PREFIX = "gate:rl:"


def normalise_username(username: str) -> str:
    """One counter per name however it is typed: NFKC, trimmed, case-folded."""
    folded = unicodedata.normalize("NFKC", username).casefold()
    return unicodedata.normalize("NFKC", folded).strip()  # case folding can denormalise


def address_bucket(address: str) -> str | None:
    """IPv4 as is, IPv6 by its /64 (one subscriber's prefix); None when unknown."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Limit:
    """At most `max_failures` failures in any `window` seconds; then banned for `ban` seconds."""

    max_failures: int
    window: float
    ban: float


class Regulator:
    """Counts failed sign-ins and answers whether a name or address is banned."""

    def __init__(
        self,
        store: CountingStore,
        key: bytes,
        *,
        user: Limit,
        ip: Limit,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._key = key
        self._limits = {"u": user, "a": ip}
        self.enabled = enabled
        self._clock = clock

    def _subject(self, kind: str, value: str) -> str:
        digest = hmac.new(self._key, f"{kind}\0{value}".encode(), hashlib.sha256)
        return f"{_PREFIX}{kind}:{digest.hexdigest()[:32]}"

    def _subjects(self, username: str, address: str) -> list[str]:
        subjects = [self._subject("u", normalise_username(username))]
        bucket = address_bucket(address)
        if bucket is not None:
            subjects.append(self._subject("a", bucket))
        return subjects

    async def banned(self, username: str, address: str) -> float | None:
        """Seconds until the ban on this name, its known internal id or address ends; or None.

        Raises StoreUnavailable (callers fail closed).
        """
        if not self.enabled:
            return None
        subjects = self._subjects(username, address)
        user_id = await self._store.get(subjects[0] + ":alias")
        if user_id is not None:
            subjects.append(self._subject("u", user_id.decode("utf-8", "replace")))
        now = self._clock()
        longest: float | None = None
        for subject in subjects:
            until = await self._store.get(subject + ":ban")
            if until is not None:
                remaining = float(until) - now
                if remaining > 0:
                    longest = max(longest or 0.0, remaining)
        return longest

    async def failed(self, username: str, address: str, *, user_id: str | None = None) -> None:
        """Count one failed password. `user_id`: Cognito's internal name, when it told us."""
        if not self.enabled:
            return
        subjects = self._subjects(username, address)
        if user_id is not None and normalise_username(user_id) != normalise_username(username):
            internal = normalise_username(user_id)
            limit = self._limits["u"]
            await self._store.set(
                subjects[0] + ":alias", internal.encode(), max(limit.window, limit.ban)
            )
            subjects.append(self._subject("u", internal))
        for subject in subjects:
            await self._count(subject)

    async def succeeded(self, username: str) -> None:
        """A correct password clears the name's failures (never the address's)."""
        if not self.enabled:
            return
        subject = self._subject("u", normalise_username(username))
        window = self._limits["u"].window
        current = math.floor(self._clock() / window)
        for bucket in (current, current - 1):
            await self._store.delete(f"{subject}:{bucket}")

    async def _count(self, subject: str) -> None:
        limit = self._limits[subject[len(_PREFIX)]]
        now = self._clock()
        bucket, into = divmod(now, limit.window)
        current = await self._store.incr(f"{subject}:{int(bucket)}", 2 * limit.window)
        previous = await self._store.get(f"{subject}:{int(bucket) - 1}")
        overlap = 1.0 - into / limit.window
        estimate = current + (int(previous) if previous is not None else 0) * overlap
        if estimate >= limit.max_failures:
            await self._store.set(subject + ":ban", repr(now + limit.ban).encode(), limit.ban)
            log.warning(
                "sign-in %s banned for %ds after %d failures",
                "address" if subject[len(_PREFIX)] == "a" else "username",
                limit.ban,
                math.floor(estimate),
            )
