"""CSRF on every form, the headers on our own pages, and where the browser is sent afterwards."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import aiohttp
import pytest

from tests.security.conftest import PASSWORD, USER, Stack
from tests.support.stack import CSRF_FIELD, Browser

CORPUS = (Path(__file__).parents[1] / "data" / "openredirects.txt").read_text("utf-8")


# -- CSRF -----------------------------------------------------------------------------------


async def test_login_token_is_bound_to_its_own_pre_login_cookie(stack: Stack) -> None:
    """A token lifted from the attacker's own form is useless with the victim's cookie."""
    attacker = Browser(stack.base)
    try:
        stolen = await attacker.login_form()
    finally:
        await attacker.close()
    await stack.browser.login_form()  # the victim's own pre-login state
    resp = await stack.browser.post(
        "/_auth/login", {"csrf": stolen, "username": USER, "password": PASSWORD}
    )
    assert resp.status == 403
    assert stack.browser.cookie("gate") is None


async def _logout_token(browser: Browser) -> str:
    page = await browser.get("/_auth/logout")
    match = CSRF_FIELD.search(await page.text())
    assert match
    return match.group(1)


async def test_logout_token_is_bound_to_the_session(stack: Stack) -> None:
    other = Browser(stack.base)
    try:
        assert (await other.login(USER, PASSWORD)).status == 303
        foreign_token = await _logout_token(other)
    finally:
        await other.close()
    await stack.browser.login(USER, PASSWORD)
    resp = await stack.browser.post("/_auth/logout", {"csrf": foreign_token})
    assert resp.status == 403
    assert (await stack.browser.get("/")).status == 200  # still signed in


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}],
)
async def test_cross_site_logout_post_is_refused_even_with_the_token(
    stack: Stack, headers: dict[str, str]
) -> None:
    await stack.browser.login(USER, PASSWORD)
    token = await _logout_token(stack.browser)
    resp = await stack.browser.post("/_auth/logout", {"csrf": token}, headers=headers)
    assert resp.status == 403
    assert (await stack.browser.get("/")).status == 200


# -- our own pages --------------------------------------------------------------------------


async def test_every_page_of_ours_carries_the_security_headers(stack: Stack) -> None:
    page = await stack.browser.get("/_auth/login")
    match = CSRF_FIELD.search(await page.text())
    assert match
    token = match.group(1)
    answers = [
        page,
        await stack.browser.post(
            "/_auth/login", {"csrf": token, "username": USER, "password": "wrong-one"}
        ),
        await stack.browser.post("/_auth/login", {"csrf": "forged"}),  # 403 page
        await stack.browser.post("/_auth/login", {"csrf": "x" * 20_000}),  # 413 page
    ]
    await stack.browser.login(USER, PASSWORD)
    answers.append(await stack.browser.get("/_auth/logout"))
    for resp in answers:
        h = resp.headers
        csp = h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert h["Cache-Control"] == "no-store"
        assert h["Referrer-Policy"] == "same-origin"
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["X-Frame-Options"] == "DENY"
    assert sorted(r.status for r in answers) == [200, 200, 401, 403, 413]


async def test_logout_clears_site_data(stack: Stack) -> None:
    await stack.browser.login(USER, PASSWORD)
    resp = await stack.browser.post("/_auth/logout", {"csrf": await _logout_token(stack.browser)})
    assert resp.status == 303
    assert resp.headers["Clear-Site-Data"] == '"cache"'
    assert resp.headers["Cache-Control"] == "no-store"


# -- redirects ------------------------------------------------------------------------------


def _stays_home(base: str, location: str) -> bool:
    target = urlsplit(urljoin(base + "/_auth/login", location.replace("\\", "/")))
    return (target.scheme, target.netloc) == ("http", urlsplit(base).netloc)


async def test_redirect_after_login_stays_on_our_origin_for_the_whole_corpus(
    stack: Stack,
) -> None:
    """Every oauth2-proxy corpus line as `rd`, through the real server, signed in."""
    await stack.browser.login(USER, PASSWORD)
    lines = [line for line in CORPUS.split("\n") if line]
    async with aiohttp.ClientSession(cookie_jar=stack.browser.http.cookie_jar) as http:
        for line in lines:
            async with http.get(
                f"{stack.base}/_auth/login?rd={quote(line, safe='')}", allow_redirects=False
            ) as resp:
                assert resp.status == 303, line
                location = resp.headers["Location"]
                assert location.startswith("/") and not location.startswith(("//", "/\\"))
                assert _stays_home(stack.base, location), (line, location)
    assert len(lines) > 500


@pytest.mark.parametrize(
    "rd", ["//evil.example/", "/\\evil.example", "https://evil.example/", "/%2F%2Fevil.example"]
)
async def test_redirect_after_a_real_sign_in_stays_home(stack: Stack, rd: str) -> None:
    resp = await stack.browser.login(USER, PASSWORD, rd=quote(rd, safe=""))
    assert resp.status == 303
    assert _stays_home(stack.base, resp.headers["Location"]), resp.headers["Location"]


async def test_redirect_after_logout_ignores_any_return_url(stack: Stack) -> None:
    await stack.browser.login(USER, PASSWORD)
    token = await _logout_token(stack.browser)
    resp = await stack.browser.post(
        "/_auth/logout?rd=" + quote("//evil.example/x", safe=""), {"csrf": token}
    )
    assert resp.status == 303
    assert _stays_home(stack.base, resp.headers["Location"])


@pytest.mark.parametrize(
    "path",
    ["login", "logout", "forgot", "forgot/confirm", "confirm", "challenge", "device"],
)
async def test_a_form_in_an_unknown_charset_is_400_never_500(
    stack: Stack, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 13.7: request.post() raised LookupError for the charset: a 500 and a traceback.
    caplog.set_level(logging.WARNING)
    await stack.signed_in_cookie()  # the body is read before any state or token is looked at
    async with stack.browser.http.post(
        f"{stack.base}/_auth/{path}",
        data=b"csrf=x&username=carol&code=123456",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=x-no-such-charset"},
        allow_redirects=False,
    ) as resp:
        await resp.read()
    assert resp.status == 400
    assert resp.content_type == "text/html"  # our error page
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_redirect_after_reauth_stays_on_our_origin_for_the_whole_corpus(
    stack: Stack,
) -> None:
    """Every corpus line as "confirm it's you"'s `rd`: without a session it is handed on to the
    login page (read back from there); signed in, a sample of the hardest lines through a real
    re-authentication (the whole corpus that way takes a minute)."""
    lines = [line for line in CORPUS.split("\n") if line]
    for line in lines:
        resp = await stack.browser.get(f"/_auth/reauth?rd={quote(line, safe='')}")
        assert resp.status == 303, line
        handed_on = parse_qs(urlsplit(resp.headers["Location"]).query)["rd"][0]
        assert handed_on.startswith("/") and not handed_on.startswith(("//", "/\\")), line
        assert _stays_home(stack.base, handed_on), (line, handed_on)
    await stack.signed_in_cookie()
    hardest = [line for line in lines if line.startswith(("/\\", "//", "/%", "\\", "http"))]
    for line in hardest[:: max(1, len(hardest) // 20)]:
        async with stack.browser.http.get(
            f"{stack.base}/_auth/reauth?rd={quote(line, safe='')}", allow_redirects=False
        ) as page:
            assert page.status == 200, line
            match = CSRF_FIELD.search(await page.text())
        assert match
        resp = await stack.browser.post("/_auth/reauth", {"csrf": match[1], "password": PASSWORD})
        assert resp.status == 303, line
        location = resp.headers["Location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\")), line
        assert _stays_home(stack.base, location), (line, location)
