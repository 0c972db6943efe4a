"""Settings: YAML plus GATE_* env, env wins, and every error names the setting to fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proxy.settings import ConfigError, load_settings

VALID_ENV = {
    "GATE_UPSTREAM_URL": "http://127.0.0.1:3000",
    "GATE_COGNITO_USER_POOL_ID": "eu-west-1_AbC123xyZ",
    "GATE_COGNITO_CLIENT_ID": "client123",
    "GATE_COOKIE_SECRET": "s" * 40,
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for key in list(os.environ):
        if key.startswith("GATE_"):
            monkeypatch.delenv(key)
    return monkeypatch


def _env(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    for key, value in (VALID_ENV | extra).items():
        monkeypatch.setenv(key, value)


def test_env_only_configuration_with_derived_defaults(clean_env: pytest.MonkeyPatch) -> None:
    _env(clean_env, GATE_SESSION_STORE_URL="redis://127.0.0.1:6379/0")
    s = load_settings()
    assert s.listen_address == ("0.0.0.0", 8080)
    assert s.cognito.resolved_region == "eu-west-1"
    assert (
        s.cognito.resolved_issuer
        == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyZ"
    )
    assert s.cognito.resolved_jwks_url.endswith("/eu-west-1_AbC123xyZ/.well-known/jwks.json")
    assert s.cognito.auth_flow == "USER_SRP_AUTH"
    assert s.session.store_url == "redis://127.0.0.1:6379/0"
    assert s.cookie.cookies.session == "__Host-gate"
    assert s.headers.preset == "oauth2-proxy"


def test_refresh_flow_client_secrets_and_issuers_from_env(clean_env: pytest.MonkeyPatch) -> None:
    _env(clean_env)
    s = load_settings()
    assert s.cognito.refresh_flow == "GetTokensFromRefreshToken"
    assert s.cognito.client_secret_next is None
    moved = "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyZ"
    _env(
        clean_env,
        GATE_COGNITO_REFRESH_FLOW="REFRESH_TOKEN_AUTH",
        GATE_COGNITO_CLIENT_SECRET="a" * 40,
        GATE_COGNITO_CLIENT_SECRET_NEXT="b" * 40,
        GATE_COGNITO_ISSUERS=f"{s.cognito.resolved_issuer}, {moved}",
    )
    s2 = load_settings()
    assert s2.cognito.refresh_flow == "REFRESH_TOKEN_AUTH"
    assert s2.cognito.client_secret_next is not None
    assert s2.cognito.resolved_issuers == (s.cognito.resolved_issuer, moved)
    assert s2.cognito.resolved_jwks_url == f"{s.cognito.resolved_issuer}/.well-known/jwks.json"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"GATE_COGNITO_REFRESH_FLOW": "REFRESH_TOKEN"}, "GATE_COGNITO_REFRESH_FLOW"),
        ({"GATE_COGNITO_CLIENT_SECRET_NEXT": "b" * 40}, "GATE_COGNITO_CLIENT_SECRET_NEXT"),
        (
            {"GATE_COGNITO_CLIENT_SECRET": "b" * 40, "GATE_COGNITO_CLIENT_SECRET_NEXT": "b" * 40},
            "GATE_COGNITO_CLIENT_SECRET_NEXT",
        ),
        ({"GATE_COGNITO_ISSUERS": "https://a.example/p,ftp://b"}, "GATE_COGNITO_ISSUERS"),
        (
            {"GATE_COGNITO_ISSUERS": "https://a.example/p", "GATE_COGNITO_ISSUER": "https://b/p"},
            "GATE_COGNITO",
        ),
    ],
)
def test_refresh_and_rotation_settings_are_checked(
    clean_env: pytest.MonkeyPatch, extra: dict[str, str], named: str
) -> None:
    _env(clean_env, **extra)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert any(named in line for line in err.value.lines), err.value.lines
    assert "b" * 40 not in str(err.value)


def test_env_wins_over_the_yaml_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "gate.yaml"
    config.write_text(
        "upstream: {url: 'http://file-app:3000'}\n"
        "cognito: {user_pool_id: 'us-east-1_FromFile', client_id: 'file-client'}\n"
        "cookie: {secret: '" + "f" * 40 + "'}\n"
        "headers: {preset: authelia}\n"
    )
    clean_env.setenv("GATE_COGNITO_CLIENT_ID", "env-client")
    s = load_settings(config)
    assert s.cognito.client_id == "env-client"
    assert s.cognito.user_pool_id == "us-east-1_FromFile"
    assert s.upstream.url == "http://file-app:3000"
    assert s.headers.preset == "authelia"


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("GATE_COGNITO_USER_POOL_ID", "not-a-pool", "GATE_COGNITO_USER_POOL_ID"),
        ("GATE_UPSTREAM_URL", "ftp://app", "GATE_UPSTREAM_URL"),
        ("GATE_COOKIE_SECRET", "short", "GATE_COOKIE_SECRET"),
        ("GATE_LISTEN", "8080", "GATE_LISTEN"),
        ("GATE_SESSION_STORE_URL", "mongodb://x", "GATE_SESSION_STORE_URL"),
        ("GATE_COGNITO_LEEWAY", "61", "GATE_COGNITO_LEEWAY"),
        ("GATE_SESSION_IDLE_TIMEOUT", "-1", "GATE_SESSION_IDLE_TIMEOUT"),
        ("GATE_AUTH_BEARER", "maybe", "GATE_AUTH_BEARER"),
        ("GATE_AUTH_ALLOWED_REDIRECT_ORIGINS", '["https://x.example/path"]', "GATE_AUTH_ALLOWED"),
        ("GATE_COGNITO_AUTH_FLOW", "CUSTOM", "GATE_COGNITO_AUTH_FLOW"),
    ],
)
def test_a_bad_value_names_its_setting(
    clean_env: pytest.MonkeyPatch, key: str, value: str, named: str
) -> None:
    _env(clean_env, **{key: value})
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert any(line.startswith(named) for line in err.value.lines), err.value.lines


def test_missing_required_settings_are_each_named(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    for name in (
        "GATE_UPSTREAM_URL",
        "GATE_COGNITO_USER_POOL_ID",
        "GATE_COGNITO_CLIENT_ID",
        "GATE_COOKIE_SECRET",
    ):
        assert name in text


def test_secrets_never_appear_in_error_messages(clean_env: pytest.MonkeyPatch) -> None:
    _env(
        clean_env,
        GATE_COOKIE_SECRET="tooshort-secret",
        GATE_SESSION_STORE_URL="bogus://user:hunter2pass@host",
    )
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "tooshort-secret" not in str(err.value)
    assert "hunter2pass" not in str(err.value)


def test_unknown_yaml_key_and_bad_yaml_are_reported(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("upstrem: {url: 'http://x'}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(typo)
    assert "upstrem" in str(err.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text("cognito: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_settings(broken)
    assert "not valid YAML" in str(err.value)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        env={"PATH": "/usr/bin:/bin"} | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_exit_codes() -> None:
    ok = _cli("check-config", env=VALID_ENV)
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout
    bad = _cli("check-config", env=VALID_ENV | {"GATE_COGNITO_USER_POOL_ID": "nope"})
    assert bad.returncode == 2
    assert "GATE_COGNITO_USER_POOL_ID" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_example_config_file_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "config" / "example.yaml"
    result = _cli("check-config", "--config", str(example), env={"GATE_COOKIE_SECRET": "x" * 48})
    assert result.returncode == 0, result.stderr


def test_security_limits_from_env_and_their_names_in_errors(clean_env: pytest.MonkeyPatch) -> None:
    _env(
        clean_env,
        GATE_SERVER_MAX_CONNECTIONS="7",
        GATE_SERVER_HEADER_TIMEOUT="2.5",
        GATE_REGULATION_USER_MAX_FAILURES="4",
        GATE_REGULATION_IP_BAN="60",
    )
    s = load_settings()
    assert (s.server.max_connections, s.server.header_timeout) == (7, 2.5)
    assert (s.regulation.user_max_failures, s.regulation.ip_ban) == (4, 60)
    assert s.regulation.enabled and s.regulation.user_window == 900
    clean_env.setenv("GATE_REGULATION_USER_MAX_FAILURES", "0")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "GATE_REGULATION_USER_MAX_FAILURES" in str(err.value)


def test_footer_links_are_settings_and_unsafe_urls_are_refused(
    clean_env: pytest.MonkeyPatch,
) -> None:
    _env(
        clean_env,
        GATE_UI_FOOTER_LINKS='{"Privacy": "https://example.com/privacy", "Help": "/help"}',
    )
    s = load_settings()
    assert list(s.ui.footer_links.items()) == [
        ("Privacy", "https://example.com/privacy"),
        ("Help", "/help"),
    ]
    _env(clean_env, GATE_UI_FOOTER_LINKS='{"Evil": "javascript:alert(1)"}')
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "GATE_UI_FOOTER_LINKS" in str(err.value)


def test_account_mfa_factors_from_env_and_a_wrong_name_named(
    clean_env: pytest.MonkeyPatch,
) -> None:
    _env(clean_env, GATE_ACCOUNT_MFA_FACTORS='["SMS_MFA", "SOFTWARE_TOKEN_MFA"]')
    assert load_settings().account.mfa_factors == ["SMS_MFA", "SOFTWARE_TOKEN_MFA"]
    clean_env.setenv("GATE_ACCOUNT_MFA_FACTORS", "[]")
    assert load_settings().account.mfa_factors == []
    clean_env.setenv("GATE_ACCOUNT_MFA_FACTORS", '["TOTP"]')
    with pytest.raises(ConfigError, match="GATE_ACCOUNT_MFA_FACTORS"):
        load_settings()
