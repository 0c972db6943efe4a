"""Reading the one cookie the gate needs without parsing the whole Cookie header.

``request.cookies`` builds a Morsel for every cookie of the request (~25 µs for a typical
header) on every proxied request; the gate wants one value. ``cookie_value`` answers exactly
what ``request.cookies.get(name)`` would:

* only the first ``Cookie`` header counts (aiohttp reads ``headers.get("Cookie")``);
* the last pair with the name wins;
* a header containing a double quote goes to aiohttp's own RFC 6265 parser. A quoted value may
  contain ``;``: splitting on it naively would read ``x="a; __Host-gate=V; y=b"`` (a cookie a
  sibling subdomain can plant) as a ``__Host-gate`` cookie and defeat the prefix's protection.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from proxy.aiohttp_internals import parse_cookie_header


def cookie_value(request: web.Request, name: str) -> str | None:
    """The value of cookie ``name`` as ``request.cookies.get(name)`` gives it, or None."""
    header = request.headers.get(hdrs.COOKIE)
    if not header:
        return None
    return cookie_from_header(header, name)


def cookie_from_header(header: str, name: str) -> str | None:
    if '"' in header:
        found = None
        for key, morsel in parse_cookie_header(header):
            if key == name:
                found = morsel.value
        return found
    if name not in header:
        return None  # the common "no session cookie" case costs one substring search
    found = None
    for pair in header.split(";"):
        key, _, value = pair.partition("=")
        if key.strip() == name:
            found = value.strip()  # a bare name is an empty value, as for aiohttp
    return found
