"""Builds the aiohttp Application from Settings. Wiring only: no behaviour lives here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from proxy.auth.account.methods import MethodsOptions, TotpEnrolments
from proxy.auth.account.profile import PendingChanges, ProfileOptions
from proxy.auth.devices import DeviceStore
from proxy.auth.flow import Authenticator
from proxy.auth.i18n import pick_language
from proxy.auth.kit import retry_url
from proxy.auth.pages import Branding, Pages
from proxy.auth.regulation import Limit, Regulator
from proxy.auth.routes import AuthRoutes
from proxy.auth.session_cards import SessionCards
from proxy.cognito.account import PasswordPolicy
from proxy.cognito.breaker import CircuitBreaker
from proxy.cognito.client import CognitoClient
from proxy.cognito.errors import Unavailable as CognitoUnavailable
from proxy.cognito.tokens import JwksCache, JwksUnavailable, TokenVerifier
from proxy.forward import Forwarder, UpstreamConfig
from proxy.forwarded import TRUSTED_PROXIES, parse_networks
from proxy.gate.assertion import AssertionSigner, load_or_generate_key
from proxy.gate.bearer import BearerAuth
from proxy.gate.cache import SessionCache
from proxy.gate.capacity import Capacity
from proxy.gate.decision import Answers, CheckAnswer, Gate, ToUpstream, Upstreams
from proxy.gate.headers import build_plan
from proxy.gate.identify import Identify
from proxy.gate.identity import Identity, RefreshUnavailable
from proxy.gate.outgoing import Outgoing
from proxy.gate.policy import Policy
from proxy.gate.websocket import SessionGuard
from proxy.observe import Health, Metrics, RequestObserver, access_sink, upstream_timing
from proxy.refresh import Refresher
from proxy.server import SHORTCUT, Shortcut, reject_non_origin_form
from proxy.sessions.backends import open_store
from proxy.sessions.invalidation import invalidation_for
from proxy.sessions.observed import ObservedStore
from proxy.sessions.sealed import SealedStore
from proxy.sessions.session import Session, SessionManager
from proxy.sessions.store import CountingStore, StoreUnavailable
from proxy.settings import Settings, UpstreamSettings

log = logging.getLogger("proxy")

# Form posts to our own pages are tiny; anything bigger is refused before a Cognito call.
MAX_FORM_BYTES = 16 * 1024
JWKS_RETRY_SECONDS = 5.0


def derive_key(secret: str, purpose: str) -> bytes:
    """Independent keys per purpose from the one configured cookie secret."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"cognito-gate {purpose}".encode()
    ).derive(secret.encode())


# Keys under which serve (proxy/serve.py) and tests find the parts they drive.
METRICS_KEY = web.AppKey("metrics", Metrics)
HEALTH_KEY = web.AppKey("health", Health)
FORWARDER_KEY = web.AppKey("forwarder", Forwarder)
OBSERVER_KEY = web.AppKey("observer", RequestObserver)


def build_app(settings: Settings, metrics: Metrics | None = None) -> web.Application:
    secret = settings.cookie.secret.get_secret_value()
    cookies = settings.cookie.cookies  # names, attributes, "is it ours": one object for all
    prefix = settings.auth.prefix
    metrics = metrics or Metrics()
    raw_store = open_store(settings.session.store_url, timeout=settings.session.store_timeout)
    store = ObservedStore(
        raw_store,
        metrics.store_error,
        lambda full: metrics.store_full.set(full),
        deadline=settings.session.store_timeout,
    )
    cognito = CognitoClient(
        settings.cognito,
        breaker=CircuitBreaker(on_change=lambda is_open: metrics.breaker_open.set(int(is_open))),
        observer=metrics.cognito_call,
    )
    jwks = JwksCache(settings.cognito.resolved_jwks_url)
    verifier = TokenVerifier(
        issuer=settings.cognito.resolved_issuers,
        client_ids=[settings.cognito.client_id],
        jwks=jwks,
        leeway=settings.cognito.leeway,
    )
    policy = Policy.from_settings(settings)
    signer = (
        AssertionSigner(
            load_or_generate_key(settings.assertion.key_file),
            issuer=settings.assertion.issuer,
            ttl=settings.assertion.ttl,
        )
        if settings.assertion.enabled
        else None
    )
    cache = (
        SessionCache(ttl=settings.session.cache_ttl, max_entries=settings.session.cache_size)
        if settings.session.cache_ttl > 0
        else None
    )
    # Pub/sub needs the Redis client itself, not the metrics wrapper around it.
    invalidation = (
        invalidation_for(
            raw_store,
            on_invalidate=cache.invalidate,
            on_suspend=cache.suspend,
            on_resume=cache.resume,
        )
        if cache is not None
        else invalidation_for(raw_store)
    )
    # The account page's view of each session (browser, IP, last active); None: page off.
    cards = SessionCards(store, derive_key(secret, "cards")) if settings.account.enabled else None
    # Authenticator apps being enrolled on the account page: their secret waits server-side.
    enrolments = (
        TotpEnrolments(store, derive_key(secret, "totp enrolment"))
        if settings.account.enabled and settings.account.mfa_factors
        else None
    )

    def companions(record_hash: str) -> tuple[str, ...]:
        """The keys that live and die with a session record: its card, its enrolment."""
        keys: tuple[str, ...] = (SessionCards.key(record_hash),) if cards is not None else ()
        return keys + (enrolments.companions(record_hash) if enrolments is not None else ())

    async def session_changed(record_hash: str, ttl: float) -> None:
        await invalidation.changed(record_hash)
        if cards is not None:
            # A record write is activity; the card lives as long as the record from now on.
            await cards.seen(record_hash, ttl)

    sessions = SessionManager(
        store,
        derive_key(secret, "session"),
        lifetime=settings.session.lifetime,
        idle_timeout=settings.session.idle_timeout,
        remember_lifetime=settings.session.remember_lifetime,
        remember_idle_timeout=settings.session.remember_idle_timeout,
        on_change=session_changed,
        on_end=invalidation.ended,
        # A session's card and pending enrolment end with it (sign-out, everywhere or one by
        # one, or a prune).
        companions=companions,
        # A session ended from another browser, back with its cookie: revoke its token.
        on_retire=lambda session: retired(session),
    )
    pages = Pages(
        branding=Branding(
            product_name=settings.ui.product_name,
            logo_url=settings.ui.logo_url,
            primary_color=settings.ui.primary_color,
            extra_css_url=settings.ui.extra_css_url,
            footer_links=tuple(settings.ui.footer_links.items()),
        ),
        static_url=f"{prefix}/static",
        templates_dir=settings.ui.templates_dir,
    )

    def _forwarder(upstream: UpstreamSettings | None) -> Forwarder:
        assert upstream is not None
        return Forwarder(
            UpstreamConfig(
                url=upstream.url,
                preserve_host=upstream.preserve_host,
                connect_timeout=upstream.connect_timeout,
                read_timeout=upstream.read_timeout,
                max_connections=upstream.max_requests,
                client=upstream.client,
            ),
            timing=upstream_timing,
            refused_set_cookie=cookies.sets_ours,
            # Our branded page for 502/504, in the browser's language (a proxied path's query
            # is the app's: no ?lang of ours there).
            error_page=lambda request, status: pages.render(
                "error",
                lang=pick_language(request.headers.get("Accept-Language"), None),
                status=status,
                retry_url=retry_url(request, status),
            ),
        )

    forwarder = _forwarder(settings.upstream)
    # One Forwarder (one connection pool) per named upstream.
    forwarders = {r.name: _forwarder(r.upstream) for r in policy.routes if r.name != "default"}
    refresher = Refresher(cognito, verifier)  # the one refresh path, for gate and auth alike

    async def retired(session: Session) -> None:
        await refresher.revoke(session)

    auth = AuthRoutes(
        prefix=prefix,
        pages=pages,
        sessions=sessions,
        flows=SealedStore(store, derive_key(secret, "login"), namespace="f"),
        prelogin_key=derive_key(secret, "login token"),
        authenticator=Authenticator(cognito, verifier),
        cognito=cognito,
        refresher=refresher,
        cookies=cookies,
        csrf_key=derive_key(secret, "csrf"),
        login_timeout=settings.session.login_timeout,
        allowed_redirect_origins=settings.auth.allowed_redirect_origins,
        remember_lifetime=settings.session.remember_lifetime,
        regulator=_regulator(settings, store),
        body_timeout=settings.server.body_timeout,
        devices=DeviceStore(
            SealedStore(store, derive_key(secret, "device"), namespace="d"), cognito
        ),
        cards=cards,
        live_session=lambda cookie: live_session(cookie),
        password_policy=PasswordPolicy(**settings.account.password_policy.model_dump()),
        renew_session=lambda cookie: identity.renew_cookie(cookie),
        profile=ProfileOptions(
            editable=tuple(settings.account.profile_attributes),
            read_only=tuple(settings.account.profile_read_only),
            pending=PendingChanges(store, derive_key(secret, "pending attributes")),
        )
        if settings.account.profile_attributes or settings.account.profile_read_only
        else None,
        reauth_max_age=settings.account.reauth_max_age,
        methods=(
            MethodsOptions(factors=settings.account.mfa_factors, enrolments=enrolments)
            if enrolments is not None
            else None
        ),
        # Passkeys sign in through USER_AUTH only: elsewhere a registered one could not be used.
        passkeys=settings.account.passkeys and settings.cognito.auth_flow == "USER_AUTH",
    )
    identity = Identity(
        sessions=sessions,
        refresher=refresher,
        cookie_name=cookies.session,
        refresh_margin=settings.session.refresh_margin,
        cache=cache,
    )

    async def live_session(cookie: str) -> Session | None:
        """For the account page: the session with tokens fresh enough to call Cognito."""
        try:
            return await identity.resolve_cookie(cookie)
        except RefreshUnavailable:
            raise CognitoUnavailable("RefreshUnavailable") from None

    mode = settings.auth.bearer
    bearer = None if mode == "off" else BearerAuth(verifier, mode)
    gate = Gate(
        identify=Identify(identity, bearer),
        guard=SessionGuard(identity, interval=settings.session.ws_recheck_interval),
        upstreams=Upstreams(
            policy,
            {"default": forwarder, **forwarders},
            {
                r.name: _capacity(metrics, r.name, r.upstream or settings.upstream)
                for r in policy.routes
            },
        ),
        to_upstream=ToUpstream(
            Outgoing.build(
                build_plan(settings.headers.preset, settings.headers.extra),
                pass_access_token=settings.headers.pass_access_token,
                id_token_as_authorization=settings.headers.pass_id_token_as_authorization,
                signer=signer,
                assertion_header=settings.assertion.header,
                audience=settings.assertion.audience,
                pass_method_override=settings.headers.pass_method_override,
            ),
            cookies=cookies,
        ),
        answers=Answers(login_path=f"{prefix}/login", error_page=auth.error_page),
        check=CheckAnswer(
            build_plan("auth-request"), access_token=settings.auth.check_access_token
        ),
    )

    async def store_ready() -> str | None:
        try:
            await store.ping()
        except StoreUnavailable:
            return "session store unreachable"
        return None

    async def jwks_ready() -> str | None:
        return None if jwks.loaded else "signing keys (JWKS) not loaded"

    def store_full() -> str | None:
        return "session store full (maxmemory): new sign-ins refused" if store.full else None

    health = Health([store_ready, jwks_ready], metrics, warnings=[store_full])
    observer = RequestObserver(metrics, prefix=prefix, access=access_sink())

    app = web.Application(
        client_max_size=MAX_FORM_BYTES,
        middlewares=[reject_non_origin_form, observer.middleware],
    )
    app[TRUSTED_PROXIES] = parse_networks(settings.proxy.trusted_cidrs)
    app[METRICS_KEY] = metrics
    app[HEALTH_KEY] = health
    app[FORWARDER_KEY] = forwarder
    app[OBSERVER_KEY] = observer
    router = app.router
    auth.register(router)
    router.add_route("*", f"{prefix}/check", gate.check)  # forwardAuth may keep the method
    router.add_get(f"{prefix}/userinfo", gate.userinfo)
    router.add_get(f"{prefix}/healthz", health.healthz)
    router.add_get(f"{prefix}/readyz", health.readyz)
    if signer is not None:
        router.add_get(f"{prefix}/jwks.json", _jwks_handler(signer))
    router.add_route("*", prefix + "/{tail:.*}", _not_found(auth.error_page))  # ours alone
    catch_all = router.add_route("*", "/{tail:.*}", gate.proxy)

    async def proxied(request: web.Request) -> web.StreamResponse:
        # The middleware chain above as it runs for a proxied path (proxy/server.py Shortcut).
        return await observer.middleware(request, gate.proxy)

    app[SHORTCUT] = Shortcut(reserved=prefix, route=catch_all, handler=proxied)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await cognito.start()
        for fwd in (forwarder, *forwarders.values()):
            await fwd.start()
        invalidation.start()
        loader = asyncio.create_task(_load_jwks(jwks))
        yield
        await invalidation.close()
        loader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loader
        for fwd in (forwarder, *forwarders.values()):
            await fwd.close()
        await cognito.close()
        await jwks.close()
        await store.close()

    app.cleanup_ctx.append(lifecycle)

    async def close_websockets(app: web.Application) -> None:
        for fwd in (forwarder, *forwarders.values()):
            await fwd.close_websockets(1001)  # Going Away: the client may reconnect elsewhere

    app.on_shutdown.append(close_websockets)
    return app


def _capacity(metrics: Metrics, name: str, upstream: UpstreamSettings) -> Capacity:
    capacity = Capacity(upstream.max_requests, on_reject=metrics.upstream_rejected.labels(name).inc)
    # Read at scrape time: nothing per request.
    metrics.upstream_in_flight.labels(name).set_function(lambda: capacity.in_flight)
    return capacity


def _regulator(settings: Settings, store: CountingStore) -> Regulator:
    r = settings.regulation
    return Regulator(
        store,
        derive_key(settings.cookie.secret.get_secret_value(), "regulation"),
        user=Limit(r.user_max_failures, r.user_window, r.user_ban),
        ip=Limit(r.ip_max_failures, r.ip_window, r.ip_ban),
        enabled=r.enabled,
    )


async def _load_jwks(jwks: JwksCache) -> None:
    """Load signing keys at start; until they load, readiness says so and we keep trying."""
    while not jwks.loaded:
        try:
            await jwks.load()
        except JwksUnavailable as exc:
            log.warning("cannot load JWKS yet (%s); retrying", exc)
            await asyncio.sleep(JWKS_RETRY_SECONDS)


def _jwks_handler(signer: AssertionSigner) -> Callable[[web.Request], Awaitable[web.Response]]:
    body = json.dumps(signer.jwks())

    async def jwks(request: web.Request) -> web.Response:
        # Public keys only; short caching lets a rotated key reach verifiers within minutes.
        return web.Response(
            text=body, content_type="application/json", headers={"Cache-Control": "max-age=300"}
        )

    return jwks


def _not_found(
    error_page: Callable[[web.Request, int, str], web.Response],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An unknown path under our prefix: the error page for a browser (a mistyped link should
    not show raw JSON), JSON for API clients."""

    async def not_found(request: web.Request) -> web.StreamResponse:
        if "text/html" in request.headers.get("Accept", ""):
            return error_page(request, 404, "status.404.message")
        return web.json_response({"error": "not found"}, status=404)

    return not_found
