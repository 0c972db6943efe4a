"""The passkey page (USER_AUTH, WEB_AUTHN) in Chromium: what a person sees before and after the
browser's passkey prompt fails, with JavaScript on and off. And the account page's passkeys
with Chromium's own virtual authenticator (CDP WebAuthn): add one, sign out, sign in with it,
delete it.

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
from tests.e2e.helpers import ARTIFACTS, Site, assert_accessible_as_seen, shot
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


# ---- the account page: a passkey made by Chromium's virtual authenticator ---------------------

ACCOUNT_USER, ACCOUNT_PASSWORD = "kai", "Account-passkey-4!"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def localhost_site(double: CognitoDouble, site: Site) -> AsyncIterator[Site]:
    """A USER_AUTH proxy seen at http://localhost:<port>: a relying party id must be a domain
    (not 127.0.0.1), and localhost is a secure context over plain http."""
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True, flows={"USER_AUTH"})
    double.add_user(
        pool_id, ACCOUNT_USER, ACCOUNT_PASSWORD, attributes={"email": "kai@example.com"}
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
        base = base.replace("127.0.0.1", "localhost")
        double.set_user_auth(
            pool_id,
            ("PASSWORD", "WEB_AUTHN"),
            relying_party_id="localhost",
            allowed_origins=(base,),
        )
        yield Site(base, site.upstream, double, pool_id, site.redis_url)


async def _virtual_authenticator(page: Page) -> tuple[Any, str]:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


async def _username(page: Page, site: Site) -> None:
    await page.goto(site.url("/_auth/login"))
    await page.fill("#username", ACCOUNT_USER)
    await page.click("button[type=submit]")
    await page.locator("#password").wait_for()


async def test_add_a_passkey_sign_out_sign_in_with_it_and_delete_it(
    new_context: Any, localhost_site: Site
) -> None:
    site = localhost_site
    # The README's width (docs/images/account-passkeys.png is a copy of the section's shot).
    context = await new_context(viewport={"width": 560, "height": 900})
    page = await context.new_page()
    cdp, authenticator = await _virtual_authenticator(page)
    await _username(page, site)
    await page.fill("#password", ACCOUNT_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(site.url("/"))

    await page.goto(site.url("/_auth/account"))
    section = page.locator("#passkeys")
    assert "You have no passkeys yet." in await section.inner_text()
    add = page.get_by_role("button", name="Add a passkey")
    await add.wait_for()  # passkeys.js showed the form: this browser can make passkeys
    await assert_accessible_as_seen(new_context, page, "account-passkeys-empty")
    await add.click()
    # The next page opens the browser's prompt by itself; the virtual authenticator answers.
    await page.wait_for_url("**/_auth/account?done=passkey_added#passkeys")
    assert "Your passkey is added." in await page.locator("#account-notice").inner_text()
    assert await section.get_by_role("button", name="Delete").count() == 1
    (credential,) = (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator}))[
        "credentials"
    ]
    assert credential["rpId"] == "localhost" and credential["isResidentCredential"]
    assert site.double.user_info(site.pool_id, ACCOUNT_USER)["passkeys"] == 1
    await shot(page, "account-passkeys")
    await section.screenshot(path=str(ARTIFACTS / "account-passkeys-section.png"))
    await assert_accessible_as_seen(new_context, page, "account-passkeys")
    await page.goto(site.url("/_auth/account?lang=ja"))
    assert "パスキーを追加" in await section.inner_text()
    await assert_accessible_as_seen(new_context, page, "account-passkeys-ja")

    # Sign out, then sign in with the passkey alone.
    await page.goto(site.url("/_auth/logout"))
    await page.locator("form button[type=submit]").first.click()
    await page.wait_for_load_state()
    await _username(page, site)
    await page.get_by_role("button", name="passkey").click()
    await page.locator("#webauthn-start").click()
    await page.wait_for_url(site.url("/"))
    assert await page.context.cookies()  # signed in: the app's page is shown

    await page.goto(site.url("/_auth/account"))
    await section.get_by_role("button", name="Delete").click()
    await page.wait_for_url("**/_auth/account?done=passkey_deleted#passkeys")
    assert "You have no passkeys yet." in await section.inner_text()
    assert site.double.user_info(site.pool_id, ACCOUNT_USER)["passkeys"] == 0


async def test_without_javascript_the_add_button_explains_and_delete_works(
    new_context: Any, localhost_site: Site
) -> None:
    site = localhost_site
    key = SoftwareAuthenticator("localhost", origin=site.base)
    site.double.register_passkey(
        site.pool_id, ACCOUNT_USER, key.credential_id, key.public_key, "localhost"
    )
    context = await new_context(java_script_enabled=False)
    page = await context.new_page()
    await _username(page, site)
    await page.fill("#password", ACCOUNT_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(site.url("/"))
    await page.goto(site.url("/_auth/account"))
    section = page.locator("#passkeys")
    assert await page.locator("#passkeys-noscript").is_visible()
    assert "needs JavaScript" in await page.locator("#passkeys-noscript").inner_text()
    assert not await page.get_by_role("button", name="Add a passkey").is_visible()
    await section.get_by_role("button", name="Delete").click()
    await page.wait_for_url("**/_auth/account?done=passkey_deleted#passkeys")
    assert site.double.user_info(site.pool_id, ACCOUNT_USER)["passkeys"] == 0
