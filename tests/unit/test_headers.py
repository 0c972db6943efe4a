"""Identity headers: presets, reserved names in every spelling, and injection-proof values."""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.gate import outgoing as outgoing_module
from proxy.gate.headers import (
    DEFAULT_PRESET,
    MAX_VALUE_LENGTH,
    PRESETS,
    build_plan,
    header_value,
)
from proxy.gate.outgoing import Outgoing
from proxy.sessions.session import Session

CLAIMS: dict[str, Any] = {
    "sub": "8f1c-42",
    "cognito:username": "alice",
    "email": "alice@example.com",
    "cognito:groups": ["admins", "dev-team"],
    "preferred_username": "ally",
    "name": "Alice Liddell",
}

ALL_PRESET_NAMES = sorted({h for mapping in PRESETS.values() for h in mapping})


def _printable(value: str) -> bool:
    return all(0x20 <= ord(ch) <= 0x7E for ch in value)


# -- Presets ---------------------------------------------------------------------------------


def test_default_preset_is_oauth2_proxy() -> None:
    assert DEFAULT_PRESET == "oauth2-proxy"
    assert build_plan().identity_headers(CLAIMS) == [
        ("X-Forwarded-User", "alice"),
        ("X-Forwarded-Email", "alice@example.com"),
        ("X-Forwarded-Groups", "admins,dev-team"),
        ("X-Forwarded-Preferred-Username", "ally"),
    ]


def test_authelia_preset() -> None:
    assert build_plan("authelia").identity_headers(CLAIMS) == [
        ("Remote-User", "alice"),
        ("Remote-Groups", "admins,dev-team"),
        ("Remote-Email", "alice@example.com"),
        ("Remote-Name", "Alice Liddell"),
    ]


def test_auth_request_preset_for_the_check_endpoint() -> None:
    assert build_plan("auth-request").identity_headers(CLAIMS) == [
        ("X-Auth-Request-User", "alice"),
        ("X-Auth-Request-Email", "alice@example.com"),
        ("X-Auth-Request-Groups", "admins,dev-team"),
        ("X-Auth-Request-Preferred-Username", "ally"),
    ]


def test_presets_are_read_only() -> None:
    with pytest.raises(TypeError):
        PRESETS["oauth2-proxy"]["X-Forwarded-User"] = "sub"  # type: ignore[index]
    with pytest.raises(TypeError):
        PRESETS["mine"] = {}  # type: ignore[index]


def test_extra_overrides_in_place_and_appends() -> None:
    plan = build_plan(extra={"X-Forwarded-User": "sub", "X-Tenant": "custom:tenant"})
    assert plan.mapping == (
        ("X-Forwarded-User", "sub"),
        ("X-Forwarded-Email", "email"),
        ("X-Forwarded-Groups", "cognito:groups"),
        ("X-Forwarded-Preferred-Username", "preferred_username"),
        ("X-Tenant", "custom:tenant"),
    )
    headers = dict(plan.identity_headers({**CLAIMS, "custom:tenant": "acme"}))
    assert headers["X-Forwarded-User"] == "8f1c-42"
    assert headers["X-Tenant"] == "acme"


def test_override_matches_any_spelling_of_the_preset_name() -> None:
    plan = build_plan(extra={"x_forwarded_user": "sub"})
    assert plan.mapping[0] == ("x_forwarded_user", "sub")
    assert len(plan.mapping) == 4


# -- Errors ----------------------------------------------------------------------------------


def test_unknown_preset_is_named() -> None:
    known = "known: auth-request, authelia, oauth2-proxy"
    with pytest.raises(ValueError, match=rf"'keycloak'.*{known}"):
        build_plan("keycloak")


@pytest.mark.parametrize(
    "name", ["", "X User", "X-User:", "X-User\r\nX-Admin", "X-Üser", "X(User)", "X-User\x00"]
)
def test_invalid_header_name_is_named(name: str) -> None:
    with pytest.raises(ValueError, match="invalid header name") as info:
        build_plan(extra={name: "sub"})
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["Cookie", "Host", "Content-Length", "content_length", "Upgrade"])
def test_headers_the_request_needs_cannot_carry_identity(name: str) -> None:
    with pytest.raises(ValueError, match=repr(name)):
        build_plan(extra={name: "sub"})


def test_same_header_configured_twice_is_rejected() -> None:
    with pytest.raises(ValueError, match="configured twice"):
        build_plan(extra={"X-Tenant": "a", "x.tenant": "b"})


@pytest.mark.parametrize("claim", ["", None, 3])
def test_missing_claim_name_is_rejected(claim: Any) -> None:
    with pytest.raises(ValueError, match="'X-Tenant' needs a claim name"):
        build_plan(extra={"X-Tenant": claim})


# -- Reserved names --------------------------------------------------------------------------


def _spellings(name: str) -> set[str]:
    parts = name.split("-")
    joined = {
        "".join(itertools.chain.from_iterable(zip(parts, (*seps, ""), strict=True)))
        for seps in itertools.product("-_.", repeat=len(parts) - 1)
    }
    return {f(s) for s in joined for f in (str, str.lower, str.upper, str.swapcase, str.title)}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_spelling_of_every_preset_name_is_reserved_under_every_preset(preset: str) -> None:
    plan = build_plan(preset)
    for name in ALL_PRESET_NAMES:
        for spelling in _spellings(name):
            assert plan.is_reserved(spelling), (preset, spelling)


def test_configured_names_are_reserved() -> None:
    plan = build_plan("authelia", extra={"X-Tenant-Id": "custom:tenant"})
    assert all(plan.is_reserved(s) for s in _spellings("X-Tenant-Id"))
    assert not build_plan("authelia").is_reserved("X-Tenant-Id")


@pytest.mark.parametrize(
    "name",
    [
        "X-Auth-Request-Access-Token",
        "x_auth_request_redirect",
        "X-Forwarded-Access-Token",
        "X.Forwarded.Access.Token",
    ],
)
def test_oauth2_proxy_family_is_reserved(name: str) -> None:
    assert build_plan().is_reserved(name)


@pytest.mark.parametrize(
    "name",
    [
        "X-Forwarded-Usera",
        "X-Forwarded-Use",
        "XForwardedUser",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        "Cookie",
        "Accept",
        "Authorization",
        "User-Agent",
        "Remote-Addr",
        "X-Auth-Request",
        "",
    ],
)
def test_ordinary_headers_are_not_reserved(name: str) -> None:
    assert not build_plan().is_reserved(name)


@given(st.sampled_from(ALL_PRESET_NAMES), st.randoms(use_true_random=False))
def test_random_case_and_separator_mix_is_reserved(name: str, rnd: Any) -> None:
    spelled = "".join(
        rnd.choice("-_.") if ch == "-" else (ch.upper() if rnd.random() < 0.5 else ch.lower())
        for ch in name
    )
    assert build_plan("authelia").is_reserved(spelled)


# -- Values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("alice", "alice"),
        ("Alice Liddell", "Alice Liddell"),
        ('a,b;c="d" <e>', 'a,b;c="d" <e>'),  # a plain string keeps its commas
        ("100%", "100%25"),
        ("%41", "%2541"),  # never decoded twice into something else
        (" padded ", "%20padded%20"),
        (" ", "%20"),
        ("山田 太郎", "%E5%B1%B1%E7%94%B0 %E5%A4%AA%E9%83%8E"),
        ("alice\r\nX-Admin: true", "alice%0D%0AX-Admin: true"),
        ("a\x00b\tc\x7fd", "a%00b%09c%7Fd"),
        ("\ud800x", "%EF%BF%BDx"),  # lone surrogate becomes U+FFFD, never an exception
        (["admins", "dev-team"], "admins,dev-team"),
        (("a,b", "c"), "a%2Cb,c"),  # a comma inside a group cannot fake a second group
        (["x", None, " y"], "x,%20y"),
        ([True, 3, "s"], "true,3,s"),
        ([{"k": "v,w"}], '{"k":"v%2Cw"}'),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (1.5, "1.5"),
        ({"street": "1 Main St", "zip": "1000"}, '{"street":"1 Main St","zip":"1000"}'),
    ],
)
def test_header_value_encoding(value: Any, expected: str) -> None:
    assert header_value(value) == expected


@pytest.mark.parametrize("value", [None, "", [], (), [None], [""], object()])
def test_empty_or_unrepresentable_values_send_no_header(value: Any) -> None:
    assert header_value(value) is None


def test_missing_and_empty_claims_are_omitted() -> None:
    claims: dict[str, Any] = {
        "cognito:username": "alice",
        "email": "",
        "cognito:groups": [],
        "name": None,
    }
    assert build_plan().identity_headers(claims) == [("X-Forwarded-User", "alice")]
    assert build_plan("authelia").identity_headers({}) == []


def test_japanese_name_round_trips() -> None:
    plan = build_plan("authelia")
    headers = dict(plan.identity_headers({"name": "山田 太郎", "cognito:groups": ["開発,運用"]}))
    assert unquote(headers["Remote-Name"]) == "山田 太郎"
    assert [unquote(g) for g in headers["Remote-Groups"].split(",")] == ["開発,運用"]


def test_oversize_value_is_omitted_with_one_warning_naming_the_header(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = build_plan()
    secret = "s3cr3t" + "x" * MAX_VALUE_LENGTH
    claims = {"cognito:username": "alice", "email": secret}
    with caplog.at_level(logging.WARNING, logger="proxy.gate.headers"):
        assert plan.identity_headers(claims) == [("X-Forwarded-User", "alice")]
        assert plan.identity_headers(claims) == [("X-Forwarded-User", "alice")]
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "X-Forwarded-Email" in message
    assert "s3cr3t" not in message


def test_length_limit_applies_after_encoding() -> None:
    assert MAX_VALUE_LENGTH == 4096  # documented; keeps us under common upstream limits
    assert header_value("x" * MAX_VALUE_LENGTH) == "x" * MAX_VALUE_LENGTH
    assert header_value("x" * (MAX_VALUE_LENGTH + 1)) is None
    kanji = "山" * (MAX_VALUE_LENGTH // 9 + 1)  # 9 encoded bytes each
    assert len(kanji) < MAX_VALUE_LENGTH
    assert header_value(kanji) is None
    assert build_plan().identity_headers({"cognito:username": kanji}) == []


# -- Properties ------------------------------------------------------------------------------

# Any code point, lone surrogates included (JSON "\ud800" escapes produce them).
_any_text = st.text(st.characters() | st.characters(categories=["Cs"]))
_claim_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _any_text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_any_text, inner, max_size=5),
    max_leaves=20,
)


@given(_claim_values)
def test_no_claim_value_can_split_a_header(value: Any) -> None:
    encoded = header_value(value)
    if encoded is not None:
        assert encoded
        assert _printable(encoded), encoded
        assert encoded == encoded.strip(" \t"), "HTTP would trim it"
        assert len(encoded) <= MAX_VALUE_LENGTH


@given(st.dictionaries(st.sampled_from(["cognito:username", "email", "name"]), _claim_values))
def test_identity_headers_are_always_printable_ascii(claims: dict[str, Any]) -> None:
    for name, value in build_plan("authelia").identity_headers(claims):
        assert _printable(name) and _printable(value)
        assert "\r" not in value and "\n" not in value and "\x00" not in value


@given(st.text(min_size=1, max_size=400))
def test_strings_round_trip_through_unquote(text: str) -> None:
    encoded = header_value(text)
    assert encoded is not None
    assert unquote(encoded, errors="strict") == text


@given(st.lists(st.text(max_size=20), min_size=1, max_size=10).filter(lambda g: g != [""]))
def test_lists_round_trip_through_split_and_unquote(groups: list[str]) -> None:
    encoded = header_value(groups)
    assert encoded is not None
    assert [unquote(part, errors="strict") for part in encoded.split(",")] == groups


@given(st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=10), max_size=5))
def test_objects_round_trip_as_json(obj: dict[str, Any]) -> None:
    encoded = header_value(obj)
    assert encoded is not None
    assert json.loads(unquote(encoded, errors="strict")) == obj


# -- Per token, worked out once --------------------------------------------------------------


def _session(id_token: str, claims: dict[str, Any]) -> Session:
    return Session(
        username="alice", sub="8f1c-42", claims=claims, id_token=id_token,
        access_token="acc", refresh_token=None, expires_at=2e9, created_at=1.0,
    )  # fmt: skip


def test_each_token_gets_the_headers_of_its_own_claims_however_often_asked() -> None:
    outgoing = Outgoing.build(build_plan(), pass_access_token=True)
    alice = _session("tok-a", CLAIMS)
    bob = _session("tok-b", {**CLAIMS, "cognito:username": "bob", "email": "bob@example.com"})
    for _ in range(3):
        a = dict(outgoing.headers(alice, "app"))
        b = dict(outgoing.headers(bob, "app"))
        assert (a["X-Forwarded-User"], a["X-Forwarded-Email"]) == ("alice", "alice@example.com")
        assert (b["X-Forwarded-User"], b["X-Forwarded-Email"]) == ("bob", "bob@example.com")
        assert a["X-Forwarded-Access-Token"] == "acc"
    # A caller appending to what it got does not change what the next request gets.
    first = outgoing.headers(alice, "app")
    assert isinstance(first, list)
    first.append(("X-Extra", "1"))
    assert ("X-Extra", "1") not in outgoing.headers(alice, "app")
    bearer = outgoing.claims_headers({"cognito:username": "carol"}, "app", cache_key="tok-c")
    assert bearer == [("X-Forwarded-User", "carol")]
    # Without a token to tell callers apart, nothing is remembered.
    assert outgoing.claims_headers({"email": "d@x"}, "app", cache_key="") == [
        ("X-Forwarded-Email", "d@x")
    ]
    assert outgoing.claims_headers({"email": "e@x"}, "app", cache_key="") == [
        ("X-Forwarded-Email", "e@x")
    ]


def test_the_per_token_memory_stays_bounded() -> None:
    outgoing = Outgoing.build(build_plan())
    for n in range(outgoing_module._MEMO_MAX + 10):
        outgoing.claims_headers({"cognito:username": f"u{n}"}, "app", cache_key=f"t{n}")
    assert len(outgoing._memo) <= outgoing_module._MEMO_MAX
    assert outgoing.claims_headers({"cognito:username": "u3"}, "app", cache_key="t3") == [
        ("X-Forwarded-User", "u3")
    ]
