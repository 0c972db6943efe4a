"""What every section of the account page shares: who is looking (``Viewer``), how times are
shown, and the section protocol the page assembles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from proxy.cognito.errors import CognitoError
from proxy.sessions.session import Session

# The session behind a cookie with tokens fresh enough to call Cognito (the gate's Identity:
# the one refresh path, single-flight under the session's lease), None when it is gone.
# Raises errors.Unavailable when the tokens expired and cannot be refreshed now.
LiveSession = Callable[[str], Awaitable[Session | None]]


def when(moment: float) -> dict[str, Any]:
    """A time as the page shows it: machine-readable and in UTC (the server knows no zone)."""
    at = datetime.fromtimestamp(moment, UTC)
    return {
        "iso": at.isoformat(timespec="seconds"),
        "text": at.strftime("%Y-%m-%d %H:%M UTC"),
        "t": moment,
    }


@dataclass(slots=True)
class Viewer:
    """The signed-in browser looking at (or posting to) the account page."""

    cookie: str
    session: Session
    _live: LiveSession
    _fresh: Session | None = field(default=None, repr=False)
    _user: dict[str, Any] | CognitoError | None = field(default=None, repr=False)

    async def live(self) -> Session | None:
        """The session with tokens Cognito accepts now, refreshed at most once per request
        however many sections call Cognito."""
        if self._fresh is None:
            self._fresh = await self._live(self.cookie)
        return self._fresh

    async def cognito_user(
        self, get_user: Callable[[str], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """GetUser's answer for the page being drawn, asked once (its failure too) however
        many sections read it. Handlers that change the user ask Cognito themselves."""
        if self._user is None:
            try:
                live = await self.live()
                self._user = await get_user((live or self.session).access_token)
            except CognitoError as exc:
                self._user = exc
        if isinstance(self._user, CognitoError):
            raise self._user
        return self._user


class Section(Protocol):
    """One section of the account page: its routes, its notices and what it shows."""

    @property
    def name(self) -> str:
        """The anchor (#name) and the template account/_<name>.html."""
        ...

    @property
    def notices(self) -> Mapping[str, str]:
        """?done=<key> → the i18n key said at the top of the page after a form."""
        ...

    def register(self, router: web.UrlDispatcher) -> None: ...

    async def view(
        self, request: web.Request, viewer: Viewer, error: str | None
    ) -> dict[str, Any] | None:
        """The template's variables (``v``), or None: hidden for this user or pool."""
        ...
