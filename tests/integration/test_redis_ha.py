"""Sessions on real Redis topologies: Cluster, Sentinel failover during traffic, a restart with
persistence, several proxies sharing one store. Outages read as 503, never as "signed out"."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import RedisProcess
from tests.support.redis_topologies import (
    persistent_redis,
    redis_cluster,
    secured_redis,
    sentinel_group,
)
from tests.support.stack import (
    Browser,
    Upstream,
    cognito_kwargs,
    proxy_settings,
    running_proxy,
)
from tests.support.tls import make_tls_files

PASSWORD = "Ha-pass-1!"


@pytest.fixture
def pool(double: CognitoDouble) -> dict[str, Any]:
    pool_id = double.create_pool()
    client_id, secret = double.create_client(pool_id, secret=True)
    for name in ("gus", "hal", "ida"):
        double.add_user(pool_id, name, PASSWORD)
    return cognito_kwargs(double, pool_id, client_id, secret)


def settings_for(store_url: str, upstream: Upstream, pool: dict[str, Any]) -> Any:
    return proxy_settings(
        upstream_url=upstream.url,
        session={"store_url": store_url, "store_timeout": 0.5},
        **pool,
    )


async def test_sessions_work_on_a_three_master_cluster(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    with redis_cluster(3) as cluster:
        async with running_proxy(settings_for(cluster.url, upstream, pool)) as base:
            browsers = [Browser(base) for _ in range(3)]
            try:
                for browser, name in zip(browsers, ("gus", "hal", "ida"), strict=True):
                    assert (await browser.login(name, PASSWORD)).status == 303
                for _ in range(3):
                    for browser in browsers:
                        assert (await browser.get("/app")).status == 200
                assert (await browsers[0].get("/_auth/readyz")).status == 200
            finally:
                for browser in browsers:
                    await browser.close()
            # Three sessions, their three account-page cards and three per-user session
            # indexes, spread over the masters by hash slot (login flows were deleted).
            sizes = [int(n.command("DBSIZE").strip(":\r\n")) for n in cluster.masters]
            cards = [
                int(n.command("KEYS", "gate:card:*").split("\r\n", 1)[0].lstrip("*"))
                for n in cluster.masters
            ]
            assert (sum(sizes), sum(cards)) == (9, 3)


async def test_sentinel_failover_during_traffic_keeps_the_session(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    with sentinel_group(3) as group:
        async with running_proxy(settings_for(group.url, upstream, pool)) as base:
            browser = Browser(base)
            try:
                assert (await browser.login("gus", PASSWORD)).status == 303
                cookie = browser.cookie("gate")
                # Replication is asynchronous: a crash loses writes the replica has not seen.
                deadline = time.monotonic() + 5
                while group.replica.command("DBSIZE").strip(":\r\n") == "0":
                    assert time.monotonic() < deadline, "replica never caught up"
                    await asyncio.sleep(0.05)
                assert (await browser.get("/before")).status == 200

                group.primary.kill()
                killed = time.monotonic()
                statuses: list[int] = []
                recovered_at = None
                while time.monotonic() - killed < 20:
                    resp = await browser.get("/during")
                    statuses.append(resp.status)
                    if resp.status == 503:
                        assert resp.headers["Retry-After"]
                    if statuses[-3:] == [200, 200, 200] and 503 in statuses:
                        recovered_at = time.monotonic()
                        break
                    await asyncio.sleep(0.05)
                assert set(statuses) <= {200, 503}, statuses  # never 500, never a login redirect
                assert recovered_at is not None, f"no recovery: {statuses[-10:]}"
                assert recovered_at - killed < 15
                # Every sentinel agrees on the promoted replica soon after clients moved over.
                agreed = time.monotonic() + 5
                while group.master_port() != group.replica.port:
                    assert time.monotonic() < agreed, "sentinels never named the replica master"
                    await asyncio.sleep(0.1)
                assert browser.cookie("gate") == cookie
                assert upstream.last_headers["X-Forwarded-User"] == "gus"
            finally:
                await browser.close()


async def test_sessions_survive_a_redis_restart_with_persistence(
    pool: dict[str, Any], upstream: Upstream
) -> None:
    with persistent_redis() as node:
        url = f"redis://127.0.0.1:{node.port}/0"
        async with running_proxy(settings_for(url, upstream, pool)) as base:
            browser = Browser(base)
            try:
                assert (await browser.login("hal", PASSWORD)).status == 303
                cookie = browser.cookie("gate")
                node.stop()
                down = await browser.get("/while-down")
                assert down.status == 503
                assert "Set-Cookie" not in down.headers
                node.start()  # same port, same append-only file
                assert (await browser.get("/after-restart")).status == 200
                assert browser.cookie("gate") == cookie
            finally:
                await browser.close()


async def test_several_proxies_share_one_store(
    pool: dict[str, Any], upstream: Upstream, redis_server: RedisProcess
) -> None:
    settings = settings_for(redis_server.url, upstream, pool)
    async with running_proxy(settings) as base_a, running_proxy(settings) as base_b:
        a, b = Browser(base_a), Browser(base_b)
        try:
            assert (await a.login("ida", PASSWORD)).status == 303
            b.http.cookie_jar.update_cookies({"gate": a.cookie("gate") or ""})
            assert (await b.get("/on-b")).status == 200
            assert upstream.last_headers["X-Forwarded-User"] == "ida"
        finally:
            await a.close()
            await b.close()


async def test_tls_and_an_acl_user_and_a_wrong_password_fails_closed(
    pool: dict[str, Any], upstream: Upstream, tmp_path: Path
) -> None:
    tls = make_tls_files(tmp_path)
    with secured_redis(tls, "gate", "s3cret-pass") as node:
        good = f"rediss://gate:s3cret-pass@127.0.0.1:{node.port}/0?ssl_ca_certs={tls.ca}"
        async with running_proxy(settings_for(good, upstream, pool)) as base:
            browser = Browser(base)
            try:
                assert (await browser.login("gus", PASSWORD)).status == 303
                assert (await browser.get("/over-tls")).status == 200
                cookie = browser.cookie("gate")
            finally:
                await browser.close()
        # A wrong password is an outage (503), never "no such session" (a sign-in page).
        bad = good.replace("s3cret-pass", "wrong-pass")
        async with running_proxy(settings_for(bad, upstream, pool)) as base:
            browser = Browser(base)
            try:
                browser.http.cookie_jar.update_cookies({"gate": cookie or ""})
                assert (await browser.get("/wrong-password")).status == 503
                assert (await browser.get("/_auth/readyz")).status == 503
            finally:
                await browser.close()


async def test_sessions_work_on_a_tls_cluster(
    pool: dict[str, Any], upstream: Upstream, tmp_path: Path
) -> None:
    tls = make_tls_files(tmp_path)
    with redis_cluster(3, tls=tls) as cluster:
        url = cluster.url.replace("redis+cluster://", "rediss+cluster://")
        url += f"?ssl_ca_certs={tls.ca}"
        async with running_proxy(settings_for(url, upstream, pool)) as base:
            browser = Browser(base)
            try:
                assert (await browser.login("hal", PASSWORD)).status == 303
                assert (await browser.get("/over-tls")).status == 200
                assert (await browser.get("/_auth/readyz")).status == 200
            finally:
                await browser.close()
