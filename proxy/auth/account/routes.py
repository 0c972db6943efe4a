"""Builds the account page from its sections (in the order the page shows them)."""

from __future__ import annotations

from aiohttp import web

from proxy.auth.account.base import LiveSession
from proxy.auth.account.devices import DevicesSection
from proxy.auth.account.page import AccountPage
from proxy.auth.account.password import PasswordSection
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
    ) -> None:
        self.page = page = AccountPage(kit, live_session)
        page.add(PasswordSection(page, api=api, regulator=regulator, policy=password_policy))
        page.add(DevicesSection(page, api=api))
        page.add(SessionsSection(page, cards=cards))

    def register(self, router: web.UrlDispatcher) -> None:
        self.page.register(router)
