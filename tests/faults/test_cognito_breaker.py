"""Issue 18.3, the circuit breaker: Cognito fails every call (throttling and 5xx) for ~22 s
while 200 signed-in sessions all reach their refresh point and then their tokens' expiry.

What users see: every request answered 200 or 503, never a sign-in page or a 401; while the
breaker is open, sign-ins get the "try again later" page at once; once Cognito is back the
breaker closes at its half-open probe and every session is still signed in. What the breaker
shows: ``gate_cognito_breaker_open`` 0 → 1 → 0, a failed probe keeping it open.
What Cognito sees: while open, nothing but the probes; after recovery exactly one refresh
call per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from proxy.cognito.breaker import CircuitBreaker
from proxy.cognito.client import MAX_ATTEMPTS
from tests.faults.harness import healthy_upstream, load_client, pool_env, serve
from tests.support.cognito_double import CognitoDouble, running_double
from tests.support.stack import CSRF_FIELD

pytestmark = pytest.mark.faults

PASSWORD = "Faults-breaker-1!"
SESSIONS = 200
COOLDOWN = CircuitBreaker().cooldown  # as shipped (15 s): the gate builds its own this way
CHAOS = ("InitiateAuth", "RespondToAuthChallenge", "GetTokensFromRefreshToken")
REFRESH = "GetTokensFromRefreshToken"
# The 200 sessions' tokens are issued at one instant (the double's clock is held while they
# sign in), so they cross their refresh point (half their life) and their expiry at once. Their
# life is fitted to this machine's speed: the sign-ins must be over 3 s before the refresh point,
# when Cognito starts failing every call, until the breaker's first probe has failed (failed
# sign-ins and the refresh wave open it; the probe comes a cooldown later).
MIN_TOKEN_TTL = 28
BEFORE_REFRESH = 3.0
AFTER_CLOSE = 3.0  # the load goes on this long after the breaker closed


@pytest.fixture(scope="module")
def double() -> Iterator[CognitoDouble]:
    with running_double(token_ttl=MIN_TOKEN_TTL) as d:
        yield d


async def sign_in(base: str, username: str) -> tuple[int, str, str]:
    """(status, page or Location, Cookie header value) of one fresh browser's sign-in."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(base + "/_auth/login") as resp:
            csrf = CSRF_FIELD.search(await resp.text())
            assert csrf, resp.status
        form = {"csrf": csrf.group(1), "username": username, "password": PASSWORD}
        async with browser.post(
            base + "/_auth/login",
            data=form,
            allow_redirects=False,
            headers={"Accept": "text/html"},
        ) as resp:
            text = resp.headers.get("Location", "") if resp.status == 303 else await resp.text()
            cookie = "; ".join(f"{m.key}={m.value}" for m in browser.cookie_jar)
            return resp.status, text, cookie


async def test_the_breaker_opens_under_a_cognito_outage_and_closes_after_it_losing_no_session(
    double: CognitoDouble, tmp_path: Path
) -> None:
    pool_id = double.create_pool()
    client_id, _ = double.create_client(pool_id, secret=False)
    double.add_user(pool_id, "bea", PASSWORD)
    double.add_user(pool_id, "newcomer", PASSWORD)
    async with healthy_upstream() as upstream:
        env = {
            **pool_env(double, pool_id, client_id),
            "GATE_UPSTREAM_URL": upstream,
            # Password sign-ins: 200 of them fit in the seconds before the refresh point.
            "GATE_COGNITO_AUTH_FLOW": "USER_PASSWORD_AUTH",
        }
        async with serve(env, tmp_path) as served, load_client() as http:
            gate = asyncio.Semaphore(8)

            async def one_sign_in(username: str = "bea") -> str:
                async with gate:
                    status, _, cookie = await sign_in(served.base, username)
                    assert status == 303, status
                    return cookie

            # How long 200 sign-ins take here now, from 20 (sessions never used again).
            began = time.monotonic()
            await asyncio.gather(*(one_sign_in("newcomer") for _ in range(20)))
            expected = (time.monotonic() - began) * SESSIONS / 20
            token_ttl = max(MIN_TOKEN_TTL, round(2 * (1.4 * expected + 1 + BEFORE_REFRESH)))
            outage_from = token_ttl / 2 - BEFORE_REFRESH
            double.token_ttl = token_ttl
            issued = time.time()
            double.clock = lambda: issued
            try:
                cookies = await asyncio.gather(*(one_sign_in() for _ in range(SESSIONS)))
            finally:
                double.clock = time.time
            signed_in_in = time.time() - issued
            assert signed_in_in < outage_from, f"{signed_in_in:.1f}s: slower than expected"

            def at(offset: float) -> float:
                """The monotonic time ``offset`` seconds after the tokens were issued."""
                return time.monotonic() + issued + offset - time.time()

            outcomes: list[tuple[float, int]] = []  # (monotonic, status) of session requests
            samples: list[tuple[float, float, int]] = []  # (monotonic, breaker gauge, calls)
            attempts: list[tuple[float, int, str]] = []
            marks: dict[str, float] = {}
            calls_at: dict[str, int] = {}
            done, opened_now = asyncio.Event(), asyncio.Event()
            hard_stop = at(outage_from + BEFORE_REFRESH + 3 * COOLDOWN)

            async def user(cookie: str) -> None:
                headers = {"Cookie": cookie, "Accept": "application/json"}
                while not done.is_set():
                    async with http.get(served.base + "/app", headers=headers) as resp:
                        await resp.read()
                    outcomes.append((time.monotonic(), resp.status))
                    await asyncio.sleep(1.0)

            async def watch_breaker() -> None:
                while not done.is_set():
                    m = await served.metrics(http)
                    now, value = time.monotonic(), m.get("gate_cognito_breaker_open", 0.0)
                    samples.append((now, value, len(double.calls)))
                    if value == 1.0 and "opened" not in marks:
                        marks["opened"] = now
                        opened_now.set()
                    elif value == 0.0 and "opened" in marks and "closed" not in marks:
                        marks["closed"] = now
                    if now > marks.get("closed", hard_stop - AFTER_CLOSE) + AFTER_CLOSE:
                        done.set()
                    await asyncio.sleep(0.25)

            async def sign_ins() -> None:
                while not done.is_set():
                    status, text, _ = await sign_in(served.base, "newcomer")
                    attempts.append((time.monotonic(), status, text))
                    await asyncio.sleep(0.5)

            async def outage() -> None:
                await asyncio.sleep(max(0.0, at(outage_from) - time.monotonic()))
                calls_at["outage"] = len(double.calls)
                for op in CHAOS:
                    double.inject_flaky[op] = 1.0
                marks["outage"] = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(opened_now.wait(), hard_stop - time.monotonic())
                # Past the first half-open probe (which fails), well before the second.
                await asyncio.sleep(
                    max(0.0, marks.get("opened", 0) + COOLDOWN + 2.5 - time.monotonic())
                )
                for op in CHAOS:
                    double.inject_flaky.pop(op)
                calls_at["recovered"] = len(double.calls)
                marks["recovered"] = time.monotonic()

            await asyncio.gather(*(user(c) for c in cookies), watch_breaker(), sign_ins(), outage())
            after: Counter[int] = Counter()
            for cookie in cookies:
                async with http.get(
                    served.base + "/app", headers={"Cookie": cookie, "Accept": "application/json"}
                ) as resp:
                    after[resp.status] += 1
            metrics = await served.metrics(http)
            log = served.log_lines()
            calls = list(double.calls)

    opened, closed, recovered = marks["opened"], marks["closed"], marks["recovered"]
    during = Counter(
        b.get("RefreshToken")
        for op, b in calls[calls_at["outage"] : calls_at["recovered"]]
        if op == REFRESH
    )
    since = Counter(
        b.get("RefreshToken") for op, b in calls[calls_at["recovered"] :] if op == REFRESH
    )

    def calls_between(begin: float, end: float) -> int:
        inside = [n for t, _, n in samples if begin <= t <= end]
        return inside[-1] - inside[0] if inside else 0

    quiet = calls_between(opened + 1, opened + COOLDOWN - 1)  # open: nothing reaches Cognito
    probed = calls_between(opened + COOLDOWN - 1, recovered)  # the half-open probe, failing
    back = min((t for t, s in outcomes if t > closed and s == 200), default=float("inf"))
    last_503 = max((t for t, s in outcomes if s != 200), default=0.0)
    while_open = [(s, text) for t, s, text in attempts if opened + 0.5 < t < closed - 0.5]
    after_close = [s for t, s, _ in attempts if t > closed + 0.5]
    statuses = Counter(s for _, s in outcomes)
    circuit_open = sum(
        v
        for k, v in metrics.items()
        if k.startswith("gate_cognito_requests_total{") and 'outcome="CircuitOpen"' in k
    )
    print(
        f"\n{SESSIONS} sessions signed in in {signed_in_in:.1f}s (tokens for {token_ttl}s); "
        f"requests {dict(statuses)}; "
        f"breaker opened {opened - marks['outage']:.1f}s into the outage; Cognito calls while "
        f"open {quiet}, at the failed probe {probed}; Cognito back after "
        f"{recovered - marks['outage']:.1f}s; breaker closed {closed - recovered:.1f}s after "
        f"that (open {closed - opened:.1f}s), last 503 {last_503 - recovered:.1f}s after it; "
        f"refresh calls during the outage {sum(during.values())} for {len(during)} sessions "
        f"(max {max(during.values(), default=0)}), after it {sum(since.values())} for "
        f"{len(since)} sessions (max {max(since.values(), default=0)}); sign-ins while open "
        f"{dict(Counter(s for s, _ in while_open))}, after closing {dict(Counter(after_close))};"
        f" calls refused by the open breaker {circuit_open:.0f}; after: {dict(after)}"
    )
    # No session lost: only 200 or 503 ("try again"), and every one is there afterwards.
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0  # tokens did run out while Cognito was away...
    assert after == {200: SESSIONS}, after  # ...and every session came back
    # The breaker opened under the outage; while open only the half-open probe reached Cognito
    # and, failing, kept it open; it closed at the next probe, once Cognito was back.
    assert quiet == 0, quiet
    assert 1 <= probed <= 2 * MAX_ATTEMPTS, probed
    assert recovered < closed <= recovered + COOLDOWN + 2
    assert back <= closed + 2
    assert circuit_open > 0
    # Sign-ins while open: the "try again later" page at once; after closing: through.
    # (A sign-in that was the half-open probe gets Cognito's own answer: throttled, 429.)
    assert Counter(s for s, _ in while_open)[503] >= len(while_open) - 2, while_open
    for status, text in while_open:
        assert status in (429, 503), (status, text[:300])
        assert "try again" in text.lower(), text[:500]
    assert after_close and set(after_close) == {303}, after_close
    # Refresh load: one call per session. During the outage the wave that opened the breaker
    # (its attempts: the retries of that one call) and the probes; after it exactly one each.
    # (The session whose refresh was the failed probe made that call too.)
    assert max(during.values()) <= 2 * MAX_ATTEMPTS, during.most_common(3)
    assert sorted(during.values())[-2:-1] <= [MAX_ATTEMPTS], during.most_common(3)
    assert sum(during.values()) <= 2 * SESSIONS, sum(during.values())
    assert since == dict.fromkeys(since, 1) and len(since) == SESSIONS, since.most_common(3)
    assert not [e for e in log if e.get("level") == "error"]
    assert not any(e.get("status") == 500 for e in log)
