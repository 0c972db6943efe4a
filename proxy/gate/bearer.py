"""API clients: ``Authorization: Bearer <Cognito access or ID token>`` instead of a cookie.

The token is verified with the same TokenVerifier as sessions (cached signing keys); the verified
claims are cached in-process, bounded, until the token expires, so a busy client costs one
signature check per token rather than one per request. A bearer request is judged by its token
alone: a cookie sent with it is ignored, never merged.

Access tokens carry fewer claims than ID tokens: ``username``, ``sub``, ``cognito:groups``,
``scope``, ``client_id`` — no ``email``. ``username`` is also offered as ``cognito:username`` so
the default identity headers name the user either way.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any, Literal

from aiohttp import web

from proxy.cognito.tokens import TokenVerifier

MAX_CACHED = 4096


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None if the request has none."""
    value = request.headers.get("Authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


class BearerAuth:
    def __init__(
        self,
        verifier: TokenVerifier,
        token_use: Literal["access", "id"],
        *,
        max_cached: int = MAX_CACHED,
    ) -> None:
        self._verifier = verifier
        self._token_use: Literal["access", "id"] = token_use
        self._max = max_cached
        self._cache: OrderedDict[bytes, tuple[float, dict[str, Any]]] = OrderedDict()

    @property
    def token_use(self) -> Literal["access", "id"]:
        return self._token_use

    async def claims(self, token: str) -> dict[str, Any]:
        """Verified claims of ``token``; raises TokenError (JwksUnavailable: keys not loaded)."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        hit = self._cache.get(digest)
        if hit is not None:
            if hit[0] > time.time():
                self._cache.move_to_end(digest)
                return hit[1]
            del self._cache[digest]
        claims = await self._verifier.verify(token, token_use=self._token_use)
        if "username" in claims and "cognito:username" not in claims:
            claims = {**claims, "cognito:username": claims["username"]}
        self._cache[digest] = (float(claims["exp"]), claims)
        if len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return claims
