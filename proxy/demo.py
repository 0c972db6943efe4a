"""``cognito-gate demo``: a local Cognito, a demo app that shows the headers it receives, and the
proxy in front of it with the in-memory store. No AWS account, no Redis.

The local Cognito is the strict Cognito double (``proxy.devtools.cognito_double``) by default:
it models every challenge (MFA, new password, TOTP enrolment, custom challenges, devices), so
each has a seeded demo user. ``--cognito moto`` runs moto's server instead, with the plain users
only (moto accepts any SRP proof and has no MFA). The pieces are importable so the integration
tests run the very same stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import SecretStr

from proxy import eventloop
from proxy.auth.qr import otpauth_uri
from proxy.settings import (
    AuthFlow,
    CognitoSettings,
    CookieSettings,
    LogSettings,
    SessionSettings,
    Settings,
    UiSettings,
    UpstreamSettings,
    parse_listen,
)

REGION = "us-east-1"
IDENTITY_HEADERS = (
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Groups",
    "X-Forwarded-Preferred-Username",
    "Remote-User",
    "Remote-Email",
    "Remote-Groups",
    "Remote-Name",
)


MfaType = Literal["SMS_MFA", "EMAIL_OTP", "SOFTWARE_TOKEN_MFA"]


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    email: str
    name: str
    groups: tuple[str, ...] = ()
    # Challenge users (strict double only).
    status: str = "CONFIRMED"
    mfa: tuple[MfaType, ...] = ()
    phone: str | None = None
    shows: str = ""  # what signing in as this user demonstrates


DEMO_USERS = (
    DemoUser(
        "alice", "Alice-demo-2026!", "alice@example.com", "Alice Example", ("admins", "staff")
    ),
    DemoUser("bob", "Bob-demo-2026!", "bob@example.com", "Bob Example", ("staff",)),
)


# One site per pool configuration: a proxy listens on the demo port plus ``offset``.
@dataclass(frozen=True)
class DemoSite:
    key: str
    offset: int
    title: str
    users: tuple[DemoUser, ...]
    auth_flow: AuthFlow = "USER_SRP_AUTH"
    mfa: Literal["OFF", "ON", "OPTIONAL"] = "OPTIONAL"
    factors: tuple[MfaType, ...] = ("SMS_MFA", "EMAIL_OTP", "SOFTWARE_TOKEN_MFA")
    custom_auth: bool = False


CHALLENGE_USERS = (
    DemoUser(
        "nina",
        "Nina-temp-2026!",
        "nina@example.com",
        "",
        status="FORCE_CHANGE_PASSWORD",
        shows="new password (and the required 'name' attribute) on first sign-in",
    ),
    DemoUser(
        "tom",
        "Tom-demo-2026!",
        "tom@example.com",
        "Tom Example",
        mfa=("SOFTWARE_TOKEN_MFA",),
        shows="authenticator-app code (TOTP); the secret is printed below",
    ),
    DemoUser(
        "sara",
        "Sara-demo-2026!",
        "sara@example.com",
        "Sara Example",
        mfa=("SMS_MFA",),
        phone="+15555550123",
        shows="SMS code (printed on this console)",
    ),
    DemoUser(
        "sel",
        "Sel-demo-2026!",
        "sel@example.com",
        "Sel Example",
        mfa=("SMS_MFA", "EMAIL_OTP"),
        phone="+15555550199",
        shows="choose SMS or email for the code (SELECT_MFA_TYPE)",
    ),
    DemoUser(
        "uma",
        "Uma-demo-2026!",
        "uma@example.com",
        "Uma Example",
        status="UNCONFIRMED",
        shows="confirm the account with a code (send one from the page)",
    ),
)

DEMO_SITES = (
    DemoSite(
        "main",
        0,
        "plain users, MFA codes, new password, forgot password, devices",
        (*DEMO_USERS, *CHALLENGE_USERS),
    ),
    DemoSite(
        "enrol",
        1,
        "MFA required: TOTP enrolment with a QR code",
        (
            DemoUser(
                "enzo",
                "Enzo-demo-2026!",
                "enzo@example.com",
                "Enzo Example",
                shows="set up an authenticator app (MFA_SETUP, QR code)",
            ),
        ),
        mfa="ON",
        factors=("SOFTWARE_TOKEN_MFA",),  # enrolment: no code by SMS or email instead
    ),
    DemoSite(
        "custom",
        2,
        "CUSTOM_AUTH: password, then a Lambda-style challenge",
        (
            DemoUser(
                "cara",
                "Cara-demo-2026!",
                "cara@example.com",
                "Cara Example",
                shows="custom challenge after the password (answer: 7)",
            ),
        ),
        auth_flow="CUSTOM_AUTH",
        mfa="OFF",
        custom_auth=True,
    ),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LocalCognito:
    """moto's Cognito in server mode on loopback, with one seeded pool and app client."""

    url: str
    pool_id: str
    client_id: str
    client_secret: str | None
    server: Any

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/{self.pool_id}/.well-known/jwks.json"

    def stop(self) -> None:
        self.server.stop()


def _dummy_aws_credentials() -> None:
    # moto wants signed requests for the Admin APIs; any credentials do, real ones never needed.
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "demo"),
        ("AWS_SECRET_ACCESS_KEY", "demo"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        os.environ.setdefault(key, value)


def start_local_cognito(
    users: Iterable[DemoUser] = DEMO_USERS,
    *,
    client_secret: bool = False,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> LocalCognito:
    import boto3
    from moto.server import ThreadedMotoServer

    _dummy_aws_credentials()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    port = port or free_port()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    idp = boto3.client("cognito-idp", region_name=REGION, endpoint_url=url)
    pool_id = idp.create_user_pool(
        PoolName="cognito-gate-demo",
        UsernameAttributes=[],
        Policies={"PasswordPolicy": {"MinimumLength": 8}},
    )["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="cognito-gate",
        GenerateSecret=client_secret,
        # moto puts only the client's readable attributes into the ID token.
        ReadAttributes=["email", "email_verified", "name", "preferred_username"],
        ExplicitAuthFlows=[
            "ALLOW_USER_SRP_AUTH",
            "ALLOW_ADMIN_USER_PASSWORD_AUTH",
            "ALLOW_USER_PASSWORD_AUTH",
            "ALLOW_REFRESH_TOKEN_AUTH",
        ],
    )["UserPoolClient"]
    for user in users:
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=user.username,
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "email", "Value": user.email},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "name", "Value": user.name},
                {"Name": "preferred_username", "Value": user.username.title()},
            ],
        )
        idp.admin_set_user_password(
            UserPoolId=pool_id, Username=user.username, Password=user.password, Permanent=True
        )
        for group in user.groups:
            with contextlib.suppress(idp.exceptions.GroupExistsException):
                idp.create_group(UserPoolId=pool_id, GroupName=group)
            idp.admin_add_user_to_group(UserPoolId=pool_id, Username=user.username, GroupName=group)
    return LocalCognito(
        url=url,
        pool_id=pool_id,
        client_id=client["ClientId"],
        client_secret=client.get("ClientSecret"),
        server=server,
    )


def upstream_app() -> web.Application:
    """The stand-in for a legacy app: it has no login and shows what the proxy told it."""

    async def page(request: web.Request) -> web.Response:
        user = request.headers.get("X-Forwarded-User") or request.headers.get("Remote-User")
        rows = "".join(
            f"<tr{' class=id' if name in IDENTITY_HEADERS else ''}>"
            f"<th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
            for name, value in request.headers.items()
        )
        body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo app</title><style>
body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;
color:#1f2937}}
table{{border-collapse:collapse;width:100%}}th,td{{text-align:left;padding:.35rem .6rem;
border-bottom:1px solid #e5e7eb;font-size:.9rem;word-break:break-all}}th{{width:16rem}}
tr.id{{background:#ecfdf5}}a.button{{display:inline-block;padding:.5rem 1rem;border-radius:.4rem;
background:#2563eb;color:#fff;text-decoration:none}}</style></head><body>
<h1>Hello, {html.escape(user or "stranger")}</h1>
<p>This demo app has no login code. cognito-gate signed you in against Cognito and added the
highlighted headers to your request: <code>{html.escape(request.method)}
{html.escape(request.path_qs)}</code></p>
<p><a class="button" href="/_auth/logout">Sign out</a> · <a href="/api/whoami">/api/whoami</a>
· <a href="/_auth/userinfo">/_auth/userinfo</a></p>
<table>{rows}</table></body></html>"""
        return web.Response(text=body, content_type="text/html")

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response(
            {
                name: request.headers.get(name)
                for name in IDENTITY_HEADERS
                if name in request.headers
            }
        )

    async def slow(request: web.Request) -> web.Response:
        # A request still in flight when the proxy is told to stop (the image test's drain).
        try:
            seconds = float(request.query.get("seconds", "3"))
        except ValueError:
            seconds = -1.0
        if not 0.0 <= seconds <= 30.0:  # NaN fails this too
            raise web.HTTPBadRequest(text="seconds must be a number from 0 to 30")
        await asyncio.sleep(seconds)
        return web.json_response({"slept": seconds})

    app = web.Application()
    app.router.add_get("/api/whoami", whoami)
    app.router.add_get("/api/slow", slow)
    app.router.add_route("*", "/{tail:.*}", page)
    return app


def demo_settings(cognito: LocalCognito, upstream_url: str, listen: str) -> Settings:
    return Settings(
        listen=listen,
        upstream=UpstreamSettings(url=upstream_url),
        cognito=CognitoSettings(
            user_pool_id=cognito.pool_id,
            client_id=cognito.client_id,
            client_secret=SecretStr(cognito.client_secret) if cognito.client_secret else None,
            region=REGION,
            endpoint_url=cognito.url,
            jwks_url=cognito.jwks_url,
            refresh_flow="REFRESH_TOKEN_AUTH",  # moto has no GetTokensFromRefreshToken
        ),
        # Plain http on loopback: browsers drop Secure (and so __Host-) cookies there.
        cookie=CookieSettings(secret=SecretStr(secrets.token_urlsafe(48)), secure=False),
        session=SessionSettings(store_url="memory://"),
        ui=UiSettings(product_name="cognito-gate demo"),
        log=LogSettings(format="text"),
    )


@dataclass
class DemoPool:
    pool_id: str
    client_id: str
    client_secret: str | None


@dataclass
class DemoCognito:
    """The strict double with one pool per demo site, seeded with the demo users."""

    double: Any
    pools: dict[str, DemoPool]
    totp_secrets: dict[str, str]

    def stop(self) -> None:
        self.double.stop()


def start_demo_cognito(sites: Iterable[DemoSite] = DEMO_SITES, **listen: Any) -> DemoCognito:
    """``listen``: the double's ``host``, ``port`` and ``public_url`` (default: loopback)."""
    from proxy.devtools.cognito_double import CognitoDouble, captcha_challenge
    from proxy.devtools.otp import new_totp_secret

    double = CognitoDouble(region=REGION, require_admin_sigv4=False, **listen)
    pools: dict[str, DemoPool] = {}
    secrets_by_user: dict[str, str] = {}
    for site in sites:
        pool_id = double.create_pool()
        double.set_pool_mfa(pool_id, site.mfa, factors=site.factors)
        double.set_required_attributes(pool_id, ["name"])
        double.set_device_tracking(pool_id, remembered="user_opt_in")
        flows = {"USER_SRP_AUTH", "ADMIN_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH"}
        if site.custom_auth:
            double.set_custom_auth(pool_id, captcha_challenge)
            flows.add("CUSTOM_AUTH")
        # Refresh-token rotation on, as a pool set up today by the book has it.
        client_id, client_secret = double.create_client(
            pool_id,
            secret=True,
            flows=flows,
            refresh_token_rotation=True,
            retry_grace_period_seconds=10,
        )
        pools[site.key] = DemoPool(pool_id, client_id, client_secret)
        for user in site.users:
            attributes = {"email": user.email, "preferred_username": user.username.title()}
            if user.name:
                attributes["name"] = user.name
            if user.phone:
                attributes["phone_number"] = user.phone
            totp = new_totp_secret() if "SOFTWARE_TOKEN_MFA" in user.mfa else None
            if totp:
                secrets_by_user[user.username] = totp
            double.add_user(
                pool_id,
                user.username,
                user.password,
                attributes=attributes,
                groups=list(user.groups),
                status=user.status,
                mfa=user.mfa,
                totp_secret=totp,
            )
    return DemoCognito(double, pools, secrets_by_user)


def double_settings(
    cognito: DemoCognito, site: DemoSite, upstream_url: str, listen: str
) -> Settings:
    pool = cognito.pools[site.key]
    double = cognito.double
    return Settings(
        listen=listen,
        upstream=UpstreamSettings(url=upstream_url),
        cognito=CognitoSettings(
            user_pool_id=pool.pool_id,
            client_id=pool.client_id,
            client_secret=SecretStr(pool.client_secret) if pool.client_secret else None,
            region=REGION,
            endpoint_url=double.url,
            jwks_url=double.jwks_url(pool.pool_id),
            issuer=double.issuer(pool.pool_id),
            auth_flow=site.auth_flow,
        ),
        # Plain http on loopback: no Secure (so no __Host-) cookies; one cookie name per site,
        # because browsers share cookies between ports of one host.
        cookie=CookieSettings(
            secret=SecretStr(secrets.token_urlsafe(48)),
            secure=False,
            name="gate" if site.offset == 0 else f"gate-{site.key}",
        ),
        session=SessionSettings(store_url="memory://"),
        ui=UiSettings(product_name=f"cognito-gate demo ({site.key})"),
        log=LogSettings(format="text"),
    )


async def print_sent_codes(cognito: DemoCognito, interval: float = 0.5) -> None:
    """Stand in for SMS and email: print each code the local Cognito "sends"."""
    seen: dict[tuple[str, str, str], str | None] = {}
    users = [(key, u.username) for key in cognito.pools for u in _site(key).users]
    while True:
        for key, username in users:
            pool_id = cognito.pools[key].pool_id
            for channel in ("SMS", "EMAIL"):
                code = cognito.double.last_code(pool_id, username, channel)
                if code is not None and seen.get((key, username, channel)) != code:
                    print(f"  [demo {channel.lower()}] code for {username}: {code}", flush=True)
                seen[(key, username, channel)] = code
        await asyncio.sleep(interval)


def _site(key: str) -> DemoSite:
    return next(site for site in DEMO_SITES if site.key == key)


def _double_banner(host: str, port: int, cognito: DemoCognito) -> str:
    lines = ["", "  cognito-gate demo is running (local Cognito: the strict double).", ""]
    for site in DEMO_SITES:
        lines.append(f"  http://{host}:{port + site.offset}/  — {site.title}")
        for u in site.users:
            extra = u.shows or f"groups: {', '.join(u.groups) or '-'}"
            lines.append(f"      {u.username:<6} {u.password:<18} {extra}")
        lines.append("")
    for username, secret in cognito.totp_secrets.items():
        uri = otpauth_uri(issuer="cognito-gate demo", account=username, secret=secret)
        lines.append(f"  TOTP secret for {username}: {secret}")
        lines.append(f"    (add it to an authenticator app, or: {uri})")
    lines += [
        "  SMS and email codes (MFA, forgot password, confirmation) are printed here.",
        "  Press Ctrl+C to stop.",
        "",
    ]
    return "\n".join(lines)


async def _serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def _banner(url: str, cognito: LocalCognito) -> str:
    users = "\n".join(
        f"    {u.username:<8} {u.password:<20} groups: {', '.join(u.groups) or '-'}"
        for u in DEMO_USERS
    )
    return f"""
  cognito-gate demo is running.

    Open  {url}/

  Sign in as one of the demo users:
    username password
{users}

  Local Cognito (moto): {cognito.url}  pool {cognito.pool_id}
  Press Ctrl+C to stop.
"""


def run_demo(listen: str = "127.0.0.1:8080", cognito: str = "double") -> None:
    if cognito == "moto":
        run_moto_demo(listen)
        return
    from proxy.app import build_app
    from proxy.observe import setup_logging

    local = start_demo_cognito()
    try:
        upstream_port = free_port()
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        host, port = parse_listen(listen)
        settings = [
            double_settings(local, site, upstream_url, f"{host}:{port + site.offset}")
            for site in DEMO_SITES
        ]
        setup_logging(settings[0].log)

        async def main() -> None:
            upstream = await _serve(upstream_app(), "127.0.0.1", upstream_port)
            proxies = []
            try:
                for site_settings in settings:
                    h, p = site_settings.listen_address
                    try:
                        proxies.append(await _serve(build_app(site_settings), h, p))
                    except OSError as exc:
                        raise SystemExit(
                            f"cannot listen on {h}:{p}: {exc.strerror}; try --listen"
                        ) from None
                print(_double_banner(host, port, local), flush=True)
                await print_sent_codes(local)
            finally:
                for runner in proxies:
                    await runner.cleanup()
                await upstream.cleanup()

        with contextlib.suppress(KeyboardInterrupt):
            eventloop.run(main(), settings[0].server.event_loop)
    finally:
        local.stop()


def run_moto_demo(listen: str = "127.0.0.1:8080") -> None:
    from proxy.app import build_app
    from proxy.observe import setup_logging
    from proxy.server import start

    cognito = start_local_cognito()
    try:
        settings = None
        upstream_port = free_port()
        settings = demo_settings(cognito, f"http://127.0.0.1:{upstream_port}", listen)
        setup_logging(settings.log)

        async def main() -> None:
            upstream = await _serve(upstream_app(), "127.0.0.1", upstream_port)
            host, port = settings.listen_address
            try:
                proxy = await start(build_app(settings), settings.server, host, port)
            except OSError as exc:
                raise SystemExit(
                    f"cannot listen on {listen}: {exc.strerror}; try --listen"
                ) from None
            print(_banner(f"http://{host}:{port}", cognito), flush=True)
            try:
                await asyncio.Event().wait()
            finally:
                await proxy.cleanup()
                await upstream.cleanup()

        with contextlib.suppress(KeyboardInterrupt):
            eventloop.run(main(), settings.server.event_loop)
    finally:
        cognito.stop()


# -- the pieces of the demo as separate processes (docker-compose.yml) -----------------------


def local_cognito_env(cognito: LocalCognito, public_url: str) -> str:
    """The GATE_COGNITO_* settings a proxy elsewhere needs to use this local Cognito."""
    lines = [
        f"GATE_COGNITO_USER_POOL_ID={cognito.pool_id}",
        f"GATE_COGNITO_CLIENT_ID={cognito.client_id}",
        f"GATE_COGNITO_REGION={REGION}",
        f"GATE_COGNITO_ENDPOINT_URL={public_url}",
        f"GATE_COGNITO_JWKS_URL={public_url}/{cognito.pool_id}/.well-known/jwks.json",
        # moto has no GetTokensFromRefreshToken.
        "GATE_COGNITO_REFRESH_FLOW=REFRESH_TOKEN_AUTH",
    ]
    return "\n".join(lines) + "\n"


def double_env(cognito: DemoCognito, site: str = "main") -> str:
    """The GATE_COGNITO_* settings a proxy elsewhere needs to use one pool of the double."""
    pool = cognito.pools[site]
    double = cognito.double
    lines = [
        f"GATE_COGNITO_USER_POOL_ID={pool.pool_id}",
        f"GATE_COGNITO_CLIENT_ID={pool.client_id}",
        f"GATE_COGNITO_CLIENT_SECRET={pool.client_secret or ''}",
        f"GATE_COGNITO_REGION={REGION}",
        f"GATE_COGNITO_ENDPOINT_URL={double.url}",
        f"GATE_COGNITO_JWKS_URL={double.jwks_url(pool.pool_id)}",
        f"GATE_COGNITO_ISSUER={double.issuer(pool.pool_id)}",
    ]
    return "\n".join(lines) + "\n"


def _write_whole(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)  # appears whole: the proxy waits for it


def run_local_cognito(listen: str, env_file: str, public_url: str, cognito: str = "double") -> None:
    """A local Cognito on `listen`, seeded with the demo users; writes `env_file` (for the
    proxy to source) once seeded, then serves until SIGTERM. The strict double by default (the
    main demo site's pool: plain users and every challenge; codes it "sends" are printed), or
    moto's server (plain users only; moto accepts any SRP proof)."""
    import signal

    from proxy.settings import parse_listen

    host, port = parse_listen(listen)
    if cognito == "moto":
        import threading

        moto = start_local_cognito(host=host, port=port)
        _write_whole(env_file, local_cognito_env(moto, public_url.rstrip("/")))
        print(f"local Cognito (moto) on {listen}, pool {moto.pool_id}; settings in {env_file}")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            moto.stop()
        return

    site = _site("main")
    local = start_demo_cognito((site,), host=host, port=port, public_url=public_url)
    try:
        _write_whole(env_file, double_env(local))
        print(
            f"local Cognito (strict double) on {listen} as {local.double.url}, pool "
            f"{local.pools['main'].pool_id}; settings in {env_file}",
            flush=True,
        )
        for u in site.users:
            print(f"  {u.username:<6} {u.password:<18} {u.shows or ''}".rstrip(), flush=True)
        for username, secret in local.totp_secrets.items():
            print(f"  TOTP secret for {username}: {secret}", flush=True)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            codes = asyncio.create_task(print_sent_codes(local))
            await stop.wait()
            codes.cancel()

        asyncio.run(main())
    finally:
        local.stop()


def run_demo_app(listen: str) -> None:
    """Only the demo app (no proxy): the upstream of the compose stack."""
    from proxy.settings import parse_listen

    host, port = parse_listen(listen)
    web.run_app(upstream_app(), host=host, port=port, access_log=None, print=None)
