"""The stored session record has a format version: an old record reads, it does not sign out."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from proxy.sessions import session as session_module
from proxy.sessions.backends import open_store
from proxy.sessions.session import RECORD_VERSION, Record, Session, SessionManager

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


def test_a_record_names_its_format_version_and_reads_back() -> None:
    session = make()
    raw = session.to_bytes()
    assert json.loads(raw)["v"] == RECORD_VERSION
    assert Session.from_bytes(raw) == session


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

    monkeypatch.setattr(session_module, "RECORD_VERSION", RECORD_VERSION + 2)
    monkeypatch.setitem(session_module.UPGRADES, RECORD_VERSION, renamed)
    monkeypatch.setitem(session_module.UPGRADES, RECORD_VERSION + 1, back)
    upgraded = Session.from_bytes(old)
    assert upgraded == make()
    assert json.loads(upgraded.to_bytes())["v"] == RECORD_VERSION + 2  # saved in the new format


@pytest.mark.parametrize("version", [RECORD_VERSION + 1, -1, "1", 1.0, None, True])
def test_a_record_of_an_unknown_version_is_not_guessed_at(version: Any) -> None:
    record = json.loads(make().to_bytes())
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
    record = json.loads(session.to_bytes())
    del record["v"], record["device_key"]
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
    assert json.loads(session.to_bytes())["v"] == RECORD_VERSION == 2


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
