"""The account page's profile in a real browser (Chromium through the proxy against the strict
double): a new email with its verification code, in a pool that keeps the original address in
effect until the code is entered."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page

from tests.e2e.helpers import ARTIFACTS, USER, Site, shot, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

NEW_EMAIL = "erin.new@example.com"


def _app_saw(site: Site, path: str) -> dict[str, str]:
    seen = [r for r in site.upstream.seen if r["path"] == path]
    assert seen, path
    headers: dict[str, str] = seen[-1]["headers"]
    return headers


async def test_change_the_email_with_its_code(new_context: Any, site: Site) -> None:
    site.double.set_keep_original_attributes(site.pool_id, ["email"])
    # The README's width (docs/images/account-profile.png is a copy of the section's shot).
    context = await new_context(viewport={"width": 560, "height": 720})
    page = await context.new_page()
    await page.goto(site.url("/_auth/account"))
    await page.wait_for_url(re.compile(re.escape(site.url("/_auth/login"))))
    await sign_in(page)
    await page.wait_for_url(site.url("/_auth/account"))
    email = page.get_by_role("group", name="Email")
    assert "erin@example.com" in await email.inner_text()

    await page.get_by_label("New email address").fill(NEW_EMAIL)
    await page.get_by_role("button", name="Change email").click()
    await page.wait_for_url(re.compile(r"done=code_sent"))
    assert "We sent a code." in await page.get_by_role("status").first.inner_text()
    # The old address is still the one in effect, for the page and for the app.
    text = await email.inner_text()
    assert "erin@example.com" in text and f"Waiting for its code: {NEW_EMAIL}." in text
    bottom = await page.locator("#profile").evaluate(
        "e => e.getBoundingClientRect().bottom + window.scrollY"
    )
    await page.screenshot(
        path=str(ARTIFACTS / "account-profile-pending.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": 560, "height": bottom + 12},
    )
    await page.goto(site.url("/before"))
    assert _app_saw(site, "/before")["X-Forwarded-Email"] == "erin@example.com"

    await page.goto(site.url("/_auth/account"))
    code = site.double.last_code(site.pool_id, USER, "EMAIL")
    assert code is not None
    await page.get_by_label("Verification code").fill("000000")
    await page.get_by_role("button", name="Verify").click()
    assert "That code is not right." in await email.inner_text()
    assert await page.get_by_label("Verification code").get_attribute("aria-invalid") == "true"
    # The cursor waits in the code field (not in the password section further down).
    assert await page.get_by_label("Verification code").evaluate(
        "e => e === document.activeElement"
    )

    await page.get_by_label("Verification code").fill(code)
    await page.get_by_role("button", name="Verify").click()
    await page.wait_for_url(re.compile(r"done=contact_verified"))
    text = await email.inner_text()
    assert NEW_EMAIL in text and "Verified" in text and "Waiting" not in text
    assert f"You are signed in as {NEW_EMAIL}." in await page.locator(".lede").inner_text()
    await shot(page, "account-profile")

    # The very next request to the app carries the new address.
    await page.goto(site.url("/after"))
    assert await page.inner_text("body") == "upstream saw GET /after"
    assert _app_saw(site, "/after")["X-Forwarded-Email"] == NEW_EMAIL


async def test_a_value_cognito_would_refuse_is_said_at_its_field(page: Page, site: Site) -> None:
    """The server's answer (400) marks the field and ties the error to it."""
    await page.goto(site.url("/_auth/account"))
    if "/_auth/login" in page.url:
        await sign_in(page)
        await page.wait_for_url(site.url("/_auth/account"))
    await page.get_by_label("Name", exact=True).fill("x" * 2049)
    await page.get_by_role("button", name="Save").click()
    field = page.get_by_label("Name", exact=True)
    assert await field.get_attribute("aria-invalid") == "true"
    error = page.locator("#" + str(await field.get_attribute("aria-describedby")))
    assert await error.inner_text() == "That is too long (2048 characters at most)."


async def test_the_profile_fits_a_phone(new_context: Any, site: Site) -> None:
    context = await new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = await context.new_page()
    await page.goto(site.url("/_auth/account"))
    await sign_in(page)
    await page.wait_for_url(site.url("/_auth/account"))
    assert await page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    box = await page.get_by_role("button", name="Change email").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    await shot(page, "account-profile-phone")
