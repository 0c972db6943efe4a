"""The passkey page (USER_AUTH, WEB_AUTHN) in Chromium: what a person sees before and after the
browser's passkey prompt fails, with JavaScript on and off.

The error box carries ``hidden`` until webauthn.js fills it; gate.css gives ``.message`` a
display, which beats the browser's own ``[hidden]`` rule unless gate.css restores it (issue 19).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from proxy.devtools.webauthn import SoftwareAuthenticator
from tests.e2e.helpers import Site, shot
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import proxy_settings, running_proxy

pytestmark = pytest.mark.asyncio(loop_scope="session")

PASSKEY_USER, PASSKEY_PASSWORD = "pia", "Passkey-user-pass-3!"
RP_ID = "gate.example"

# The passkey prompt refused (the user pressed Cancel): navigator.credentials.get rejects.
REFUSE_PASSKEY = """
navigator.credentials.get = () =>
  Promise.reject(new DOMException("The operation either timed out or was not allowed.",
                                  "NotAllowedError"));
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def passkey_site(double: CognitoDouble, site: Site) -> AsyncIterator[Site]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True, flows={"USER_AUTH"})
    double.add_user(
        pool_id, PASSKEY_USER, PASSKEY_PASSWORD, attributes={"email": "pia@example.com"}
    )
    settings = proxy_settings(
        upstream_url=site.upstream.url,
        pool_id=pool_id,
        client_id=client_id,
        client_secret=secret,
        endpoint_url=double.url,
        jwks_url=double.jwks_url(pool_id),
        issuer=double.issuer(pool_id),
        store_url=site.redis_url,
        auth_flow="USER_AUTH",
    )
    async with running_proxy(settings) as base:
        double.set_user_auth(
            pool_id, ("PASSWORD", "WEB_AUTHN"), relying_party_id=RP_ID, allowed_origins=(base,)
        )
        key = SoftwareAuthenticator(RP_ID, origin=base)
        double.register_passkey(pool_id, PASSKEY_USER, key.credential_id, key.public_key, RP_ID)
        yield Site(base, site.upstream, double, pool_id, site.redis_url)


async def _open_passkey_page(page: Page, site: Site) -> None:
    await page.goto(site.url("/_auth/login"))
    await page.fill("#username", PASSKEY_USER)
    await page.click("button[type=submit]")
    await page.get_by_role("button", name="passkey").click()
    await page.locator("#webauthn-form").wait_for()


async def test_no_empty_error_box_before_the_passkey_prompt(
    new_context: Any, passkey_site: Site
) -> None:
    context = await new_context()
    await context.add_init_script(REFUSE_PASSKEY)
    page = await context.new_page()
    await _open_passkey_page(page, passkey_site)
    error = page.locator("#passkey-error")
    assert await error.get_attribute("hidden") is not None
    assert not await error.is_visible()
    await shot(page, "passkey")

    # The prompt fails: the same box shows, with the message in it.
    await page.click("#webauthn-start")
    await error.wait_for(state="visible")
    assert "passkey" in (await error.inner_text()).lower()
    assert await page.locator("#webauthn-start").is_enabled()  # the user can try again


async def test_passkey_page_without_javascript_shows_only_the_explanation(
    new_context: Any, passkey_site: Site
) -> None:
    context = await new_context(java_script_enabled=False)
    page = await context.new_page()
    await _open_passkey_page(page, passkey_site)
    assert not await page.locator("#passkey-error").is_visible()
    assert await page.locator("#passkey-noscript").is_visible()
