"""The stored session record has a format version: an old record reads, it does not sign out."""

from __future__ import annotations

import json
import struct
import time
from dataclasses import asdict
from typing import Any

import pytest

from proxy.sessions import record as record_module
from proxy.sessions.backends import open_store
from proxy.sessions.record import RECORD_VERSION, Record
from proxy.sessions.session import Session, SessionManager

# A record exactly as releases before format versions wrote it (no "v", no device_key).
BEFORE_VERSIONS = (
    b'{"username":"u","sub":"s","claims":{"sub":"s","email":"e@example.com"},"id_token":"i",'
    b'"access_token":"a","refresh_token":"r","expires_at":2000000000.0,"created_at":1.0,'
    b'"last_seen":2.0,"remember":true}'
)


def make() -> Session:
    return Session(
        username="u",
        sub="s",
        claims={"sub": "s"},
        id_token="i",
        access_token="a",
        refresh_token="r",
        expires_at=2e9,
        created_at=1.0,
        last_seen=2.0,
        remember=True,
        device_key="dk",
    )


def framed(fields: object, *tokens: bytes | None, version: int = 3) -> bytes:
    """A version-3 record built by hand, as docs/architecture.md describes the format."""
    head = json.dumps(fields, separators=(",", ":")).encode()
    lengths = [0xFFFFFFFF if t is None else len(t) for t in tokens]
    return (
        struct.pack(">B4I", version, len(head), *lengths)
        + head
        + b"".join(t or b"" for t in tokens)
    )


def fields_of(session: Session) -> Record:
    return {k: v for k, v in asdict(session).items() if not k.endswith("_token")}


def test_a_record_names_its_format_version_and_reads_back() -> None:
    session = make()
    raw = session.to_bytes()
    assert raw[0] == RECORD_VERSION == 3
    assert Session.from_bytes(raw) == session
    # The tokens are framed after the JSON of the other fields, not inside it.
    assert raw == framed(fields_of(session), b"i", b"a", b"r")
    assert raw.endswith(b'"factors":[]}iar')


# A version-2 record byte for byte as the release before version 3 wrote it (Session.to_bytes,
# json.dumps of every field): a deploy of version 3 reads it, nobody is signed out.
VERSION_2 = (
    b'{"v":2,"username":"u","sub":"s","claims":{"sub":"s","email":"e@example.com","name":'
    b'"Zo\\u00eb \\"Z\\" <z>"},"id_token":"eyJ.id.sig","access_token":"eyJ.access.sig",'
    b'"refresh_token":"eyJ.refresh.jwe","expires_at":2000000000.0,"created_at":1000.0,'
    b'"last_seen":2000.0,"remember":true,"device_key":"dk","auth_time":1500.0,'
    b'"factors":["srp","totp"]}'
)


def test_a_version_2_record_reads_and_is_saved_as_version_3() -> None:
    session = Session.from_bytes(VERSION_2)
    assert session == Session(
        username="u",
        sub="s",
        claims={"sub": "s", "email": "e@example.com", "name": 'Zoë "Z" <z>'},
        id_token="eyJ.id.sig",
        access_token="eyJ.access.sig",
        refresh_token="eyJ.refresh.jwe",
        expires_at=2e9,
        created_at=1000.0,
        last_seen=2000.0,
        remember=True,
        device_key="dk",
        auth_time=1500.0,
        factors=["srp", "totp"],
    )
    rewritten = session.to_bytes()
    assert rewritten[0] == 3 and Session.from_bytes(rewritten) == session


HOSTILE_TOKENS = [
    "",
    "\x00",
    "a" * 100_000,
    '"},"sub":"mallory","x":{"',  # JSON that would close the record if it were spliced in
    "\xff\u00e9\u2028\U0001f600",
    "\ud800 lone surrogate \udfff",
    "\xff\xff\xff\xff" * 4,
    "{",
]


@pytest.mark.parametrize("token", HOSTILE_TOKENS)
def test_any_token_content_comes_back_as_it_went_in(token: str) -> None:
    session = make()
    session.id_token = session.access_token = token
    session.refresh_token = token + token
    assert Session.from_bytes(session.to_bytes()) == session


@pytest.mark.parametrize("refresh", [None, ""])
def test_no_refresh_token_is_not_an_empty_one(refresh: str | None) -> None:
    session = make()
    session.refresh_token = refresh
    loaded = Session.from_bytes(session.to_bytes())
    assert loaded is not None and loaded.refresh_token == refresh


def test_the_framed_tokens_win_over_token_fields_in_the_json() -> None:
    fields = {**fields_of(make()), "id_token": "from-json", "refresh_token": "from-json"}
    session = Session.from_bytes(framed(fields, b"I", b"A", b"R"))
    assert session is not None
    assert (session.id_token, session.access_token, session.refresh_token) == ("I", "A", "R")


def malformed_v3() -> list[bytes]:
    good = make().to_bytes()
    fields = fields_of(make())
    return [
        good[:16],  # shorter than the lengths
        good[:-1],  # truncated by one byte
        good[: len(good) // 2],
        good + b"x",  # a byte past the lengths
        good[:1] + struct.pack(">I", 0xFFFFFFF0) + good[5:],  # a JSON length past the end
        good[:13] + struct.pack(">I", 2**31) + good[17:],  # a refresh length past the end
        framed(fields, b"i", b"a", b"r")[:-1] + b"\xff",  # a token cut mid-character
        framed(fields, b"\xff\xfe", b"a", b"r"),  # not UTF-8
        framed(fields, b"i", None, b"r"),  # "no token" where a token must be: no length adds up
        framed([1, 2], b"i", b"a", b"r"),  # the JSON is not an object
        framed({"username": "u"}, b"i", b"a", b"r"),  # fields missing
        framed({**fields, "admin": True}, b"i", b"a", b"r"),  # a field no Session has
        struct.pack(">B4I", 3, 0, 0, 0, 0),  # all empty: the JSON is no JSON
        b"\x03" + b"\xff" * 16,
        b"\x03" + b"\x00" * 3000,
    ]


@pytest.mark.parametrize("raw", malformed_v3())
def test_a_malformed_version_3_record_is_no_session(raw: bytes) -> None:
    assert Session.from_bytes(raw) is None


@pytest.mark.parametrize("version", [0, 1, 2, 4, 0x7A, 0x7C, 255])
def test_a_framed_record_of_another_version_is_not_guessed_at(version: int) -> None:
    """Versions 0-2 were never framed; 4 and up are a later release's (a rollback)."""
    raw = bytearray(make().to_bytes())
    raw[0] = version
    assert Session.from_bytes(bytes(raw)) is None


def test_a_record_written_before_versions_still_reads() -> None:
    session = Session.from_bytes(BEFORE_VERSIONS)
    assert session is not None
    assert (session.sub, session.refresh_token, session.remember) == ("s", "r", True)
    assert session.claims["email"] == "e@example.com"
    assert session.device_key is None  # a field added since, with its default


def test_a_renamed_field_reads_old_records_through_its_upgrade(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the version is for: a (pretend) release renames refresh_token. Its upgrade step is
    the only change needed for the records already stored to keep everyone signed in."""
    old = make().to_bytes()

    def renamed(record: Record) -> Record:
        record["refresh"] = record.pop("refresh_token")
        return record

    def back(record: Record) -> Record:  # the pretend Session still has the old name
        record["refresh_token"] = record.pop("refresh")
        return record

    monkeypatch.setattr(record_module, "RECORD_VERSION", RECORD_VERSION + 2)
    monkeypatch.setitem(record_module.UPGRADES, RECORD_VERSION, renamed)
    monkeypatch.setitem(record_module.UPGRADES, RECORD_VERSION + 1, back)
    upgraded = Session.from_bytes(old)
    assert upgraded == make()
    assert upgraded.to_bytes()[0] == RECORD_VERSION + 2  # saved in the new format
    assert Session.from_bytes(VERSION_2) is not None  # and the JSON ones still upgrade


# A JSON record names versions 0-2 only: 3 and up are framed, never JSON.
@pytest.mark.parametrize("version", [3, RECORD_VERSION + 1, -1, "1", 1.0, None, True])
def test_a_record_of_an_unknown_version_is_not_guessed_at(version: Any) -> None:
    record = json.loads(VERSION_2)
    record["v"] = version
    assert Session.from_bytes(json.dumps(record).encode()) is None


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b"[]", b'"s"', b'{"v": 1}', b'{"username": "u"}', b"\xff"]
)
def test_an_unreadable_record_is_no_session(raw: bytes) -> None:
    assert Session.from_bytes(raw) is None


async def test_a_stored_record_from_before_versions_is_loaded_by_the_manager() -> None:
    store = open_store("memory://")
    manager = SessionManager(store, b"k" * 32, lifetime=3600)
    session = make()
    session.created_at, session.remember = time.time(), False
    cookie = await manager.create(session)
    # Rewrite the sealed record as an older release left it: no version, no device_key.
    record = asdict(session)
    del record["device_key"]
    sealed = manager._sealed  # the test plays the older release's writer
    assert await sealed.save(cookie, json.dumps(record).encode(), 3600)
    loaded = await manager.load(cookie)
    assert loaded is not None
    assert (loaded.sub, loaded.refresh_token, loaded.device_key) == ("s", "r", None)


# A version-1 record (before step-up): no auth_time, no factors.
VERSION_1 = (
    b'{"v":1,"username":"u","sub":"s","claims":{"sub":"s"},"id_token":"i","access_token":"a",'
    b'"refresh_token":"r","expires_at":2000000000.0,"created_at":1000.0,"last_seen":2000.0,'
    b'"remember":false,"device_key":null}'
)


def test_a_version_1_record_reads_with_its_sign_in_time_and_no_second_factor() -> None:
    """Nobody is signed out by the step-up fields: the record's sign-in (created_at, kept by
    every refresh) is when the user last proved who they are; its factors are unknown, so it
    is not taken as multi-factor."""
    session = Session.from_bytes(VERSION_1)
    assert session is not None
    assert (session.auth_time, session.factors, session.multi_factor) == (1000.0, [], False)
    assert session.to_bytes()[0] == RECORD_VERSION == 3


def test_a_refresh_keeps_the_sign_in_time_and_factors() -> None:
    signed_in = make()
    signed_in.auth_time, signed_in.factors = 5.0, ["srp", "totp"]
    claims = {"sub": "s", "exp": 2e9, "cognito:username": "u"}
    refreshed = Session.from_tokens(
        id_claims=claims,
        access_claims=claims,
        id_token="i2",
        access_token="a2",
        refresh_token=None,
        previous=signed_in,
    )
    assert (refreshed.auth_time, refreshed.factors, refreshed.multi_factor) == (
        5.0,
        ["srp", "totp"],
        True,
    )
    assert refreshed.auth_age(now=65.0) == 60.0
    fresh = Session.from_tokens(
        id_claims=claims, access_claims=claims, id_token="i", access_token="a", refresh_token="r"
    )
    assert fresh.factors == [] and fresh.auth_age() < 5
