"""What Cognito's threat protection should see of the browser behind the proxy.

``client_ip`` is the one place that decides the client's address (for ContextData, brute-force
counters and audit lines), through ``proxy.forwarded.client_address``.
"""

from __future__ import annotations

from aiohttp import web

from proxy.cognito.client import ContextData
from proxy.forwarded import client_address

# Forwarded to Cognito's threat protection; never Cookie or Authorization.
CONTEXT_HEADERS = ("User-Agent", "Accept-Language", "Accept", "Referer")


def client_ip(request: web.Request) -> str:
    """The browser's IP address: X-Forwarded-For is believed only from trusted proxies."""
    return client_address(request).ip


def context_data(request: web.Request) -> ContextData:
    return ContextData(
        ip_address=client_ip(request),
        server_name=request.host,
        server_path=request.path,
        headers=tuple((h, request.headers[h]) for h in CONTEXT_HEADERS if h in request.headers),
    )
