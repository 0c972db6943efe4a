"""The account page's screenshots in README.md and README.ja.md, taken from the real page:

    .venv/bin/python -m tests.e2e.readme_shots    (or: make readme-shots)

The gallery's walk (tests/e2e/walk.py) signs a realistic user in through the proxy against
the strict double (an authenticator app, a remembered device, sessions in three browsers, a
new email waiting for its code, recent activity) and keeps the page the proxy served;
Chromium shows it at 1280 px in the light scheme, and the card is written to
``docs/images/account-<lang>.png``: a PNG of at most 256 colours (the card is text on white:
nothing is lost that a reader would see), so the README stays small.
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys
import zlib
from pathlib import Path

from playwright.async_api import Route, async_playwright

from tests.e2e.helpers import ARGS, CHROMIUM
from tests.e2e.walk import LANGS, Shown, account_everything, running_sites

IMAGES = Path(__file__).parents[2] / "docs" / "images"
WIDTH = 1280
MAX_BYTES = 400_000  # a README image should stay well under this


async def _shoot(base: str, item: Shown) -> bytes:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": WIDTH, "height": 900})
            await page.emulate_media(color_scheme="light")

            async def answer(route: Route) -> None:
                await route.fulfill(status=item.status, headers=item.headers, body=item.html)

            await page.route(f"{base}/_gallery/**", answer)
            await page.goto(f"{base}/_gallery/{item.name}/{item.lang}")
            return await page.locator(".card").screenshot(type="png", animations="disabled")
        finally:
            await browser.close()


async def main() -> int:
    # The Admin API is signed like AWS asks, and the double needs no real key (as in tests/).
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(key, value)
    IMAGES.mkdir(parents=True, exist_ok=True)
    async with running_sites() as sites:
        for lang in LANGS:
            states = await account_everything(sites, lang)
            item = next(s for s in states if s.name == "account-everything")
            png = _fewer_colours(await _shoot(sites.main, item))
            path = IMAGES / f"account-{lang}.png"
            path.write_bytes(png)
            print(f"{path.relative_to(IMAGES.parents[1])}: {len(png):,} bytes")
            if len(png) > MAX_BYTES:
                print(f"  larger than {MAX_BYTES:,} bytes", file=sys.stderr)
                return 1
    return 0


# -- a small PNG without an image library ---------------------------------------------------


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        out.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return out


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytearray]:
    stride = width * bpp
    rows: list[bytearray] = []
    prev = bytearray(stride)
    at = 0
    for _ in range(height):
        kind, line = raw[at], bytearray(raw[at + 1 : at + 1 + stride])
        at += 1 + stride
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(line)
        prev = line
    return rows


def _fewer_colours(png: bytes) -> bytes:
    """Chromium's RGB(A) PNG as an 8-bit palette PNG: the 256 commonest colours, every other
    one drawn as the nearest of them (the card is text on flat colours: the rare ones are
    anti-aliased edges), deflated at level 9. Returned as it is when it cannot be read so."""
    chunks = _chunks(png)
    header = next(body for kind, body in chunks if kind == b"IHDR")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace:
        return png
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    rows = [
        [bytes(line[x : x + 3]) for x in range(0, width * bpp, bpp)]
        for line in _unfilter(raw, width, height, bpp)
    ]
    counts: dict[bytes, int] = {}
    for pixels in rows:
        for px in pixels:
            counts[px] = counts.get(px, 0) + 1
    palette = sorted(counts, key=counts.__getitem__, reverse=True)[:256]

    def nearest(px: bytes) -> int:
        return min(
            range(len(palette)),
            key=lambda i: sum((a - b) * (a - b) for a, b in zip(px, palette[i], strict=True)),
        )

    index = {px: i for i, px in enumerate(palette)}
    for px in counts:
        if px not in index:
            index[px] = nearest(px)
    out = bytearray()
    for pixels in rows:
        out.append(0)
        out.extend(index[px] for px in pixels)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)),
            chunk(b"PLTE", b"".join(palette)),
            chunk(b"IDAT", zlib.compress(bytes(out), 9)),
            chunk(b"IEND", b""),
        )
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
