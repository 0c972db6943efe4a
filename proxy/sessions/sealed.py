"""Encrypted records addressed by an opaque, MAC'd cookie value.

Cookie value (89 chars, all in [A-Za-z0-9_.-]):
    b64url(version | id[16] | key[32]) "." b64url(HMAC-SHA256(secret, label | ns | blob)[:16])
Store key: "gate:<ns>:" + hex(sha256(id))
Stored value: nonce[12] | AES-256-GCM(key, payload, aad=store key)

The per-record key exists only in the cookie, so a store dump (even with the cookie secret)
reveals no ids, keys or payloads. The MAC is checked before any store access, so a forged
or foreign cookie costs no round-trip.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from proxy.sessions.store import KeyValue

_VERSION = 1
_ID_LEN = 16
_KEY_LEN = 32
_NONCE_LEN = 12
_TAG_LEN = 16
_MAC_LEN = 16
_BLOB_LEN = 1 + _ID_LEN + _KEY_LEN  # 49 bytes -> 66 b64 chars
_MIN_SECRET_LEN = 32

# Exactly the canonical unpadded encodings: 49 and 16 bytes both leave 4 unused low bits in
# the last character, which must be zero (A, Q, g, w); so every record has one cookie value.
_COOKIE_LEN = 66 + 1 + 22
_CANONICAL_LAST = frozenset(b"AQgw")
_DOT = ord(".")
_NAMESPACE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
# Domain-separates these MACs from anything else keyed with the same cookie secret.
_MAC_LABEL = b"cognito-gate/sealed/v1\x00"


# binascii on translated bytes: about twice as fast as base64.urlsafe_b64* on this path.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def _split(cookie: str) -> tuple[bytes, bytes] | None:
    """(blob, mac) of a well-formed cookie value, else None. Never raises.

    Well-formed is ``[A-Za-z0-9_-]{65}[AQgw] "." [A-Za-z0-9_-]{21}[AQgw]``, checked without a
    regex (the cookie is opened on every request the session cache does not answer): the
    standard alphabet's ``+``, ``/`` and padding ``=`` are deleted before decoding, so a value
    holding one comes out short, and strict base64 refuses every other character.
    """
    # Length and ASCII first (isascii costs nothing on a str): nothing below sees
    # attacker-sized input, and encode cannot fail.
    if len(cookie) != _COOKIE_LEN or not cookie.isascii():
        return None
    raw = cookie.encode("ascii").translate(_FROM_URLSAFE, b"+/=")
    if (
        len(raw) != _COOKIE_LEN
        or raw[66] != _DOT
        or raw[65] not in _CANONICAL_LAST
        or raw[88] not in _CANONICAL_LAST
    ):
        return None
    try:
        blob = binascii.a2b_base64(raw[:66] + b"==", strict_mode=True)
        return blob, binascii.a2b_base64(raw[67:] + b"==", strict_mode=True)
    except binascii.Error:
        return None


class SealedStore:
    """Seals byte payloads into a key-value store under one namespace ("s" sessions, "f" flows)."""

    __slots__ = ("_mac_proto", "_namespace", "_store", "_store_prefix")

    def __init__(self, store: KeyValue, secret: bytes, *, namespace: str) -> None:
        if len(secret) < _MIN_SECRET_LEN:
            raise ValueError(f"cookie secret must be at least {_MIN_SECRET_LEN} bytes")
        if not _NAMESPACE_RE.fullmatch(namespace):
            raise ValueError("namespace must be 1-32 characters of [A-Za-z0-9_-]")
        self._store = store
        self._namespace = namespace
        # Keyed and primed once; copying it per cookie skips re-deriving the HMAC pads.
        self._mac_proto = hmac.new(
            secret, _MAC_LABEL + namespace.encode("ascii") + b"\x00", hashlib.sha256
        )
        self._store_prefix = f"gate:{namespace}:"

    def __repr__(self) -> str:
        return f"SealedStore(namespace={self._namespace!r}, store={self._store!r})"

    def _mac(self, blob: bytes) -> bytes:
        h = self._mac_proto.copy()
        h.update(blob)
        return h.digest()[:_MAC_LEN]

    def _open_cookie(self, cookie: str) -> tuple[str, bytes] | None:
        """(store key, record key) if this deployment issued `cookie` for this namespace."""
        parts = _split(cookie)
        if parts is None:
            return None
        blob, mac = parts
        if not hmac.compare_digest(self._mac(blob), mac) or blob[0] != _VERSION:
            return None
        return self._store_key(blob[1 : 1 + _ID_LEN]), blob[1 + _ID_LEN :]

    def record_key(self, cookie: str) -> str | None:
        """The store key behind `cookie` if this deployment issued it, else None.

        Safe to keep and index: it is a hash of the id, useless for opening the record.
        """
        opened = self._open_cookie(cookie)
        return None if opened is None else opened[0]

    def _store_key(self, record_id: bytes) -> str:
        return self._store_prefix + hashlib.sha256(record_id).hexdigest()

    @staticmethod
    def _seal(key: bytes, nonce: bytes, payload: bytes, store_key: str) -> bytes:
        return nonce + AESGCM(key).encrypt(nonce, payload, store_key.encode("ascii"))

    async def create(self, payload: bytes, ttl: float) -> str:
        """Store `payload` under a fresh id and key; return the cookie value that opens it."""
        rand = os.urandom(_ID_LEN + _KEY_LEN + _NONCE_LEN)  # one syscall for all three
        record_id, key, nonce = rand[:_ID_LEN], rand[_ID_LEN:-_NONCE_LEN], rand[-_NONCE_LEN:]
        blob = bytes((_VERSION,)) + record_id + key
        store_key = self._store_key(record_id)
        await self._store.set(store_key, self._seal(key, nonce, payload, store_key), ttl)
        return _b64(blob) + "." + _b64(self._mac(blob))

    async def load(self, cookie: str) -> bytes | None:
        """The payload, or None for any cookie that does not open a live record.

        Raises StoreUnavailable (only) when the store is down.
        """
        opened = self._open_cookie(cookie)
        if opened is None:
            return None
        store_key, key = opened
        return self._unseal(store_key, key, await self._store.get(store_key))

    @staticmethod
    def _unseal(store_key: str, key: bytes, sealed: bytes | None) -> bytes | None:
        if sealed is None or len(sealed) < _NONCE_LEN + _TAG_LEN:
            return None
        try:
            return AESGCM(key).decrypt(
                sealed[:_NONCE_LEN], sealed[_NONCE_LEN:], store_key.encode("ascii")
            )
        except InvalidTag:
            return None

    @staticmethod
    def aside_key(store_key: str) -> str:
        """Where a record set aside waits for its cookie (see SessionManager.end_record): the
        same sealed bytes under another name, which Redis Cluster hashes to the record's own
        slot (the hash tag is the whole store key), so the rename is one atomic step."""
        return "{" + store_key + "}:aside"

    def aside_of(self, cookie: str) -> str | None:
        """The aside key of the record behind `cookie`, if this deployment issued it."""
        opened = self._open_cookie(cookie)
        return None if opened is None else self.aside_key(opened[0])

    def open_aside(self, cookie: str, sealed: bytes | None) -> bytes | None:
        """The payload of a record set aside (read from ``aside_of(cookie)``): sealed as it
        was, so only its cookie opens it. None for anything else."""
        opened = self._open_cookie(cookie)
        return None if opened is None else self._unseal(opened[0], opened[1], sealed)

    async def save(self, cookie: str, payload: bytes, ttl: float) -> bool:
        """Overwrite the record behind `cookie` (same id and key, fresh nonce).

        Only while the record still exists: returns False (and writes nothing) when it was
        deleted meanwhile, so a late writer cannot bring back an ended session.

        Raises ValueError if this deployment did not issue `cookie`: callers save only what
        they have loaded.
        """
        opened = self._open_cookie(cookie)
        if opened is None:
            raise ValueError("not a valid sealed cookie")
        store_key, key = opened
        sealed = self._seal(key, os.urandom(_NONCE_LEN), payload, store_key)
        return await self._store.replace(store_key, sealed, ttl)

    async def delete(self, cookie: str) -> None:
        """Remove the record behind `cookie`; a cookie we did not issue is ignored."""
        opened = self._open_cookie(cookie)
        if opened is not None:
            await self._store.delete(opened[0])

    def record_hash(self, cookie: str) -> str | None:
        """The hex sha256 of the record id behind a cookie we issued (its store key's tail).

        Names a record between replicas (cache invalidation) without revealing its id or key;
        anyone who can list the store's keys sees it already. None for a cookie we did not issue.
        """
        opened = self._open_cookie(cookie)
        return None if opened is None else opened[0][len(self._store_prefix) :]

    @staticmethod
    def fingerprint(cookie: str) -> str:
        """12 hex chars identifying the record in logs (the start of its store key's hash).

        Never log cookie values or ids. Malformed values all read "invalid".
        """
        parts = _split(cookie)
        if parts is None:
            return "invalid"
        return hashlib.sha256(parts[0][1 : 1 + _ID_LEN]).hexdigest()[:12]
