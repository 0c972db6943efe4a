"""Our cookies, in one place: their names (from ``cookie.name`` and ``cookie.secure``), their
attributes, setting and clearing them, and telling whether a cookie name is one of ours.

Everything else derives from this: the settings' names, the auth pages that set them, the gate
that keeps them from the app (``Cookie`` to the upstream) and the forwarder that keeps the app
from setting them (``Set-Cookie`` from the upstream). When those lists lived in three places
they disagreed, and the remembered-device cookie reached the app.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from aiohttp import web

# Prefixes a browser gives meaning to (RFC 6265bis §4.1.3, matched without case): the same
# cookie for "is it ours" whichever of them, or none, it is spelled with.
_PREFIXES = ("__host-", "__secure-")


def _bare(name: str) -> str:
    """The comparable core of a cookie name: decoded (frameworks such as PHP percent-decode
    names), trimmed, without case and without a browser prefix."""
    name = unquote(name).strip().lower()
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


@dataclass(frozen=True)
class OurCookies:
    """``base`` is ``cookie.name``; ``secure`` is ``cookie.secure`` (the ``__Host-`` prefix
    requires Secure, so plain-http setups such as the demo go without both)."""

    base: str
    secure: bool = True
    _bare_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_bare_names", frozenset(_bare(n) for n in self.names))

    def _name(self, suffix: str) -> str:
        return f"__Host-{self.base}{suffix}" if self.secure else f"{self.base}{suffix}"

    @property
    def session(self) -> str:
        return self._name("")

    @property
    def flow(self) -> str:
        """The pre-login cookie: a sign-in in progress."""
        return self._name("-login")

    @property
    def device(self) -> str:
        """Long-lived handle to this browser's remembered-device record (sealed server-side):
        it stands in for a second factor, so it is a credential like the session's."""
        return self._name("-device")

    @property
    def names(self) -> tuple[str, str, str]:
        return (self.session, self.flow, self.device)

    def is_ours(self, name: str) -> bool:
        """Whether ``name`` is, or could be taken for, one of our cookies: in any case, with or
        without a ``__Host-`` / ``__Secure-`` prefix, percent-encoded or padded."""
        return _bare(name) in self._bare_names

    def set(
        self, response: web.StreamResponse, name: str, value: str, max_age: int | None = None
    ) -> None:
        """A session cookie (no Max-Age) unless ``max_age`` says how long it lives."""
        response.set_cookie(
            name,
            value,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="Lax",
            max_age=max_age,
        )

    def clear(self, response: web.StreamResponse, name: str) -> None:
        response.del_cookie(name, path="/", secure=self.secure, httponly=True, samesite="Lax")

    def without_ours(self, cookie_headers: list[str] | tuple[str, ...]) -> str | None:
        """The client's ``Cookie`` header(s) minus every cookie of ours, joined; None if empty.

        The session and device cookies are credentials for the proxy: the app behind it never
        needs them, and an app that logs cookies must not be able to leak them.
        """
        kept = [
            pair.strip()
            for header in cookie_headers
            for pair in header.split(";")
            if pair.strip() and not self.is_ours(pair.split("=", 1)[0])
        ]
        return "; ".join(kept) or None

    def sets_ours(self, set_cookie: str) -> bool:
        """Whether an upstream's ``Set-Cookie`` value would set one of our cookies.

        A nameless cookie (``Set-Cookie: =__Host-gate=x`` or ``Set-Cookie: __Host-gate``) is
        sent back by browsers as its bare value, which reads as our name: judged by that too.
        """
        pair = set_cookie.split(";", 1)[0]
        name, eq, value = pair.partition("=")
        if self.is_ours(name):
            return True
        return bool(eq) and not name.strip() and self.is_ours(value.partition("=")[0])
