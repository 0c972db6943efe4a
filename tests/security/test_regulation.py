"""Brute-force regulation: per-username and per-address sliding windows with bans."""

from __future__ import annotations

import ipaddress
import re
import statistics
import time
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.auth.regulation import Limit, Regulator, address_bucket, normalise_username
from proxy.sessions.memory import MemoryStore
from proxy.sessions.redis import RedisStore
from tests.security.conftest import EMAIL, PASSWORD, USER, Stack, stack_for
from tests.support.cognito_double import CognitoDouble
from tests.support.redis_server import RedisProcess

KEY = b"k" * 32
USER_LIMIT = Limit(max_failures=3, window=60, ban=120)
IP_LIMIT = Limit(max_failures=5, window=60, ban=300)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _regulator(store: MemoryStore | RedisStore, clock: Clock) -> Regulator:
    return Regulator(store, KEY, user=USER_LIMIT, ip=IP_LIMIT, clock=clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def regulator(clock: Clock) -> Regulator:
    # The memory store expires on its own monotonic clock: give it the test's clock too.
    return _regulator(MemoryStore(clock=clock), clock)


# -- the counters ---------------------------------------------------------------------------


async def test_username_is_banned_after_max_failures_in_the_window(regulator: Regulator) -> None:
    for n in range(3):
        assert await regulator.banned("carol", f"10.0.0.{n}") is None
        await regulator.failed("carol", f"10.0.0.{n}")
    wait = await regulator.banned("carol", "10.9.9.9")
    assert wait is not None and 119 < wait <= 120
    assert await regulator.banned("dave", "10.9.9.9") is None


async def test_ban_ends_after_the_ban_duration(regulator: Regulator, clock: Clock) -> None:
    for _ in range(3):
        await regulator.failed("carol", "10.0.0.1")
    clock.now += 121
    assert await regulator.banned("carol", "10.0.0.1") is None


async def test_sliding_window_forgets_old_failures(regulator: Regulator, clock: Clock) -> None:
    await regulator.failed("carol", "")
    await regulator.failed("carol", "")
    clock.now += 130  # two windows later: both buckets are history
    await regulator.failed("carol", "")
    await regulator.failed("carol", "")
    assert await regulator.banned("carol", "") is None


async def test_sliding_window_counts_across_a_bucket_boundary(
    regulator: Regulator, clock: Clock
) -> None:
    clock.now = 60 * 20_000 + 59  # one second before a bucket boundary
    await regulator.failed("carol", "")
    await regulator.failed("carol", "")
    clock.now += 2  # next bucket: the previous one still weighs ~97 %
    await regulator.failed("carol", "")
    await regulator.failed("carol", "")  # 2 in this bucket alone would pass a fixed window
    assert await regulator.banned("carol", "") is not None


async def test_username_spellings_share_one_counter(regulator: Regulator) -> None:
    fullwidth = "\uff23\uff21\uff32\uff2f\uff2c"  # CAROL in fullwidth letters: NFKC folds it
    for spelling in ("Carol", " carol ", fullwidth):
        await regulator.failed(spelling, "")
    assert await regulator.banned("carol", "") is not None
    assert normalise_username(f"  {fullwidth} ") == "carol"


async def test_aliases_share_the_internal_users_counter(regulator: Regulator) -> None:
    """Email and username both count against Cognito's internal id once it named it."""
    await regulator.failed(EMAIL, "", user_id="carol")
    await regulator.failed(EMAIL, "", user_id="carol")
    await regulator.failed("carol", "", user_id="carol")
    assert await regulator.banned("carol", "") is not None
    assert await regulator.banned(EMAIL, "") is not None  # via the remembered alias


async def test_address_counter_spans_usernames(regulator: Regulator) -> None:
    """Password spraying: one address, many names, each under its own limit."""
    for n in range(5):
        await regulator.failed(f"user{n}", "192.0.2.7")
    assert await regulator.banned("someone-else", "192.0.2.7") is not None
    assert await regulator.banned("someone-else", "192.0.2.8") is None


async def test_ipv6_addresses_count_per_64(regulator: Regulator) -> None:
    for n in range(5):
        await regulator.failed(f"user{n}", f"2001:db8:1:2::{n + 1}")
    assert await regulator.banned("x", "2001:db8:1:2:ffff::1") is not None
    assert await regulator.banned("x", "2001:db8:1:3::1") is None
    assert address_bucket("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_bucket("") is None


async def test_success_clears_the_username_counter_but_not_the_address(
    regulator: Regulator,
) -> None:
    for _ in range(2):
        await regulator.failed("carol", "192.0.2.1")
    await regulator.succeeded("carol")
    await regulator.failed("carol", "192.0.2.1")
    assert await regulator.banned("carol", "192.0.2.99") is None  # 1 failure, not 3
    await regulator.failed("a", "192.0.2.1")
    await regulator.failed("b", "192.0.2.1")
    assert await regulator.banned("z", "192.0.2.1") is not None  # 5 from this address


async def test_store_keys_never_contain_the_username_or_address(clock: Clock) -> None:
    store = MemoryStore(clock=clock)
    regulator = _regulator(store, clock)
    await regulator.failed(EMAIL, "192.0.2.1", user_id="carol")
    keys = " ".join(store._data)
    values = b" ".join(v for _, v in store._data.values())
    assert "carol" not in keys and "192.0.2" not in keys and "example" not in keys
    assert b"192.0.2" not in values


async def test_replicas_share_counters_through_redis(
    redis_server: RedisProcess, clock: Clock
) -> None:
    one, two = RedisStore.from_url(redis_server.url), RedisStore.from_url(redis_server.url)
    try:
        first, second = _regulator(one, clock), _regulator(two, clock)
        await first.failed("carol", "")
        await second.failed("carol", "")
        await first.failed("carol", "")
        assert await second.banned("carol", "") is not None
    finally:
        await one.close()
        await two.close()


# -- through the login form ----------------------------------------------------------------

REGULATION = {"user_max_failures": 3, "user_window": 60, "user_ban": 60}


@pytest.fixture
async def regulated(double: CognitoDouble) -> AsyncIterator[Stack]:
    async with stack_for(double, regulation=REGULATION) as s:
        yield s


def _auth_calls(double: CognitoDouble) -> int:
    return sum(1 for name, _ in double.calls if "Auth" in name)


async def test_banned_username_gets_429_without_calling_cognito(regulated: Stack) -> None:
    for _ in range(3):
        assert (await regulated.browser.login(USER, "wrong-password")).status == 401
    calls = _auth_calls(regulated.double)
    resp = await regulated.browser.login(USER, PASSWORD)  # even the right password waits
    assert resp.status == 429
    assert "Too many attempts. Please try again later." in await resp.text()
    assert 0 < int(resp.headers["Retry-After"]) <= 60
    assert _auth_calls(regulated.double) == calls
    assert regulated.browser.cookie("gate") is None


async def test_unknown_usernames_are_banned_the_same_way(regulated: Stack) -> None:
    for _ in range(3):
        assert (await regulated.browser.login("nobody", "wrong-password")).status == 401
    assert (await regulated.browser.login("nobody", "wrong-password")).status == 429


async def test_email_alias_and_username_share_the_counter(regulated: Stack) -> None:
    assert (await regulated.browser.login(EMAIL, "wrong-1")).status == 401
    assert (await regulated.browser.login(EMAIL, "wrong-2")).status == 401
    assert (await regulated.browser.login(USER, "wrong-3")).status == 401
    assert (await regulated.browser.login(USER, PASSWORD)).status == 429
    assert (await regulated.browser.login(EMAIL, PASSWORD)).status == 429


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("TooManyRequestsException", "Too many requests"),
        ("LimitExceededException", "Attempt limit exceeded, please try after some time."),
    ],
)
async def test_cognito_throttling_is_try_again_later_and_not_counted(
    regulated: Stack, code: str, message: str
) -> None:
    double = regulated.double
    double.inject_errors = {"InitiateAuth": (code, message)}
    try:
        for _ in range(4):
            resp = await regulated.browser.login(USER, PASSWORD)
            assert resp.status == 429
            assert "Too many attempts. Please try again later." in await resp.text()
            assert "Incorrect username or password." not in await resp.text()
    finally:
        double.inject_errors = {}
    assert (await regulated.browser.login(USER, PASSWORD)).status == 303  # never banned


async def test_guesses_during_cognitos_lockout_stop_at_the_proxy(double: CognitoDouble) -> None:
    """Issue 13 item 5: after five wrong passwords Cognito answers "Password attempts exceeded";
    those answers count toward the ban like wrong passwords and read like one, so a burst of
    guesses on one account stops reaching Cognito (and its shared per-pool quota)."""
    regulation = {"user_max_failures": 10, "user_window": 900, "user_ban": 900}
    async with stack_for(double, regulation=regulation) as stack:
        before = len(double.calls_to("InitiateAuth"))
        answers = []
        for n in range(24):
            resp = await stack.browser.login(USER, f"Wrong-guess-{n}!")
            answers.append((resp.status, "Incorrect username or password." in await resp.text()))
        guesses = len(double.calls_to("InitiateAuth")) - before
        exceeded = [f for f in double.failures if f[2].startswith(f"{USER} locked out")]
    assert exceeded, "the double's lockout never answered: the test proves nothing"
    assert answers[:10] == [(401, True)] * 10  # wrong, then locked out: the same words
    assert [status for status, _ in answers[10:]] == [429] * 14
    assert guesses == 10


async def test_success_resets_the_username_counter(regulated: Stack) -> None:
    for _ in range(2):
        await regulated.browser.login(USER, "wrong-password")
    assert (await regulated.browser.login(USER, PASSWORD)).status == 303
    regulated.browser.http.cookie_jar.clear()
    for _ in range(2):
        assert (await regulated.browser.login(USER, "wrong-password")).status == 401
    assert (await regulated.browser.login(USER, PASSWORD)).status == 303


# -- no user enumeration ---------------------------------------------------------------------

_CSRF = re.compile(rb'name="csrf"\s+value="[^"]+"')


async def _answer(stack: Stack, username: str) -> tuple[int, bytes, float]:
    token = await stack.browser.login_form()
    started = time.perf_counter()
    resp = await stack.browser.post(
        "/_auth/login", {"csrf": token, "username": username, "password": "Wrong-guess-1!"}
    )
    elapsed = time.perf_counter() - started
    body = _CSRF.sub(b"CSRF", (await resp.text()).encode()).replace(username.encode(), b"USERNAME")
    return resp.status, body, elapsed


@pytest.mark.parametrize("flow", ["USER_SRP_AUTH", "ADMIN_USER_PASSWORD_AUTH"])
async def test_unknown_user_and_wrong_password_answer_identically(
    double: CognitoDouble, flow: str
) -> None:
    """Same status, same bytes (but the CSRF token and the echoed name), similar time."""
    known: list[tuple[int, bytes, float]] = []
    unknown: list[tuple[int, bytes, float]] = []
    async with stack_for(double, auth_flow=flow, regulation={"user_max_failures": 100}) as stack:
        for _ in range(8):  # interleaved, so drift on a shared machine hits both alike
            known.append(await _answer(stack, USER))
            unknown.append(await _answer(stack, "nobodyx"))
    assert {a[0] for a in known} == {a[0] for a in unknown} == {401}
    assert len({a[1] for a in known + unknown}) == 1
    medians = sorted(statistics.median(a[2] for a in runs) for runs in (known, unknown))
    # No branch of ours depends on the user existing; both make the same Cognito calls. The
    # tolerance is for scheduler noise on a loaded 2-core machine, not for a real difference.
    assert medians[1] - medians[0] < max(0.1, medians[1] / 2), medians


# -- properties -----------------------------------------------------------------------------


@given(st.text(max_size=80))
def test_address_bucket_never_raises_and_names_one_network(address: str) -> None:
    bucket = address_bucket(address)
    if bucket is not None:
        network = ipaddress.ip_network(bucket, strict=False)
        assert network.prefixlen in (32, 64)


@given(st.text(max_size=80))
def test_username_normalisation_is_idempotent(name: str) -> None:
    once = normalise_username(name)
    assert normalise_username(once) == once
