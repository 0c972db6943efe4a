"""The stored session record's bytes: the one codec every reader and writer of a record uses.

Version 3 keeps the three tokens out of the JSON (they are most of a record's ~4.5 KB, and
``json.loads`` scans every character of them, ~14x a plain ``bytes.decode``):

    0x03 | n_fields u32 | n_id u32 | n_access u32 | n_refresh u32 (0xFFFFFFFF: no refresh token)
         | fields (a JSON object: every Session field but the tokens) | id | access | refresh

(big-endian lengths, the tokens UTF-8, the lengths adding up to the record's size exactly).
Versions 0-2 are one JSON object of every field, with ``"v"`` (1, 2) or without (0): they are
still read, so the records stored before an upgrade keep everyone signed in, and are written
as version 3 at their next save. A JSON record always starts with ``{``, a framed one with
its version byte (3 and up), so the first byte tells the two apart.

Renaming, retyping or removing a Session field bumps RECORD_VERSION (the framing stays) and adds
the step from the previous version to UPGRADES. Adding a field with a default needs no bump.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from typing import Any

log = logging.getLogger("proxy.sessions")

RECORD_VERSION = 3
Record = dict[str, Any]

_VERSION_KEY = "v"  # in JSON records (versions 1-2)
_LAST_JSON = 2  # the last version written as one JSON object
_HEAD = struct.Struct(">B4I")
_NO_TOKEN = 0xFFFFFFFF
_TOKENS = ("id_token", "access_token", "refresh_token")
# surrogatepass: any str a token holds comes back as it went in (json.dumps escaped them).
_UTF8 = "utf-8"
_STRINGS = "surrogatepass"


def _from_v0(record: Record) -> Record:
    """Version 0, the records written before versions: the same fields, no version key."""
    return record


def _from_v1(record: Record) -> Record:
    """Version 1, before step-up: no ``auth_time`` nor ``factors``. A record is written at a
    sign-in and refreshes keep its ``created_at``, so that is when the user last proved who they
    are; which factors they used was not kept (none counts as a second one: a ``require_mfa``
    path asks such a session for it once)."""
    record.setdefault("auth_time", record.get("created_at", 0.0))
    record.setdefault("factors", [])
    return record


def _from_v2(record: Record) -> Record:
    """Version 2, the tokens inside the JSON: the same fields, only the framing changed."""
    return record


# UPGRADES[n] turns a version-n record into a version n+1 one.
UPGRADES: dict[int, Callable[[Record], Record]] = {0: _from_v0, 1: _from_v1, 2: _from_v2}


def encode(record: Record) -> bytes:
    """Today's format of ``record`` (every Session field, as ``dataclasses.asdict`` gives)."""
    fields = {k: v for k, v in record.items() if k not in _TOKENS}
    head = json.dumps(fields, separators=(",", ":")).encode()
    id_token = record["id_token"].encode(_UTF8, _STRINGS)
    access = record["access_token"].encode(_UTF8, _STRINGS)
    refresh_token = record["refresh_token"]
    refresh = b"" if refresh_token is None else refresh_token.encode(_UTF8, _STRINGS)
    n_refresh = _NO_TOKEN if refresh_token is None else len(refresh)
    lengths = _HEAD.pack(RECORD_VERSION, len(head), len(id_token), len(access), n_refresh)
    return b"".join((lengths, head, id_token, access, refresh))


def decode(raw: bytes) -> Record | None:
    """The record in today's format, or None when it cannot be read: malformed (the caller
    treats it as signed out) or of a version this release does not know (a newer one's, after
    a rollback: its fields may mean something else). Raises nothing but ValueError."""
    if raw[:1] == b"{":
        return _decode_json(raw)
    if len(raw) < _HEAD.size:
        return None
    version, n_fields, n_id, n_access, n_refresh = _HEAD.unpack_from(raw)
    if not _LAST_JSON < version <= RECORD_VERSION:
        _unknown(version)
        return None
    start = _HEAD.size
    id_at = start + n_fields
    access_at = id_at + n_id
    refresh_at = access_at + n_access
    if (refresh_at if n_refresh == _NO_TOKEN else refresh_at + n_refresh) != len(raw):
        return None  # truncated, or lengths that do not add up
    record = json.loads(raw[start:id_at])
    if type(record) is not dict:
        return None
    record["id_token"] = raw[id_at:access_at].decode(_UTF8, _STRINGS)
    record["access_token"] = raw[access_at:refresh_at].decode(_UTF8, _STRINGS)
    record["refresh_token"] = (
        None if n_refresh == _NO_TOKEN else raw[refresh_at:].decode(_UTF8, _STRINGS)
    )
    return _upgrade(record, version)


def _decode_json(raw: bytes) -> Record | None:
    record = json.loads(raw)
    if type(record) is not dict:
        return None
    version = record.pop(_VERSION_KEY, 0)
    if type(version) is not int or not 0 <= version <= min(_LAST_JSON, RECORD_VERSION):
        _unknown(version)
        return None
    return _upgrade(record, version)


def _upgrade(record: Record, version: int) -> Record:
    while version < RECORD_VERSION:
        record = UPGRADES[version](record)
        version += 1
    return record


def _unknown(version: object) -> None:
    log.warning("session record of unknown format version %r: treated as signed out", version)
