"""The typed settings model: one YAML key and one ``GATE_<SECTION>_<KEY>`` env var per setting.

Precedence: environment over the YAML file over defaults. Validation happens once, at start;
:func:`load_settings` raises :class:`ConfigError` whose lines name each offending setting by its
env var and its YAML path, so an operator can fix it from the message alone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from proxy.cookies import OurCookies
from proxy.eventloop import resolve as resolve_event_loop

AuthFlow = Literal[
    "USER_SRP_AUTH", "ADMIN_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH", "CUSTOM_AUTH", "USER_AUTH"
]

_POOL_ID = re.compile(r"^(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)_[0-9A-Za-z]+$")
_HEADER_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_STORE_SCHEMES = (
    "memory", "redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster",
    "rediss+cluster",
)  # fmt: skip


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str, *, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http:// or https:// URL, got {value!r}")
    return value


class RuleSettings(_Section):
    """Who may reach a path (see proxy/gate/policy.py). The first matching rule wins."""

    path: str = Field(min_length=1)
    match: Literal["prefix", "exact", "regex"] = "prefix"
    methods: list[str] | None = None  # None: any method
    case_insensitive: bool = False
    public: bool = False  # no sign-in, no session lookup, no identity headers
    groups: list[str] = Field(default_factory=list)  # any of these Cognito groups
    email_domains: list[str] = Field(default_factory=list)  # exact domain of a verified email
    unauthenticated: Literal["login", "401", "allow"] = "login"
    # Step-up: the user's last interactive sign-in no older than this (seconds), and/or one that
    # passed a second factor (or a passkey). Not met: a browser re-authenticates, an API gets 401.
    max_auth_age: int | None = Field(None, ge=30, le=30 * 86400)
    require_mfa: bool = False

    @model_validator(mode="after")
    def _check_rule(self) -> RuleSettings:
        if self.match == "regex":
            try:
                re.compile(self.path)
            except re.error as exc:
                raise ValueError(
                    f"path {self.path!r} is not a valid regular expression: {exc}"
                ) from None
        elif not self.path.startswith("/"):
            raise ValueError(f"path {self.path!r} must start with /")
        if self.public and (
            self.groups
            or self.email_domains
            or self.unauthenticated != "login"
            or self.max_auth_age is not None
            or self.require_mfa
        ):
            raise ValueError(
                "a public rule cannot also set groups, email_domains, unauthenticated, "
                "max_auth_age or require_mfa"
            )
        if self.unauthenticated == "allow" and (self.max_auth_age is not None or self.require_mfa):
            raise ValueError(
                "unauthenticated: allow cannot be combined with max_auth_age or require_mfa "
                "(an anonymous request would get further than a signed-in one)"
            )
        if self.unauthenticated == "allow" and (self.groups or self.email_domains):
            raise ValueError(
                "unauthenticated: allow cannot be combined with groups or email_domains "
                "(an anonymous request would get further than a signed-in one)"
            )
        if self.methods is not None:
            for method in self.methods:
                if not _HEADER_TOKEN.match(method):
                    raise ValueError(f"{method!r} is not an HTTP method")
        return self


class UpstreamSettings(_Section):
    """The app behind the proxy (the default upstream: every path no `upstreams` entry claims)."""

    url: str
    preserve_host: bool = True
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(60.0, gt=0)
    # Requests in flight to this upstream (WebSockets aside); past it, 503 at once. Also the
    # size of its connection pool, so a request never waits for a pooled connection.
    max_requests: int = Field(256, ge=1)
    # The HTTP client for proxied requests: "lean" (proxy/upstream.py, the default) or
    # "aiohttp" (aiohttp's ClientSession, kept as the fallback for one release).
    client: Literal["lean", "aiohttp"] = "lean"
    rules: list[RuleSettings] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value, what="the upstream URL")


class RouteSettings(UpstreamSettings):
    """A further upstream, chosen by host (optional, exact) and then the longest path prefix."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    prefix: str = Field("/", pattern=r"^/")
    host: str | None = None
    strip_prefix: bool = False

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        return None if value is None else value.lower()


RefreshFlow = Literal["GetTokensFromRefreshToken", "REFRESH_TOKEN_AUTH"]


class CognitoSettings(_Section):
    user_pool_id: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    # The app client's second secret during a rotation (AddUserPoolClientSecret): calls use
    # client_secret, and on Cognito refusing it retry once with this one (and keep using
    # whichever works).
    client_secret_next: SecretStr | None = None
    region: str | None = None
    endpoint_url: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    # Every issuer whose tokens are accepted, the first one also naming the JWKS (unless
    # jwks_url): for a pool moving to the multi-Region issuer. Default: [issuer].
    issuers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    auth_flow: AuthFlow = "USER_SRP_AUTH"
    # How tokens are refreshed: GetTokensFromRefreshToken works with refresh-token rotation on
    # or off; REFRESH_TOKEN_AUTH for pools or emulators without that operation.
    refresh_flow: RefreshFlow = "GetTokensFromRefreshToken"
    timeout: float = Field(10.0, gt=0)
    # Clock skew allowed on exp / nbf / iat when verifying tokens, seconds.
    leeway: float = Field(30.0, ge=0, le=60)

    @field_validator("user_pool_id")
    @classmethod
    def _check_pool(cls, value: str) -> str:
        if not _POOL_ID.match(value):
            raise ValueError(f"expected a user pool id like 'eu-west-1_AbC123xyZ', got {value!r}")
        return value

    @field_validator("endpoint_url", "jwks_url", "issuer")
    @classmethod
    def _check_urls(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, what="this setting")

    @field_validator("issuers", mode="before")
    @classmethod
    def _split_issuers(cls, value: Any) -> Any:
        if isinstance(value, str):  # GATE_COGNITO_ISSUERS=https://a/pool,https://b/pool
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("issuers")
    @classmethod
    def _check_issuers(cls, value: list[str]) -> list[str]:
        for issuer in value:
            _http_url(issuer, what="each issuer")
        return value

    @field_validator("client_secret_next")
    @classmethod
    def _check_next_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and info.data.get("client_secret") is None:
            raise ValueError("needs GATE_COGNITO_CLIENT_SECRET (cognito.client_secret) too")
        if value is not None and value == info.data.get("client_secret"):
            raise ValueError("is the same as GATE_COGNITO_CLIENT_SECRET (cognito.client_secret)")
        return value

    @model_validator(mode="after")
    def _one_issuer_setting(self) -> CognitoSettings:
        if self.issuer and self.issuers:
            raise ValueError(
                "set GATE_COGNITO_ISSUER (cognito.issuer) or GATE_COGNITO_ISSUERS "
                "(cognito.issuers), not both"
            )
        return self

    @property
    def resolved_region(self) -> str:
        if self.region:
            return self.region
        match = _POOL_ID.match(self.user_pool_id)
        assert match is not None  # validated above
        return match["region"]

    @property
    def resolved_issuers(self) -> tuple[str, ...]:
        """Every accepted issuer; the first names the JWKS."""
        if self.issuers:
            return tuple(self.issuers)
        return (
            self.issuer
            or f"https://cognito-idp.{self.resolved_region}.amazonaws.com/{self.user_pool_id}",
        )

    @property
    def resolved_issuer(self) -> str:
        return self.resolved_issuers[0]

    @property
    def resolved_jwks_url(self) -> str:
        if self.jwks_url:
            return self.jwks_url
        return f"{self.resolved_issuer}/.well-known/jwks.json"


class SessionSettings(_Section):
    store_url: str = "memory://"
    lifetime: int = Field(12 * 3600, gt=60, description="absolute session lifetime, seconds")
    login_timeout: int = Field(600, gt=30, description="how long a sign-in may take, seconds")
    store_timeout: float = Field(2.0, gt=0)
    refresh_margin: int = Field(
        300, ge=0, description="refresh tokens this many seconds before they expire"
    )
    idle_timeout: int = Field(
        3600, ge=0, description="end a session unused this long, seconds; 0: no idle limit"
    )
    # "Keep me signed in" (a checkbox on the login page; 0 hides it): a persistent cookie and
    # these longer limits. Cognito's refresh token validity still bounds the session.
    remember_lifetime: int = Field(30 * 86400, ge=0)
    remember_idle_timeout: int = Field(7 * 86400, ge=0)
    # How often an open WebSocket re-checks that its session still exists (ends decided by
    # another replica); ends decided by this replica close it at once.
    ws_recheck_interval: float = Field(5.0, gt=0, le=300)
    cache_ttl: float = Field(
        5.0,
        ge=0,
        le=300,
        description="serve a session from this process's memory for up to this many seconds "
        "after loading it from the store (0: always ask the store); logouts reach every replica "
        "at once over Redis pub/sub and within this bound in any case",
    )
    cache_size: int = Field(10_000, ge=1, description="sessions kept in that cache at most")

    @field_validator("store_url")
    @classmethod
    def _check_store(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in _STORE_SCHEMES:
            raise ValueError(
                f"unsupported session store URL {value.split('@')[-1]!r}; "
                f"use one of {', '.join(s + '://' for s in _STORE_SCHEMES)}"
            )
        return value


class CookieSettings(_Section):
    secret: SecretStr
    name: str = Field("gate", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    # Off only for plain-http setups such as the demo: browsers drop Secure cookies over http
    # (and the __Host- prefix requires Secure).
    secure: bool = True

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError(
                "must be at least 32 characters of random data (e.g. `openssl rand -base64 48`)"
            )
        return value

    @property
    def cookies(self) -> OurCookies:
        """Our cookies' names and attributes: proxy/cookies.py is their one source."""
        return OurCookies(self.name, secure=self.secure)


class AuthSettings(_Section):
    prefix: str = Field("/_auth", pattern=r"^/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$")
    # Absolute origins (https://app.example.com) a logout `rd` may send the browser to.
    allowed_redirect_origins: list[str] = Field(default_factory=list)
    # API clients: `Authorization: Bearer <Cognito access|ID token>` instead of a cookie.
    bearer: Literal["off", "access", "id"] = "off"
    # /check also answers X-Auth-Request-Access-Token (for apps calling APIs as the user).
    check_access_token: bool = False

    @field_validator("allowed_redirect_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.path not in ("", "/")
                or parts.query
                or parts.fragment
                or parts.username
            ):
                raise ValueError(f"expected an origin like https://app.example.com, got {origin!r}")
        return value


class PasswordPolicySettings(_Section):
    """The user pool's password policy (its PasswordPolicyType), which the account page shows
    and checks before asking Cognito; Cognito's default unless the pool was given another.
    Cognito stays the judge: a password it refuses is refused whatever this says."""

    min_length: int = Field(8, ge=6, le=99)
    require_lowercase: bool = True
    require_uppercase: bool = True
    require_numbers: bool = True
    require_symbols: bool = True


# The user attributes the account page's profile may show (Cognito's standard ones a person
# keeps up to date; sub, the *_verified flags, identities and updated_at are Cognito's own).
PROFILE_STANDARD_ATTRIBUTES = (
    "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
    "email", "phone_number", "birthdate", "gender", "locale", "zoneinfo", "address",
    "website", "profile", "picture",
)  # fmt: skip
_CUSTOM_ATTRIBUTE = re.compile(r"^custom:[A-Za-z0-9_-]{1,20}$")
MfaFactor = Literal["SOFTWARE_TOKEN_MFA", "SMS_MFA", "EMAIL_OTP"]
_TOTP_FACTOR: MfaFactor = "SOFTWARE_TOKEN_MFA"


class AccountSettings(_Section):
    """The account page (``<auth prefix>/account``): a signed-in user's password and sessions."""

    enabled: bool = True
    password_policy: PasswordPolicySettings = PasswordPolicySettings()
    # The profile section: the attributes a user may change there (the app client's
    # WriteAttributes must allow each), then ones shown but not editable (its ReadAttributes).
    # Empty both: no profile section.
    profile_attributes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["name", "email"]
    )
    profile_read_only: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Step-up: changing how the user signs in (password, email, phone, MFA, passkeys) needs a
    # sign-in no older than this (seconds); otherwise the password (and MFA) is asked again.
    reauth_max_age: int = Field(300, ge=30, le=86400)
    # The passkeys section (register, list, delete); shown only with GATE_COGNITO_AUTH_FLOW=
    # USER_AUTH, the flow that signs in with them (the pool needs WEB_AUTHN and a relying party).
    passkeys: bool = True

    @field_validator("profile_attributes", "profile_read_only", mode="before")
    @classmethod
    def _split_attributes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("profile_attributes", "profile_read_only")
    @classmethod
    def _check_attributes(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in PROFILE_STANDARD_ATTRIBUTES and not _CUSTOM_ATTRIBUTE.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a profile attribute: use Cognito's standard ones"
                    f" ({', '.join(PROFILE_STANDARD_ATTRIBUTES)}) or custom:<name> (1-20 of"
                    " A-Z a-z 0-9 _ -); sub, email_verified, phone_number_verified, identities"
                    " and updated_at are never shown"
                )
            if value.count(name) > 1:
                raise ValueError(f"{name!r} is listed twice")
        return value

    @field_validator("profile_read_only")
    @classmethod
    def _check_read_only(cls, value: list[str], info: ValidationInfo) -> list[str]:
        both = set(value) & set(info.data.get("profile_attributes") or ())
        if both:
            raise ValueError(
                f"{', '.join(sorted(both))} also in GATE_ACCOUNT_PROFILE_ATTRIBUTES: an"
                " attribute is editable or read-only, not both"
            )
        return value

    # The MFA factors the pool's MFA configuration offers, which the sign-in methods section
    # lets a user turn on (SMS and email only with a verified phone / email); [] hides it.
    mfa_factors: list[MfaFactor] = Field(default_factory=lambda: [_TOTP_FACTOR])

    @field_validator("mfa_factors")
    @classmethod
    def _unique_factors(cls, value: list[MfaFactor]) -> list[MfaFactor]:
        return list(dict.fromkeys(value))


class HeadersSettings(_Section):
    preset: Literal["oauth2-proxy", "authelia"] = "oauth2-proxy"
    extra: dict[str, str] = Field(default_factory=dict, description="header name → claim name")
    # Raw tokens, on request. The names become reserved: a client's own value is always dropped.
    pass_access_token: bool = False  # X-Forwarded-Access-Token: <access token>
    pass_id_token_as_authorization: bool = False  # Authorization: Bearer <id token>
    # X-HTTP-Method-Override & co. reach the app (whose framework may run a POST as the method
    # named); the rules then judge every method named as well. Off: stripped, in every spelling.
    pass_method_override: bool = False

    @field_validator("extra")
    @classmethod
    def _check_extra(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _HEADER_TOKEN.match(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
        return value


class AssertionSettings(_Section):
    """A short-lived ES256 JWT per request naming the user, verifiable via /_auth/jwks.json."""

    enabled: bool = False
    header: str = Field("X-Gate-Assertion", pattern=_HEADER_TOKEN.pattern)
    ttl: int = Field(60, ge=10, le=3600, description="seconds an assertion is valid")
    key_file: Path | None = None  # PEM EC P-256 private key; generated at start when absent
    issuer: str = Field("cognito-gate", min_length=1)
    audience: str | None = None  # default: the upstream's name ("default" for upstream.url)

    @field_validator("key_file")
    @classmethod
    def _check_key_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            key = serialization.load_pem_private_key(value.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(
                f"{str(value)!r} is not a readable, unencrypted PEM private key "
                f"({type(exc).__name__})"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError(f"{str(value)!r} must hold an EC P-256 (prime256v1) private key")
        return value


class ProxySettings(_Section):
    """Proxies in front of us whose X-Forwarded-* headers are believed (none by default)."""

    trusted_cidrs: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("trusted_cidrs", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):  # GATE_PROXY_TRUSTED_CIDRS=10.0.0.0/8,192.168.0.0/16
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_cidrs")
    @classmethod
    def _check_cidrs(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                ipaddress.ip_network(text.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not an IP address or CIDR") from None
        return value


class UiSettings(_Section):
    templates_dir: Path | None = None
    product_name: str = "Sign in"
    logo_url: str | None = None
    primary_color: str = "#2563eb"
    extra_css_url: str | None = None
    # Footer links, label → URL, in order (e.g. {"Privacy": "https://example.com/privacy"}).
    footer_links: dict[str, str] = Field(default_factory=dict)

    @field_validator("footer_links")
    @classmethod
    def _check_links(cls, value: dict[str, str]) -> dict[str, str]:
        for label, url in value.items():
            if not url.startswith(("https://", "http://", "/", "mailto:")) or url.startswith("//"):
                raise ValueError(f"link {label!r} needs an http(s)://, /path or mailto: URL")
        return value

    @field_validator("templates_dir")
    @classmethod
    def _check_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{str(value)!r} is not a directory")
        return value


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


class RegulationSettings(_Section):
    """Brute-force regulation: failed sign-ins per username and per client address."""

    enabled: bool = True
    user_max_failures: int = Field(10, ge=1)
    user_window: int = Field(900, gt=0, description="seconds")
    user_ban: int = Field(900, gt=0, description="seconds")
    ip_max_failures: int = Field(50, ge=1)
    ip_window: int = Field(900, gt=0, description="seconds")
    ip_ban: int = Field(900, gt=0, description="seconds")


class ServerSettings(_Section):
    """Limits on what a client may make the HTTP server hold."""

    max_connections: int = Field(1000, ge=1)
    header_timeout: float = Field(
        15.0, gt=0, description="a request head must arrive within this (also keep-alive idle)"
    )
    body_timeout: float = Field(15.0, gt=0, description="reading one of our own form posts")
    max_header_size: int = Field(8190, ge=1024, description="one header line, or the URL")
    max_headers: int = Field(100, ge=16)
    # The Server header of the proxy's own answers: a product name, never a version by default
    # (aiohttp's "Python/3.11 aiohttp/3.14.5" told every scanner which CVEs to try).
    header: str = Field("cognito-gate", pattern=r"^[!-~]+(?: [!-~]+)*$", max_length=100)
    # auto: uvloop where it installs (about 1.3x the requests per second), else asyncio's loop.
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"

    @field_validator("event_loop")
    @classmethod
    def _check_event_loop(cls, value: str) -> str:
        resolve_event_loop(value)  # uvloop asked for but missing: say so at check-config
        return value


class MetricsSettings(_Section):
    # Prometheus /metrics on its own listener; "off" disables it. Loopback by default: in
    # Kubernetes set 0.0.0.0:9090 so Prometheus can scrape the pod.
    listen: str = "127.0.0.1:9090"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        if value != "off":
            parse_listen(value)
        return value


class Settings(BaseSettings):
    """Everything cognito-gate can be told. Sections map to ``GATE_<SECTION>_<KEY>``."""

    model_config = SettingsConfigDict(
        env_prefix="GATE_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    listen: str = "0.0.0.0:8080"
    upstream: UpstreamSettings
    cognito: CognitoSettings
    session: SessionSettings = SessionSettings()
    cookie: CookieSettings
    auth: AuthSettings = AuthSettings()
    account: AccountSettings = AccountSettings()
    headers: HeadersSettings = HeadersSettings()
    upstreams: list[RouteSettings] = Field(default_factory=list)
    assertion: AssertionSettings = AssertionSettings()
    proxy: ProxySettings = ProxySettings()
    ui: UiSettings = UiSettings()
    log: LogSettings = LogSettings()
    regulation: RegulationSettings = RegulationSettings()
    server: ServerSettings = ServerSettings()

    @field_validator("upstreams")
    @classmethod
    def _check_upstreams(cls, value: list[RouteSettings]) -> list[RouteSettings]:
        names = [route.name for route in value]
        for name in names:
            if name == "default" or names.count(name) > 1:
                raise ValueError(f"upstream name {name!r} is used twice (or is 'default')")
        return value

    metrics: MetricsSettings = MetricsSettings()
    # SIGTERM: readiness fails at once, in-flight requests get this long to finish.
    drain_seconds: float = Field(20.0, ge=0, le=3600)
    # Processes sharing the listening socket (SO_REUSEPORT); > 1 needs a shared store.
    workers: int = Field(1, ge=1, le=256)

    @model_validator(mode="after")
    def _check_workers(self) -> Settings:
        if self.workers > 1 and self.session.store_url.startswith("memory:"):
            raise ValueError(
                "GATE_WORKERS > 1 needs a shared session store (GATE_SESSION_STORE_URL=redis://...):"
                " with memory:// each worker would see only its own sessions"
            )
        return self

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs (see load_settings) and must lose to env vars.
        return env_settings, init_settings


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 0.0.0.0:8080, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104


class ConfigError(Exception):
    """A configuration that cannot start; ``lines`` name each offending setting."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def env_name(loc: tuple[str | int, ...]) -> str:
    """``("cognito", "user_pool_id")`` → ``GATE_COGNITO_USER_POOL_ID``."""
    return "GATE_" + "_".join(str(part) for part in loc[:2]).upper()


def _describe(error: Mapping[str, Any]) -> list[str]:
    loc = tuple(error["loc"])
    dotted = ".".join(str(p) for p in loc)
    message = str(error["msg"]).removeprefix("Value error, ")
    if not loc:  # a check across settings: its message names them
        return [message]
    if error["type"] == "extra_forbidden":
        return [f"{dotted}: unknown setting (check the spelling)"]
    if error["type"] == "missing":
        section = Settings.model_fields.get(str(loc[0])) if len(loc) == 1 else None
        model = section.annotation if section else None
        if isinstance(model, type) and issubclass(model, BaseModel):
            # A whole section is absent: name the keys inside it that must be set.
            return [
                f"{env_name((loc[0], key))} ({loc[0]}.{key}): is required but not set"
                for key, field in model.model_fields.items()
                if field.is_required()
            ]
        message = "is required but not set"
    return [f"{env_name(loc)} ({dotted}): {message}"]


def load_settings(
    config_file: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read the YAML file (if any), apply env vars on top, validate; raise ConfigError."""
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([f"--config {config_file}: cannot read ({exc.strerror})"]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([f"--config {config_file}: not valid YAML ({exc})"]) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError([f"--config {config_file}: the top level must be a mapping"])
        data = loaded or {}
    if overrides:
        data = _merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError([line for e in exc.errors() for line in _describe(e)]) from None


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
