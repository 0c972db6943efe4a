"""The account page's recent activity in Chromium (issue 16.6): on the Admin API with threat
protection, a failed and a successful sign-in listed with their risk; "This wasn't me" reports
the failed one; axe finds nothing serious in English and Japanese, light and dark."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.helpers import Site, assert_accessible_as_seen, shot, sign_in
from tests.support.cognito_double import CognitoDouble
from tests.support.stack import proxy_settings, running_proxy

pytestmark = pytest.mark.asyncio(loop_scope="session")

UMA, UMA_PASSWORD = "uma", "Uma-activity-1!"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def admin_site(double: CognitoDouble, site: Site) -> AsyncIterator[Site]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, UMA, UMA_PASSWORD, attributes={"email": "uma@example.com"})
    double.set_threat_protection(pool_id, mode="AUDIT")
    double.ip_locations["127.0.0.1"] = ("Osaka", "Japan")
    settings = proxy_settings(
        upstream_url=site.upstream.url,
        pool_id=pool_id,
        client_id=client_id,
        client_secret=secret,
        endpoint_url=double.url,
        jwks_url=double.jwks_url(pool_id),
        issuer=double.issuer(pool_id),
        auth_flow="ADMIN_USER_PASSWORD_AUTH",
        session={"store_url": site.redis_url, "cache_ttl": 0},
    )
    async with running_proxy(settings) as base:
        yield Site(base, site.upstream, double, pool_id, site.redis_url)


async def test_recent_activity_and_this_wasnt_me(new_context: Any, admin_site: Site) -> None:
    site = admin_site
    context = await new_context()
    page = await context.new_page()
    await page.goto(site.url("/_auth/account"))
    await sign_in(page, UMA, "Not-Uma-at-all-9")
    assert "/_auth/login" in page.url  # a failed sign-in: logged by Cognito
    site.double.set_risk(site.pool_id, "medium", username=UMA)
    await sign_in(page, UMA, UMA_PASSWORD)
    await page.wait_for_url(site.url("/_auth/account"))
    activity = page.locator("#activity")
    items = activity.locator("li")
    assert await items.count() == 2
    assert "Sign-in: succeeded" in await items.nth(0).inner_text()
    assert "Medium" in await items.nth(0).inner_text()
    failed = items.nth(1)
    assert "Sign-in: failed" in await failed.inner_text()
    assert "Osaka, Japan" in await failed.inner_text()
    await shot(page, "account-activity")
    await assert_accessible_as_seen(new_context, page, "account-activity")

    await failed.get_by_role("button", name="This wasn't me").click()
    await page.wait_for_url("**/_auth/account?done=activity_reported#activity")
    assert "that sign-in is reported as not you" in await page.inner_text("main")
    assert "Reported: not you" in await activity.locator("li").nth(1).inner_text()
    assert await activity.get_by_role("button", name="This wasn't me").count() == 1
    (report,) = [
        c
        for c in site.double.calls_to("AdminUpdateAuthEventFeedback")
        if c["UserPoolId"] == site.pool_id
    ]
    assert (report["Username"], report["FeedbackValue"]) == (UMA, "Invalid")

    await page.goto(site.url("/_auth/account?lang=ja"))
    assert "最近のアクティビティ" in await activity.inner_text()
    await assert_accessible_as_seen(new_context, page, "account-activity-ja")
