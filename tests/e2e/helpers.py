"""Constants and small helpers the browser test modules share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# --- axe-core ---------------------------------------------------------------------------

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
AXE_BLOCKING = ("serious", "critical")
RUN_AXE = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                                    "best-practice"]},
    resultTypes: ["violations"],
  });
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary),
  }));
}"""


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    if not await page.evaluate("() => typeof axe !== 'undefined'"):
        assert AXE.exists(), "run `npm ci --prefix tests/e2e` (make test does)"
        await page.add_script_tag(path=str(AXE))
    return list(await page.evaluate(RUN_AXE))


def axe_report(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['impact']} {v['id']}: {v['help']}\n  " + "\n  ".join(v["nodes"]) for v in violations
    )


async def assert_accessible(page: Page, label: str) -> None:
    """No serious/critical axe violation on ``page`` in light and in dark colour scheme.
    ``page`` must belong to a context opened with ``bypass_csp=True``."""
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        violations = await axe_violations(page)
        if scheme == "light":  # one picture per page is enough; dark is checked all the same
            await shot(page, f"axe-{label}")
        blocking = [v for v in violations if v["impact"] in AXE_BLOCKING]
        assert blocking == [], f"{label}/{scheme}:\n{axe_report(blocking)}"
        # Lesser findings are printed (pytest -s / CI log) so they do not go unseen.
        for v in violations:
            print(f"axe {label}/{scheme}: {v['impact']} {v['id']}: {v['help']}")


async def assert_accessible_as_seen(new_context: Any, page: Page, label: str) -> None:
    """axe on the page ``page`` shows, reloaded with its cookies in a CSP-bypassing context,
    so the flow itself keeps running under the real CSP."""
    twin = await new_context(bypass_csp=True)
    await twin.add_cookies(await page.context.cookies())
    view = await twin.new_page()
    await view.goto(page.url)
    await assert_accessible(view, label)
