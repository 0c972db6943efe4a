"""One canonical form for request paths: what the rules match and what the upstream receives.

A rule can only be trusted if the path it matched is the path the app serves. Servers disagree on
how to read ``..``, ``%2e``, ``%2f``, ``//``, ``;params`` and Unicode look-alikes, which is how a
protected path gets dressed up as a public one. So the gate decides once, here, and forwards the
canonical path verbatim (the query string is passed on untouched and never matched).

:func:`canonical_path` takes the raw path as it arrived (``request.raw_path`` up to ``?``):

1. It must start with ``/``. A raw ``#`` (never sent by browsers), ``\\``, ``;`` or any control
   character is refused. ``;`` is refused because Java servers (Tomcat, Jetty, Spring) strip
   ``;params`` from each segment before routing, so ``/public/..;/admin`` is ``/admin`` to them;
   an encoded ``%3B`` stays encoded and is an ordinary character.
2. Percent-escapes are decoded once, and only for unreserved characters (``A-Z a-z 0-9 - . _ ~``):
   ``%2e`` becomes ``.``, ``%41`` becomes ``A``. Every other escape stays encoded, in upper case.
   Refused: ``%2F`` (``/``), ``%5C`` (``\\``), ``%00`` and every other encoded control character,
   ``%25`` followed by two hex digits (double encoding: a second decoder would see ``%2f``), a
   malformed escape, bytes that are not valid UTF-8 (overlong forms such as ``%C0%AE``), and
   non-ASCII characters whose Unicode compatibility form (NFKC) contains ``. / \\ ; % ? #``
   (``%EF%BC%8F`` = U+FF0F FULLWIDTH SOLIDUS, which some apps fold into ``/``).
   Raw non-ASCII (valid UTF-8) and ASCII characters outside RFC 3986 ``pchar`` are encoded.
3. Empty segments are dropped (``//`` → ``/``); ``.`` and ``..`` are resolved per RFC 3986 §5.2.4;
   a ``..`` that would climb above the root is refused. A trailing ``/`` is kept.

Refusal is :class:`BadPath`, answered with 400. Paths stay case-sensitive, like the URL standard and
most servers: ``/Admin`` is not ``/admin``. An app that treats paths case-insensitively must say so
on its rules (``case_insensitive: true``).
"""

from __future__ import annotations

import functools
import unicodedata

from yarl import URL

__all__ = ["BadPath", "canonical_path", "split_target"]

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# RFC 3986 pchar without ";" (refused, see above) and "%" (handled as an escape).
_PCHAR = _UNRESERVED | frozenset("!$&'()*+,=:@")
_HEX = frozenset("0123456789abcdefABCDEF")
_REFUSED_RAW = frozenset("#\\;")
_ESCAPED = tuple(f"%{b:02X}" for b in range(128))
# Characters that a Unicode-folding app could read as path syntax.
_SYNTAX = frozenset("./\\;%?#")
# The common case: plain ASCII path characters, no escapes, no dot segments, no "//".
# A path already canonical: only these characters (so nothing to decode), no empty segment but
# a trailing "/", no segment starting with "." (so no dot segments). The test is three C string
# operations (str.strip of these leaves nothing exactly when every character is one of them).
_PLAIN_CHARS = "/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@"


class BadPath(ValueError):
    """A path that cannot be normalised safely; the request gets 400."""


def split_target(raw_target: str) -> tuple[str, str]:
    """``raw_path`` → (path, query with its ``?`` or ""); the query is never interpreted.

    An absolute-form target (``GET http://host/x HTTP/1.1``) gives its path; ``*`` and other
    non-paths raise :class:`BadPath`.
    """
    if not raw_target.startswith("/"):
        try:
            url = URL(raw_target, encoded=True)
        except ValueError:
            raise BadPath("not a path") from None
        if not url.absolute or url.scheme not in ("http", "https"):
            raise BadPath("not a path")
        raw_target = url.raw_path_qs
    path, sep, query = raw_target.partition("?")
    return path, sep + query


def canonical_path(raw: str) -> str:
    """The canonical form of ``raw`` (see the module doc), or raise :class:`BadPath`."""
    if not raw.startswith("/"):
        raise BadPath("the path must start with /")
    if not raw.strip(_PLAIN_CHARS) and "//" not in raw and "/." not in raw:
        return raw  # no segment starts with "." and nothing needs decoding: already canonical
    segments = [_segment(piece) for piece in raw.split("/")[1:]]
    out: list[str] = []
    trailing = False
    for seg in segments:
        trailing = False
        if seg == "" or seg == ".":
            trailing = True
            continue
        if seg == "..":
            if not out:
                raise BadPath("the path climbs above the root")
            out.pop()
            trailing = True
            continue
        out.append(seg)
    path = "/" + "/".join(out)
    if trailing and out:
        path += "/"
    return path


def _segment(piece: str) -> str:
    """One segment in canonical form (no "/" inside by construction)."""
    if all(c in _PCHAR for c in piece):
        return piece
    out: list[str] = []
    i, n = 0, len(piece)
    while i < n:
        c = piece[i]
        if c == "%":
            i = _escapes(piece, i, out)
            continue
        if c in _PCHAR:
            out.append(c)
        elif c in _REFUSED_RAW or ord(c) < 0x20 or ord(c) == 0x7F:
            raise BadPath(f"the character {c!r} is not allowed in a path")
        elif c.isascii():
            out.append(f"%{ord(c):02X}")  # e.g. space, "|", "{": encode, do not refuse
        else:
            try:
                encoded = c.encode("utf-8")
            except UnicodeEncodeError:  # surrogate-escaped invalid bytes
                raise BadPath("the path is not valid UTF-8") from None
            _check_unicode(c)
            out.append("".join(f"%{b:02X}" for b in encoded))  # upper-case hex, like below
        i += 1
    return "".join(out)


def _escapes(piece: str, start: int, out: list[str]) -> int:
    """Decode the run of escapes at ``start``; return the index after it."""
    raw = bytearray()
    i = start
    while i < len(piece) and piece[i] == "%":
        hex2 = piece[i + 1 : i + 3]
        if len(hex2) != 2 or not (hex2[0] in _HEX and hex2[1] in _HEX):
            raise BadPath("malformed percent-escape")
        byte = int(hex2, 16)
        after = piece[i + 3 : i + 5]
        if byte == 0x25 and len(after) == 2 and after[0] in _HEX and after[1] in _HEX:
            raise BadPath("double percent-encoding is not allowed")
        if byte < 0x20 or byte == 0x7F:
            raise BadPath("encoded control characters are not allowed")
        if byte in (0x2F, 0x5C):
            raise BadPath("encoded / and \\ are not allowed")
        raw.append(byte)
        i += 3
    try:
        text = raw.decode("utf-8")  # strict: rejects overlong forms and lone surrogates
    except UnicodeDecodeError:
        raise BadPath("the path is not valid UTF-8") from None
    for ch in text:
        if ch in _UNRESERVED:
            out.append(ch)
        elif ch.isascii():
            out.append(_ESCAPED[ord(ch)])
        else:
            _check_unicode(ch)
            out.append(_utf8_escape(ch))
    return i


def _utf8_escape(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8"))


@functools.lru_cache(maxsize=4096)
def _folds_to_syntax(ch: str) -> bool:
    return any(c in _SYNTAX or ord(c) < 0x20 for c in unicodedata.normalize("NFKC", ch))


def _check_unicode(ch: str) -> None:
    if _folds_to_syntax(ch):
        raise BadPath(f"U+{ord(ch):04X} reads as path syntax after Unicode normalisation")
