"""QR codes for TOTP enrolment, rendered on the server as SVG (no external service, no JS).

The page embeds the SVG as a ``data:`` URI image, which the pages' CSP allows
(``img-src 'self' data:``); the secret is also shown as text for manual entry.
"""

from __future__ import annotations

import base64
import io
from urllib.parse import quote, urlencode

import segno


def otpauth_uri(*, issuer: str, account: str, secret: str) -> str:
    """``otpauth://totp/<issuer>:<account>?secret=...&issuer=...`` (Google Authenticator's
    Key URI format, understood by every authenticator app)."""
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode({"secret": secret, "issuer": issuer}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"


def svg(data: str) -> bytes:
    """The QR code of ``data`` as a standalone SVG document (dark modules on white)."""
    code = segno.make(data, error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind="svg", xmldecl=False, scale=5, border=4, dark="#000", light="#fff")
    return out.getvalue()


def svg_data_uri(data: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg(data)).decode("ascii")
