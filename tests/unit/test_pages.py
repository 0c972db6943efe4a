"""Built-in pages: rendering, escaping, security headers, overrides, i18n, brand colours."""

from __future__ import annotations

import re
import string
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest
from aiohttp import web

from proxy.auth import i18n
from proxy.auth.i18n import MESSAGES, pick_language, translate
from proxy.auth.pages import (
    SECURITY_HEADERS,
    Branding,
    Pages,
    contrast_ratio,
    parse_color,
    static_dir,
)

STATIC = "/_gate/static"
LINKS = [("en", "English", "/login?lang=en"), ("ja", "日本語", "/login?lang=ja")]
TEMPLATES = static_dir().parent / "templates"


class Doc(HTMLParser):
    """Collects every start tag with its attributes, plus the visible text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]

    def one(self, tag: str, **attrs: str) -> dict[str, str | None]:
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]


def make(**branding: Any) -> Pages:
    return Pages(branding=Branding(product_name="Acme Cloud", **branding), static_url=STATIC)


def body(resp: web.Response) -> str:
    assert resp.text is not None
    return resp.text


def login(pages: Pages, lang: str = "en", **ctx: Any) -> web.Response:
    base: dict[str, Any] = {"action": "/_gate/login", "csrf_token": "tok-123"}
    return pages.render("login.html", lang=lang, lang_links=LINKS, **{**base, **ctx})


def challenge_fields() -> list[dict[str, Any]]:
    return [
        {
            "name": "code",
            "label": "Verification code",
            "autocomplete": "one-time-code",
            "inputmode": "numeric",
            "hint": "Six digits",
        },
        {"name": "new_password", "label": "New password", "type": "password", "value": "s3cret"},
        {"name": "step", "label": "", "type": "hidden", "value": "mfa"},
        {"name": "nickname", "label": "Nickname", "required": False, "value": "bob"},
    ]


def all_pages(pages: Pages, lang: str) -> dict[str, str]:
    """Every built-in page with every optional part switched on."""
    return {
        "login": body(
            login(pages, lang, error="Bad", notice="Note", forgot_url="/forgot", username="u")
        ),
        "logout": body(
            pages.render(
                "logout.html", lang=lang, lang_links=LINKS, action="/o", csrf_token="c", user="u"
            )
        ),
        "error": body(
            pages.render("error.html", lang=lang, status=502, retry_url="/", lang_links=LINKS)
        ),
        "challenge": body(
            pages.render(
                "challenge.html",
                lang=lang,
                lang_links=LINKS,
                action="/c",
                csrf_token="c",
                heading="H",
                message="M",
                error="E",
                fields=challenge_fields(),
                submit_label="Verify",
                cancel_url="/_gate/login",
            )
        ),
    }


# --- login ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "labels"),
    [
        ("en", ("Sign in", "Username", "Password")),
        ("ja", ("サインイン", "ユーザー名", "パスワード")),
    ],
)
def test_login_page_form_contract(lang: str, labels: tuple[str, str, str]) -> None:
    resp = login(make(), lang)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.charset == "utf-8"
    doc = Doc(body(resp))
    html = doc.tags[0]
    assert html == ("html", {"lang": lang})
    submit, username_label, password_label = labels
    assert doc.one("label", for_="username") is not None
    assert username_label in doc.text and password_label in doc.text
    assert f"{submit} · Acme Cloud" in doc.text

    form = doc.one("form")
    assert form["method"] == "post" and form["action"] == "/_gate/login"
    assert doc.one("input", name="csrf") == {"type": "hidden", "name": "csrf", "value": "tok-123"}
    user = doc.one("input", name="username")
    assert user["type"] == "text"
    assert user["autocomplete"] == "username"
    assert user["autocapitalize"] == "none"
    assert user["spellcheck"] == "false"
    assert "required" in user and "autofocus" in user
    assert user["value"] == ""
    password = doc.one("input", name="password")
    assert password["type"] == "password"
    assert password["autocomplete"] == "current-password"
    assert "required" in password and "value" not in password
    assert doc.one("button", type="submit") is not None
    # Nothing optional shown by default.
    assert not doc.find("div", role="alert") and not doc.find("div", role="status")
    assert "aria-describedby" not in user


def test_login_error_is_announced_and_tied_to_inputs() -> None:
    msg = translate("ja", "error.bad_credentials")
    doc = Doc(body(login(make(), "ja", error=msg, username="jane")))
    alert = doc.one("div", role="alert")
    assert msg == "ユーザー名またはパスワードが正しくありません。"
    assert msg in doc.text
    for name in ("username", "password"):
        field = doc.one("input", name=name)
        assert field["aria-describedby"] == alert["id"]
        assert field["aria-invalid"] == "true"
    # Username kept; focus moves to the password.
    assert doc.one("input", name="username")["value"] == "jane"
    assert "autofocus" in doc.one("input", name="password")
    assert "autofocus" not in doc.one("input", name="username")


def test_login_notice_and_forgot_link() -> None:
    notice = translate("en", "notice.signed_out")
    doc = Doc(body(login(make(), notice=notice, forgot_url="/forgot")))
    assert doc.one("div", role="status") is not None
    assert "You have been signed out." in doc.text
    assert doc.one("a", href="/forgot") is not None
    assert "Forgot your password?" in doc.text


def test_language_switch_marks_current_language() -> None:
    doc = Doc(body(login(make(), "ja")))
    ja = doc.one("a", href="/login?lang=ja")
    en = doc.one("a", href="/login?lang=en")
    assert ja["aria-current"] == "true" and ja["hreflang"] == "ja"
    assert "aria-current" not in en
    # No links given -> no switch rendered.
    bare = make().render("login", lang="en", action="/a", csrf_token="c")
    assert "lang-switch" not in body(bare)


# --- other pages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "heading", "button", "cancel"),
    [
        ("en", "Sign out of Acme Cloud?", "Sign out", "Cancel"),
        ("ja", "Acme Cloud からサインアウトしますか?", "サインアウト", "キャンセル"),
    ],
)
def test_logout_page(lang: str, heading: str, button: str, cancel: str) -> None:
    resp = make().render(
        "logout.html", lang=lang, action="/_gate/logout", csrf_token="c-1", user="jane@example.com"
    )
    doc = Doc(body(resp))
    assert heading in doc.text and button in doc.text and cancel in doc.text
    assert "jane@example.com" in doc.text
    form = doc.one("form")
    assert form["method"] == "post" and form["action"] == "/_gate/logout"
    assert doc.one("input", name="csrf")["value"] == "c-1"
    assert doc.one("a", href="/") is not None


@pytest.mark.parametrize(
    ("status", "lang", "heading"),
    [
        (400, "en", "Bad request"),
        (403, "en", "Forbidden"),
        (404, "ja", "ページが見つかりません"),
        (429, "en", "Too many requests"),
        (502, "en", "Bad gateway"),
        (503, "ja", "サービス利用不可"),
        (504, "en", "Gateway timeout"),
    ],
)
def test_error_page_defaults_from_status(status: int, lang: str, heading: str) -> None:
    resp = make().render("error", lang=lang, status=status)
    assert resp.status == status
    doc = Doc(body(resp))
    assert heading in doc.text
    assert translate(lang, f"status.{status}.message") in doc.text
    assert translate(lang, "error.status", status=str(status)) in doc.text
    assert not doc.find("a", class_="btn btn-primary")  # no retry link unless given


def test_error_page_explicit_text_retry_and_unknown_status() -> None:
    doc = Doc(
        body(
            make().render(
                "error",
                lang="en",
                status=501,
                heading=translate("en", "status.501"),
                message=translate("en", "challenge.unsupported"),
                retry_url="/_gate/login",
            )
        )
    )
    assert "This sign-in step is not supported yet." in doc.text
    assert doc.one("a", href="/_gate/login") is not None and "Try again" in doc.text
    teapot = Doc(body(make().render("error", lang="ja", status=418)))
    assert "エラー" in teapot.text and translate("ja", "error.generic") in teapot.text


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_challenge_page_renders_generic_fields(lang: str) -> None:
    resp = make().render(
        "challenge.html",
        lang=lang,
        action="/_gate/challenge",
        csrf_token="c-2",
        heading=translate(lang, "challenge.mfa.heading"),
        message=translate(lang, "challenge.mfa.totp_message"),
        error=translate(lang, "error.invalid_code"),
        fields=challenge_fields(),
        submit_label=translate(lang, "challenge.verify"),
    )
    doc = Doc(body(resp))
    assert translate(lang, "challenge.mfa.heading") in doc.text
    assert translate(lang, "challenge.verify") in doc.text
    assert doc.one("form")["action"] == "/_gate/challenge"
    assert doc.one("input", name="csrf")["value"] == "c-2"

    code = doc.one("input", name="code")
    assert code["type"] == "text" and code["autocomplete"] == "one-time-code"
    assert code["inputmode"] == "numeric" and "required" in code and "autofocus" in code
    assert doc.one("label", for_=code["id"] or "") is not None
    hint = doc.one("p", class_="hint")
    assert code["aria-describedby"] == f"challenge-error {hint['id']}"
    assert code["aria-invalid"] == "true"

    pw = doc.one("input", name="new_password")
    assert pw["type"] == "password" and "value" not in pw  # never echoed
    assert "autofocus" not in pw
    assert doc.one("input", name="step") == {"type": "hidden", "name": "step", "value": "mfa"}
    nick = doc.one("input", name="nickname")
    assert nick["value"] == "bob" and "required" not in nick
    assert len(doc.find("label")) == 3  # hidden input has no label


def test_challenge_defaults() -> None:
    doc = Doc(body(make().render("challenge", lang="ja", action="/c", csrf_token="c")))
    assert "本人確認" in doc.text and "続行" in doc.text
    assert not doc.find("div", role="alert")


# --- escaping, CSP-compatibility, headers -----------------------------------------------


def test_autoescape_everywhere() -> None:
    evil = '<script>alert("x")</script>'
    pages = make()
    outputs = [
        body(login(pages, username=evil, error=evil, notice=evil)),
        body(pages.render("logout", lang="ja", action="/o", csrf_token=evil, user=evil)),
        body(pages.render("error", lang="en", status=400, heading=evil, message=evil)),
        body(
            pages.render(
                "challenge",
                lang="en",
                action="/c",
                csrf_token="c",
                fields=[{"name": "x", "label": evil, "value": evil}],
            )
        ),
    ]
    for html in outputs:
        assert "<script>alert" not in html
        assert "&lt;script&gt;" in html
    # Markup-building translation still escapes the user inside <strong>.
    assert "<strong>&lt;script&gt;alert" in outputs[1]
    # Branding values are escaped too.
    branded = body(login(make(footer_links=(("<b>x</b>", "/p?a=1&b=2"),))))
    assert "&lt;b&gt;x&lt;/b&gt;" in branded and 'href="/p?a=1&amp;b=2"' in branded


INLINE_PATTERNS = {
    "inline script": re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I),
    "style element": re.compile(r"<style[\s>]", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "javascript url": re.compile(r"javascript:", re.I),
}


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_no_inline_script_or_style(lang: str) -> None:
    for page, html in all_pages(make(), lang).items():
        for what, pattern in INLINE_PATTERNS.items():
            assert not pattern.search(html), f"{what} in {page}"
        assert f'src="{STATIC}/gate.js?v=' in html
        assert f'href="{STATIC}/brand.css?v=' in html


def test_security_headers_on_every_page() -> None:
    pages = make()
    responses = [
        login(pages),
        pages.render("error", lang="en", status=503),
        pages.render("logout", lang="ja", action="/o", csrf_token="c"),
        pages.render("challenge", lang="en", action="/c", csrf_token="c"),
    ]
    for resp in responses:
        for name, value in SECURITY_HEADERS.items():
            assert resp.headers[name] == value
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    for directive in (
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ):
        assert directive in csp.split("; ")
    assert SECURITY_HEADERS["Cache-Control"] == "no-store"
    assert SECURITY_HEADERS["X-Frame-Options"] == "DENY"
    assert responses[2].headers["Content-Language"] == "ja"


def csp_of(pages: Pages) -> dict[str, str]:
    csp = pages.headers["Content-Security-Policy"]
    return dict(part.split(" ", 1) for part in csp.split("; "))


def test_csp_allows_exactly_the_configured_brand_origins() -> None:
    pages = make(
        logo_url="https://cdn.example.com:8443/brand/logo.png?v=2",
        extra_css_url="https://Styles.Example.org/acme.css",
    )
    csp = csp_of(pages)
    assert csp["img-src"] == "'self' data: https://cdn.example.com:8443"
    assert csp["style-src"] == "'self' https://styles.example.org"
    assert csp["script-src"] == "'self'"
    html = body(login(pages))
    assert 'src="https://cdn.example.com:8443/brand/logo.png?v=2"' in html
    assert '<link rel="stylesheet" href="https://Styles.Example.org/acme.css">' in html
    # Same-origin paths and data: logos leave the policy alone.
    local = make(logo_url="/assets/logo.svg", extra_css_url="/assets/extra.css")
    assert local.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert make(logo_url="data:image/png;base64,AAAA").headers == local.headers


@pytest.mark.parametrize(
    "field",
    [
        {"logo_url": "javascript:alert(1)"},
        {"logo_url": "//cdn.example.com/logo.png"},
        {"extra_css_url": "https://x.example.com/a.css; script-src *"},
        {"extra_css_url": "data:text/css,body{}"},
        {"footer_links": (("Help", "javascript:alert(1)"),)},
    ],
)
def test_unsafe_brand_urls_are_rejected(field: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make(**field)


def test_form_action_origins_extend_csp() -> None:
    pages = Pages(
        branding=Branding(),
        static_url=STATIC,
        form_action_origins=("https://auth.example.com/logout",),
    )
    assert csp_of(pages)["form-action"] == "'self' https://auth.example.com"


def test_cdn_static_url_is_allowed_for_assets() -> None:
    pages = Pages(branding=Branding(), static_url="https://static.example.net/gate/")
    csp = csp_of(pages)
    for directive in ("img-src", "style-src", "script-src"):
        assert "https://static.example.net" in csp[directive]
    assert 'href="https://static.example.net/gate/gate.css?v=' in body(login(pages))


# --- template strictness and overrides --------------------------------------------------


def test_missing_required_variable_raises() -> None:
    with pytest.raises(jinja2.UndefinedError):
        make().render("login", lang="en", action="/a")  # no csrf_token


def test_reserved_names_and_bad_status_rejected() -> None:
    with pytest.raises(TypeError):
        make().render("login", lang="en", action="/a", csrf_token="c", brand="x")
    with pytest.raises(ValueError):
        make().render("error", lang="en", status=99)


def test_unknown_language_falls_back_to_english() -> None:
    resp = login(make(), "fr")
    assert Doc(body(resp)).tags[0] == ("html", {"lang": "en"})
    assert resp.headers["Content-Language"] == "en"


def test_operator_templates_override_single_pages(tmp_path: Path) -> None:
    (tmp_path / "login.html").write_text(
        '{% extends "base.html" %}{% set title = "Custom" %}'
        "{% block content %}<p id=custom>Hello {{ username }} {{ t('login.username') }}</p>"
        "{% endblock %}"
    )
    # An operator page may extend the built-in page it replaces.
    (tmp_path / "logout.html").write_text(
        '{% extends "builtin/logout.html" %}'
        '{% block content %}<p id="extra">Bye</p>{{ super() }}{% endblock %}'
    )
    pages = Pages(branding=Branding(product_name="Acme"), static_url=STATIC, templates_dir=tmp_path)
    html = body(pages.render("login", lang="ja", action="/a", csrf_token="c", username="<b>"))
    assert "<p id=custom>Hello &lt;b&gt; ユーザー名</p>" in html
    assert "<title>Custom · Acme</title>" in html  # built-in base.html still used
    assert SECURITY_HEADERS["X-Frame-Options"] == "DENY"
    logout = Doc(body(pages.render("logout", lang="en", action="/o", csrf_token="c", user="u")))
    assert doc_has(logout, "p", id="extra") and logout.one("input", name="csrf")["value"] == "c"
    # Pages not overridden fall back to the built-in ones.
    error = body(pages.render("error", lang="en", status=404))
    assert "Not found" in error and "status-icon" in error


def doc_has(doc: Doc, tag: str, **attrs: str) -> bool:
    return bool(doc.find(tag, **attrs))


def test_missing_templates_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Pages(branding=Branding(), static_url=STATIC, templates_dir=tmp_path / "nope")


# --- static assets ----------------------------------------------------------------------


def test_static_assets_exist_and_are_referenced() -> None:
    directory = static_dir()
    for name in ("gate.css", "gate.js", "logo.svg"):
        assert (directory / name).is_file()
    html = body(login(make()))
    assert f'src="{STATIC}/logo.svg"' in html
    css = (directory / "gate.css").read_text()
    # Every custom property brand.css defines is one gate.css uses.
    for prop in re.findall(r"(--gate-[a-z-]+):", make().brand_css()):
        assert f"var({prop})" in css


def test_asset_version_changes_with_brand() -> None:
    assert make().asset_version != make(primary_color="#ff0000").asset_version


# --- brand colour -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("#2563eb", (0x25, 0x63, 0xEB)),
        ("#ABC", (0xAA, 0xBB, 0xCC)),
        ("#11223380", (0x11, 0x22, 0x33)),
        ("rgb(10, 20, 30)", (10, 20, 30)),
        ("rgb(10 20 30 / 0.5)", (10, 20, 30)),
        ("rgba(1,2,3,0.4)", (1, 2, 3)),
        ("red;}</style>", None),
        ("red", None),
        ("#12345", None),
        ("rgb(300, 0, 0)", None),
        ("rgb(1,2,3);color:red", None),
        ("url(https://evil.example/)", None),
        ("#fff\n}", None),
    ],
)
def test_parse_color(value: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_color(value) == expected


def test_brand_css_rejects_injection() -> None:
    css = make(primary_color="red;}</style><script>x</script>").brand_css()
    assert "--gate-primary: #2563eb;" in css
    assert css == make().brand_css()  # exactly the default stylesheet
    assert "<" not in css and "script" not in css
    assert "--gate-primary: #dc2626;" in make(primary_color="rgb(220, 38, 38)").brand_css()


def hex_of(css: str, prop: str) -> tuple[int, int, int]:
    m = re.search(rf"{prop}: #([0-9a-f]{{6}});", css)
    assert m, prop
    rgb = parse_color("#" + m.group(1))
    assert rgb is not None
    return rgb


@pytest.mark.parametrize("color", ["#2563eb", "#facc15", "#ffffff", "#000000", "#22c55e"])
def test_brand_css_keeps_text_readable(color: str) -> None:
    css = make(primary_color=color).brand_css()
    primary, on_primary = hex_of(css, "--gate-primary"), hex_of(css, "--gate-on-primary")
    assert contrast_ratio(primary, on_primary) >= 4.5
    assert contrast_ratio(hex_of(css, "--gate-link"), (255, 255, 255)) >= 4.5
    dark_link = re.search(r"--gate-link: (#[0-9a-f]{6}); }", css)
    assert dark_link and (dark := parse_color(dark_link.group(1)))
    assert contrast_ratio(dark, (0x15, 0x1B, 0x2B)) >= 4.5


# --- i18n -------------------------------------------------------------------------------


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_catalogs_have_identical_keys_and_placeholders() -> None:
    assert set(MESSAGES) == set(i18n.SUPPORTED_LANGUAGES)
    en, ja = MESSAGES["en"], MESSAGES["ja"]
    assert set(en) - set(ja) == set()
    assert set(ja) - set(en) == set()
    for key in en:
        assert placeholders(en[key]) == placeholders(ja[key]), key
        assert ja[key].strip() and ja[key] != en[key], key  # really translated


def test_required_translations() -> None:
    expected = {
        "error.bad_credentials": "ユーザー名またはパスワードが正しくありません。",
        "login.submit": "サインイン",
        "login.username": "ユーザー名",
        "login.password": "パスワード",
        "logout.submit": "サインアウト",
    }
    for key, text in expected.items():
        assert translate("ja", key) == text
    english = {
        "error.bad_credentials": "Incorrect username or password.",
        "notice.session_expired": "Your session has expired. Please sign in again.",
        "notice.signed_out": "You have been signed out.",
        "error.generic": "Something went wrong. Please try again.",
        "error.too_many": "Too many attempts. Please try again later.",
        "error.unavailable": "The service is temporarily unavailable. Please try again shortly.",
        "challenge.unsupported": "This sign-in step is not supported yet.",
        "error.flow_expired": "Your sign-in took too long. Please start again.",
        "status.400": "Bad request",
        "status.403": "Forbidden",
        "status.404": "Not found",
        "status.502": "Bad gateway",
        "status.504": "Gateway timeout",
    }
    for key, text in english.items():
        assert translate("en", key) == text


def test_every_key_used_in_templates_and_routes_exists() -> None:
    used: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", template.read_text()))
    assert "login.username" in used
    assert used - set(MESSAGES["en"]) == set()


def test_translate_fallbacks_and_formatting() -> None:
    assert translate("fr", "login.title") == "Sign in"
    assert translate("ja", "no.such.key") == "no.such.key"
    assert translate("en", "logout.heading", product="Acme") == "Sign out of Acme?"
    assert translate("ja", "logout.heading", product="Acme") == "Acme からサインアウトしますか?"
    assert translate("en", "logout.heading") == "Sign out of {product}?"  # missing arg kept
    assert translate("en", "error.status", status="{0}") == "Error {0}"  # no re-formatting


@pytest.mark.parametrize(
    ("header", "override", "expected"),
    [
        (None, None, "en"),
        ("", None, "en"),
        ("ja", None, "ja"),
        ("ja-JP", None, "ja"),
        ("JA-jp,en;q=0.5", None, "ja"),
        ("en-US,en;q=0.9,ja;q=0.8", None, "en"),
        ("fr-FR, ja;q=0.3, en;q=0.2", None, "ja"),
        ("en;q=0.1, ja;q=0.9", None, "ja"),
        ("en;q=0.5, ja;q=0.5", None, "en"),  # ties keep header order
        ("ja;q=0, en", None, "en"),  # q=0 means "not acceptable"
        ("ja;q=0", None, "en"),
        ("de, *;q=0.1", None, "en"),
        ("zh-Hant-TW", None, "en"),
        ("ja;q=2, en;q=0.4", None, "en"),  # invalid q entry is skipped
        ("ja;q=abc", None, "en"),
        ("ja;q=nan", None, "en"),
        ("ja;q=0.5000", None, "en"),
        ("@@@, ;;;, ===", None, "en"),
        ("\x00ja", None, "en"),
        ("ja-" + "x" * 20, None, "en"),
        (",,,ja-JP;q=0.8,,", None, "ja"),
        ("ja" + ", en" * 5000, None, "en"),  # oversize header ignored
        ("en", "ja", "ja"),
        ("ja", "en", "en"),
        ("ja", "ja-JP", "ja"),
        ("ja", "fr", "ja"),  # unsupported override ignored
        ("ja", "<script>", "ja"),
        ("ja", "*", "ja"),
    ],
)
def test_pick_language(header: str | None, override: str | None, expected: str) -> None:
    assert pick_language(header, override) == expected


def test_pick_language_custom_supported_and_default() -> None:
    assert pick_language("pt-BR, pt;q=0.9", None, ("en", "pt-BR"), "en") == "pt-BR"
    assert pick_language("de", None, ("en", "ja"), "ja") == "ja"
