"""axe-core, run inside Chromium on every built-in page, in light and dark colour schemes: no
violation of impact "serious" or "critical" (WCAG 2.x A/AA rules and axe's best practices).

axe is injected as a script tag, which the pages' CSP (``script-src 'self'``) rightly forbids,
so only these contexts bypass CSP. axe-core comes from the npm registry, pinned by
``tests/e2e/package-lock.json`` and installed by ``make test`` (``npm ci --prefix tests/e2e``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, Route

from proxy.auth import qr
from proxy.auth.pages import Branding, Pages, static_dir
from tests.e2e.helpers import (
    AXE_BLOCKING,
    Site,
    assert_accessible,
    axe_violations,
    sign_in,
)
from tests.e2e.walk import LANGS, Shown, Sites, account_states
from tests.support.stack import proxy_settings, running_proxy

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _login_error(page: Page, site: Site) -> None:
    await page.goto(site.url("/_auth/login"))
    await sign_in(page, password="wrong-password")
    await page.get_by_role("alert").wait_for()


async def _login_notice_ja(page: Page, site: Site) -> None:
    await page.goto(site.url("/_auth/login?lang=ja&notice=expired_post"))


async def _logout(page: Page, site: Site) -> None:
    await page.goto(site.url("/_auth/login"))
    await sign_in(page)
    await page.wait_for_url(site.url("/"))
    await page.goto(site.url("/_auth/logout"))


async def _error_403(page: Page, site: Site) -> None:
    # A tampered CSRF token: the 403 error page.
    await page.goto(site.url("/_auth/login"))
    await page.locator("input[name=csrf]").evaluate("e => { e.value = 'tampered'; }")
    await sign_in(page)
    await page.wait_for_load_state()
    # Not "Forbidden": the user may do this, the form was only too old (issue 19).
    assert await page.inner_text("h1") == "This page has expired"


async def _error_503(page: Page, site: Site) -> None:
    # The same deployment with its session store unreachable: the 503 page.
    settings = proxy_settings(
        upstream_url=site.upstream.url,
        pool_id=site.pool_id,
        client_id="unused",
        endpoint_url=site.double.url,
        jwks_url=site.double.jwks_url(site.pool_id),
        session={"store_url": "redis://127.0.0.1:9/0", "store_timeout": 0.5},  # nothing there
    )
    async with running_proxy(settings) as base:
        # The login form needs no store (its state rides in the signed cookie); signing in does.
        await page.goto(f"{base}/_auth/login")
        await sign_in(page)
        await page.wait_for_load_state()
    assert await page.inner_text("h1") == "Service unavailable"


async def _account_profile_ja(page: Page, site: Site) -> None:
    # The profile with a new email waiting for its code and a wrong code entered, in Japanese.
    site.double.set_keep_original_attributes(site.pool_id, ["email"])
    try:
        await page.goto(site.url("/_auth/account"))
        await sign_in(page)
        await page.wait_for_url(site.url("/_auth/account"))
        await page.goto(site.url("/_auth/account?lang=ja"))  # the forms keep ?lang=ja
        await page.get_by_label("新しいメールアドレス").fill("erin.pending@example.com")
        await page.get_by_role("button", name="メールアドレスを変更").click()
        await page.wait_for_url(re.compile(r"done=code_sent"))
        await page.get_by_label("確認コード").fill("000000")
        await page.get_by_role("button", name="確認", exact=True).click()
        await page.get_by_text("コードが正しくありません。").wait_for()
    finally:
        site.double.set_keep_original_attributes(site.pool_id, [])


PAGES: dict[str, Callable[[Page, Site], Awaitable[None]]] = {
    "account-profile-ja": _account_profile_ja,
    "login-error": _login_error,
    "login-notice-ja": _login_notice_ja,
    "logout": _logout,
    "error-403": _error_403,
    "error-503": _error_503,
}


@pytest.mark.parametrize("name", list(PAGES))
async def test_page_has_no_serious_accessibility_violations(
    new_context: Any, site: Site, name: str
) -> None:
    context = await new_context(bypass_csp=True)
    page = await context.new_page()
    await PAGES[name](page, site)
    await assert_accessible(page, name)


async def test_axe_finds_a_planted_violation(new_context: Any, site: Site) -> None:
    """The check itself works: an unlabeled field and unreadable text are reported."""
    context = await new_context(bypass_csp=True)
    page = await context.new_page()
    await page.goto(site.url("/_auth/login"))
    await page.evaluate(
        "() => { document.querySelector('label[for=username]').remove();"
        " document.querySelector('h1').style.color = '#eee'; }"
    )
    ids = {v["id"] for v in await axe_violations(page) if v["impact"] in AXE_BLOCKING}
    assert {"label", "color-contrast"} <= ids, ids


# --- every template, including the states a flow rarely reaches ---------------------------

ORIGIN = "http://gate.test"
TOTP_URI = qr.otpauth_uri(
    issuer="Example Corp", account="erin", secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)
FIELDS_CODE = [
    {
        "name": "code",
        "label": "Verification code",
        "autocomplete": "one-time-code",
        "inputmode": "numeric",
        "hint": "6 digits",
    }
]
FIELDS_NEW_PASSWORD = [
    {
        "name": "new_password",
        "label": "New password",
        "type": "password",
        "autocomplete": "new-password",
    },
    {
        "name": "confirm_password",
        "label": "Confirm new password",
        "type": "password",
        "autocomplete": "new-password",
    },
]
BASE = {"action": "/_auth/x", "csrf_token": "t"}
# Each template in its fullest state: notice, error, hint, cancel link, footer links.
SAMPLES: dict[str, dict[str, Any]] = {
    "login.html": BASE
    | {
        "username": "erin",
        "error": "Incorrect username or password.",
        "notice": "Your session has expired.",
        "forgot_url": "/_auth/forgot",
    },
    "logout.html": BASE | {"user": "erin@example.com"},
    "reauth.html": BASE
    | {
        "user": "erin@example.com",
        "error": "Incorrect username or password.",
        "notice": "What you sent was not sent: confirm it's you, then send it again.",
        "mfa": True,
        "password_mode": "required",
        "logout_url": "/_auth/logout",
    },
    "error.html": {"status": 403, "retry_url": "/"},
    "challenge.html": BASE
    | {
        "heading": "Two-step verification",
        "message": "Enter the code.",
        "error": "That code is incorrect.",
        "fields": FIELDS_CODE + FIELDS_NEW_PASSWORD,
        "cancel_url": "/_auth/login",
    },
    "choice.html": BASE
    | {
        "heading": "Two-step verification",
        "message": "How should we send your code?",
        "error": "Choose one.",
        "options": [
            {"value": "SMS_MFA", "label": "Text message"},
            {"value": "EMAIL_OTP", "label": "Email"},
        ],
        "cancel_url": "/_auth/login",
    },
    "mfa_setup.html": BASE
    | {
        "heading": "Set up your authenticator app",
        "message": "Scan the QR code, then enter the code the app shows.",
        "error": "That code is incorrect.",
        "qr_code": qr.svg_data_uri(TOTP_URI),
        "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        "fields": FIELDS_CODE,
        "cancel_url": "/_auth/login",
    },
    "custom_challenge.html": BASE
    | {
        "heading": "One more step",
        "error": "That answer was not accepted.",
        "challenge_type": "captcha",
        "parameters": {"type": "captcha", "question": "What is 3 + 4?", "hint": "a number"},
        "question": "What is 3 + 4?",
        "fields": [{"name": "answer", "label": "Answer", "autocomplete": "off"}],
        "cancel_url": "/_auth/login",
    },
    "select_challenge.html": BASE
    | {
        "heading": "How do you want to sign in?",
        "error": "Choose one.",
        "password_option": "PASSWORD_SRP",
        "options": [
            {"value": "EMAIL_OTP", "label": "Email me a code"},
            {"value": "WEB_AUTHN", "label": "Use a passkey"},
        ],
        "cancel_url": "/_auth/login",
    },
    "webauthn.html": BASE
    | {
        "heading": "Sign in with a passkey",
        "error": "The passkey was not accepted.",
        "options_json": '{"challenge": "AAAA", "rpId": "gate.test"}',
        "cancel_url": "/_auth/login",
    },
    "passkey_register.html": BASE
    | {
        "action": "/_auth/account/passkeys/add",
        "options_json": '{"challenge": "AAAA", "rp": {"id": "gate.test"}, "user": {"id": "AA"}}',
        "ticket": "1.ab",
        "cancel_url": "/_auth/account#passkeys",
    },
    "forgot.html": BASE
    | {
        "username": "erin",
        "error": "Enter your username.",
        "notice": "Start here.",
        "login_url": "/_auth/login",
    },
    "forgot_confirm.html": BASE
    | {
        "message": "We sent a code to e***@e***.",
        "fields": FIELDS_CODE + FIELDS_NEW_PASSWORD,
        "error": "That code is incorrect.",
        "notice": "A new code is on its way.",
        "login_url": "/_auth/login",
    },
    "confirm_signup.html": BASE
    | {
        "message": "Enter the code we sent to e***@e***.",
        "fields": FIELDS_CODE,
        "error": "That code is incorrect.",
        "notice": "A new code is on its way.",
        "login_url": "/_auth/login",
    },
    "account.html": BASE
    | {
        "user": "erin@example.com",
        "notice": "Your password was changed.",
        "reauth_url": "/_auth/reauth?rd=%2F_auth%2Faccount&notice=account",
        "sections": [
            {
                "name": "profile",
                "template": "account/_profile.html",
                "v": {
                    "action": "/_auth/account/profile",
                    "contact_action": "/_auth/account/profile/contact",
                    "verify_action": "/_auth/account/profile/verify",
                    "resend_action": "/_auth/account/profile/resend",
                    "error": "That was not accepted. Please check it and try again.",
                    "unavailable": False,
                    "fields": [
                        {
                            "name": "name",
                            "field": "attr:name",
                            "id": "profile-name",
                            "label": "Name",
                            "type": "text",
                            "autocomplete": "name",
                            "value": "Erin Example",
                            "error": "That is too long (2048 characters at most).",
                        },
                        {
                            "name": "birthdate",
                            "field": "attr:birthdate",
                            "id": "profile-birthdate",
                            "label": "Date of birth",
                            "type": "date",
                            "autocomplete": "bday",
                            "value": "",
                            "error": None,
                        },
                    ],
                    "contacts": [
                        {
                            "name": "email",
                            "field": "attr:email",
                            "id": "profile-email",
                            "label": "Email",
                            "type": "email",
                            "autocomplete": "email",
                            "value": "erin@new.example",
                            "error": None,
                            "current": "erin@example.com",
                            "verified": True,
                            "pending": "erin@new.example",
                            "code_error": "That code is not right.",
                        },
                        {
                            "name": "phone_number",
                            "field": "attr:phone_number",
                            "id": "profile-phone_number",
                            "label": "Phone number",
                            "type": "tel",
                            "autocomplete": "tel",
                            "value": "",
                            "error": "Enter the phone number with its country code.",
                            "current": "+819012345678",
                            "verified": False,
                            "pending": None,
                            "code_error": None,
                        },
                    ],
                    "read_only": [{"label": "tenant", "value": "acme"}],
                },
            },
            {
                "name": "password",
                "template": "account/_password.html",
                "v": {
                    "action": "/_auth/account/password",
                    "fields": [
                        {
                            "name": "current_password",
                            "label": "Current password",
                            "type": "password",
                            "autocomplete": "current-password",
                        },
                        {
                            "name": "new_password",
                            "label": "New password",
                            "type": "password",
                            "autocomplete": "new-password",
                        },
                    ],
                    "rules": ["At least 8 characters", "A number"],
                    "error": "Incorrect password.",
                },
            },
            {
                "name": "methods",
                "template": "account/_methods.html",
                "v": {
                    "mfa_action": "/_auth/account/methods/mfa",
                    "start_action": "/_auth/account/methods/totp/start",
                    "verify_action": "/_auth/account/methods/totp/verify",
                    "cancel_action": "/_auth/account/methods/totp/cancel",
                    "unavailable": False,
                    "none_on": False,
                    "error": "That code is incorrect. Please try again.",
                    "factors": [
                        {
                            "factor": "SOFTWARE_TOKEN_MFA",
                            "label": "Authenticator app",
                            "on": True,
                            "preferred": False,
                            "can_prefer": True,
                            "offered": True,
                        },
                        {
                            "factor": "SMS_MFA",
                            "label": "Text message (SMS)",
                            "on": True,
                            "preferred": True,
                            "can_prefer": False,
                            "offered": True,
                        },
                        {
                            "factor": "EMAIL_OTP",
                            "label": "Email",
                            "on": False,
                            "preferred": False,
                            "can_prefer": False,
                            "offered": True,
                        },
                    ],
                    "enrolment": {
                        "qr_code": qr.svg_data_uri(TOTP_URI),
                        "secret": "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP",
                    },
                },
            },
            {
                "name": "passkeys",
                "template": "account/_passkeys.html",
                "v": {
                    "passkeys": [
                        {
                            "id": "AAAAAAAAAAAAAAAAAAAAAA",
                            "name": "Chrome on Mac",
                            "kind": kind,
                            "created": {"iso": "2026-12-01T10:00:00Z", "text": "1 Dec 2026"},
                        }
                        for kind in ("platform", "roaming", None)
                    ],
                    "unavailable": True,
                    "error": "The passkey could not be added. Please try again.",
                    "start_action": "/_auth/account/passkeys/start",
                    "delete_action": "/_auth/account/passkeys/delete",
                    "script": "passkeys.js",
                },
            },
            {
                "name": "devices",
                "template": "account/_devices.html",
                "v": {
                    "action": "/_auth/account/devices/forget",
                    "devices": [
                        {
                            "key": "us-east-1_dev",
                            "name": "Laptop",
                            "ip": "192.0.2.7",
                            "current": True,
                            "last_signed_in": {"iso": "2026-12-01T10:00:00Z", "text": "1 Dec 2026"},
                        }
                    ],
                    "unavailable": False,
                },
            },
            {
                "name": "sessions",
                "template": "account/_sessions.html",
                "v": {
                    "sessions": [
                        {
                            "id": "a" * 64,
                            "browser": "Firefox",
                            "os": "Linux",
                            "ip": "192.0.2.7",
                            "current": current,
                            "signed_in_at": {"iso": "2026-12-01T10:00:00Z", "text": "1 Dec 2026"},
                            "last_seen": {"iso": "2026-12-02T10:00:00Z", "text": "2 Dec 2026"},
                        }
                        for current in (True, False)
                    ],
                    "end_action": "/_auth/account/sessions/end",
                    "end_others_action": "/_auth/account/sessions/end-others",
                    "logout_url": "/_auth/logout",
                },
            },
            {
                "name": "activity",
                "template": "account/_activity.html",
                "v": {
                    "events": [
                        {
                            "id": f"event-{n}",
                            "when": {"iso": "2026-12-02T10:00:00+00:00", "text": "2026-12-02"},
                            "kind": "SignIn",
                            "kind_raw": "SignIn",
                            "result": result,
                            "result_raw": result,
                            "risk": risk,
                            "blocked": risk == "High",
                            "compromised": risk == "High",
                            "ip": "192.0.2.7",
                            "place": "Osaka, Japan",
                            "reported": risk == "Medium",
                        }
                        for n, (result, risk) in enumerate(
                            (("Pass", "Low"), ("InProgress", "Medium"), ("Fail", "High"))
                        )
                    ],
                    "unavailable": False,
                    "error": "That sign-in is not in your recent activity.",
                    "action": "/_auth/account/activity/report",
                },
            },
        ],
    },
    "remember_device.html": BASE
    | {
        "return_to": "/",
        "message": "Next time you sign in on this device, you will not be asked for a code "
        "from your authenticator app after your password.",
    },
}


def _templates() -> set[str]:
    folder = Path(__file__).parents[2] / "proxy" / "templates"
    return {p.name for p in folder.glob("*.html") if not p.name.startswith(("_", "base"))}


async def test_every_template_has_an_accessibility_sample() -> None:
    assert _templates() == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
async def test_template_in_its_fullest_state_has_no_serious_violations(
    new_context: Any, name: str
) -> None:
    pages = Pages(
        branding=Branding(
            product_name="Example Corp", footer_links=(("Help", "https://example.com/help"),)
        ),
        static_url="/_auth/static",
    )
    html = pages.render_html(
        name,
        lang="en",
        lang_links=[("en", "English", "?lang=en"), ("ja", "日本語", "?lang=ja")],
        **({"status": 200} | SAMPLES[name]),
    )
    context = await new_context(bypass_csp=True)
    page = await context.new_page()

    async def serve(route: Route) -> None:
        path = route.request.url.removeprefix(ORIGIN).split("?")[0]
        if path == "/page":
            await route.fulfill(body=html, content_type="text/html; charset=utf-8")
        elif path == "/_auth/static/brand.css":
            await route.fulfill(body=pages.brand_css(), content_type="text/css")
        elif path.startswith("/_auth/static/"):
            await route.fulfill(path=str(static_dir() / path.rsplit("/", 1)[1]))
        else:
            await route.fulfill(status=404)

    await page.route(f"{ORIGIN}/**", serve)
    await page.goto(f"{ORIGIN}/page")
    # Light and dark; Japanese pages are checked live (test_page_has_..., the challenge tests).
    await assert_accessible(page, f"template-{name.removesuffix('.html')}")


# --- the account page, live: every state the gallery's walk reaches ------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def account_pages(sites: Sites) -> list[Shown]:
    """Each state of the account page as the proxy served it (tests/e2e/walk.py drives the
    real forms against the strict double): everything set up, nothing yet, each section's
    error, Cognito unavailable, the authenticator app's enrolment, passkeys, step-up."""
    return await account_states(sites)


@pytest.mark.timeout(300)  # a score of pages, axe twice on each, on a shared 2-core machine
@pytest.mark.parametrize("lang", LANGS)
async def test_every_account_page_state_has_no_serious_violations(
    new_context: Any, sites: Sites, account_pages: list[Shown], lang: str
) -> None:
    pages = [item for item in account_pages if item.lang == lang]
    assert {"account-everything", "account-new", "account-unavailable"} <= {
        item.name for item in pages
    }
    context = await new_context(bypass_csp=True)
    page = await context.new_page()
    served: dict[str, Shown] = {}

    async def answer(route: Route) -> None:
        # The proxy's own answer at its origin: its stylesheet and scripts load as they did.
        item = served[route.request.url.split("/_axe/", 1)[1]]
        await route.fulfill(status=item.status, headers=item.headers, body=item.html)

    await page.route(f"{sites.main}/_axe/**", answer)
    for item in pages:
        served[item.name] = item
        await page.goto(f"{sites.main}/_axe/{item.name}")
        assert await page.get_attribute("html", "lang") == lang
        await assert_accessible(page, f"{item.name}-{lang}")
