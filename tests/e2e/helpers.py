"""Constants and small helpers the browser test modules share."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from playwright.async_api import Page

from tests.support.cognito_double import CognitoDouble
from tests.support.stack import Upstream

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parents[2] / "artifacts"
USER = "erin"
PASSWORD = "Browser-pass-7!"


@dataclass
class Site:
    base: str
    upstream: Upstream
    double: CognitoDouble
    pool_id: str
    redis_url: str

    def url(self, path: str) -> str:
        return self.base + path

    async def expire_sessions(self) -> int:
        """Drop every session record, as Redis does when a session's TTL runs out."""
        client = aioredis.from_url(self.redis_url)
        try:
            keys = [k async for k in client.scan_iter(match="gate:s:*")]
            return int(await client.delete(*keys)) if keys else 0
        finally:
            await client.aclose()


async def sign_in(page: Page, username: str = USER, password: str = PASSWORD) -> None:
    """Fill and submit the login form the page is showing."""
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def totp(secret_b32: str, *, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 TOTP (HMAC-SHA1), as an authenticator app computes it from the shown secret."""
    clean = secret_b32.replace(" ", "").upper()
    key = base64.b32decode(clean + "=" * (-len(clean) % 8))
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)
