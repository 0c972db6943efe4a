"""Rules and upstream selection: each rule type, first match wins, bad config names the setting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.gate.policy import Access, Policy, Rule, Unauthenticated, verified_email_domain
from proxy.settings import ConfigError, RuleSettings, load_settings

BASE: dict[str, Any] = {
    "upstream": {"url": "http://127.0.0.1:3000"},
    "cognito": {"user_pool_id": "eu-west-1_AbC123xyZ", "client_id": "c"},
    "cookie": {"secret": "s" * 40},
}


def rule(**kw: Any) -> Rule:
    return Rule.from_settings(RuleSettings(**kw))


def policy(rules: list[dict[str, Any]], upstreams: list[dict[str, Any]] | None = None) -> Policy:
    upstream = {**BASE["upstream"], "rules": rules}
    return Policy.from_settings(
        load_settings(overrides={**BASE, "upstream": upstream, "upstreams": upstreams or []})
    )


ADMIN = {"sub": "1", "cognito:groups": ["admins", "staff"], "email": "a@corp.example"}
STAFF = {"sub": "2", "cognito:groups": ["staff"], "email": "b@partner.example"}


# -- path matching ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "matches"),
    [
        ("/admin", True),
        ("/admin/", True),
        ("/admin/users", True),
        ("/administrator", False),
        ("/admin-panel", False),
        ("/Admin", False),
        ("/", False),
    ],
)
def test_prefix_rules_match_whole_segments(path: str, matches: bool) -> None:
    assert rule(path="/admin").matches("GET", path) is matches


def test_prefix_ending_in_slash_matches_everything_below_it() -> None:
    r = rule(path="/api/")
    assert r.matches("GET", "/api/x") and r.matches("GET", "/api/")
    assert not r.matches("GET", "/api")


def test_exact_rule_matches_only_that_path() -> None:
    r = rule(path="/health", match="exact")
    assert r.matches("GET", "/health")
    assert not r.matches("GET", "/health/")
    assert not r.matches("GET", "/health/admin")


def test_regex_rule_must_match_the_whole_path() -> None:
    r = rule(path=r"/api/v[0-9]+/public/.*", match="regex")
    assert r.matches("GET", "/api/v2/public/doc")
    assert not r.matches("GET", "/admin/api/v2/public/doc")  # search() would have matched
    assert not r.matches("GET", "/api/v2/public")


def test_case_insensitive_rule_for_case_insensitive_apps() -> None:
    assert rule(path="/Admin", case_insensitive=True).matches("GET", "/aDMIN/x")
    assert rule(path="/ad.*", match="regex", case_insensitive=True).matches("GET", "/ADMIN")
    assert not rule(path="/Admin").matches("GET", "/admin")


def test_methods_restrict_a_rule_and_are_compared_exactly() -> None:
    r = rule(path="/health", methods=["get"], public=True)
    assert r.matches("GET", "/health")
    assert not r.matches("POST", "/health")
    assert not r.matches("HEAD", "/health")  # not widened silently: list HEAD if you mean it


def test_first_matching_rule_wins_and_no_match_means_sign_in() -> None:
    p = policy([{"path": "/docs/internal", "groups": ["staff"]}, {"path": "/docs", "public": True}])
    route = p.select("example.com", "/docs/internal/x")
    assert route is not None
    assert route.rule_for("GET", "/docs/internal/x").groups == {"staff"}
    assert route.rule_for("GET", "/docs/intro").public
    fallback = route.rule_for("GET", "/reports")
    assert not fallback.public and fallback.unauthenticated is Unauthenticated.LOGIN
    assert fallback.access({"sub": "x"}) is Access.ALLOW


# -- what a rule grants -------------------------------------------------------------------------


def test_groups_are_any_of() -> None:
    r = rule(path="/admin", groups=["admins", "auditors"])
    assert r.access(ADMIN) is Access.ALLOW
    assert r.access(STAFF) is Access.FORBIDDEN
    assert r.access({"sub": "3"}) is Access.FORBIDDEN  # no groups claim at all
    assert r.access({"sub": "3", "cognito:groups": "admins"}) is Access.FORBIDDEN  # not a list


def test_group_names_are_case_sensitive_like_cognito() -> None:
    assert rule(path="/", groups=["Admins"]).access(ADMIN) is Access.FORBIDDEN


@pytest.mark.parametrize(
    ("claims", "domain"),
    [
        ({"email": "a@partner.example", "email_verified": True}, "partner.example"),
        ({"email": "a@Partner.Example", "email_verified": "true"}, "partner.example"),
        ({"email": "a@partner.example", "email_verified": False}, None),
        ({"email": "a@partner.example", "email_verified": "false"}, None),
        ({"email": "a@partner.example"}, None),
        ({"email": "partner.example", "email_verified": True}, None),
        ({"email": "@partner.example", "email_verified": True}, None),
        ({"email": ["a@partner.example"], "email_verified": True}, None),
        ({"email": 'a@evil.example"@partner.example', "email_verified": True}, "partner.example"),
    ],
)
def test_verified_email_domain(claims: dict[str, Any], domain: str | None) -> None:
    assert verified_email_domain(claims) == domain


def test_email_domains_are_exact_and_need_a_verified_email() -> None:
    r = rule(path="/partners", email_domains=["partner.example"])
    ok = {"email": "p@partner.example", "email_verified": True}
    assert r.access(ok) is Access.ALLOW
    assert r.access({**ok, "email_verified": False}) is Access.FORBIDDEN
    assert r.access({**ok, "email": "p@sub.partner.example"}) is Access.FORBIDDEN
    assert r.access({**ok, "email": "p@partner.example.evil"}) is Access.FORBIDDEN
    assert r.access({**ok, "email": "p@evilpartner.example"}) is Access.FORBIDDEN


def test_groups_and_email_domains_together_both_must_hold() -> None:
    r = rule(path="/", groups=["staff"], email_domains=["partner.example"])
    assert r.access({**STAFF, "email_verified": True}) is Access.ALLOW
    assert r.access({**ADMIN, "email_verified": True}) is Access.FORBIDDEN


def test_unauthenticated_choices() -> None:
    assert rule(path="/api/", unauthenticated="401").unauthenticated is Unauthenticated.UNAUTHORIZED
    assert rule(path="/blog", unauthenticated="allow").unauthenticated is Unauthenticated.ALLOW
    assert rule(path="/x").unauthenticated is Unauthenticated.LOGIN


# -- upstream selection ------------------------------------------------------------------------

UPSTREAMS = [
    {"name": "api", "url": "http://127.0.0.1:4001", "prefix": "/api"},
    {"name": "api-v2", "url": "http://127.0.0.1:4002", "prefix": "/api/v2"},
    {"name": "admin-host", "url": "http://127.0.0.1:4003", "host": "Admin.Example.com"},
    {"name": "files", "url": "http://127.0.0.1:4004", "prefix": "/files/", "strip_prefix": True},
]


@pytest.mark.parametrize(
    ("host", "path", "name"),
    [
        ("example.com", "/", "default"),
        ("example.com", "/api", "api"),
        ("example.com", "/api/v1/x", "api"),
        ("example.com", "/api/v2/x", "api-v2"),
        ("example.com", "/apix", "default"),
        ("admin.example.com", "/api/v2/x", "admin-host"),  # host first, then prefix
        ("ADMIN.example.com:8443", "/", "admin-host"),
        (None, "/api/v2", "api-v2"),
        ("example.com", "/files/a", "files"),
    ],
)
def test_host_then_longest_prefix_selects_the_upstream(
    host: str | None, path: str, name: str
) -> None:
    route = policy([], UPSTREAMS).select(host, path)
    assert route is not None and route.name == name


def test_strip_prefix_only_when_asked() -> None:
    p = policy([], UPSTREAMS)
    files = p.select("h", "/files/a/b")
    api = p.select("h", "/api/x")
    assert files is not None and files.upstream_path("/files/a/b") == "/a/b"
    assert api is not None and api.upstream_path("/api/x") == "/api/x"


def test_each_upstream_has_its_own_rules() -> None:
    p = policy(
        [{"path": "/", "public": True}],
        [{**UPSTREAMS[0], "rules": [{"path": "/api", "groups": ["admins"]}]}],
    )
    api = p.select("h", "/api/x")
    default = p.select("h", "/x")
    assert api is not None and api.rule_for("GET", "/api/x").groups == {"admins"}
    assert default is not None and default.rule_for("GET", "/x").public


# -- configuration errors name the setting ---------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"path": "([a-z", "match": "regex"}], "not a valid regular expression"),
        ([{"path": "admin"}], "must start with /"),
        ([{"path": "/x", "public": True, "groups": ["a"]}], "public rule cannot"),
        ([{"path": "/x", "unauthenticated": "allow", "groups": ["a"]}], "cannot be combined"),
        ([{"path": "/x", "unauthenticated": "maybe"}], "unauthenticated"),
        ([{"path": "/x", "methods": ["GET POST"]}], "not an HTTP method"),
        ([{"path": "/x", "grups": ["a"]}], "unknown setting"),
    ],
)
def test_bad_rules_are_config_errors_naming_the_setting(
    rules: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        policy(rules)
    text = str(info.value)
    assert "upstream.rules.0" in text and message in text


def test_duplicate_upstream_names_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="used twice"):
        policy([], [UPSTREAMS[0], {**UPSTREAMS[1], "name": "api"}])


def test_rules_from_env_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_UPSTREAM_RULES", '[{"path": "/health", "public": true}]')
    settings = load_settings(overrides=BASE)
    assert settings.upstream.rules[0].public


def _readme_yaml_blocks() -> list[str]:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Rules and headers", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)


def test_every_readme_rules_example_is_a_valid_configuration() -> None:
    blocks = _readme_yaml_blocks()
    assert len(blocks) >= 5
    for block in blocks:
        data = yaml.safe_load(block)
        data.get("assertion", {}).pop("key_file", None)  # a path on the operator's machine
        upstream = {**BASE["upstream"], **data.pop("upstream", {})}
        Policy.from_settings(load_settings(overrides={**BASE, **data, "upstream": upstream}))
