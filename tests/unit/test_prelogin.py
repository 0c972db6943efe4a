"""proxy/auth/prelogin.py: the signed pre-login token reads back only as we issued it."""

from __future__ import annotations

import pytest

from proxy.auth.prelogin import PreLoginTokens
from proxy.auth.state import LoginState

TOKENS = PreLoginTokens(b"k" * 32, lifetime=600)


def _state() -> LoginState:
    return LoginState.new("/app/page?x=1")


def test_a_token_reads_back_as_the_state_it_carries() -> None:
    state = _state()
    read = TOKENS.read(TOKENS.issue(state))
    assert read is not None
    assert (read.csrf, read.return_to, read.started_at) == (
        state.csrf,
        state.return_to,
        state.started_at,
    )
    assert read.username is None and read.challenge is None  # nothing else travels


def test_expired_and_future_tokens_are_nothing() -> None:
    state = _state()
    token = TOKENS.issue(state)
    assert TOKENS.read(token, now=state.started_at + 599) is not None
    assert TOKENS.read(token, now=state.started_at + 600) is None
    assert TOKENS.read(token, now=state.started_at - 3600) is None


def test_another_key_or_a_changed_byte_is_nothing() -> None:
    token = TOKENS.issue(_state())
    assert PreLoginTokens(b"o" * 32, lifetime=600).read(token) is None
    body, mac = token.removeprefix("t1.").split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    assert TOKENS.read(f"t1.{flipped}.{mac}") is None
    assert TOKENS.read(f"t1.{body}.{mac[:-1]}") is None


@pytest.mark.parametrize(
    "cookie", ["", "t1.", "t1..", "t1.e30.", "t1.!!!.!!!", "x" * 5000, "t1." + "A" * 20000 + ".x"]
)
def test_garbage_is_nothing_never_an_error(cookie: str) -> None:
    assert TOKENS.read(cookie) is None


def test_a_sealed_store_handle_is_never_taken_for_a_token() -> None:
    assert not PreLoginTokens.is_token("AQID" * 16 + ".abcdef")


def test_long_return_paths_fit_a_cookie_or_go_home() -> None:
    from proxy.auth.redirects import MAX_LENGTH, safe_return_path

    longest = LoginState.new(safe_return_path("/" + "a" * (MAX_LENGTH - 1)))
    token = TOKENS.issue(longest)
    read = TOKENS.read(token)
    assert read is not None and read.return_to == longest.return_to
    # Re-encoding may triple a path; what does not fit even compressed returns home.
    state = LoginState.new(safe_return_path("/?" + "".join(chr(33 + i % 90) for i in range(2040))))
    token = TOKENS.issue(state)
    assert len("__Host-gate-login=" + token) + 60 < 4096  # with the attributes, one cookie
    read = TOKENS.read(token)
    assert read is not None and read.return_to == state.return_to
