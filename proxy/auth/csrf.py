"""CSRF defences for the forms under the auth prefix.

Two layers: a token bound to the pre-login state (login) or to the session cookie (logout),
and a same-origin check on ``Origin`` / ``Sec-Fetch-Site`` when the browser sends them.
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web


def session_token(key: bytes, session_cookie: str) -> str:
    """A token only the holder of this session cookie can know: logout's CSRF token."""
    return hmac.new(key, b"logout|" + session_cookie.encode(), hashlib.sha256).hexdigest()


def tokens_match(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def same_origin(request: web.Request) -> bool:
    """False when the browser tells us the form was posted from another site.

    ``Sec-Fetch-Site`` is the browser's own verdict and cannot be set by page script; when it
    is present it decides. Otherwise a present ``Origin`` must be ours. ``Origin: null``
    (privacy-sensitive contexts, sandboxed frames) is never ours.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # older browsers and non-browser clients: the token alone decides
    return origin == f"{request.scheme}://{request.host}"
