"""Rendering of the gate's own HTML pages (login, logout, error, challenge steps).

Receives plain values only; the route layer decides what to show. Every response carries
:data:`SECURITY_HEADERS` (with a CSP widened only for configured brand asset origins).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from proxy.auth import i18n

log = logging.getLogger(__name__)

DEFAULT_PRIMARY_COLOR = "#2563eb"

SECURITY_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
)

# Variables every template receives; callers may not pass them as context.
_RESERVED = frozenset({"brand", "static_url", "lang", "lang_links", "t", "asset_version", "logo"})
# Optional per-page variables, so templates (ours and operators') can test them plainly.
_PAGE_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "login.html": {
        "error": None,
        "notice": None,
        "forgot_url": None,
        "username": "",
        "password_mode": "required",
    },
    "logout.html": {"user": ""},
    "error.html": {"heading": None, "message": None, "retry_url": None},
    "challenge.html": {
        "heading": None,
        "message": None,
        "error": None,
        "fields": (),
        "submit_label": None,
        "cancel_url": None,
    },
    "choice.html": {"message": None, "error": None, "cancel_url": None, "options": ()},
    "mfa_setup.html": {"message": None, "error": None, "cancel_url": None, "fields": ()},
    "custom_challenge.html": {
        "message": None,
        "error": None,
        "cancel_url": None,
        "fields": (),
        "parameters": {},
        "question": None,
        "challenge_type": None,
    },
    "select_challenge.html": {
        "message": None,
        "error": None,
        "cancel_url": None,
        "options": (),
        "password_option": None,
    },
    "webauthn.html": {"message": None, "error": None, "cancel_url": None, "options_json": "{}"},
    "forgot.html": {"username": "", "error": None, "notice": None},
    "forgot_confirm.html": {"error": None, "notice": None, "fields": ()},
    "confirm_signup.html": {"error": None, "notice": None, "fields": ()},
}


@dataclass(frozen=True)
class Branding:
    product_name: str = "Sign in"
    logo_url: str | None = None
    primary_color: str = DEFAULT_PRIMARY_COLOR
    extra_css_url: str | None = None
    footer_links: tuple[tuple[str, str], ...] = ()


def static_dir() -> Path:
    """The built-in static directory (gate.css, gate.js, logo.svg) for the route layer."""
    return Path(str(resources.files("proxy").joinpath("static")))


# --- colours ---------------------------------------------------------------------------

_HEX_RE = re.compile(r"^#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_RGB_RE = re.compile(
    r"^rgba?\(\s*(\d{1,3})\s*(?:,\s*|\s+)(\d{1,3})\s*(?:,\s*|\s+)(\d{1,3})"
    r"\s*(?:[,/]\s*(?:0|1|0?\.\d{1,4}|\d{1,3}%)\s*)?\)$"
)

RGB = tuple[int, int, int]


def parse_color(value: str) -> RGB | None:
    """Parse a strict ``#hex`` / ``rgb()`` / ``rgba()`` colour; anything else -> None.
    Alpha is accepted but dropped (a translucent button would be unreadable)."""
    value = value.strip()
    if _HEX_RE.match(value):
        digits = value[1:]
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits)
        return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
    m = _RGB_RE.match(value)
    if m:
        channels = tuple(int(g) for g in m.groups())
        if all(c <= 255 for c in channels):
            return channels[0], channels[1], channels[2]
    return None


def _luminance(rgb: RGB) -> float:
    def lin(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else float(((s + 0.055) / 1.055) ** 2.4)

    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _mix(a: RGB, b: RGB, amount: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * amount),
        round(a[1] + (b[1] - a[1]) * amount),
        round(a[2] + (b[2] - a[2]) * amount),
    )


def _readable_on(color: RGB, background: RGB, toward: RGB, target: float = 4.5) -> RGB:
    """Move ``color`` toward ``toward`` until it reaches ``target`` contrast on ``background``."""
    for step in range(21):
        candidate = _mix(color, toward, step / 20)
        if contrast_ratio(candidate, background) >= target:
            return candidate
    return toward


def _hex(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


_WHITE: RGB = (255, 255, 255)
_BLACK: RGB = (0, 0, 0)
_DARK_CARD: RGB = (0x15, 0x1B, 0x2B)  # keep in sync with --gate-card in gate.css (dark)


def _brand_css(primary: RGB) -> str:
    on_primary = _WHITE if contrast_ratio(primary, _WHITE) >= 4.5 else _BLACK
    if contrast_ratio(primary, on_primary) < 4.5:  # mid-tones: darken the button instead
        primary = _readable_on(primary, _WHITE, _BLACK)
        on_primary = _WHITE
    r, g, b = primary
    link_light = _readable_on(primary, _WHITE, _BLACK)
    link_dark = _readable_on(primary, _DARK_CARD, _WHITE)
    return (
        "/* Generated from the configured brand colour. */\n"
        ":root {\n"
        f"  --gate-primary: {_hex(primary)};\n"
        f"  --gate-on-primary: {_hex(on_primary)};\n"
        f"  --gate-primary-ring: rgba({r}, {g}, {b}, 0.35);\n"
        f"  --gate-primary-soft: rgba({r}, {g}, {b}, 0.12);\n"
        f"  --gate-link: {_hex(link_light)};\n"
        "}\n"
        "@media (prefers-color-scheme: dark) {\n"
        f"  :root {{ --gate-link: {_hex(link_dark)}; }}\n"
        "}\n"
    )


# --- URLs ------------------------------------------------------------------------------

_ORIGIN_RE = re.compile(r"^https?://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$")


def _origin(url: str, what: str, *, allow_data: bool = False) -> str | None:
    """Validate an operator-supplied asset URL; return its origin if cross-origin, else None.

    Accepted: absolute http(s) URLs, root-relative paths, and (for images) ``data:image/``.
    """
    if any(c.isspace() or c in "\"'<>\\" for c in url):
        raise ValueError(f"{what}: invalid URL {url!r}")
    if url.startswith("/") and not url.startswith("//"):
        return None
    if allow_data and url.startswith("data:image/"):
        return None
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname:
        origin = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1].lower()}"
        if _ORIGIN_RE.match(origin):
            return origin
    raise ValueError(f"{what}: expected an absolute http(s) URL or a /path, got {url!r}")


def _check_link(url: str, what: str) -> None:
    if url.lower().startswith("mailto:") and not any(c.isspace() or c in "<>\"'" for c in url):
        return
    _origin(url, what)


def _build_csp(*, img: list[str], style: list[str], script: list[str], form: list[str]) -> str:
    def src(base: str, extra: list[str]) -> str:
        return " ".join([base, *dict.fromkeys(extra)])

    self_ = "'self'"
    return (
        f"default-src 'none'; style-src {src(self_, style)}; "
        f"img-src {src(self_ + ' data:', img)}; script-src {src(self_, script)}; "
        f"form-action {src(self_, form)}; frame-ancestors 'none'; base-uri 'none'"
    )


class _KeepMissing(dict[str, Any]):
    """Leaves unknown ``{placeholders}`` in place instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


# --- pages -----------------------------------------------------------------------------


class Pages:
    """Renders the built-in (or operator-overridden) templates with security headers."""

    def __init__(
        self,
        *,
        branding: Branding,
        static_url: str,
        templates_dir: Path | None = None,
        form_action_origins: Sequence[str] = (),
    ) -> None:
        self.branding = branding
        self.static_url = static_url.rstrip("/")
        primary = parse_color(branding.primary_color)
        if primary is None:
            log.warning("ignoring invalid brand primary_color %r", branding.primary_color)
            primary = parse_color(DEFAULT_PRIMARY_COLOR)
            assert primary is not None
        self._brand_css = _brand_css(primary)

        # Static assets may live on a CDN: allow its origin for styles, images and scripts.
        static = [o] if (o := _origin(self.static_url or "/", "static_url")) else []
        img, style = list(static), list(static)
        if branding.logo_url and (o := _origin(branding.logo_url, "logo_url", allow_data=True)):
            img.append(o)
        if branding.extra_css_url and (o := _origin(branding.extra_css_url, "extra_css_url")):
            style.append(o)
        for _, url in branding.footer_links:
            _check_link(url, "footer_links")
        forms = [o for u in form_action_origins if (o := _origin(u, "form_action_origins"))]
        csp = _build_csp(img=img, style=style, script=static, form=forms)
        self.headers: Mapping[str, str] = MappingProxyType(
            {**SECURITY_HEADERS, "Content-Security-Policy": csp}
        )
        self.logo = branding.logo_url or f"{self.static_url}/logo.svg"

        digest = hashlib.sha256(self._brand_css.encode())
        for asset in ("gate.css", "gate.js", "webauthn.js"):
            digest.update((static_dir() / asset).read_bytes())
        self.asset_version = digest.hexdigest()[:12]

        builtin = jinja2.PackageLoader("proxy", "templates")
        loaders: list[jinja2.BaseLoader] = []
        if templates_dir is not None:
            if not templates_dir.is_dir():
                raise ValueError(f"templates_dir {templates_dir} is not a directory")
            loaders.append(jinja2.FileSystemLoader(templates_dir))
        # "builtin/x.html" lets an operator template extend the page it replaces.
        loaders += [builtin, jinja2.PrefixLoader({"builtin": builtin})]
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.tests["translatable"] = lambda key: key in i18n.MESSAGES[i18n.DEFAULT_LANGUAGE]

    def has_template(self, name: str) -> bool:
        """Whether ``name`` exists (an operator's directory first, then the built-ins)."""
        try:
            self.env.get_template(name)
        except jinja2.TemplateNotFound:
            return False
        return True

    def brand_css(self) -> str:
        """Stylesheet with the brand colour as CSS custom properties (serve as text/css)."""
        return self._brand_css

    def render_html(
        self,
        name: str,
        *,
        lang: str,
        lang_links: Sequence[tuple[str, str, str]] = (),
        **context: Any,
    ) -> str:
        """Render a page to a string (see :meth:`render`)."""
        if not name.endswith(".html"):
            name += ".html"
        if lang not in i18n.SUPPORTED_LANGUAGES:
            lang = i18n.DEFAULT_LANGUAGE
        clash = _RESERVED.intersection(context)
        if clash:
            raise TypeError(f"reserved template variables: {sorted(clash)}")

        def t(key: str, **fmt: Any) -> Markup:
            # Escape the catalog text, then each argument unless it is already Markup.
            return escape(i18n.message(lang, key)).format_map(_KeepMissing(fmt))

        page_defaults = _PAGE_DEFAULTS.get(name.removeprefix("builtin/"), {})
        variables = {
            **page_defaults,
            **context,
            "brand": self.branding,
            "static_url": self.static_url,
            "lang": lang,
            "t": t,
            "asset_version": self.asset_version,
            "logo": self.logo,
            "lang_links": tuple(lang_links),
        }
        return self.env.get_template(name).render(variables)

    def render(
        self,
        name: str,
        *,
        lang: str,
        status: int = 200,
        lang_links: Sequence[tuple[str, str, str]] = (),
        **context: Any,
    ) -> web.Response:
        """Render ``name`` (``"login"`` or ``"login.html"``) as an HTML response.

        ``status`` is also available to the template. Optional page variables default to
        None / empty (see ``_PAGE_DEFAULTS``); required ones raise if missing.
        """
        if not 200 <= status <= 599:
            raise ValueError(f"unexpected status {status}")
        if lang not in i18n.SUPPORTED_LANGUAGES:
            lang = i18n.DEFAULT_LANGUAGE
        html = self.render_html(name, lang=lang, lang_links=lang_links, status=status, **context)
        resp = web.Response(status=status, text=html, content_type="text/html", charset="utf-8")
        resp.headers.update(self.headers)
        resp.headers["Content-Language"] = lang
        return resp
