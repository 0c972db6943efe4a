"""The profile section's pieces without a server: the settings, the value checks, the sealed
pending values."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.auth.account.profile import Invalid, PendingChanges, clean_value
from proxy.sessions.memory import MemoryStore
from proxy.settings import ConfigError, load_settings

_BASE: dict[str, Any] = {
    "upstream": {"url": "http://app.internal"},
    "cognito": {"user_pool_id": "eu-west-1_abc", "client_id": "client"},
    "cookie": {"secret": "s" * 40},
}


def settings_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as exc:
        load_settings(overrides=_BASE)
    return exc.value.lines


def test_default_attributes_are_name_and_email() -> None:
    account = load_settings(overrides=_BASE).account
    assert account.profile_attributes == ["name", "email"]
    assert account.profile_read_only == []


def test_attributes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_ACCOUNT_PROFILE_ATTRIBUTES", "name, phone_number,custom:dept")
    monkeypatch.setenv("GATE_ACCOUNT_PROFILE_READ_ONLY", "custom:tenant")
    account = load_settings(overrides=_BASE).account
    assert account.profile_attributes == ["name", "phone_number", "custom:dept"]
    assert account.profile_read_only == ["custom:tenant"]
    monkeypatch.setenv("GATE_ACCOUNT_PROFILE_ATTRIBUTES", "")
    assert load_settings(overrides=_BASE).account.profile_attributes == []


@pytest.mark.parametrize(
    "name",
    [
        "sub",
        "email_verified",
        "phone_number_verified",
        "identities",
        "updated_at",
        "favourite_colour",
        "custom:",
        "custom:" + "x" * 21,
        "custom:a b",
        "dev:custom:x",
    ],
)
def test_attributes_never_shown_are_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    (line,) = settings_error(monkeypatch, GATE_ACCOUNT_PROFILE_ATTRIBUTES=f"name,{name}")
    assert line.startswith("GATE_ACCOUNT_PROFILE_ATTRIBUTES (account.profile_attributes): ")
    assert repr(name) in line
    monkeypatch.delenv("GATE_ACCOUNT_PROFILE_ATTRIBUTES")
    (line,) = settings_error(monkeypatch, GATE_ACCOUNT_PROFILE_READ_ONLY=name)
    assert line.startswith("GATE_ACCOUNT_PROFILE_READ_ONLY (account.profile_read_only): ")


def test_an_attribute_twice_or_in_both_lists_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    (line,) = settings_error(monkeypatch, GATE_ACCOUNT_PROFILE_ATTRIBUTES="name,email,name")
    assert "'name' is listed twice" in line
    monkeypatch.delenv("GATE_ACCOUNT_PROFILE_ATTRIBUTES")
    (line,) = settings_error(monkeypatch, GATE_ACCOUNT_PROFILE_READ_ONLY="email")
    assert line.startswith("GATE_ACCOUNT_PROFILE_READ_ONLY")
    assert "email also in GATE_ACCOUNT_PROFILE_ATTRIBUTES" in line


@pytest.mark.parametrize(
    ("name", "typed", "sent"),
    [
        ("name", "  Erin  ", "Erin"),
        ("name", "", ""),
        ("name", "エリン", "エリン"),
        ("email", " erin@example.com ", "erin@example.com"),
        ("email", "erin+tag@mail.example.co.jp", "erin+tag@mail.example.co.jp"),
        ("phone_number", "+81 90-1234-5678", "+819012345678"),
        ("phone_number", "+1 (206) 555.1212", "+12065551212"),
        ("birthdate", "1990-02-28", "1990-02-28"),
        ("birthdate", "", ""),
    ],
)
def test_values_as_cognito_takes_them(name: str, typed: str, sent: str) -> None:
    assert clean_value(name, typed) == sent


@pytest.mark.parametrize(
    ("name", "typed", "key"),
    [
        ("name", "x" * 2049, "account.profile.too_long"),
        ("name", "a\nb", "account.profile.bad_characters"),
        ("name", "a\x7fb", "account.profile.bad_characters"),
        ("email", "", "account.profile.bad_email"),
        ("email", "erin", "account.profile.bad_email"),
        ("email", "erin@localhost", "account.profile.bad_email"),
        ("email", "erin@@example.com", "account.profile.bad_email"),
        ("email", "erin@example..com", "account.profile.bad_email"),
        ("phone_number", "", "account.profile.bad_phone"),
        ("phone_number", "09012345678", "account.profile.bad_phone"),
        ("phone_number", "+0123456", "account.profile.bad_phone"),
        ("phone_number", "+1234567890123456", "account.profile.bad_phone"),
        ("phone_number", "+81 90 1234 \uff15\uff16\uff17\uff18", "account.profile.bad_phone"),
        ("birthdate", "28/02/1990", "account.profile.bad_birthdate"),
        ("birthdate", "1990-13-01", "account.profile.bad_birthdate"),
    ],
)
def test_values_cognito_would_refuse(name: str, typed: str, key: str) -> None:
    with pytest.raises(Invalid) as exc:
        clean_value(name, typed)
    assert exc.value.key == key


async def test_pending_values_are_sealed_per_user() -> None:
    store = MemoryStore()
    pending = PendingChanges(store, b"k" * 32)
    await pending.put("sub-1", "email", "new@example.com")
    await pending.put("sub-1", "phone_number", "+819012345678")
    assert await pending.load("sub-1") == {
        "email": "new@example.com",
        "phone_number": "+819012345678",
    }
    assert await pending.load("sub-2") == {}
    assert await PendingChanges(store, b"x" * 32).load("sub-1") == {}  # another key: nothing
    keys = list(store._data)  # what anyone listing the store sees
    raw = b"".join(value for _, value in store._data.values())
    assert len(keys) == 1 and "sub-1" not in keys[0]
    assert b"new@example.com" not in raw
    await pending.drop("sub-1", "email")
    assert await pending.load("sub-1") == {"phone_number": "+819012345678"}
    await pending.drop("sub-1", "phone_number")
    assert await pending.load("sub-1") == {}
