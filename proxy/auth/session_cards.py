"""What the account page shows of a user's OTHER sessions.

A session record is encrypted with a key that only its own cookie holds (sessions/sealed.py),
so one browser cannot read another's record. Each session therefore gets a small "card" beside
it: browser and OS (from the User-Agent), IP address, when it signed in and when it was last
active. A card lives exactly as long as its record: written with the record's ttl, rewritten with
it at each write of the record (SessionManager's on_change: activity at most once per quarter
idle timeout, a refresh), deleted with it whenever the session ends (a companion key of the
record). Cards hold no tokens; they are encrypted with a key derived from the cookie secret (IP
addresses are personal data) and addressed by the record hash, which the per-user index of the
session manager already names.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from proxy.sessions.store import KeyValue, StoreFull

_PREFIX = "gate:card:"
_NONCE = 12


@dataclass(frozen=True, slots=True)
class Card:
    browser: str
    os: str
    ip: str
    signed_in_at: float
    last_seen: float


# (needle, name) in order: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def describe_user_agent(user_agent: str) -> tuple[str, str]:
    """(browser, OS) from a User-Agent, by a short list of well-known tokens; "" when none
    matches. A heuristic on purpose: the page only helps a user tell their sessions apart, and
    a full parser's regex database (ua-parser) is a large dependency to keep current for that.
    A User-Agent is whatever the client says, so the result is only ever shown as text."""
    ua = _PRINTABLE.sub("", user_agent[:512])
    browser = next((name for needle, name in _BROWSERS if needle in ua), "")
    system = next((name for needle, name in _SYSTEMS if needle in ua), "")
    return browser, system


class SessionCards:
    def __init__(self, store: KeyValue, key: bytes) -> None:
        self._store = store
        self._aead = AESGCM(key)

    @staticmethod
    def key(record_hash: str) -> str:
        """The store key of a session's card: it lives and dies with the session (the
        session manager deletes it with the record)."""
        return _PREFIX + record_hash

    def _seal(self, key: str, card: Card) -> bytes:
        nonce = os.urandom(_NONCE)
        payload = json.dumps(asdict(card), separators=(",", ":")).encode()
        return nonce + self._aead.encrypt(nonce, payload, key.encode())

    def _open(self, key: str, raw: bytes) -> Card | None:
        try:
            payload = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], key.encode())
            return Card(**json.loads(payload))
        except (InvalidTag, ValueError, TypeError):
            return None

    async def record(
        self, record_hash: str, *, user_agent: str, ip: str, ttl: float, now: float | None = None
    ) -> None:
        """The card of a session just created (its record lives at most ``ttl`` seconds)."""
        now = time.time() if now is None else now
        browser, system = describe_user_agent(user_agent)
        key = self.key(record_hash)
        card = Card(browser, system, ip, now, now)
        await self._store.set(key, self._seal(key, card), ttl)

    async def load(self, record_hash: str) -> Card | None:
        key = self.key(record_hash)
        raw = await self._store.get(key)
        return None if raw is None else self._open(key, raw)

    async def seen(self, record_hash: str, ttl: float) -> None:
        """Its record was written (activity, or a refresh) and lives ``ttl`` seconds more: a
        later last_seen and the same ttl, so the card expires with its record. Never brings
        back the card of a session that ended meanwhile (SET XX)."""
        card = await self.load(record_hash)
        if card is None:
            return
        key = self.key(record_hash)
        fresh = Card(card.browser, card.os, card.ip, card.signed_in_at, time.time())
        try:
            await self._store.replace(key, self._seal(key, fresh), ttl)
        except StoreFull:
            return  # the session goes on; its card shows an older last_seen

    async def delete(self, record_hash: str) -> None:
        await self._store.delete(self.key(record_hash))
