"""Helpers for end-to-end challenge tests: a browser that reads our pages' forms, TOTP codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import aiohttp

from proxy.devtools.cognito_double import CognitoDouble
from tests.support.stack import Browser, cognito_kwargs, proxy_settings, running_proxy


class Doc(HTMLParser):
    """Every start tag with its attributes, and the visible text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text_parts: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text_parts.append(data.strip())

    @property
    def text(self) -> str:
        return " ".join(self.text_parts)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]

    def input(self, name: str) -> dict[str, str | None]:
        found = self.find("input", name=name)
        assert len(found) == 1, (name, found)
        return found[0]

    def csrf(self) -> str:
        value = self.find("input", name="csrf")[0]["value"]
        assert value
        return value


@dataclass
class Page:
    status: int
    url: str
    html: str
    doc: Doc
    location: str | None = None


class FlowBrowser(Browser):
    """A Browser that follows our redirects and keeps the last page it saw."""

    async def open(self, path: str, **kw: Any) -> Page:
        resp = await self.get(path, **kw)
        return await self._page(resp)

    async def _page(self, resp: aiohttp.ClientResponse) -> Page:
        html = await resp.text()
        return Page(resp.status, str(resp.url), html, Doc(html), resp.headers.get("Location"))

    async def submit(self, path: str, fields: dict[str, str], *, csrf: str) -> Page:
        resp = await self.post(path, {"csrf": csrf, **fields})
        return await self._page(resp)

    async def follow(self, page: Page) -> Page:
        """After a 303 from our pages, GET the location (relative to the proxy)."""
        assert page.status == 303, (page.status, page.doc.text[:300])
        assert page.location is not None
        return await self.open(page.location)

    async def sign_in(self, username: str, password: str, *, lang: str | None = None) -> Page:
        """Open the login page, post the credentials; return the answer (a 303 or a page)."""
        q = f"?lang={lang}" if lang else ""
        login = await self.open(f"/_auth/login{q}")
        assert login.status == 200
        return await self.submit(
            f"/_auth/login{q}",
            {"username": username, "password": password},
            csrf=login.doc.csrf(),
        )

    async def answer(
        self, page: Page, fields: dict[str, str], path: str = "/_auth/challenge"
    ) -> Page:
        return await self.submit(path, fields, csrf=page.doc.csrf())


def pool_kwargs(
    double: CognitoDouble, pool_id: str, client_id: str, secret: str | None
) -> dict[str, Any]:
    return cognito_kwargs(double, pool_id, client_id, secret)


@asynccontextmanager
async def flow_browser(**settings_kw: Any) -> AsyncIterator[FlowBrowser]:
    async with running_proxy(proxy_settings(**settings_kw)) as base:
        browser = FlowBrowser(base)
        try:
            yield browser
        finally:
            await browser.close()
