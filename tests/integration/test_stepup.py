"""Step-up (issue 16.7) over HTTP against the strict double: the account page's sensitive actions
need a recent sign-in (GATE_ACCOUNT_REAUTH_MAX_AGE), and path rules with ``max_auth_age`` /
``require_mfa`` send a browser through "confirm it's you" and back, an API a 401 saying why.
And the attacks: a different user at the re-authentication, another browser's flow, a hostile
return path, fields the form has no business sending."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from proxy.devtools.cognito_double import CognitoDouble
from tests.support.challenges import FlowBrowser, Page, pool_kwargs
from tests.support.redis_server import RedisProcess, start_redis_server
from tests.support.stack import Upstream, proxy_settings, running_proxy
from tests.support.stepup import age_sign_in, session_record
from tests.support.totp import previous_step, totp

PASSWORD = "Step-up-pass-1!"
OTHER_PASSWORD = "Mallory-pass-2!"
NEW_PASSWORD = "Step-up-new-3?"
SESSION = "gate"
RULES = [
    {"path": "/recent", "max_auth_age": 60},
    {"path": "/mfa", "require_mfa": True},
]


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisProcess]:
    server = start_redis_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pool(double: CognitoDouble, upstream: Upstream) -> dict[str, Any]:
    pool_id = double.create_pool()
    double.set_pool_mfa(pool_id, "OPTIONAL", factors=("SOFTWARE_TOKEN_MFA",))
    double.set_device_tracking(pool_id, challenge_required_on_new_device=True, remembered="always")
    client_id, secret = double.create_client(pool_id, secret=True)
    double.add_user(pool_id, "carol", PASSWORD, attributes={"email": "carol@example.com"})
    double.add_user(
        pool_id,
        "tess",
        PASSWORD,
        attributes={"email": "tess@example.com"},
        mfa=("SOFTWARE_TOKEN_MFA",),
    )
    double.add_user(pool_id, "mallory", OTHER_PASSWORD, attributes={"email": "m@example.com"})
    return pool_kwargs(double, pool_id, client_id, secret) | {"upstream_url": upstream.url}


@pytest.fixture
async def site(pool: dict[str, Any], redis: RedisProcess) -> AsyncIterator[str]:
    settings = proxy_settings(
        **pool,
        store_url=redis.url,
        session={"store_url": redis.url, "cache_ttl": 0},
        upstream={"url": pool["upstream_url"], "rules": RULES},
        account={"reauth_max_age": 300},
    )
    async with running_proxy(settings) as base:
        yield base


@pytest.fixture
async def browser(site: str) -> AsyncIterator[FlowBrowser]:
    b = FlowBrowser(site)
    try:
        yield b
    finally:
        await b.close()


async def signed_in(browser: FlowBrowser, user: str = "carol") -> str:
    done = await browser.sign_in(user, PASSWORD)
    assert done.status == 303, done.doc.text[:300]
    cookie = browser.cookie(SESSION)
    assert cookie
    return cookie


async def tess_with_totp(
    browser: FlowBrowser, double: CognitoDouble, pool_id: str, at: float = 0
) -> Page:
    """tess signs in: password, then her authenticator code; returns the code's answer."""
    first = await browser.sign_in("tess", PASSWORD)
    assert first.status == 303 and first.location == "/_auth/challenge"
    return await answer_totp(browser, await browser.follow(first), double, pool_id, at)


async def answer_totp(
    browser: FlowBrowser, page: Page, double: CognitoDouble, pool_id: str, at: float = 0
) -> Page:
    secret = double.totp_secret(pool_id, "tess")
    assert secret and page.doc.find("input", name="code"), page.doc.text[:300]
    return await browser.answer(page, {"code": totp(secret, at or time.time())})


async def reauth(browser: FlowBrowser, location: str, password: str = PASSWORD) -> Page:
    """Follow a redirect to "confirm it's you" and post the password."""
    page = await browser.open(location)
    assert page.status == 200, page.doc.text[:300]
    assert "Confirm it's you" in page.doc.text
    assert not page.doc.find("input", name="username")  # the user is the session's
    return await browser.submit("/_auth/reauth", {"password": password}, csrf=page.doc.csrf())


async def change_password(browser: FlowBrowser) -> Page:
    account = await browser.open("/_auth/account")
    return await browser.submit(
        "/_auth/account/password",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
        csrf=account.doc.csrf(),
    )


def revoked(double: CognitoDouble) -> list[str]:
    return [c["Token"] for c in double.calls_to("RevokeToken")]


# -- the account page ----------------------------------------------------------------------


async def test_a_sensitive_action_after_the_max_age_asks_for_the_password_first(
    browser: FlowBrowser, double: CognitoDouble, redis: RedisProcess
) -> None:
    old_cookie = await signed_in(browser)
    assert "Confirm it's you now" not in (await browser.open("/_auth/account")).doc.text
    await age_sign_in(redis.url, old_cookie, 301)
    account = await browser.open("/_auth/account")
    assert "asks for your password again first" in account.doc.text  # said before typing
    calls = len(double.calls_to("ChangePassword"))

    refused = await change_password(browser)
    assert refused.status == 303 and refused.location
    target = urlsplit(refused.location)
    assert target.path == "/_auth/reauth"
    assert parse_qs(target.query) == {"rd": ["/_auth/account"], "notice": ["post_lost"]}
    assert len(double.calls_to("ChangePassword")) == calls  # the post was not acted on

    replaced = await session_record(redis.url, old_cookie)
    assert replaced is not None and replaced.refresh_token
    page = await browser.open(refused.location)
    assert "What you sent was not sent" in page.doc.text
    assert "carol@example.com" in page.doc.text
    wrong = await browser.submit("/_auth/reauth", {"password": "nope-Nope-1"}, csrf=page.doc.csrf())
    assert wrong.status == 401 and "Incorrect password." in wrong.doc.text
    done = await browser.submit("/_auth/reauth", {"password": PASSWORD}, csrf=wrong.doc.csrf())
    assert done.status == 303 and done.location == "/_auth/account"
    # A fresh session id for the renewed sign-in (no fixation); the old one is gone.
    new_cookie = browser.cookie(SESSION)
    assert new_cookie and new_cookie != old_cookie
    assert await session_record(redis.url, old_cookie) is None
    # ... and its refresh token, which nobody holds any more, is revoked at Cognito.
    assert replaced.refresh_token in revoked(double)
    renewed = await session_record(redis.url, new_cookie)
    assert renewed is not None and renewed.auth_age() < 60 and renewed.factors == ["srp"]

    changed = await change_password(browser)
    assert changed.status == 303, changed.doc.text[:300]
    assert len(double.calls_to("ChangePassword")) == calls + 1


async def test_a_fresh_sign_in_changes_the_password_at_once(
    browser: FlowBrowser, double: CognitoDouble
) -> None:
    await signed_in(browser)
    changed = await change_password(browser)
    assert changed.status == 303 and changed.location
    assert "done=password_changed" in changed.location


# -- path rules --------------------------------------------------------------------------


async def test_max_auth_age_sends_a_navigation_through_reauth_and_back(
    browser: FlowBrowser, redis: RedisProcess, upstream: Upstream
) -> None:
    cookie = await signed_in(browser)
    assert (await browser.get("/recent/report?x=1")).status == 200
    await age_sign_in(redis.url, cookie, 120)
    assert (await browser.get("/elsewhere")).status == 200  # only the rule's path asks
    sent = await browser.get("/recent/report?x=1")
    assert sent.status == 302
    location = sent.headers["Location"]
    assert parse_qs(urlsplit(location).query) == {"rd": ["/recent/report?x=1"]}

    api = await browser.get("/recent/report", headers={"Accept": "application/json"})
    assert api.status == 401
    assert api.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A more recent sign-in is required", max_age="60"'
    )

    done = await reauth(browser, location)
    assert done.status == 303 and done.location == "/recent/report?x=1"
    assert (await browser.get("/recent/report?x=1")).status == 200


async def test_require_mfa_sends_a_password_only_session_through_mfa(
    browser: FlowBrowser, double: CognitoDouble, pool: dict[str, Any], redis: RedisProcess
) -> None:
    """tess's device is remembered, so her next sign-in is password only: the mfa path asks
    for her authenticator code (no remembered device offered) and then lets her in."""
    pool_id = pool["pool_id"]
    done = await tess_with_totp(browser, double, pool_id, await previous_step())
    assert done.status == 303
    assert (await browser.get("/mfa/x")).status == 200  # this sign-in passed a code
    logout = await browser.open("/_auth/logout")
    await browser.submit("/_auth/logout", {}, csrf=logout.doc.csrf())
    again = await browser.sign_in("tess", PASSWORD)
    assert again.status == 303 and again.location == "/"  # the device spared the code
    record = await session_record(redis.url, browser.cookie(SESSION) or "")
    assert record is not None and "device" in record.factors and not record.multi_factor

    sent = await browser.get("/mfa/x")
    assert sent.status == 302
    assert parse_qs(urlsplit(sent.headers["Location"]).query) == {"rd": ["/mfa/x"], "mfa": ["1"]}
    api = await browser.get("/mfa/x", headers={"Accept": "application/json"})
    assert api.status == 401 and 'acr_values="mfa"' in api.headers["WWW-Authenticate"]

    page = await browser.open(sent.headers["Location"])
    assert "a second step" in page.doc.text
    step = await browser.submit(
        "/_auth/reauth", {"password": PASSWORD, "mfa": "1"}, csrf=page.doc.csrf()
    )
    assert step.status == 303 and step.location == "/_auth/challenge"
    answered = await answer_totp(browser, await browser.follow(step), double, pool_id)
    assert answered.status == 303 and answered.location == "/mfa/x"
    assert (await browser.get("/mfa/x")).status == 200


async def test_require_mfa_for_an_account_without_any_says_so_instead_of_looping(
    browser: FlowBrowser,
) -> None:
    await signed_in(browser)  # carol has no second factor
    sent = await browser.get("/mfa/x")
    page = await browser.open(sent.headers["Location"])
    done = await browser.submit(
        "/_auth/reauth", {"password": PASSWORD, "mfa": "1"}, csrf=page.doc.csrf()
    )
    assert done.status == 403
    assert "your account has none" in unescape(done.html)
    assert (await browser.get("/elsewhere")).status == 200  # still signed in


# -- attacks -----------------------------------------------------------------------------


async def test_a_different_user_at_the_reauth_step_signs_the_browser_out(
    browser: FlowBrowser, double: CognitoDouble, pool: dict[str, Any], redis: RedisProcess
) -> None:
    """tess's re-authentication is at its code step (state stored server-side, bound to her
    session); mallory's name and password posted to /login with that flow do not become this
    session: refused, and the browser signed out."""
    await tess_with_totp(browser, double, pool["pool_id"])
    cookie = browser.cookie(SESSION) or ""
    tess = await session_record(redis.url, cookie)
    assert tess is not None
    before = len(revoked(double))
    await age_sign_in(redis.url, cookie, 120)
    sent = await browser.get("/recent/x")
    page = await browser.open(sent.headers["Location"])
    step = await browser.submit("/_auth/reauth", {"password": PASSWORD}, csrf=page.doc.csrf())
    assert step.location == "/_auth/challenge"
    challenge = await browser.follow(step)
    swapped = await browser.submit(
        "/_auth/login",
        {"username": "mallory", "password": OTHER_PASSWORD},
        csrf=challenge.doc.csrf(),
    )
    assert swapped.status == 403
    assert "different account" in unescape(swapped.html)
    assert await session_record(redis.url, cookie) is None  # tess's session ended
    # Her refresh token and mallory's fresh one (kept by nobody) are revoked.
    assert tess.refresh_token in revoked(double)
    assert len(revoked(double)) == before + 2
    assert not browser.cookie(SESSION)
    assert (await browser.get("/elsewhere")).status == 302  # nobody is signed in here


async def test_a_username_posted_to_reauth_is_ignored(
    browser: FlowBrowser, redis: RedisProcess
) -> None:
    cookie = await signed_in(browser)
    await age_sign_in(redis.url, cookie, 120)
    sent = await browser.get("/recent/x")
    page = await browser.open(sent.headers["Location"])
    forged = await browser.submit(
        "/_auth/reauth",
        {"username": "mallory", "password": OTHER_PASSWORD, "auth_time": str(time.time())},
        csrf=page.doc.csrf(),
    )
    assert forged.status == 401  # mallory's password is not carol's
    assert browser.cookie(SESSION) == cookie
    record = await session_record(redis.url, cookie)
    assert record is not None and record.username == "carol" and record.auth_age() > 100


async def test_another_browsers_reauth_flow_renews_nothing(
    site: str, double: CognitoDouble, pool: dict[str, Any], redis: RedisProcess
) -> None:
    """A flow cookie carried to another browser of the same user (or replayed) is bound to the
    session it was started for: the other browser's sign-in is not renewed by it."""
    pool_id = pool["pool_id"]
    one, two = FlowBrowser(site), FlowBrowser(site)
    try:
        # One TOTP step is accepted once, within one step of now: three codes, in order.
        await tess_with_totp(one, double, pool_id, await previous_step())
        second = await two.sign_in("tess", PASSWORD)
        await answer_totp(two, await two.follow(second), double, pool_id, time.time())
        two_cookie = two.cookie(SESSION) or ""
        await age_sign_in(redis.url, two_cookie, 120)
        await age_sign_in(redis.url, one.cookie(SESSION) or "", 120)
        page = await one.open("/_auth/reauth?rd=/recent/x")
        step = await one.submit("/_auth/reauth", {"password": PASSWORD}, csrf=page.doc.csrf())
        challenge = await one.follow(step)
        # browser two presents browser one's flow cookie and answers its code
        two.http.cookie_jar.update_cookies({"gate-login": one.cookie("gate-login") or ""})
        stolen = await answer_totp(two, challenge, double, pool_id, time.time() + 30)
        assert stolen.status == 303 and (stolen.location or "").startswith("/_auth/login?")
        assert two.cookie(SESSION) == two_cookie
        record = await session_record(redis.url, two_cookie)
        assert record is not None and record.auth_age() > 100
        # and the flow is used up: browser one cannot finish it either
        replay = await answer_totp(one, challenge, double, pool_id, time.time() + 30)
        assert replay.status == 400 and "took too long" in replay.doc.text
    finally:
        await one.close()
        await two.close()


@pytest.mark.parametrize(
    "rd", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
async def test_the_return_path_is_validated(
    browser: FlowBrowser, redis: RedisProcess, rd: str
) -> None:
    await signed_in(browser)
    page = await browser.open(f"/_auth/reauth?rd={rd}")
    done = await browser.submit("/_auth/reauth", {"password": PASSWORD}, csrf=page.doc.csrf())
    assert done.status == 303 and done.location == "/"


async def test_reauth_without_a_session_is_the_login_page_and_back(browser: FlowBrowser) -> None:
    sent = await browser.get("/_auth/reauth?rd=/recent/x")
    assert sent.status == 303
    location = urlsplit(sent.headers["Location"])
    assert location.path == "/_auth/login"
    assert parse_qs(location.query) == {"rd": ["/recent/x"]}  # nothing "expired" here


async def test_a_forged_reauth_post_without_its_form_is_refused(
    browser: FlowBrowser, redis: RedisProcess
) -> None:
    cookie = await signed_in(browser)
    await age_sign_in(redis.url, cookie, 120)
    # No flow cookie of ours, a made-up token: a fresh login form, nothing renewed.
    forged = await browser.submit("/_auth/reauth", {"password": PASSWORD}, csrf="made-up")
    assert forged.status in (400, 403)
    record = await session_record(redis.url, cookie)
    assert record is not None and record.auth_age() > 100


# -- passwordless pools ----------------------------------------------------------------------


async def test_a_user_auth_pool_re_authenticates_with_the_factor_the_user_picks(
    double: CognitoDouble, upstream: Upstream, redis: RedisProcess
) -> None:
    """USER_AUTH: "confirm it's you" asks no password up front; Cognito offers the user's
    factors for the session's own username, and the emailed code (a first factor) renews it."""
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True, flows={"USER_AUTH"})
    double.add_user(pool_id, "pia", PASSWORD, attributes={"email": "pia@example.com"})
    double.set_user_auth(pool_id, ("PASSWORD", "EMAIL_OTP"))
    settings = proxy_settings(
        **pool_kwargs(double, pool_id, client_id, secret),
        upstream_url=upstream.url,
        auth_flow="USER_AUTH",
        store_url=redis.url,
        session={"store_url": redis.url, "cache_ttl": 0},
        upstream={"url": upstream.url, "rules": RULES},
    )
    async with running_proxy(settings) as base:
        browser = FlowBrowser(base)
        try:
            login = await browser.open("/_auth/login")
            first = await browser.submit("/_auth/login", {"username": "pia"}, csrf=login.doc.csrf())
            select = await browser.follow(first)
            done = await browser.answer(select, {"choice": "PASSWORD_SRP", "password": PASSWORD})
            assert done.status == 303, done.doc.text[:300]
            cookie = browser.cookie(SESSION) or ""
            await age_sign_in(redis.url, cookie, 120)

            sent = await browser.get("/recent/x")
            page = await browser.open(sent.headers["Location"])
            assert not page.doc.find("input", name="password")  # the factor comes next
            assert not page.doc.find("input", name="username")
            step = await browser.submit("/_auth/reauth", {}, csrf=page.doc.csrf())
            assert step.status == 303 and step.location == "/_auth/challenge"
            select = await browser.follow(step)
            chosen = await browser.answer(select, {"choice": "EMAIL_OTP"})
            code_page = await browser.follow(chosen)
            code = double.last_code(pool_id, "pia", "EMAIL")
            assert code
            back = await browser.answer(code_page, {"code": code})
            assert back.status == 303 and back.location == "/recent/x"
            assert (await browser.get("/recent/x")).status == 200
            renewed = await session_record(redis.url, browser.cookie(SESSION) or "")
            assert renewed is not None and renewed.factors == ["email_otp"]
            assert renewed.username == "pia"
        finally:
            await browser.close()


# -- behind nginx (auth_request) -----------------------------------------------------------


async def test_behind_nginx_the_401_goes_to_reauth_and_back(
    pool: dict[str, Any], upstream: Upstream, redis: RedisProcess
) -> None:
    """/_auth/check answers a step-up 401 (with its challenge); the example config with its 401
    sent to /_auth/reauth, as the README says, asks the user to confirm and comes back (sent to
    the login page instead, a signed-in browser would be returned to the path, round again)."""
    from tests.integration.test_nginx_auth_request import running_nginx, site_config
    from tests.support.stack import free_port

    settings = proxy_settings(
        **pool,
        store_url=redis.url,
        session={"store_url": redis.url, "cache_ttl": 0},
        upstream={"url": pool["upstream_url"], "rules": RULES},
        proxy={"trusted_cidrs": ["127.0.0.1/32"]},
    )
    async with running_proxy(settings) as gate:
        port = free_port()
        conf = site_config(port, int(gate.rsplit(":", 1)[1]), int(upstream.url.rsplit(":", 1)[1]))
        old = "return 302 /_auth/login?rd=$request_uri;"
        assert old in conf
        conf = conf.replace(old, "return 302 /_auth/reauth?rd=$request_uri;")
        with running_nginx(conf, port):
            base = f"http://127.0.0.1:{port}"
            browser = FlowBrowser(base)
            try:
                stranger = await browser.get("/recent/x")
                assert stranger.status == 302  # nginx's Location is absolute
                assert stranger.headers["Location"] == base + "/_auth/reauth?rd=/recent/x"
                to_login = await browser.get("/_auth/reauth?rd=/recent/x")
                assert to_login.status == 303  # no session: on to the login page
                assert to_login.headers["Location"] == "/_auth/login?rd=%2Frecent%2Fx"
                cookie = await signed_in(browser)
                assert (await browser.get("/recent/x")).status == 200
                await age_sign_in(redis.url, cookie, 120)
                sent = await browser.get("/recent/x")
                assert sent.status == 302
                assert sent.headers["Location"] == base + "/_auth/reauth?rd=/recent/x"
                done = await reauth(browser, "/_auth/reauth?rd=/recent/x")
                assert done.status == 303 and done.location == "/recent/x"
                assert (await browser.get("/recent/x")).status == 200
            finally:
                await browser.close()
