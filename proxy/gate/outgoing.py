"""Everything the gate adds to a forwarded request, and every name it strips from clients.

Identity headers (the preset plus ``headers.extra``), the raw tokens when asked for
(``X-Forwarded-Access-Token``; ``Authorization: Bearer <id token>``), and the signed assertion.
Each name the gate may set is reserved in every spelling, so a client's copy is dropped on every
route, public ones included, before ours are appended; so are the URL- and address-overriding
headers in ``CLIENT_FORBIDDEN``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proxy.gate.assertion import AssertionSigner
from proxy.gate.headers import HeaderPlan
from proxy.sessions.session import Session

__all__ = ["ACCESS_TOKEN_HEADER", "CLIENT_FORBIDDEN", "Outgoing"]

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


@dataclass(frozen=True)
class Outgoing:
    plan: HeaderPlan
    pass_access_token: bool = False
    id_token_as_authorization: bool = False
    signer: AssertionSigner | None = None
    assertion_header: str = "X-Gate-Assertion"
    audience: str | None = None  # None: the upstream's name

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
    ) -> Outgoing:
        names = [ACCESS_TOKEN_HEADER, assertion_header, *CLIENT_FORBIDDEN]
        if id_token_as_authorization:
            names.append("Authorization")  # replaced, never merged with the client's
        return cls(
            plan=plan.reserving(*names),
            pass_access_token=pass_access_token,
            id_token_as_authorization=id_token_as_authorization,
            signer=signer,
            assertion_header=assertion_header,
            audience=audience,
        )

    def is_reserved(self, header_name: str) -> bool:
        return self.plan.is_reserved(header_name)

    def claims_headers(
        self, claims: Mapping[str, Any], upstream: str, *, cache_key: str
    ) -> list[tuple[str, str]]:
        """For a verified bearer token: identity headers and the assertion, no stored tokens."""
        out = self.plan.identity_headers(claims)
        if self.signer is not None:
            token = self.signer.assertion(
                claims, audience=self.audience or upstream, cache_key=cache_key
            )
            out.append((self.assertion_header, token))
        return out

    def headers(self, session: Session, upstream: str) -> Sequence[tuple[str, str]]:
        out = self.plan.identity_headers(session.claims)
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
