"""What a sign-in step comes to: the page or redirect the handlers turn it into."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.cognito.client import NewDevice
from proxy.sessions.session import Session


@dataclass(frozen=True)
class SignedIn:
    session: Session
    # Cognito tracks this browser as a new device: confirm it (refresh needs its key).
    new_device: NewDevice | None = None


@dataclass(frozen=True)
class Rejected:
    """Show the login form again with a message (an i18n key) and HTTP status."""

    message: str
    status: int
    user_id: str | None = None  # Cognito's internal username, when a failed step named it
    retry_after: float | None = None  # seconds, for "try again later"


@dataclass(frozen=True)
class NeedsChallenge:
    name: str
    cognito_session: str | None
    parameters: dict[str, str]


@dataclass(frozen=True)
class Retry:
    """Show the same challenge page again with a message; Cognito still accepts answers."""

    message: str
    status: int


@dataclass(frozen=True)
class Restart:
    """The sign-in cannot go on (its Cognito session expired or was refused): start again."""

    message: str


@dataclass(frozen=True)
class Detour:
    """Cognito wants another flow first: ``page`` is "forgot" (PasswordResetRequired) or
    "confirm" (UserNotConfirmed); ``username`` is the one to carry there."""

    page: str
    username: str


@dataclass(frozen=True)
class Broken:
    """Nothing the user can do: an error page (unknown challenge, misconfiguration)."""

    message: str
    status: int


@dataclass(frozen=True)
class Blocked(Broken):
    """Cognito's threat protection blocked the sign-in: a page saying so (and an audit event),
    never the wrong-password words, and nothing asked of Cognito again."""


Step = SignedIn | Rejected | NeedsChallenge | Retry | Restart | Detour | Broken
