"""What Cognito's threat protection should see of the browser behind the proxy.

``client_ip`` is the one place that decides the client's address, so trusted-proxy
``X-Forwarded-For`` handling can replace it without touching the callers.
"""

from __future__ import annotations

from aiohttp import web

from proxy.cognito.client import ContextData

# Forwarded to Cognito's threat protection; never Cookie or Authorization.
CONTEXT_HEADERS = ("User-Agent", "Accept-Language", "Accept", "Referer")


def client_ip(request: web.Request) -> str:
    """The browser's IP address as we know it (the TCP peer for now)."""
    return request.remote or ""


def context_data(request: web.Request) -> ContextData:
    return ContextData(
        ip_address=client_ip(request),
        server_name=request.host,
        server_path=request.path,
        headers=tuple((h, request.headers[h]) for h in CONTEXT_HEADERS if h in request.headers),
    )
