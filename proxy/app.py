"""Builds the aiohttp Application from Settings. Wiring only: no behaviour lives here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from proxy.auth.devices import DeviceStore
from proxy.auth.flow import Authenticator
from proxy.auth.pages import Branding, Pages
from proxy.auth.routes import AuthRoutes, CookieNames
from proxy.cognito.client import CognitoClient
from proxy.cognito.tokens import JwksCache, JwksUnavailable, TokenVerifier
from proxy.forward import Forwarder, UpstreamConfig
from proxy.gate.headers import build_plan
from proxy.gate.identity import Identity
from proxy.gate.middleware import Gate
from proxy.observe import Health
from proxy.sessions.sealed import SealedStore
from proxy.sessions.session import SessionManager
from proxy.sessions.store import StoreUnavailable, open_store
from proxy.settings import Settings

log = logging.getLogger("proxy")

# Form posts to our own pages are tiny; anything bigger is refused before a Cognito call.
MAX_FORM_BYTES = 16 * 1024
JWKS_RETRY_SECONDS = 5.0


def derive_key(secret: str, purpose: str) -> bytes:
    """Independent keys per purpose from the one configured cookie secret."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"cognito-gate {purpose}".encode()
    ).derive(secret.encode())


def build_app(settings: Settings) -> web.Application:
    secret = settings.cookie.secret.get_secret_value()
    prefix = settings.auth.prefix
    store = open_store(settings.session.store_url, timeout=settings.session.store_timeout)
    cognito = CognitoClient(settings.cognito)
    jwks = JwksCache(settings.cognito.resolved_jwks_url)
    verifier = TokenVerifier(
        issuer=settings.cognito.resolved_issuer, client_ids=[settings.cognito.client_id], jwks=jwks
    )
    forwarder = Forwarder(
        UpstreamConfig(
            url=settings.upstream.url,
            preserve_host=settings.upstream.preserve_host,
            connect_timeout=settings.upstream.connect_timeout,
            read_timeout=settings.upstream.read_timeout,
        )
    )
    sessions = SessionManager(
        store, derive_key(secret, "session"), lifetime=settings.session.lifetime
    )
    pages = Pages(
        branding=Branding(
            product_name=settings.ui.product_name,
            logo_url=settings.ui.logo_url,
            primary_color=settings.ui.primary_color,
            extra_css_url=settings.ui.extra_css_url,
        ),
        static_url=f"{prefix}/static",
        templates_dir=settings.ui.templates_dir,
    )
    auth = AuthRoutes(
        prefix=prefix,
        pages=pages,
        sessions=sessions,
        flows=SealedStore(store, derive_key(secret, "login"), namespace="f"),
        authenticator=Authenticator(cognito, verifier),
        cognito=cognito,
        cookies=CookieNames(
            session=settings.cookie.session_cookie,
            flow=settings.cookie.flow_cookie,
            secure=settings.cookie.secure,
            device=settings.cookie.device_cookie,
        ),
        csrf_key=derive_key(secret, "csrf"),
        login_timeout=settings.session.login_timeout,
        devices=DeviceStore(
            SealedStore(store, derive_key(secret, "device"), namespace="d"), cognito
        ),
    )
    identity = Identity(
        sessions=sessions,
        cognito=cognito,
        verifier=verifier,
        cookie_name=settings.cookie.session_cookie,
        refresh_margin=settings.session.refresh_margin,
    )
    gate = Gate(
        identity=identity,
        forwarder=forwarder,
        headers=build_plan(settings.headers.preset, settings.headers.extra),
        check_headers=build_plan("auth-request"),
        login_path=f"{prefix}/login",
        error_page=auth.error_page,
        own_cookies=frozenset({settings.cookie.session_cookie, settings.cookie.flow_cookie}),
    )

    async def store_ready() -> str | None:
        try:
            await store.ping()
        except StoreUnavailable:
            return "session store unreachable"
        return None

    async def jwks_ready() -> str | None:
        return None if jwks.loaded else "signing keys (JWKS) not loaded"

    health = Health([store_ready, jwks_ready])

    app = web.Application(client_max_size=MAX_FORM_BYTES)
    router = app.router
    auth.register(router)
    router.add_get(f"{prefix}/check", gate.check)
    router.add_get(f"{prefix}/userinfo", gate.userinfo)
    router.add_get(f"{prefix}/healthz", health.healthz)
    router.add_get(f"{prefix}/readyz", health.readyz)
    router.add_route("*", prefix + "/{tail:.*}", _not_found)  # the prefix is ours alone
    router.add_route("*", "/{tail:.*}", gate.proxy)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await cognito.start()
        await forwarder.start()
        loader = asyncio.create_task(_load_jwks(jwks))
        yield
        loader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loader
        await forwarder.close()
        await cognito.close()
        await jwks.close()
        await store.close()

    app.cleanup_ctx.append(lifecycle)
    return app


async def _load_jwks(jwks: JwksCache) -> None:
    """Load signing keys at start; until they load, readiness says so and we keep trying."""
    while not jwks.loaded:
        try:
            await jwks.load()
        except JwksUnavailable as exc:
            log.warning("cannot load JWKS yet (%s); retrying", exc)
            await asyncio.sleep(JWKS_RETRY_SECONDS)


async def _not_found(request: web.Request) -> web.StreamResponse:
    return web.json_response({"error": "not found"}, status=404)
