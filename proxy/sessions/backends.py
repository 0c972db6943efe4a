"""Choosing the backend a store URL names. Above the backends (``memory.py``, ``redis.py``),
which only know the protocol in ``store.py``: so nothing imports in a circle."""

from __future__ import annotations

import re

from proxy.sessions.memory import MemoryStore
from proxy.sessions.store import SessionStore

_REDIS_SCHEMES = (
    "redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster",
)  # fmt: skip
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,31}")


def open_store(url: str, *, timeout: float = 2.0) -> SessionStore:
    """Build the backend named by `url`.

    memory://                                   in-process (single instance, tests)
    redis://..., rediss://...                   one Redis server (redis-py URL syntax)
    redis+sentinel://[user:pass@]h:p[,h:p]/service[/db]   master of a Sentinel-managed group
    redis+cluster://[user:pass@]h:p[,h:p]       Redis Cluster
    rediss+sentinel://..., rediss+cluster://...  the same over TLS (?ssl_ca_certs=/path/ca.pem)

    `timeout` bounds connecting, each command and waiting for a pooled connection.
    """
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep or not _SCHEME.fullmatch(scheme):
        # Don't echo it: a mistyped URL can have its password where the scheme should be.
        raise ValueError("session store URL has no valid scheme")
    if scheme == "memory":
        return MemoryStore()
    if scheme in _REDIS_SCHEMES:
        # Imported lazily so memory:// deployments never load redis-py.
        from proxy.sessions.redis import RedisStore

        return RedisStore.from_url(url, timeout=timeout)
    # Only the scheme: the rest of the URL may hold a password.
    raise ValueError(f"unsupported session store scheme {scheme!r}")
