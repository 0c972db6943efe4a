"""safe_return_path: nothing it returns may send a browser off our origin or the allow-list."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from yarl import URL

from proxy.auth.redirects import MAX_LENGTH, safe_return_path

PROXY = "https://proxy.example.com/"
APP = "https://app.example.com"
DEFAULT = "/default-landing"
CORPUS = (Path(__file__).parent.parent / "data" / "openredirects.txt").read_text("utf-8")
LINES = CORPUS.split("\n")[:-1]  # the file ends with a newline

# What a safe result may contain: RFC 3986 path/query characters and %XX triplets.
_RFC3986 = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")


def _whatwg_preprocess(url: str) -> str:
    # What the WHATWG URL parser does before anything else, for http(s) base URLs:
    # strip C0/space at both ends, drop tab/LF/CR anywhere, read "\" as "/".
    url = url.strip("".join(map(chr, range(0x21))))
    url = re.sub(r"[\t\n\r]", "", url)
    return url.replace("\\", "/")


def assert_lands_on_allowed(result: str, allowed: frozenset[str] = frozenset()) -> None:
    """Resolve ``result`` as a browser would against PROXY; it must stay on PROXY or ``allowed``."""
    assert _RFC3986.fullmatch(result), f"unsafe characters in {result!r}"
    seen = _whatwg_preprocess(result)
    if result.startswith("/"):
        assert not seen.startswith("//"), result
        assert not result.startswith(("//", "/\\")), result
        joined = urlsplit(urljoin(PROXY, seen))
        assert (joined.scheme, joined.netloc) == ("https", "proxy.example.com"), result
        via_yarl = URL(PROXY).join(URL(seen, encoded=True))
        assert str(via_yarl.origin()) == "https://proxy.example.com"
        return
    parts = urlsplit(urljoin(PROXY, seen))
    assert "@" not in parts.netloc, result
    assert f"{parts.scheme}://{parts.netloc}" in allowed, result
    origin = URL(seen, encoded=True).origin()
    assert str(origin) in allowed, result


# -- The oauth2-proxy corpus ----------------------------------------------------------------


def test_corpus_is_the_projects_own_copy() -> None:
    assert len(LINES) == 559
    assert LINES[0] == ""  # the upstream file starts with an empty line


def _variants(line: str) -> list[str]:
    encoded = quote(line, safe="")
    return [line, "/" + line, encoded, "/" + encoded]


@pytest.mark.parametrize("line", LINES)
def test_corpus_line_never_leaves_the_origin(line: str) -> None:
    for candidate in _variants(line):
        result = safe_return_path(candidate, default=DEFAULT)
        assert_lands_on_allowed(result)
        if not candidate.startswith("/"):
            # Without an allow-list only path-absolute references can pass.
            assert result == DEFAULT, candidate


@pytest.mark.parametrize("line", LINES)
def test_corpus_line_never_leaves_the_allow_list(line: str) -> None:
    allowed = frozenset({"https://www.whitelisteddomain.tld", "http://www.whitelisteddomain.tld"})
    for candidate in _variants(line):
        result = safe_return_path(candidate, default=DEFAULT, allowed_origins=allowed)
        assert_lands_on_allowed(result, allowed)


# -- Positive cases --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/", "/"),
        ("/dashboard?tab=2", "/dashboard?tab=2"),
        ("/a/b%20c", "/a/b%20c"),
        ("/x/y?q=1#section", "/x/y?q=1"),  # fragment dropped
        ("/x?", "/x"),
        ("/caf%C3%A9?q=%E5%B1%B1", "/caf%C3%A9?q=%E5%B1%B1"),  # encoded UTF-8 is data
        ("/report%2Fq1", "/report%2Fq1"),  # an encoded slash inside the path is fine
        ("/100%25", "/100%25"),
        ("/next?u=//elsewhere.example", "/next?u=//elsewhere.example"),  # query is data
        ("/@user:name", "/@user:name"),
        ('/a"b<c>{d}|e^`', "/a%22b%3Cc%3E%7Bd%7D%7Ce%5E%60"),  # re-encoded, not kept raw
    ],
)
def test_same_origin_paths_are_kept(candidate: str, expected: str) -> None:
    result = safe_return_path(candidate, default=DEFAULT)
    assert result == expected
    assert_lands_on_allowed(result)


@pytest.mark.parametrize(
    ("candidate", "allowed", "expected"),
    [
        (f"{APP}/reports?x=1#top", {APP}, f"{APP}/reports?x=1"),
        (APP, {APP}, f"{APP}/"),
        (f"{APP}?x=1", {APP}, f"{APP}/?x=1"),
        ("HTTPS://App.Example.COM/x", {APP}, f"{APP}/x"),
        (f"{APP}:443/x", {APP}, f"{APP}/x"),  # default port is the same origin
        (f"{APP}/x", {"HTTPS://APP.EXAMPLE.COM/"}, f"{APP}/x"),  # config spelled loosely
        (f"{APP}:8443/x", {f"{APP}:8443"}, f"{APP}:8443/x"),
        ("http://localhost:3000/", {"http://localhost:3000"}, "http://localhost:3000/"),
    ],
)
def test_allowed_origin_absolute_urls_are_kept(
    candidate: str, allowed: set[str], expected: str
) -> None:
    result = safe_return_path(candidate, default=DEFAULT, allowed_origins=allowed)
    assert result == expected
    parts = urlsplit(expected)
    assert_lands_on_allowed(result, frozenset({f"{parts.scheme}://{parts.netloc}"}))


def test_default_is_returned_as_given() -> None:
    assert safe_return_path(None) == "/"
    assert safe_return_path("//evil.com", default="/home") == "/home"


# -- Negative cases: each must come back as the default --------------------------------------


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "dashboard",  # relative references are not accepted
        "?x=1",
        "#frag",
        "//evil.com",
        "///evil.com",
        "/\\evil.com",
        "/a\\b",
        "/%5cevil.com",
        "/%5Cevil.com",
        "/%2fevil.com",
        "/%2F%2Fevil.com",
        "/%252f%252fevil.com",
        "/%25252F%25252Fevil.com",
        "/%25255c%25255cevil.com",
        "/%09/evil.com",
        "/a%0d%0aSet-Cookie:%20x=1",
        "/a%0Ab",
        "/a%00",
        "/a%7f",
        "/a%250a",  # %0a under a second layer
        "/a%25250d",
        " /a",
        "/a b",
        "/a\tb",
        "/a\nb",
        "/a\x00",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java%0ascript:alert(1)",
        "%6aavascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https://evil.com/",  # absolute without an allow-list
        "/\uff0fevil.com",  # raw fullwidth solidus: not ASCII
        "/evil\u3002com",  # ideographic full stop
        "/%EF%BC%8Fevil.com",  # encoded fullwidth solidus: NFKC makes it "//"
        "/%EF%BC%BCevil.com",  # encoded fullwidth reverse solidus
        "/%E2%80%AEmoc.live",  # right-to-left override
        "/%C2%A0x",  # no-break space
        "/%E2%80%A8x",  # line separator
        "/%C0%AFevil.com",  # overlong UTF-8 for "/"
        "/%FF",  # not UTF-8 at all
        "/a/../b",
        "/a/./b",
        "/..//evil.com",
        "/%2e%2e/x",
        "/%252e%252e/x",
        "/100%",  # malformed percent-encoding
        "/%zz",
        "/a" + "%" + "25" * 10 + "2f",  # more layers than we decode
        "/" + "a" * MAX_LENGTH,
    ],
)
def test_unsafe_candidates_fall_back_to_default(candidate: str) -> None:
    assert safe_return_path(candidate, default=DEFAULT) == DEFAULT


@pytest.mark.parametrize(
    "candidate",
    [
        "https://app.example.com.evil.com/",
        "https://app.example.com@evil.com/",
        "https://evil.com@app.example.com/",  # userinfo, even when the host matches
        "https://app.example.com:443@evil.com/",
        "https://app.example.com%2f@evil.com/",
        "https://app.example.com%2eevil.com/",
        "https://app.example.com\\@evil.com/",
        "https://app.example.com\\evil.com/",
        "https://app.example.com./",
        "https://evilapp.example.com/",
        "http://app.example.com/",  # scheme mismatch
        "https://app.example.com:8443/",  # port mismatch
        "https://app.example.com:0/",
        "https://app.example.com:99999/",
        "https://app.example.com:/",
        "//app.example.com/x",  # scheme-relative
        "https:/app.example.com/x",
        "https:app.example.com/x",
        "ftp://app.example.com/",
        "javascript://app.example.com/%0aalert(1)",
        "https://app.example.com//evil.com",
        "https://app.example.com/%2f%2fevil.com",
        "https://app.example.com/a%0db",
        "https://app.example.com/a/../b",
    ],
)
def test_lookalike_origins_fall_back_to_default(candidate: str) -> None:
    assert safe_return_path(candidate, default=DEFAULT, allowed_origins={APP}) == DEFAULT


@pytest.mark.parametrize(
    "bad_entry",
    [
        "https://evil.com@app.example.com",
        "app.example.com",
        "javascript://app.example.com",
        "https://",
    ],
)
def test_malformed_allow_list_entries_match_nothing(bad_entry: str) -> None:
    for candidate in (bad_entry, bad_entry + "/", "https://app.example.com/"):
        result = safe_return_path(candidate, default=DEFAULT, allowed_origins={bad_entry})
        assert result == DEFAULT


def test_length_limit_is_inclusive() -> None:
    ok = "/" + "a" * (MAX_LENGTH - 1)
    assert safe_return_path(ok, default=DEFAULT) == ok
    assert safe_return_path(ok + "a", default=DEFAULT) == DEFAULT


# -- Properties ------------------------------------------------------------------------------

_TOKENS = [
    "/", "\\", "%", "%2f", "%2F", "%5c", "%25", "%09", "%0a", "%00", "%20", "%2e", ".", "..",
    "@", ":", "?", "#", "javascript:", "https://", "http://", "app.example.com", "evil.com",
    ":443", ":8443", "\uff0f", "\u3002", " ", "\t", "a", "%E3%80%82", "%EF%BC%8F", "%C0%AF",
    "HTTPS:",
]  # fmt: skip
_tricky = st.lists(st.sampled_from(_TOKENS), max_size=12).map("".join)


def _check(candidate: str) -> None:
    allowed = frozenset({APP})
    result = safe_return_path(candidate, default=DEFAULT, allowed_origins=allowed)
    if result != DEFAULT:
        assert_lands_on_allowed(result, allowed)
        # A safe result is a fixed point: re-validating it changes nothing.
        assert safe_return_path(result, default=DEFAULT, allowed_origins=allowed) == result


@given(st.text(max_size=300))
def test_any_text_is_default_or_lands_on_allowed(candidate: str) -> None:
    _check(candidate)


@given(_tricky)
@example("https://app.example.com/ok")
@example("/ok%2Fstill-ok")
def test_tricky_concatenations_are_default_or_land_on_allowed(candidate: str) -> None:
    _check(candidate)
