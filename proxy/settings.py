"""The typed settings model: one YAML key and one ``GATE_<SECTION>_<KEY>`` env var per setting.

Precedence: environment over the YAML file over defaults. Validation happens once, at start;
:func:`load_settings` raises :class:`ConfigError` whose lines name each offending setting by its
env var and its YAML path, so an operator can fix it from the message alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

AuthFlow = Literal[
    "USER_SRP_AUTH", "ADMIN_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH", "CUSTOM_AUTH", "USER_AUTH"
]

_POOL_ID = re.compile(r"^(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)_[0-9A-Za-z]+$")
_HEADER_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_STORE_SCHEMES = ("memory", "redis", "rediss", "redis+sentinel", "redis+cluster")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str, *, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http:// or https:// URL, got {value!r}")
    return value


class UpstreamSettings(_Section):
    """The app behind the proxy."""

    url: str
    preserve_host: bool = True
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value, what="the upstream URL")


class CognitoSettings(_Section):
    user_pool_id: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    region: str | None = None
    endpoint_url: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    auth_flow: AuthFlow = "USER_SRP_AUTH"
    timeout: float = Field(10.0, gt=0)

    @field_validator("user_pool_id")
    @classmethod
    def _check_pool(cls, value: str) -> str:
        if not _POOL_ID.match(value):
            raise ValueError(f"expected a user pool id like 'eu-west-1_AbC123xyZ', got {value!r}")
        return value

    @field_validator("endpoint_url", "jwks_url")
    @classmethod
    def _check_urls(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, what="this setting")

    @property
    def resolved_region(self) -> str:
        if self.region:
            return self.region
        match = _POOL_ID.match(self.user_pool_id)
        assert match is not None  # validated above
        return match["region"]

    @property
    def resolved_issuer(self) -> str:
        return (
            self.issuer
            or f"https://cognito-idp.{self.resolved_region}.amazonaws.com/{self.user_pool_id}"
        )

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
    def session_cookie(self) -> str:
        return f"__Host-{self.name}" if self.secure else self.name

    @property
    def flow_cookie(self) -> str:
        return f"__Host-{self.name}-login" if self.secure else f"{self.name}-login"

    @property
    def device_cookie(self) -> str:
        """Long-lived handle to this browser's remembered-device record (sealed server-side)."""
        return f"__Host-{self.name}-device" if self.secure else f"{self.name}-device"


class AuthSettings(_Section):
    prefix: str = Field("/_auth", pattern=r"^/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$")


class HeadersSettings(_Section):
    preset: Literal["oauth2-proxy", "authelia"] = "oauth2-proxy"
    extra: dict[str, str] = Field(default_factory=dict, description="header name → claim name")

    @field_validator("extra")
    @classmethod
    def _check_extra(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _HEADER_TOKEN.match(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
        return value


class UiSettings(_Section):
    templates_dir: Path | None = None
    product_name: str = "Sign in"
    logo_url: str | None = None
    primary_color: str = "#2563eb"
    extra_css_url: str | None = None

    @field_validator("templates_dir")
    @classmethod
    def _check_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{str(value)!r} is not a directory")
        return value


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


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
    headers: HeadersSettings = HeadersSettings()
    ui: UiSettings = UiSettings()
    log: LogSettings = LogSettings()

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
