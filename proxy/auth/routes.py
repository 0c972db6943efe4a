"""Everything under the auth prefix, assembled: the shared kit and one handler module per page
family (login, logout, challenges and devices, recovery). Wiring only."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from aiohttp import web

from proxy.auth.account.base import LiveSession
from proxy.auth.account.methods import MethodsOptions
from proxy.auth.account.profile import ProfileOptions
from proxy.auth.account.routes import AccountRoutes
from proxy.auth.challenge_routes import ChallengeRoutes
from proxy.auth.completion import Completion
from proxy.auth.devices import DeviceStore
from proxy.auth.flow import Authenticator
from proxy.auth.kit import AuthKit
from proxy.auth.login_routes import LoginRoutes
from proxy.auth.logout_routes import LogoutRoutes
from proxy.auth.pages import Pages, static_dir
from proxy.auth.prelogin import PreLoginTokens
from proxy.auth.recovery_routes import RecoveryRoutes
from proxy.auth.regulation import Regulator
from proxy.auth.session_cards import SessionCards
from proxy.cognito.account import AccountApi, PasswordPolicy
from proxy.cognito.client import CognitoClient
from proxy.cookies import OurCookies
from proxy.refresh import Refresher
from proxy.sessions.sealed import SealedStore
from proxy.sessions.session import SessionManager


class AuthRoutes:
    def __init__(
        self,
        *,
        prefix: str,
        pages: Pages,
        sessions: SessionManager,
        flows: SealedStore,
        prelogin_key: bytes,
        authenticator: Authenticator,
        cognito: CognitoClient,
        refresher: Refresher,
        cookies: OurCookies,
        csrf_key: bytes,
        login_timeout: float,
        allowed_redirect_origins: Collection[str] = (),
        remember_lifetime: float = 0.0,
        regulator: Regulator,
        body_timeout: float = 15.0,
        devices: DeviceStore | None = None,
        cards: SessionCards | None = None,
        live_session: LiveSession | None = None,
        password_policy: PasswordPolicy | None = None,
        renew_session: LiveSession | None = None,
        profile: ProfileOptions | None = None,
        reauth_max_age: float = 300.0,
        methods: MethodsOptions | None = None,
        passkeys: bool = False,
    ) -> None:
        """``cards``: the sessions' cards; None turns the account page off. ``live_session``:
        a cookie's session with fresh tokens (the gate's Identity; default: load only);
        ``renew_session``: new tokens now (after the user's attributes changed); ``profile``:
        the account page's profile section (None: none); ``methods``: its sign-in methods
        section (None: none)."""
        self.prefix = prefix
        self._pages = pages
        self.kit = AuthKit(
            prefix=prefix,
            pages=pages,
            sessions=sessions,
            flows=flows,
            tokens=PreLoginTokens(prelogin_key, login_timeout),
            cookies=cookies,
            csrf_key=csrf_key,
            login_timeout=login_timeout,
            body_timeout=body_timeout,
            remember=bool(remember_lifetime),
            # USER_AUTH asks for the factor after the username; CUSTOM_AUTH may run SRP first.
            password_mode={"USER_AUTH": "none", "CUSTOM_AUTH": "optional"}.get(
                cognito.auth_flow, "required"
            ),
        )
        completion = Completion(
            self.kit,
            devices=devices,
            remember_lifetime=remember_lifetime,
            cards=cards,
            revoke=refresher.revoke,
        )
        self._families: tuple[Any, ...] = (
            LoginRoutes(
                self.kit,
                authenticator=authenticator,
                completion=completion,
                regulator=regulator,
                remember=bool(remember_lifetime),
            ),
            ChallengeRoutes(self.kit, authenticator=authenticator, completion=completion),
            RecoveryRoutes(self.kit, cognito=cognito),
            LogoutRoutes(
                self.kit,
                cognito=cognito,
                refresher=refresher,
                allowed_redirect_origins=allowed_redirect_origins,
                account=cards is not None,
            ),
        )

        if cards is not None:
            self._families += (
                AccountRoutes(
                    self.kit,
                    cards=cards,
                    api=AccountApi(cognito),
                    live_session=live_session or sessions.load,
                    regulator=regulator,
                    password_policy=password_policy or PasswordPolicy(),
                    renew_session=renew_session,
                    profile=profile,
                    reauth_max_age=reauth_max_age,
                    methods=methods,
                    # The sign-in history needs the Admin API (IAM), which only admin mode has.
                    activity=cognito.admin,
                    passkeys=passkeys,
                ),
            )
        self.account = cards is not None

    def error_page(self, request: web.Request, status: int, key: str) -> web.Response:
        """Our branded error page (the gate answers 503 with it too)."""
        return self.kit.error_page(request, status, key)

    def register(self, router: web.UrlDispatcher) -> None:
        for family in self._families:
            family.register(router)
        router.add_get(f"{self.prefix}/static/brand.css", self.brand_css)
        router.add_static(f"{self.prefix}/static", static_dir(), append_version=False)

    async def brand_css(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text=self._pages.brand_css(),
            content_type="text/css",
            headers={"Cache-Control": "public, max-age=300"},
        )
