"""The gate's one-cookie reader agrees with aiohttp's request.cookies, quoted values included."""

from __future__ import annotations

import re

from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.gate.cookies import cookie_from_header, cookie_value

NAME = "__Host-gate"
VALID = "A" * 65 + "Q.abc"


def aiohttp_reads(header: str, name: str = NAME) -> str | None:
    return make_mocked_request("GET", "/", headers={"Cookie": header}).cookies.get(name)


def test_reads_the_named_cookie_among_others() -> None:
    header = f"theme=dark; {NAME}={VALID}; lang=ja"
    assert cookie_from_header(header, NAME) == VALID == aiohttp_reads(header)


def test_a_prefix_of_the_name_is_a_different_cookie() -> None:
    header = f"{NAME}-login=x; x{NAME}=y"
    assert cookie_from_header(header, NAME) is None
    assert aiohttp_reads(header) is None


def test_last_of_duplicate_names_wins_like_aiohttp() -> None:
    header = f"{NAME}=first; {NAME}=second"
    assert cookie_from_header(header, NAME) == "second" == aiohttp_reads(header)


def test_a_quoted_value_cannot_smuggle_a_host_prefixed_cookie() -> None:
    # A sibling subdomain can set `x` (not __Host-); its quoted value must stay one cookie.
    header = f'x="a; {NAME}={VALID}; y=b"'
    assert aiohttp_reads(header) is None
    assert cookie_from_header(header, NAME) is None


def test_only_the_first_cookie_header_counts_like_aiohttp() -> None:
    request = make_mocked_request(
        "GET", "/", headers=[("Cookie", "a=1"), ("Cookie", f"{NAME}={VALID}")]
    )
    assert cookie_value(request, NAME) is None
    assert request.cookies.get(NAME) is None


_PIECES = st.sampled_from(
    [NAME, "gate", "=", ";", "; ", " ", '"', "\\", ",", "a", "b=c", VALID, "\t", "x=", "=="]
)
_SEALED_CHARSET = re.compile(r"[A-Za-z0-9_.-]+")


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_never_finds_a_session_value_that_aiohttp_would_not(header: str) -> None:
    # On malformed headers the two may differ, but only towards "no session" for us: any value
    # that could be a sealed cookie is exactly the one request.cookies would give.
    ours = cookie_from_header(header, NAME)
    if ours and _SEALED_CHARSET.fullmatch(ours):
        assert ours == aiohttp_reads(header)


_NAMES = st.sampled_from([NAME, "gate", "theme", f"{NAME}-login", "a"])
_VALUES = st.sampled_from([VALID, "", "dark", "x=y", "a.b", '"quoted"', '"a; b"', "%20"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=6))
def test_agrees_with_aiohttp_on_browser_shaped_headers(pairs: list[tuple[str, str]]) -> None:
    header = "; ".join(f"{n}={v}" for n, v in pairs)
    assert (cookie_from_header(header, NAME) or None) == (aiohttp_reads(header) or None)
