"""Who may reach what: upstream selection and per-path rules, over the canonical path only.

Selection. ``upstreams`` entries with a ``host`` equal to the request's host are tried first,
then entries without a host, then the default ``upstream``; among the candidates the longest
matching ``prefix`` wins. Hosts are compared in one canonical form (:func:`canonical_host`): lower
case, port dropped, and a trailing dot dropped — ``admin.example.com.`` is the same name to DNS and
to every virtual-host server, so it must select the same upstream (and its rules).

Rules. Each upstream has an ordered list; the FIRST rule whose path, methods and case flag match
decides. No matching rule means: sign-in required, any signed-in user may pass. A request the app
may run as several methods (method-override headers it receives, see gate/outgoing.py) is judged
by the rule of each: :meth:`Route.rule_for_all` admits it only where every one of them would.

Path matching (always on :func:`proxy.gate.paths.canonical_path`, never on the query):

* ``prefix`` matches whole segments: ``/admin`` matches ``/admin``, ``/admin/`` and
  ``/admin/users`` but not ``/administrator`` (write ``/admin`` and ``/admin-panel`` as two rules,
  or a regex, to cover both). A prefix ending in ``/`` matches everything below it.
* ``exact`` matches the path exactly.
* ``regex`` must match the WHOLE path (``re.fullmatch``), so ``/api/v[0-9]+/.*`` cannot be
  satisfied by a path that merely contains it.
* ``case_insensitive: true`` compares case-folded, for apps that serve ``/Admin`` as ``/admin``.

What a rule grants. ``public: true``: anyone, no session lookup, no identity headers.
``groups``: any one of these Cognito groups. ``email_domains``: the exact domain of the ``email``
claim, and only when ``email_verified`` is true. Both set: both must hold. ``unauthenticated``
says what a request without a session gets: ``login`` (a browser is sent to the login page, an
API client gets 401), ``401`` (always 401), ``allow`` (forwarded without identity headers).
Step-up: ``max_auth_age: N`` wants the user's last interactive sign-in at most N seconds old (a
refresh does not count), ``require_mfa: true`` one that passed a second factor or a passkey; what
happens when a request does not meet them is gate/decision.py's ``step_up``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from proxy.settings import RouteSettings, RuleSettings, Settings, UpstreamSettings

__all__ = [
    "Access",
    "AllRules",
    "Policy",
    "Route",
    "Rule",
    "Unauthenticated",
    "canonical_host",
    "prefix_matches",
]


class Unauthenticated(Enum):
    LOGIN = "login"
    UNAUTHORIZED = "401"
    ALLOW = "allow"


class Access(Enum):
    ALLOW = "allow"
    FORBIDDEN = "forbidden"


def prefix_matches(prefix: str, path: str) -> bool:
    """Whole-segment prefix match (see the module doc)."""
    if not path.startswith(prefix):
        return False
    return prefix.endswith("/") or len(path) == len(prefix) or path[len(prefix)] == "/"


@dataclass(frozen=True)
class Rule:
    path: str
    match: str = "prefix"
    methods: frozenset[str] | None = None
    case_insensitive: bool = False
    public: bool = False
    groups: frozenset[str] = frozenset()
    email_domains: frozenset[str] = frozenset()
    unauthenticated: Unauthenticated = Unauthenticated.LOGIN
    pattern: re.Pattern[str] | None = None
    # Step-up (gate/decision.py step_up): the last interactive sign-in at most this old (s),
    # and/or one that passed a second factor.
    max_auth_age: int | None = None
    require_mfa: bool = False

    @classmethod
    def from_settings(cls, rule: RuleSettings) -> Rule:
        flags = re.IGNORECASE if rule.case_insensitive else 0
        fold = rule.case_insensitive and rule.match != "regex"
        path = rule.path.casefold() if fold else rule.path
        return cls(
            path=path,
            match=rule.match,
            methods=frozenset(m.upper() for m in rule.methods) if rule.methods else None,
            case_insensitive=rule.case_insensitive,
            public=rule.public,
            groups=frozenset(rule.groups),
            email_domains=frozenset(d.lower().lstrip("@") for d in rule.email_domains),
            unauthenticated=Unauthenticated(rule.unauthenticated),
            pattern=re.compile(rule.path, flags) if rule.match == "regex" else None,
            max_auth_age=rule.max_auth_age,
            require_mfa=rule.require_mfa,
        )

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if self.pattern is not None:
            return self.pattern.fullmatch(path) is not None
        subject = path.casefold() if self.case_insensitive else path
        if self.match == "exact":
            return subject == self.path
        return prefix_matches(self.path, subject)

    def access(self, claims: Mapping[str, Any]) -> Access:
        """May the signed-in user with these (verified ID token) claims pass?"""
        if self.groups:
            groups = claims.get("cognito:groups")
            if not isinstance(groups, list) or self.groups.isdisjoint(
                g for g in groups if isinstance(g, str)
            ):
                return Access.FORBIDDEN
        if self.email_domains and verified_email_domain(claims) not in self.email_domains:
            return Access.FORBIDDEN
        return Access.ALLOW


DEFAULT_RULE = Rule(path="/")


@dataclass(frozen=True)
class AllRules:
    """Several rules that must all admit a request: the strictest answer of each question."""

    rules: tuple[Rule, ...]

    @property
    def public(self) -> bool:
        return all(rule.public for rule in self.rules)

    @property
    def unauthenticated(self) -> Unauthenticated:
        # A public rule lets anonymous requests through, like "allow"; the others refuse them.
        refusals = {r.unauthenticated for r in self.rules if not r.public}
        refusals.discard(Unauthenticated.ALLOW)
        if not refusals:
            return Unauthenticated.ALLOW
        if Unauthenticated.UNAUTHORIZED in refusals:
            return Unauthenticated.UNAUTHORIZED
        return Unauthenticated.LOGIN

    @property
    def max_auth_age(self) -> int | None:
        ages = [r.max_auth_age for r in self.rules if r.max_auth_age is not None]
        return min(ages) if ages else None

    @property
    def require_mfa(self) -> bool:
        return any(r.require_mfa for r in self.rules)

    def access(self, claims: Mapping[str, Any]) -> Access:
        for rule in self.rules:
            if rule.access(claims) is Access.FORBIDDEN:
                return Access.FORBIDDEN
        return Access.ALLOW


def verified_email_domain(claims: Mapping[str, Any]) -> str | None:
    """The domain of ``email`` when ``email_verified`` is true (bool or the string "true")."""
    verified = claims.get("email_verified")
    if verified is not True and verified != "true":
        return None
    email = claims.get("email")
    if not isinstance(email, str):
        return None
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        return None
    return domain.lower()


@dataclass(frozen=True)
class Route:
    """One upstream: where it is, which requests it takes, and its rules."""

    name: str
    upstream: UpstreamSettings | None = None  # where to build its Forwarder from (app.py)
    prefix: str = "/"
    host: str | None = None
    strip_prefix: bool = False
    rules: tuple[Rule, ...] = ()

    def rule_for(self, method: str, path: str) -> Rule:
        for rule in self.rules:
            if rule.matches(method, path):
                return rule
        return DEFAULT_RULE

    def rule_for_all(self, methods: Collection[str], path: str) -> Rule | AllRules:
        """The rule for ``path`` under each of ``methods``, all of which must admit a request."""
        if len(methods) == 1:
            return self.rule_for(next(iter(methods)), path)
        rules = tuple(dict.fromkeys(self.rule_for(m, path) for m in sorted(methods)))
        return rules[0] if len(rules) == 1 else AllRules(rules)

    def upstream_path(self, path: str) -> str:
        """The path the upstream receives: ``path``, minus the prefix with ``strip_prefix``."""
        if not self.strip_prefix or self.prefix == "/":
            return path
        rest = path[len(self.prefix.rstrip("/")) :]
        return rest if rest.startswith("/") else "/" + rest


class Policy:
    def __init__(self, routes: Sequence[Route]) -> None:
        if not routes:
            raise ValueError("at least one upstream is needed")
        # Host-bound routes first, then longest prefix: the first match below is the best.
        self.routes = tuple(sorted(routes, key=lambda r: (r.host is None, -len(r.prefix))))

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        default = Route(
            name="default",
            upstream=settings.upstream,
            rules=tuple(Rule.from_settings(r) for r in settings.upstream.rules),
        )
        extra = [_route(r) for r in settings.upstreams]
        return cls([*extra, default])

    def select(self, host: str | None, path: str) -> Route | None:
        """The route for this host and canonical path, or None when nothing claims it."""
        name = canonical_host(host)
        for route in self.routes:
            if route.host is not None and route.host != name:
                continue
            if prefix_matches(route.prefix, path):
                return route
        return None


def _route(settings: RouteSettings) -> Route:
    return Route(
        name=settings.name,
        upstream=settings,
        prefix=settings.prefix,
        host=canonical_host(settings.host),
        strip_prefix=settings.strip_prefix,
        rules=tuple(Rule.from_settings(r) for r in settings.rules),
    )


def canonical_host(host: str | None) -> str | None:
    """``Admin.Example.COM.:8443`` → ``admin.example.com``; IPv6 literals keep their brackets.

    One trailing dot goes (the absolute form of the same DNS name); anything else that is not a
    plain name stays as sent and so matches no host-bound upstream.
    """
    if not host:
        return None
    if host.startswith("["):
        return host[: host.find("]") + 1].lower()
    name = host.rsplit(":", 1)[0].lower()
    return name[:-1] if name.endswith(".") else name
