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


def bound_token(key: bytes, purpose: str, session_cookie: str, data: str) -> str:
    """A MAC only this deployment can make, tying ``data`` to this session cookie for
    ``purpose`` (e.g. the passkey registration options a session was given)."""
    message = b"|".join((b"bound", purpose.encode(), session_cookie.encode(), data.encode()))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def tokens_match(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def same_origin(request: web.Request, *, https: bool = False) -> bool:
    """False when the browser tells us the form was posted from another site.

    ``Sec-Fetch-Site`` is the browser's own verdict and cannot be set by page script; when it
    is present it decides. Otherwise a present ``Origin`` must be ours. ``Origin: null``
    (privacy-sensitive contexts, sandboxed frames) is never ours. ``https``: the browser sees
    us over HTTPS whatever the inbound hop says (TLS ends at a load balancer in front of us).
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # older browsers and non-browser clients: the token alone decides
    scheme = "https" if https else request.scheme
    return origin == f"{scheme}://{request.host}"
