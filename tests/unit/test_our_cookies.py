"""proxy/cookies.py: the one source of our cookies' names, attributes and "is this ours"."""

from __future__ import annotations

import pytest
from aiohttp import web

from proxy.cookies import OurCookies
from proxy.settings import CookieSettings

OURS = OurCookies("gate", secure=True)


def test_names_follow_the_base_and_the_secure_prefix() -> None:
    assert OURS.names == ("__Host-gate", "__Host-gate-login", "__Host-gate-device")
    assert OurCookies("app", secure=False).names == ("app", "app-login", "app-device")


def test_settings_derive_their_names_from_it() -> None:
    settings = CookieSettings(secret="x" * 32, name="shop", secure=False)  # type: ignore[call-arg]
    assert settings.cookies == OurCookies("shop", secure=False)
    assert settings.cookies.device == "shop-device"


@pytest.mark.parametrize(
    "name",
    [
        "__Host-gate",
        "__Host-gate-login",
        "__Host-gate-device",
        "gate",
        "gate-device",
        "__host-gate",
        "__HOST-GATE-DEVICE",
        "__Secure-gate",
        "__secure-gate-login",
        " __Host-gate-device ",
        "%5F%5FHost-gate",
        "__Host-gate%2Ddevice",
        "GATE-LOGIN",
    ],
)
def test_every_spelling_of_our_names_is_ours(name: str) -> None:
    assert OURS.is_ours(name)


@pytest.mark.parametrize(
    "name", ["gatekeeper", "gate-devices", "app", "x__Host-gate", "__Host-gatex", "", "gate_login"]
)
def test_other_names_are_the_apps(name: str) -> None:
    assert not OURS.is_ours(name)


def test_without_ours_keeps_only_the_apps_cookies_in_order() -> None:
    headers = ["__Host-gate=abc; theme=dark", "__Host-gate-device=d;sid=1; __host-gate-login=x"]
    assert OURS.without_ours(headers) == "theme=dark; sid=1"
    assert OURS.without_ours(["__Host-gate=abc"]) is None
    assert OURS.without_ours(["gatekeeper=1; gate =2; __Host-gate-device"]) == "gatekeeper=1"


@pytest.mark.parametrize(
    "value",
    [
        "__Host-gate=other-session; Path=/; Secure; HttpOnly",
        "__Host-gate-login=x",
        "__Host-gate-device=x; Max-Age=99999999",
        "__HOST-gate=x",
        "gate=x; Domain=example.com",
        "=__Host-gate=x",  # nameless: the browser sends it back as "__Host-gate=x"
        "__Host-gate",  # nameless without "=": sent back as "__Host-gate"
        " =__host-gate-device=x; Path=/",
    ],
)
def test_upstream_set_cookies_of_ours_are_recognised(value: str) -> None:
    assert OURS.sets_ours(value)


@pytest.mark.parametrize("value", ["sid=1; Path=/", "theme=__Host-gate", "=plain", "gatekeeper=1"])
def test_the_apps_set_cookies_are_not_ours(value: str) -> None:
    assert not OURS.sets_ours(value)


def test_set_and_clear_carry_the_same_attributes() -> None:
    response = web.Response()
    OURS.set(response, OURS.session, "v", max_age=60)
    OURS.clear(response, OURS.flow)
    session = response.cookies[OURS.session]
    assert (session["path"], session["secure"], session["httponly"], session["samesite"]) == (
        "/",
        True,
        True,
        "Lax",
    )
    assert session["max-age"] == "60" and not session["domain"]
    cleared = response.cookies[OURS.flow]
    assert cleared["max-age"] == "0" and cleared["httponly"] and cleared["samesite"] == "Lax"
