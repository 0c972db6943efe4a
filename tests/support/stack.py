"""The whole path on loopback for end-to-end tests: a recording upstream, the proxy, a browser."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from proxy import server
from proxy.app import build_app
from proxy.demo import free_port
from proxy.observe import Metrics
from proxy.settings import Settings

CSRF_FIELD = re.compile(r'name="csrf"\s+value="([^"]+)"')
COOKIE_SECRET = "test-cookie-secret-0123456789-abcdefghijklmnop"


@dataclass
class Upstream:
    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last_headers(self) -> dict[str, str]:
        return self.seen[-1]["headers"]


@asynccontextmanager
async def serving(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """``app`` served on a free port of ``host``: its base URL, stopped on exit."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, host, port).start()
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def echo_ws(request: web.Request) -> web.WebSocketResponse:
    """An upstream WebSocket that sends back every message it gets."""
    sock = web.WebSocketResponse()
    await sock.prepare(request)
    async for msg in sock:
        await sock.send_str(msg.data)
    return sock


@asynccontextmanager
async def recording_upstream(host: str = "127.0.0.1") -> AsyncIterator[Upstream]:
    """An app that records each request it receives and answers with a small page."""
    port = free_port()
    upstream = Upstream(url=f"http://{host}:{port}")

    async def handler(request: web.Request) -> web.Response:
        upstream.seen.append(
            {
                "method": request.method,
                "path": request.raw_path,
                "headers": {k: v for k, v in request.headers.items()},
                "all_headers": list(request.headers.items()),
                "body": await request.read(),
            }
        )
        return web.Response(text=f"upstream saw {request.method} {request.raw_path}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield upstream
    finally:
        await runner.cleanup()


@asynccontextmanager
async def running_proxy(
    settings: Settings, metrics: Metrics | None = None, *, keys: bool = True
) -> AsyncIterator[str]:
    """Serve build_app(settings) on a free loopback port; yields its base URL once its signing
    keys are loaded, as an orchestrator waits for readiness before sending traffic (on a loaded
    machine the first JWKS fetch can time out, and a sign-in before the retry fails closed).
    ``keys=False``: a test whose JWKS is meant never to load."""
    port = free_port()
    runner = await server.start(build_app(settings, metrics), settings.server, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    try:
        if keys:
            await _signing_keys_loaded(f"{base}{settings.auth.prefix}/readyz")
        yield base
    finally:
        await runner.cleanup()


async def _signing_keys_loaded(readyz: str, within: float = 15.0) -> None:
    """Until readyz stops naming the JWKS (other problems, e.g. a store a test took away, are
    the test's business), at most ``within`` seconds: then the test goes on and meets whatever
    a proxy without keys answers."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            async with client.get(readyz) as answer:
                problems = (await answer.json()).get("problems", [])
            if not any("JWKS" in p for p in problems):
                return
            await asyncio.sleep(0.05)


def cognito_kwargs(
    double: Any, pool_id: str, client_id: str, client_secret: str | None
) -> dict[str, Any]:
    """The `proxy_settings` keywords that point the proxy at one pool of a Cognito double."""
    return {
        "pool_id": pool_id,
        "client_id": client_id,
        "client_secret": client_secret,
        "endpoint_url": double.url,
        "jwks_url": double.jwks_url(pool_id),
        "issuer": double.issuer(pool_id),
    }


def proxy_settings(
    *,
    upstream_url: str,
    pool_id: str,
    client_id: str,
    endpoint_url: str,
    jwks_url: str,
    issuer: str | None = None,
    client_secret: str | None = None,
    auth_flow: str = "USER_SRP_AUTH",
    store_url: str = "memory://",
    cognito_extra: dict[str, Any] | None = None,
    **sections: Any,
) -> Settings:
    """``cognito_extra``: further ``cognito`` settings (refresh_flow, client_secret_next...)."""
    cognito: dict[str, Any] = {
        "user_pool_id": pool_id,
        "client_id": client_id,
        "client_secret": client_secret,
        "endpoint_url": endpoint_url,
        "jwks_url": jwks_url,
        "auth_flow": auth_flow,
    }
    if issuer:
        cognito["issuer"] = issuer
    cognito.update(cognito_extra or {})
    values: dict[str, Any] = {
        "listen": "127.0.0.1:8080",  # unused: running_proxy picks a free port
        "upstream": {"url": upstream_url},
        "cognito": cognito,
        "cookie": {"secret": COOKIE_SECRET, "secure": False},
        "session": {"store_url": store_url},
        "log": {"format": "text"},
    }
    values.update(sections)
    return Settings(**values)


class Browser:
    """A cookie-keeping client that behaves like a browser navigating the proxy."""

    HTML = {"Accept": "text/html,application/xhtml+xml"}

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers=self.HTML
        )

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        kw.setdefault("allow_redirects", False)
        async with self.http.get(self.base + path, **kw) as resp:
            await resp.read()
            return resp

    async def post(self, path: str, data: dict[str, str], **kw: Any) -> aiohttp.ClientResponse:
        kw.setdefault("allow_redirects", False)
        async with self.http.post(self.base + path, data=data, **kw) as resp:
            await resp.read()
            return resp

    async def login_form(self, rd: str | None = None) -> str:
        """Open the login page; return the CSRF token it carries."""
        resp = await self.get("/_auth/login" + (f"?rd={rd}" if rd else ""))
        assert resp.status == 200, resp.status
        match = CSRF_FIELD.search(await resp.text())
        assert match, "login page has no csrf field"
        return match.group(1)

    async def login(
        self, username: str, password: str, rd: str | None = None
    ) -> aiohttp.ClientResponse:
        token = await self.login_form(rd)
        return await self.post(
            "/_auth/login", {"csrf": token, "username": username, "password": password}
        )

    def cookie(self, name: str) -> str | None:
        for morsel in self.http.cookie_jar:
            if morsel.key == name:
                return morsel.value
        return None
