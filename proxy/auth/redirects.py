"""Return-URL validation for the ``Location`` sent after login and logout.

A return URL comes from the browser (a query parameter or a form field), so it
is attacker-controlled. :func:`safe_return_path` accepts only two shapes and
maps everything else to the default:

* a path-absolute reference on our own origin (``/x/y?q``), or
* an absolute ``http``/``https`` URL whose origin (scheme, host, port) is in the
  configured allow-list.

It is an allow-list, not a deny-list. Browsers and servers disagree about
backslashes, tabs, newlines, percent-decoding and Unicode, so anything a parser
could read two ways is rejected rather than rewritten. Percent-encoded layers
are decoded repeatedly (bounded) and every layer must pass, because something
between us and the browser may decode once more.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from urllib.parse import quote, unquote

__all__ = ["MAX_LENGTH", "safe_return_path"]

MAX_LENGTH = 2048
# More layers than this is not a real URL; refuse it rather than decode forever.
_MAX_DECODE_LAYERS = 8

# Printable ASCII without space: the only characters a candidate may contain raw.
_RAW_OK = re.compile(r"[\x21-\x7e]+")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# Characters RFC 3986 allows unencoded in path and query, plus "%" (triplets are
# validated first). Anything else (", <, >, `, {, }, |, ^) is percent-encoded on output.
_OUTPUT_SAFE = "!$&'()*+,;=:@/?-._~%"


def safe_return_path(
    candidate: str | None, *, default: str = "/", allowed_origins: Collection[str] = ()
) -> str:
    """Return ``candidate`` re-encoded if it is a safe redirect target, else ``default``.

    Safe means a same-origin path-absolute reference, or an absolute http(s) URL
    whose origin is exactly in ``allowed_origins`` (e.g. ``{"https://app.example.com"}``,
    compared case-insensitively with default ports dropped). The fragment is
    dropped. ``default`` is trusted as given (it comes from configuration).
    """
    if not candidate or len(candidate) > MAX_LENGTH or not _RAW_OK.fullmatch(candidate):
        return default
    if _BAD_PERCENT.search(candidate):
        return default
    if candidate.startswith("/"):
        path_qs = _safe_path(candidate)
        return default if path_qs is None else path_qs
    if allowed_origins and _SCHEME.match(candidate):
        url = _safe_absolute(candidate, allowed_origins)
        return default if url is None else url
    return default


def _safe_path(candidate: str) -> str | None:
    """Path + query of a path-absolute reference, or None when any layer is unsafe."""
    path_qs = candidate.split("#", 1)[0]
    if not _layers_ok(path_qs):
        return None
    path, sep, query = path_qs.partition("?")
    out = quote(path, safe=_OUTPUT_SAFE)
    if sep and query:
        out += "?" + quote(query, safe=_OUTPUT_SAFE)
    return out


def _safe_absolute(candidate: str, allowed_origins: Collection[str]) -> str | None:
    scheme, _, rest = candidate.partition(":")
    scheme = scheme.lower()
    # Exactly "scheme://": "https:/x" and "https:x" mean different things to different parsers.
    if scheme not in _DEFAULT_PORTS or not rest.startswith("//"):
        return None
    rest = rest[2:]
    end = len(rest)
    for stop in "/?#":
        i = rest.find(stop)
        if i != -1:
            end = min(end, i)
    origin = _origin(scheme, rest[:end])
    if origin is None or origin not in {_normalize_origin(o) for o in allowed_origins}:
        return None
    tail = rest[end:]
    if not tail.startswith("/"):
        tail = "/" + tail
    path_qs = _safe_path(tail)
    return None if path_qs is None else origin + path_qs


def _layers_ok(text: str) -> bool:
    """Check ``text`` and each percent-decoded layer of it until decoding is stable."""
    layer = text
    for _ in range(_MAX_DECODE_LAYERS):
        for form in {layer, unicodedata.normalize("NFKC", layer)}:
            if not _layer_ok(form):
                return False
        try:
            decoded = unquote(layer, errors="strict")
        except UnicodeDecodeError:
            # Invalid or overlong UTF-8 (e.g. %C0%AF for "/"): some decoders accept it.
            return False
        if decoded == layer:
            return True
        layer = decoded
    return False


def _layer_ok(layer: str) -> bool:
    if layer.startswith(("//", "/\\")) or "\\" in layer:
        return False
    for ch in layer:
        # Encoded space (%20) is ordinary path data; every other control, format or
        # separator character (tab, CR, LF, NUL, NBSP, U+2028, RLO, ...) is not.
        if ch != " " and unicodedata.category(ch)[0] in "CZ":
            return False
    # Dot segments ("..", "%2e%2e") are resolved by browsers and can re-create "//".
    path = layer.split("?", 1)[0].split("#", 1)[0]
    return not any(seg in (".", "..") for seg in path.split("/"))


def _origin(scheme: str, authority: str) -> str | None:
    """Normalized ``scheme://host[:port]``, or None for userinfo, encodings or odd hosts."""
    authority = authority.lower()
    host, colon, port = authority.partition(":")
    if not _HOST.fullmatch(host):
        return None
    if colon:
        if not port.isdigit() or len(port) > 5 or not 0 < int(port) < 65536:
            return None
        port = str(int(port))
        if port == _DEFAULT_PORTS[scheme]:
            colon = port = ""
    return f"{scheme}://{host}{colon}{port}"


def _normalize_origin(origin: str) -> str | None:
    scheme, sep, authority = origin.rstrip("/").partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        return None
    return _origin(scheme, authority)
