"""Completion's decisions as tables: the end of every sign-in, as the browser sees it.

Which remembered device a sign-in may use, and what the last answer of a sign-in sets: the
session cookie (and how long it lives), the device cookie after ConfirmDevice, where the
browser goes next (back to the app, or first to "remember this device?"), the pre-login
cookie cleared, an old session ended. Real kit, sessions and device store over a memory store;
Cognito is the fake at the client boundary. test_devices.py and test_login_flow.py prove the
same against the strict double.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from proxy.auth.completion import Completion
from proxy.auth.outcomes import SignedIn
from proxy.auth.session_cards import SessionCards
from proxy.cognito.client import Device, NewDevice
from tests.support.auth_fakes import (
    COOKIES,
    REMEMBER_LIFETIME,
    AuthHarness,
    FakeCognito,
    auth_harness,
    refusal,
    session_record,
)

NEW_DEVICE = NewDevice("dev-new", "grp-1")
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
async def h() -> AsyncIterator[AuthHarness]:
    async with auth_harness() as harness:
        yield harness


def request(path: str = "/_auth/challenge", **cookies: str) -> web.Request:
    names = {"session": COOKIES.session, "flow": COOKIES.flow, "device": COOKIES.device}
    headers = CIMultiDict({"User-Agent": FIREFOX})
    if cookies:
        headers["Cookie"] = "; ".join(f"{names[k]}={v}" for k, v in cookies.items())
    return make_mocked_request("POST", path, headers=headers, app=web.Application())


def completion(h: AuthHarness, *, devices: bool = True, cards: Any = None) -> Completion:
    return Completion(
        h.kit,
        devices=h.devices if devices else None,
        remember_lifetime=REMEMBER_LIFETIME,
        cards=cards,
    )


# -- finish: the answer that ends a sign-in ------------------------------------------------------

FINISH: list[tuple[str, dict[str, Any], NewDevice | None, list[Any], str, dict[str, Any]]] = [
    # (row, the sign-in state, the device Cognito issued, ConfirmDevice's answers, the page's
    #  path, what the browser gets: location, session cookie Max-Age, device cookie, the
    #  session's device key)
    (
        "back to where the user was going, a browser-session cookie",
        {"return_to": "/app/page?x=1"},
        None,
        [],
        "/_auth/login",
        {"location": "/app/page?x=1", "max_age": "", "device_cookie": False, "device_key": None},
    ),
    (
        "keep me signed in: the cookie outlives the browser",
        {"remember": True},
        None,
        [],
        "/_auth/login",
        {"location": "/app", "max_age": str(int(REMEMBER_LIFETIME)), "device_cookie": False},
    ),
    (
        "a new device after an authenticator code: asked to remember it, saying what it spares",
        {"challenge": "SOFTWARE_TOKEN_MFA"},
        NEW_DEVICE,
        [(Device("dev-new", "grp-1", "dpw"), True)],
        "/_auth/challenge",
        {
            "location": "/_auth/device",
            "query": {"rd": ["/app"], "spares": ["SOFTWARE_TOKEN_MFA"]},
            "device_cookie": True,
            "device_key": "dev-new",
        },
    ),
    (
        "the device question keeps the page's language",
        {"challenge": "SMS_MFA"},
        NEW_DEVICE,
        [(Device("dev-new", "grp-1", "dpw"), True)],
        "/_auth/challenge?lang=ja",
        {
            "location": "/_auth/device",
            "query": {"rd": ["/app"], "spares": ["SMS_MFA"], "lang": ["ja"]},
            "device_cookie": True,
        },
    ),
    (
        "a factor passed earlier in the sign-in is the one the device would spare",
        {"challenge": "NEW_PASSWORD_REQUIRED", "second_factor": "EMAIL_OTP"},
        NEW_DEVICE,
        [(Device("dev-new", "grp-1", "dpw"), True)],
        "/_auth/challenge",
        {"location": "/_auth/device", "query": {"rd": ["/app"], "spares": ["EMAIL_OTP"]}},
    ),
    (
        "a new device after a password only: confirmed (refreshes need it), not offered",
        {},
        NEW_DEVICE,
        [(Device("dev-new", "grp-1", "dpw"), True)],
        "/_auth/login",
        {"location": "/app", "device_cookie": True, "device_key": "dev-new"},
    ),
    (
        "USER_AUTH's emailed code as the first factor: not offered either",
        {"challenge": "EMAIL_OTP", "first_factor": "EMAIL_OTP"},
        NEW_DEVICE,
        [(Device("dev-new", "grp-1", "dpw"), True)],
        "/_auth/challenge",
        {"location": "/app", "device_cookie": True},
    ),
    (
        "a pool that remembers devices without asking: no question",
        {"challenge": "SOFTWARE_TOKEN_MFA"},
        NEW_DEVICE,
        [(Device("dev-new", "grp-1", "dpw"), False)],
        "/_auth/challenge",
        {"location": "/app", "device_cookie": True, "device_key": "dev-new"},
    ),
    (
        "ConfirmDevice refused: signed in all the same, MFA asked next time",
        {"challenge": "SOFTWARE_TOKEN_MFA"},
        NEW_DEVICE,
        [refusal("InvalidParameterException", "Device already confirmed")],
        "/_auth/challenge",
        {"location": "/app", "device_cookie": False, "device_key": None},
    ),
]


@pytest.mark.parametrize(
    ("fields", "new_device", "confirm", "path", "expected"),
    [r[1:] for r in FINISH],
    ids=[r[0] for r in FINISH],
)
async def test_finish(
    h: AuthHarness,
    fields: dict[str, Any],
    new_device: NewDevice | None,
    confirm: list[Any],
    path: str,
    expected: dict[str, Any],
) -> None:
    if confirm:
        h.cognito.will("confirm_device", *confirm)
    flow_cookie, state = await h.flow(**fields)
    step = SignedIn(session_record(), new_device)

    response = await completion(h).finish(request(path, flow=flow_cookie), state, step)

    assert response.status == 303
    if "query" in expected:
        location = urlsplit(response.headers["Location"])
        assert location.path == expected["location"]
        assert parse_qs(location.query) == expected["query"]
    else:
        assert response.headers["Location"] == expected["location"]
    cookies = response.cookies
    session_cookie = cookies[COOKIES.session].value
    assert session_cookie
    if "max_age" in expected:
        assert cookies[COOKIES.session].get("max-age", "") == expected["max_age"]
    assert cookies[COOKIES.flow].value == ""  # the sign-in in progress is over
    assert await h.flows.load(flow_cookie) is None
    if "device_cookie" in expected:
        assert (COOKIES.device in cookies) is expected["device_cookie"]
    if COOKIES.device in cookies:
        assert cookies[COOKIES.device]["max-age"] == str(int(h.devices.lifetime))
        assert cookies[COOKIES.device]["httponly"] is True
    session = await h.sessions.load(session_cookie)
    assert session is not None
    assert session.remember is bool(fields.get("remember"))
    if "device_key" in expected:
        assert session.device_key == expected["device_key"]
    # ConfirmDevice names the device by the browser it is.
    assert [c["device_name"] for c in h.cognito.called("confirm_device")] == (
        [FIREFOX] if new_device else []
    )


async def test_finish_ends_the_session_the_browser_had(h: AuthHarness) -> None:
    """No fixation: a session cookie planted before sign-in is never the one signed in."""
    planted = await h.session(session_record("s-9", "mallory"))
    flow_cookie, state = await h.flow()
    response = await completion(h).finish(
        request(flow=flow_cookie, session=planted), state, SignedIn(session_record())
    )
    assert response.cookies[COOKIES.session].value != planted
    assert await h.sessions.load(planted) is None


async def test_finish_with_device_tracking_off_confirms_nothing(h: AuthHarness) -> None:
    flow_cookie, state = await h.flow(challenge="SOFTWARE_TOKEN_MFA")
    response = await completion(h, devices=False).finish(
        request(flow=flow_cookie), state, SignedIn(session_record(), NEW_DEVICE)
    )
    assert response.headers["Location"] == "/app"
    assert COOKIES.device not in response.cookies
    assert h.cognito.calls == []


async def test_finish_writes_the_card_the_account_page_shows(h: AuthHarness) -> None:
    cards = SessionCards(h.store, b"k" * 32)  # type: ignore[arg-type]
    flow_cookie, state = await h.flow()
    response = await completion(h, cards=cards).finish(
        request(flow=flow_cookie), state, SignedIn(session_record())
    )
    record = h.sessions.record_hash(response.cookies[COOKIES.session].value)
    assert record is not None
    card = await cards.load(record)
    assert card is not None
    assert "Firefox" in card.browser


# -- remembered_device: which device a sign-in may use -----------------------------------------

REMEMBERED: list[tuple[str, str | None, str, bool, str | None]] = [
    # (row, whose device cookie the browser holds, who signs in, store down, the device used)
    ("no device cookie", None, "ann", False, None),
    ("this user's device", "ann", "ann", False, "dev-1"),
    (
        "typed in another case: not the name it was remembered under (MFA asked)",
        "ann",
        "ANN",
        False,
        None,
    ),
    ("another user on this browser signs in without it", "bob", "ann", False, None),
    ("a forged cookie", "forged", "ann", False, None),
    ("the store down: no device, MFA asked (still signs in)", "ann", "ann", True, None),
]


@pytest.mark.parametrize(
    ("owner", "username", "down", "device_key"),
    [r[1:] for r in REMEMBERED],
    ids=[r[0] for r in REMEMBERED],
)
async def test_remembered_device(
    h: AuthHarness, owner: str | None, username: str, down: bool, device_key: str | None
) -> None:
    cookies = {}
    if owner == "forged":
        cookies["device"] = "x" * 43
    elif owner is not None:
        cookies["device"] = await h.device(owner)
    h.store.down = down
    device = await completion(h).remembered_device(request(**cookies), username)
    assert (device.device_key if device else None) == device_key
    if device is not None:
        assert device == Device("dev-1", "grp-1", "dpw")


async def test_no_device_store_no_remembered_device(h: AuthHarness) -> None:
    cookie = await h.device("ann")
    assert (
        await completion(h, devices=False).remembered_device(request(device=cookie), "ann") is None
    )


async def test_a_device_remembered_under_an_alias_serves_that_alias() -> None:
    cognito = FakeCognito()
    async with auth_harness(cognito) as h:
        # The device record knows both names: Cognito's and what was typed then.
        raw = b'{"username":"u-1","typed":"ann@example.com","device_key":"dev-1",'
        raw += b'"device_group_key":"grp-1","device_password":"dpw"}'
        cookie = await h.devices._sealed.create(raw, 3600)
        done = completion(h)
        for name, found in (("u-1", True), ("ann@example.com", True), ("bob", False)):
            device = await done.remembered_device(request(device=cookie), name)
            assert (device is not None) is found, name
