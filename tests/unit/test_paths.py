"""The one path normalisation: attacks that would turn a protected path into a public one."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.gate import paths
from proxy.gate.paths import BadPath, canonical_path, split_target
from proxy.gate.policy import prefix_matches

CANONICAL = [
    ("/", "/"),
    ("/admin", "/admin"),
    ("/admin/", "/admin/"),
    ("/a//b", "/a/b"),
    ("//admin", "/admin"),
    ("/public//../admin", "/admin"),
    ("/a/./b", "/a/b"),
    ("/public/../admin", "/admin"),
    ("/public/%2e%2e/admin", "/admin"),
    ("/public/%2E%2e/admin", "/admin"),
    ("/public/.%2e/admin", "/admin"),
    ("/public/%2e/admin", "/public/admin"),
    ("/a/b/..", "/a/"),
    ("/a/.", "/a/"),
    ("/%61dmin", "/admin"),
    ("/%41dmin", "/Admin"),  # decoded, but still case-sensitive: not /admin
    ("/%7e/x", "/~/x"),
    ("/a%3bb", "/a%3Bb"),  # an encoded ; stays an ordinary character
    ("/a%40b", "/a%40b"),  # reserved characters stay encoded, in upper case
    ("/%e5%b1%b1", "/%E5%B1%B1"),
    ("/山", "/%E5%B1%B1"),  # raw UTF-8 is encoded the same way
    ("/a b", "/a%20b"),
    ("/a|b", "/a%7Cb"),
    ("/a%25b", "/a%25b"),  # a literal % (not followed by two hex digits)
    ("/.well-known/openid", "/.well-known/openid"),
    ("/..foo/...", "/..foo/..."),  # only "." and ".." are dot segments
]

REFUSED = [
    ("", "empty"),
    ("admin", "relative"),
    ("/..", "above the root"),
    ("/../admin", "above the root"),
    ("/%2e%2e/admin", "above the root (encoded)"),
    ("/a/../../admin", "above the root (deeper)"),
    ("/public%2f..%2fadmin", "encoded slash"),
    ("/public%2F..%2Fadmin", "encoded slash, upper case"),
    ("/public%5c..%5cadmin", "encoded backslash"),
    ("/public\\..\\admin", "raw backslash"),
    ("/public%252f..%252fadmin", "double-encoded slash"),
    ("/public%252e%252e/admin", "double-encoded dots"),
    ("/public/..;/admin", "Tomcat ..; bypass"),
    ("/admin;jsessionid=1", "path parameter"),
    ("/public;/../admin", "path parameter before dots"),
    ("/admin%00.css", "encoded NUL"),
    ("/admin%0d%0aX-Injected:1", "encoded CRLF"),
    ("/admin\x00", "raw NUL"),
    ("/admin\t", "raw tab"),
    ("/admin%7f", "encoded DEL"),
    ("/public#/../admin", "raw fragment"),
    ("/%c0%ae%c0%ae/admin", "overlong UTF-8 dots"),
    ("/%c0%af", "overlong UTF-8 slash"),
    ("/%ed%a0%80", "UTF-16 surrogate in UTF-8"),
    ("/%ff", "not UTF-8"),
    ("/public/%ef%bc%8e%ef%bc%8e/admin", "fullwidth dots (U+FF0E)"),
    ("/public%ef%bc%8fadmin", "fullwidth solidus (U+FF0F)"),
    ("/public\uff0fadmin", "raw fullwidth solidus"),
    ("/public%e2%80%a4%e2%80%a4/admin", "one dot leader (U+2024)"),
    ("/public%ef%bc%bcadmin", "fullwidth reverse solidus"),
    ("/a%zz", "malformed escape"),
    ("/a%4", "truncated escape"),
    ("/a%", "lone %"),
    ("/a\udcff", "undecodable byte (surrogate-escaped)"),
]


@pytest.mark.parametrize(("raw", "expected"), CANONICAL)
def test_canonical_form(raw: str, expected: str) -> None:
    assert canonical_path(raw) == expected


@pytest.mark.parametrize(("raw", "why"), REFUSED, ids=[why for _, why in REFUSED])
def test_paths_that_cannot_be_normalised_safely_are_refused(raw: str, why: str) -> None:
    with pytest.raises(BadPath):
        canonical_path(raw)


@pytest.mark.parametrize(
    "raw", ["/public/../admin", "/public/%2e%2e/admin", "//admin", "/./admin", "/x/%2E./admin"]
)
def test_no_spelling_of_a_protected_path_matches_a_public_prefix(raw: str) -> None:
    path = canonical_path(raw)
    assert path == "/admin"
    assert not prefix_matches("/public", path)


def test_paths_stay_case_sensitive() -> None:
    assert canonical_path("/ADMIN") == "/ADMIN"
    assert canonical_path("/Admin/%2e%2E/ADMIN") == "/ADMIN"


def test_split_target_leaves_the_query_alone() -> None:
    assert split_target("/a/../b?x=/../..%2f&y=%00") == ("/a/../b", "?x=/../..%2f&y=%00")
    assert split_target("/a") == ("/a", "")
    assert split_target("/a?") == ("/a", "?")


def test_split_target_accepts_absolute_form_and_refuses_non_paths() -> None:
    assert split_target("http://example.com/a/b?q=1") == ("/a/b", "?q=1")
    for target in ("*", "example.com/a", "ftp://h/a"):
        with pytest.raises(BadPath):
            split_target(target)


_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")
_BAD_ESCAPE = re.compile(r"%(2[fF]|5[cC]|00|25[0-9A-Fa-f]{2})")


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "",
                    ".",
                    "..",
                    "%2e",
                    "%2E%2e",
                    ".%2e",
                    "%2f",
                    "%5c",
                    "%00",
                    "%25",
                    "%252f",
                    ";",
                    "%3b",
                    "%41",
                    "%e5%b1%b1",
                    "%c0%ae",
                    "admin",
                    "public",
                    "\\",
                    "#",
                ]
            ),
            st.text(max_size=6),
        ),
        max_size=8,
    )
)
def test_output_is_canonical_or_refused(parts: list[str]) -> None:
    raw = "/" + "/".join(parts)
    try:
        path = canonical_path(raw)
    except BadPath:
        return
    assert path.startswith("/")
    assert "//" not in path
    assert not _DOT_SEGMENT.search(path)
    assert not _BAD_ESCAPE.search(path)
    assert path.isascii() and path.isprintable()
    assert not set(path) & set(";\\# ?")
    # What the upstream receives is a fixed point: normalising again changes nothing, so the
    # path the rules matched is the path the upstream (and any second normaliser) sees.
    assert canonical_path(path) == path


_OLD_PLAIN = re.compile(r"(?:/[A-Za-z0-9\-_~!$&'()*+,=:@][A-Za-z0-9\-._~!$&'()*+,=:@]*)*/?")


@settings(max_examples=2000)
@given(st.text(alphabet="/.%aZ09-_~!$&'()*+,=:@ #?\u00e9", max_size=16))
def test_the_plain_path_shortcut_is_the_regex_it_replaced(tail: str) -> None:
    # Issue 12: the fast path's test is three string operations instead of a regex; a path it
    # calls plain must be exactly one the regex called plain (then it is returned unchanged).
    raw = "/" + tail
    shortcut = not raw.strip(paths._PLAIN_CHARS) and "//" not in raw and "/." not in raw
    assert shortcut == bool(_OLD_PLAIN.fullmatch(raw))
