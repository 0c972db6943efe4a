"""Everything the gate adds to a forwarded request, and every name it strips from clients.

Identity headers (the preset plus ``headers.extra``), the raw tokens when asked for
(``X-Forwarded-Access-Token``; ``Authorization: Bearer <id token>``), and the signed assertion.
Each name the gate may set is reserved in every spelling, so a client's copy is dropped on every
route, public ones included, before ours are appended; so are the URL- and address-overriding
headers in ``CLIENT_FORBIDDEN`` and, unless ``headers.pass_method_override`` lets them through,
the method-override headers (``METHOD_OVERRIDE``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDictProxy

from proxy.gate.assertion import AssertionSigner
from proxy.gate.headers import HeaderPlan, canonical_name
from proxy.sessions.session import Session

__all__ = [
    "ACCESS_TOKEN_HEADER",
    "CLIENT_FORBIDDEN",
    "METHOD_OVERRIDE",
    "BadOverride",
    "Outgoing",
    "override_methods",
]

ACCESS_TOKEN_HEADER = "X-Forwarded-Access-Token"  # noqa: S105 (a header name)

# Headers apps and frameworks read as "the original URL / client" that only a proxy may set:
# X-Original-URL / X-Rewrite-URL make IIS and Symfony serve another path than the one we
# authorised; the rest would let a client pose as another address or scheme. The forwarder
# writes X-Forwarded-For/-Proto/-Host itself; these are simply never passed on.
CLIENT_FORBIDDEN = (
    "Forwarded",
    "X-Real-IP",
    "X-Client-IP",
    "True-Client-IP",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Forwarded-Server",
    "X-Forwarded-Uri",
    "X-Original-URI",
    "X-Original-URL",
    "X-Rewrite-URL",
)

# Headers with which Express (method-override), ASP.NET Core, Laravel, Symfony, OData servers and
# others run a POST as the method they name: a rule limiting DELETE would judge a POST the app
# then treats as DELETE. Stripped by default, in every spelling, like X-Original-URL.
METHOD_OVERRIDE = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")
_OVERRIDE_NAMES = frozenset(canonical_name(n) for n in METHOD_OVERRIDE)
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Identity headers remembered per token (see Outgoing._identity); past this many, forgotten all.
_MEMO_MAX = 4096


class BadOverride(ValueError):
    """A method-override header whose value is not a method: the request gets 400."""


def override_methods(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """Every method the request's override headers name (any spelling, every copy, every
    comma-separated item, upper-cased: frameworks differ on which one they take, so a rule
    must admit all of them). Raises :class:`BadOverride` for a value that is not a method."""
    found: set[str] = set()
    for name, value in headers.items():
        if canonical_name(name) not in _OVERRIDE_NAMES:
            continue
        for item in value.split(","):
            method = item.strip().upper()
            if not _METHOD.fullmatch(method):
                raise BadOverride(f"{name} does not name a method")
            found.add(method)
    return frozenset(found)


@dataclass(frozen=True)
class Outgoing:
    plan: HeaderPlan
    pass_access_token: bool = False
    id_token_as_authorization: bool = False
    signer: AssertionSigner | None = None
    assertion_header: str = "X-Gate-Assertion"
    audience: str | None = None  # None: the upstream's name
    pass_method_override: bool = False
    # token -> its identity headers: a token's claims never change, so neither do they.
    _memo: dict[str, tuple[tuple[str, str], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def build(
        cls,
        plan: HeaderPlan,
        *,
        pass_access_token: bool = False,
        id_token_as_authorization: bool = False,
        signer: AssertionSigner | None = None,
        assertion_header: str = "X-Gate-Assertion",
        audience: str | None = None,
        pass_method_override: bool = False,
    ) -> Outgoing:
        names = [ACCESS_TOKEN_HEADER, assertion_header, *CLIENT_FORBIDDEN]
        if not pass_method_override:
            names.extend(METHOD_OVERRIDE)
        if id_token_as_authorization:
            names.append("Authorization")  # replaced, never merged with the client's
        return cls(
            plan=plan.reserving(*names),
            pass_access_token=pass_access_token,
            id_token_as_authorization=id_token_as_authorization,
            signer=signer,
            assertion_header=assertion_header,
            audience=audience,
            pass_method_override=pass_method_override,
        )

    def judged_methods(self, method: str, headers: CIMultiDictProxy[str]) -> frozenset[str]:
        """The methods the rules must admit: the request's own and, when override headers reach
        the app, every method they name (see :func:`override_methods`)."""
        if not self.pass_method_override:
            return frozenset((method,))
        return override_methods(headers) | {method}

    def is_reserved(self, header_name: str) -> bool:
        return self.plan.is_reserved(header_name)

    def claims_headers(
        self, claims: Mapping[str, Any], upstream: str, *, cache_key: str
    ) -> list[tuple[str, str]]:
        """For a verified bearer token: identity headers and the assertion, no stored tokens."""
        out = self._identity(claims, cache_key)
        if self.signer is not None:
            token = self.signer.assertion(
                claims, audience=self.audience or upstream, cache_key=cache_key
            )
            out.append((self.assertion_header, token))
        return out

    def headers(self, session: Session, upstream: str) -> Sequence[tuple[str, str]]:
        out = self._identity(session.claims, session.id_token)
        if self.pass_access_token:
            out.append((ACCESS_TOKEN_HEADER, session.access_token))
        if self.id_token_as_authorization:
            out.append(("Authorization", f"Bearer {session.id_token}"))
        if self.signer is not None:
            token = self.signer.assertion(
                session.claims, audience=self.audience or upstream, cache_key=session.id_token
            )
            out.append((self.assertion_header, token))
        return out

    def _identity(self, claims: Mapping[str, Any], token: str) -> list[tuple[str, str]]:
        """``plan.identity_headers(claims)`` for the claims of ``token`` (a session's ID token
        or a verified bearer token), worked out once per token: the claims are the token's,
        so the headers are the same on every request that carries it."""
        if not token:
            return self.plan.identity_headers(claims)  # nothing to tell one caller by
        memo = self._memo
        found = memo.get(token)
        if found is None:
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            found = memo[token] = tuple(self.plan.identity_headers(claims))
        return list(found)
