"""Logging setup and health: what the proxy tells its operators.

Log lines never carry passwords, codes, tokens, cookies or session ids; modules log a short
fingerprint of a session id at most.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy.settings import LogSettings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(settings: LogSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    # botocore logs request bodies (passwords, tokens) at debug: keep it quiet whatever the level.
    for noisy in ("botocore", "aiobotocore", "aioboto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


ReadinessCheck = Callable[[], Awaitable[str | None]]


class Health:
    """``healthz`` touches nothing external; ``readyz`` runs every readiness check."""

    def __init__(self, checks: list[ReadinessCheck]) -> None:
        self._checks = checks

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def readyz(self, request: web.Request) -> web.StreamResponse:
        problems = [p for p in [await check() for check in self._checks] if p]
        return web.json_response(
            {"ready": not problems, "problems": problems},
            status=503 if problems else 200,
            headers={"Cache-Control": "no-store"},
        )
