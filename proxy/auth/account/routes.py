"""Builds the account page from its sections (in the order the page shows them)."""

from __future__ import annotations

from aiohttp import web

from proxy.auth.account.activity import ActivitySection
from proxy.auth.account.base import LiveSession
from proxy.auth.account.devices import DevicesSection
from proxy.auth.account.methods import MethodsOptions, MethodsSection
from proxy.auth.account.page import AccountPage
from proxy.auth.account.passkeys import PasskeysSection
from proxy.auth.account.password import PasswordSection
from proxy.auth.account.profile import ProfileOptions, ProfileSection
from proxy.auth.account.sessions import SessionsSection
from proxy.auth.kit import AuthKit
from proxy.auth.regulation import Regulator
from proxy.auth.session_cards import SessionCards
from proxy.cognito.account import AccountApi, PasswordPolicy


class AccountRoutes:
    def __init__(
        self,
        kit: AuthKit,
        *,
        cards: SessionCards,
        api: AccountApi,
        live_session: LiveSession,
        regulator: Regulator,
        password_policy: PasswordPolicy,
        renew_session: LiveSession | None = None,
        profile: ProfileOptions | None = None,
        reauth_max_age: float = 300.0,
        methods: MethodsOptions | None = None,
        activity: bool = False,
        passkeys: bool = False,
    ) -> None:
        """``activity``: the Admin API is configured (IAM credentials): the sign-in history."""
        self.page = page = AccountPage(kit, live_session, reauth_max_age=reauth_max_age)
        if profile is not None:
            page.add(
                ProfileSection(
                    page, api=api, renew_session=renew_session or live_session, options=profile
                )
            )
        page.add(PasswordSection(page, api=api, regulator=regulator, policy=password_policy))
        if methods is not None:
            page.add(MethodsSection(page, api=api, options=methods))
        page.add(PasskeysSection(page, api=api, enabled=passkeys))
        page.add(DevicesSection(page, api=api))
        page.add(SessionsSection(page, cards=cards))
        if activity:
            page.add(ActivitySection(page, api=api))

    def register(self, router: web.UrlDispatcher) -> None:
        self.page.register(router)
