"""The pre-login cookie before anything was posted: a signed token, not a store record.

Opening the login (or forgot-password) page must cost the store nothing, or a flood of
cookie-less GETs fills it (issue 13.4: every GET wrote a record kept for the login timeout, and
in ``memory://`` those evicted real sessions). What such a page needs to remember is small and
not secret: the CSRF token of its form, the validated return path and when it was opened. They
travel in the cookie itself, MAC'd under a key of their own and expiring with the login timeout.
The first post that has something to keep (a challenge, a detour) turns the state into a sealed
store record, as every later step has always been.

A token carries no credential and no server-side state: replaying one only shows a login form
(its CSRF token is bound to the cookie that carries it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
import zlib

from proxy.auth.state import LoginState

log = logging.getLogger("proxy.auth")

PREFIX = "t1."  # sealed store handles are base64url.MAC: never this prefix
# Browsers keep cookies up to 4096 bytes (name, value and attributes): a return path so long
# that even compressed it does not fit is dropped (the browser returns to "/"), or the cookie
# would be, and with it the sign-in.
MAX_TOKEN = 3600
_MAX_PAYLOAD = 16 * 1024
_MAC_LABEL = b"cognito-gate pre-login token\x00"
_MAC_BYTES = 24
# A clock a little ahead on another replica must not make a fresh token look forged.
_CLOCK_SKEW = 60.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PreLoginTokens:
    def __init__(self, key: bytes, lifetime: float) -> None:
        self._key = key
        self._lifetime = lifetime

    @staticmethod
    def is_token(cookie: str) -> bool:
        return cookie.startswith(PREFIX)

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._key, _MAC_LABEL + body.encode(), hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, state: LoginState) -> str:
        """The cookie value carrying ``state``'s CSRF token, return path and start time. A
        return path too long for a cookie becomes "/" (in ``state`` too: it is what travels)."""
        token = self._issue(state)
        if len(token) > MAX_TOKEN:
            log.info("return path too long for the pre-login cookie; returning to /")
            state.return_to = "/"
            token = self._issue(state)
        return token

    def _issue(self, state: LoginState) -> str:
        payload = {"c": state.csrf, "r": state.return_to, "t": state.started_at}
        raw = json.dumps(payload, separators=(",", ":")).encode()
        body = _b64(zlib.compress(raw, 6))  # percent-encoded paths shrink a lot
        return f"{PREFIX}{body}.{_b64(self._mac(body))}"

    def read(self, cookie: str, *, now: float | None = None) -> LoginState | None:
        """The state behind a token we issued and that has not expired; None for anything else."""
        if not self.is_token(cookie):
            return None
        body, dot, mac = cookie[len(PREFIX) :].partition(".")
        if not dot or len(body) > 2 * MAX_TOKEN:
            return None
        try:
            if not hmac.compare_digest(self._mac(body), _unb64(mac)):
                return None
            inflate = zlib.decompressobj()
            raw = inflate.decompress(_unb64(body), _MAX_PAYLOAD)
            if inflate.unconsumed_tail or not inflate.eof:
                return None
            payload = json.loads(raw)
            csrf, return_to, started_at = payload["c"], payload["r"], float(payload["t"])
        except (binascii.Error, zlib.error, ValueError, TypeError, KeyError):
            return None
        if not isinstance(csrf, str) or not isinstance(return_to, str):
            return None
        now = time.time() if now is None else now
        if not started_at - _CLOCK_SKEW <= now < started_at + self._lifetime:
            return None
        return LoginState(csrf=csrf, return_to=return_to, started_at=started_at)
