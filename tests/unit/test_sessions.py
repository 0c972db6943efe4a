"""proxy.sessions: MemoryStore, RedisStore error mapping and URL parsing, SealedStore."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import time
from typing import Any

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ReadOnlyError,
    RedisClusterException,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from proxy.sessions.backends import open_store
from proxy.sessions.memory import MemoryStore
from proxy.sessions.redis import ClusterURL, RedisStore, SentinelURL
from proxy.sessions.sealed import SealedStore, _split
from proxy.sessions.session import Session, SessionManager, Timeouts
from proxy.sessions.store import StoreUnavailable

SECRET = b"s" * 32
OTHER_SECRET = b"o" * 32
COOKIE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SpyStore:
    """Wraps a store and records every call, to prove which cookies never reach it."""

    def __init__(self, inner: MemoryStore | None = None) -> None:
        self.inner = inner if inner is not None else MemoryStore()
        self.calls: list[tuple[str, str]] = []

    async def get(self, key: str) -> bytes | None:
        self.calls.append(("get", key))
        return await self.inner.get(key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self.calls.append(("set", key))
        await self.inner.set(key, value, ttl)

    async def delete(self, key: str) -> None:
        self.calls.append(("delete", key))
        await self.inner.delete(key)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> Any:
        """Every other store operation (replace, locks, index), recorded the same way."""
        method = getattr(self.inner, name)

        async def recorded(key: str, *args: Any) -> Any:
            self.calls.append((name, key))
            return await method(key, *args)

        return recorded


class DownStore:
    async def get(self, key: str) -> bytes | None:
        raise StoreUnavailable("down")

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        raise StoreUnavailable("down")

    async def replace(self, key: str, value: bytes, ttl: float) -> bool:
        raise StoreUnavailable("down")

    async def delete(self, key: str) -> None:
        raise StoreUnavailable("down")

    async def ping(self) -> None:
        raise StoreUnavailable("down")

    async def close(self) -> None:
        pass


def decode_cookie(cookie: str) -> tuple[bytes, bytes, bytes]:
    """(version+id+key blob, id, key) — the test knows the format; callers never should."""
    blob = base64.urlsafe_b64decode(cookie.split(".")[0] + "==")
    return blob, blob[1:17], blob[17:49]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- MemoryStore -----------------------------------------------------------------------


async def test_memory_roundtrip_and_delete() -> None:
    store = MemoryStore()
    assert await store.get("k") is None
    await store.set("k", b"v1", 60)
    assert await store.get("k") == b"v1"
    await store.set("k", b"v2", 60)
    assert await store.get("k") == b"v2"
    await store.delete("k")
    assert await store.get("k") is None
    await store.delete("never-set")  # no error
    await store.ping()


async def test_memory_expiry_on_monotonic_deadline() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.set("k", b"v", 10)
    clock.now += 9.999
    assert await store.get("k") == b"v"
    clock.now += 0.001
    assert await store.get("k") is None
    assert store.size == 0  # dropped on read, not just hidden


async def test_memory_expiry_real_clock() -> None:
    store = MemoryStore()
    await store.set("k", b"v", 0.05)
    assert await store.get("k") == b"v"
    await asyncio.sleep(0.08)
    assert await store.get("k") is None


async def test_memory_nonpositive_ttl_deletes_and_nonfinite_rejected() -> None:
    store = MemoryStore()
    await store.set("k", b"v", 60)
    await store.set("k", b"w", 0)
    assert await store.get("k") is None
    await store.set("k", b"v", 60)
    await store.set("k", b"w", -5)
    assert await store.get("k") is None
    for bad in (math.inf, math.nan):
        with pytest.raises(ValueError):
            await store.set("k", b"v", bad)


async def test_memory_sweeps_expired_keys_when_size_doubles() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock, sweep_interval=1e9)
    for i in range(1000):
        await store.set(f"short{i}", b"x", 1)
    clock.now += 2  # all expired, none read
    for i in range(24):
        await store.set(f"live{i}", b"x", 100)
    assert store.size == 1024  # at the threshold: nothing swept yet
    await store.set("live24", b"x", 100)
    # The set that crossed the threshold swept every expired key, and only those.
    assert sorted(store._data) == sorted(f"live{i}" for i in range(25))


async def test_memory_sweep_bounds_garbage_under_churn() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock, sweep_interval=1e9)
    peak = 0
    for i in range(50_000):  # a flood of 1-second flows that are never read again
        await store.set(f"f{i}", b"x", 1)
        clock.now += 0.01
        peak = max(peak, store.size)
    # Live keys at any instant: ~100; garbage is bounded by the doubling rule.
    assert peak <= 2048 + 1


async def test_memory_sweeps_on_interval() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock, sweep_interval=60)
    for i in range(10):
        await store.set(f"k{i}", b"x", 1)
    clock.now += 61
    await store.set("trigger", b"x", 100)
    assert list(store._data) == ["trigger"]
    assert store.sweep() == 0


async def test_memory_max_entries_evicts_least_recently_written() -> None:
    store = MemoryStore(max_entries=3)
    for k in ("a", "b", "c"):
        await store.set(k, b"x", 60)
    await store.set("a", b"y", 60)  # rewrite moves "a" to the back
    await store.set("d", b"x", 60)
    assert await store.get("b") is None
    assert [await store.get(k) for k in ("a", "c", "d")] == [b"y", b"x", b"x"]
    assert store.size == 3


async def test_memory_close_clears() -> None:
    store = MemoryStore()
    await store.set("k", b"v", 60)
    await store.close()
    assert store.size == 0


# --- open_store and URL parsing ------------------------------------------------------


async def test_open_store_memory() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    assert isinstance(open_store("MEMORY://"), MemoryStore)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:1/0",
        "rediss://user:pw@127.0.0.1:1/2",
        "redis+sentinel://127.0.0.1:1/mymaster",
        "redis+cluster://127.0.0.1:1",
    ],
)
async def test_open_store_redis_schemes_build_without_connecting(url: str) -> None:
    store = open_store(url, timeout=0.5)
    assert isinstance(store, RedisStore)
    await store.close()


def test_open_store_rejects_unknown_scheme_by_name() -> None:
    with pytest.raises(ValueError, match="'memcached'"):
        open_store("memcached://127.0.0.1:11211")
    with pytest.raises(ValueError, match="scheme"):
        open_store("127.0.0.1:6379")


def test_open_store_never_echoes_a_misplaced_password() -> None:
    with pytest.raises(ValueError) as info:
        open_store("user:hunter2@redis://host")
    assert "hunter2" not in str(info.value)


async def test_plain_redis_client_is_configured_to_fail_fast() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/3", timeout=0.7)
    try:
        pool = store._client.connection_pool
        assert isinstance(pool, BlockingConnectionPool)
        assert pool.timeout == 0.7
        kw = pool.connection_kwargs
        assert kw["socket_timeout"] == 0.7
        assert kw["socket_connect_timeout"] == 0.7
        assert kw["db"] == 3
        assert kw["health_check_interval"] > 0
        retry = kw["retry"]
        assert retry.get_retries() == 1
        assert RedisTimeoutError not in retry._supported_errors  # timeouts are not retried
    finally:
        await store.close()


async def test_sentinel_store_wires_url_parts() -> None:
    store = RedisStore.from_url("redis+sentinel://u:p%40ss@10.0.0.1:1,10.0.0.2/svc/4", timeout=1)
    try:
        pool = store._client.connection_pool
        assert pool.service_name == "svc"
        assert pool.connection_kwargs["password"] == "p@ss"
        assert pool.connection_kwargs["db"] == 4
        assert pool.connection_kwargs["socket_timeout"] == 1
        sentinels = store._sentinel.sentinels
        addrs = [
            (
                s.connection_pool.connection_kwargs["host"],
                s.connection_pool.connection_kwargs["port"],
            )
            for s in sentinels
        ]
        assert addrs == [("10.0.0.1", 1), ("10.0.0.2", 26379)]
        # Sentinels get fail-fast settings too, not redis-py's 10 retries with backoff.
        assert sentinels[0].connection_pool.connection_kwargs["retry"].get_retries() == 1
        assert "password" not in sentinels[0].connection_pool.connection_kwargs or (
            sentinels[0].connection_pool.connection_kwargs["password"] is None
        )
    finally:
        await store.close()


async def test_cluster_store_wires_url_parts() -> None:
    store = RedisStore.from_url("redis+cluster://u:pw@10.0.0.1:7000,[::1]", timeout=1)
    try:
        cluster = store._client
        assert isinstance(cluster, RedisCluster)
        assert [(n.host, n.port) for n in cluster.startup_nodes] == [
            ("10.0.0.1", 7000),
            ("::1", 6379),
        ]
        assert cluster.connection_kwargs["password"] == "pw"
        assert cluster.connection_kwargs["socket_timeout"] == 1
        assert cluster.retry.get_retries() == 1
    finally:
        await store.close()


def test_sentinel_url_parse() -> None:
    u = SentinelURL.parse("redis+sentinel://alice:s%3Acret@h1:26380,h2,[::1]:5/mymaster/3")
    assert u.sentinels == (("h1", 26380), ("h2", 26379), ("::1", 5))
    assert (u.service_name, u.db, u.username, u.password) == ("mymaster", 3, "alice", "s:cret")
    assert "s:cret" not in repr(u) and "s%3Acret" not in repr(u)
    bare = SentinelURL.parse("redis+sentinel://h/svc")
    assert (bare.sentinels, bare.db, bare.username, bare.password) == (
        (("h", 26379),),
        0,
        None,
        None,
    )
    assert SentinelURL.parse("redis+sentinel://:pw@h/svc").password == "pw"


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h:26379",  # no service
        "redis+sentinel://h:26379/",
        "redis+sentinel://h/svc/x",  # db not a number
        "redis+sentinel://h/svc/1/extra",
        "redis+sentinel://h:port/svc",
        "redis+sentinel://h:0/svc",
        "redis+sentinel://h:70000/svc",
        "redis+sentinel://h,/svc",  # empty host
        "redis+sentinel://[::1/svc",
        "redis+sentinel://h/svc?ssl=true",
        "redis://h/svc",
    ],
)
def test_sentinel_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        SentinelURL.parse(url)


def test_cluster_url_parse() -> None:
    u = ClusterURL.parse("redis+cluster://bob:pw@n1:7000,n2:7001,n3")
    assert u.nodes == (("n1", 7000), ("n2", 7001), ("n3", 6379))
    assert (u.username, u.password) == ("bob", "pw")
    assert "pw" not in repr(u)
    assert ClusterURL.parse("redis+cluster://n1/").nodes == (("n1", 6379),)
    for bad in ("redis+cluster://n1/1", "redis+cluster://", "redis+cluster://n1?x=1"):
        with pytest.raises(ValueError):
            ClusterURL.parse(bad)


@pytest.mark.parametrize("timeout", [0, -1, math.inf, math.nan])
def test_redis_store_rejects_bad_timeout(timeout: float) -> None:
    with pytest.raises(ValueError):
        RedisStore.from_url("redis://127.0.0.1:1", timeout=timeout)


# --- RedisStore over fakeredis and with failing clients ---------------------------------


async def test_redis_store_semantics_on_fakeredis() -> None:
    client = fakeredis.FakeAsyncRedis()
    store = RedisStore(client)
    assert await store.get("k") is None
    await store.set("k", b"\x00\xffv", 60)
    assert await store.get("k") == b"\x00\xffv"
    assert 59_000 < await client.pttl("k") <= 60_000  # every key expires (PX)
    await store.set("k", b"v", 0)  # non-positive ttl deletes
    assert await store.get("k") is None
    await store.set("k", b"v", 60)
    await store.delete("k")
    assert await store.get("k") is None
    with pytest.raises(ValueError):
        await store.set("k", b"v", math.inf)
    await store.ping()
    await store.close()


class RecordingClient:
    def __init__(self) -> None:
        self.px: list[int] = []

    async def set(self, key: str, value: bytes, px: int) -> None:
        self.px.append(px)


async def test_redis_store_ttl_to_whole_milliseconds_rounding_up() -> None:
    client = RecordingClient()
    store = RedisStore(client)  # type: ignore[arg-type]
    for ttl in (0.0001, 0.0011, 1.5, 86400):
        await store.set("k", b"v", ttl)
    assert client.px == [1, 2, 1500, 86_400_000]  # a tiny positive ttl still stores


class FailingClient:
    """Stands in for a redis.asyncio client whose every command raises `exc`."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def get(self, *a: object, **k: object) -> bytes:
        raise self.exc

    set = delete = ping = get

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize(
    "exc",
    [
        RedisConnectionError("Error 111 connecting to 10.0.0.9:6379 hunter2"),
        RedisTimeoutError("Timeout reading from socket hunter2"),
        BusyLoadingError("Redis is loading the dataset in memory hunter2"),
        ReadOnlyError("You can't write against a read only replica. hunter2"),
        ClusterDownError("CLUSTERDOWN hunter2"),
        RedisClusterException("no nodes hunter2"),
        ConnectionResetError("reset hunter2"),
        TimeoutError("hunter2"),
    ],
)
async def test_redis_failures_become_store_unavailable(exc: Exception) -> None:
    store = RedisStore(FailingClient(exc))  # type: ignore[arg-type]
    calls = [store.get("k"), store.set("k", b"v", 5), store.delete("k"), store.ping()]
    for call in calls:
        with pytest.raises(StoreUnavailable) as info:
            await call
        assert "hunter2" not in str(info.value)
        assert info.value.__cause__ is exc


async def test_redis_store_lets_cancellation_through() -> None:
    store = RedisStore(FailingClient(asyncio.CancelledError()))  # type: ignore[arg-type]
    with pytest.raises(asyncio.CancelledError):
        await store.get("k")


def test_redis_store_repr_names_no_host() -> None:
    store = RedisStore.from_url("redis://:pw@secret-host.internal:6379/0")
    assert "secret-host" not in repr(store) and "pw" not in repr(store)


# --- SealedStore ---------------------------------------------------------------------


def sealed(store: object | None = None, *, secret: bytes = SECRET, ns: str = "s") -> SealedStore:
    return SealedStore(store if store is not None else MemoryStore(), secret, namespace=ns)  # type: ignore[arg-type]


async def test_sealed_roundtrip_and_cookie_format() -> None:
    s = sealed()
    c1 = await s.create(b"payload-1", 60)
    c2 = await s.create(b"payload-2", 60)
    assert await s.load(c1) == b"payload-1"
    assert await s.load(c2) == b"payload-2"
    assert c1 != c2
    for c in (c1, c2):
        assert len(c) == 89
        assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", c)  # no ; , = space
    assert await s.load(c1) == b"payload-1"  # loading twice is fine
    assert await s.create(b"", 60) and await s.load(await s.create(b"", 60)) == b""


async def test_sealed_save_overwrites_same_cookie_with_fresh_nonce() -> None:
    mem = MemoryStore()
    s = sealed(mem)
    cookie = await s.create(b"v1", 60)
    (key,) = list(mem._data)
    before = await mem.get(key)
    await s.save(cookie, b"v1", 60)
    after = await mem.get(key)
    assert before != after  # same plaintext, new nonce
    await s.save(cookie, b"v2", 60)
    assert list(mem._data) == [key]
    assert await s.load(cookie) == b"v2"
    with pytest.raises(ValueError):
        await s.save("garbage", b"v", 60)
    with pytest.raises(ValueError):
        await sealed(secret=OTHER_SECRET).save(cookie, b"v", 60)


async def test_sealed_save_never_resurrects_a_deleted_record() -> None:
    # A token refresh racing a logout must not bring the session back.
    s = sealed(MemoryStore())
    cookie = await s.create(b"v1", 60)
    assert await s.save(cookie, b"v2", 60) is True
    await s.delete(cookie)
    assert await s.save(cookie, b"v3", 60) is False
    assert await s.load(cookie) is None


async def test_sealed_delete() -> None:
    spy = SpyStore()
    s = sealed(spy)
    cookie = await s.create(b"v", 60)
    await s.delete(cookie)
    assert await s.load(cookie) is None
    spy.calls.clear()
    await s.delete("not-a-cookie")
    await s.delete("")
    await sealed(spy, secret=OTHER_SECRET).delete(cookie)
    assert spy.calls == []


async def test_sealed_expired_is_none() -> None:
    clock = FakeClock()
    s = sealed(MemoryStore(clock=clock))
    cookie = await s.create(b"v", 30)
    clock.now += 29
    assert await s.load(cookie) == b"v"
    clock.now += 1
    assert await s.load(cookie) is None


async def test_sealed_expired_real_clock() -> None:
    s = sealed()
    cookie = await s.create(b"v", 0.05)
    await asyncio.sleep(0.08)
    assert await s.load(cookie) is None


async def test_sealed_every_single_char_change_is_rejected() -> None:
    spy = SpyStore()
    s = sealed(spy)
    cookie = await s.create(b"secret payload", 60)
    spy.calls.clear()
    for i, ch in enumerate(cookie):
        for repl in {"A", "B", "_", "w", ".", "="} - {ch}:
            assert await s.load(cookie[:i] + repl + cookie[i + 1 :]) is None
    assert spy.calls == []  # no tampered cookie reached the store
    assert await s.load(cookie) == b"secret payload"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ".",
        "garbage",
        "a" * 89,
        "A" * 66 + "." + "A" * 22,
        "x" * 1_000_000,
        "é" * 89,
        "\udcff" * 89,
        "\x00" * 89,
        " " * 89,
        "A" * 66 + ";" + "A" * 22,
    ],
)
async def test_sealed_malformed_cookies_are_none_without_store_access(bad: str) -> None:
    spy = SpyStore()
    s = sealed(spy)
    assert await s.load(bad) is None
    assert spy.calls == []


async def test_sealed_truncated_extended_and_padded_cookies() -> None:
    spy = SpyStore()
    s = sealed(spy)
    cookie = await s.create(b"v", 60)
    spy.calls.clear()
    variants = [
        cookie[:-1],
        cookie[1:],
        cookie[:66],
        cookie + "A",
        cookie + "==",
        cookie.split(".")[0] + "==." + cookie.split(".")[1],
        " " + cookie,
        cookie + " ",
        cookie.replace(".", ""),
    ]
    for v in variants:
        assert await s.load(v) is None, v
    assert spy.calls == []


# The cookie's grammar as a regex (how _split checked it before it checked it without one).
WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{65}[AQgw]\.[A-Za-z0-9_-]{21}[AQgw]")


def _oracle(cookie: str) -> tuple[bytes, bytes] | None:
    if not WELL_FORMED.fullmatch(cookie):
        return None
    blob, mac = cookie.split(".")
    return base64.urlsafe_b64decode(blob + "=="), base64.urlsafe_b64decode(mac + "==")


async def test_sealed_cookie_grammar_matches_the_regex_at_every_position() -> None:
    """Every single-character change of a real cookie, to any of the characters a cookie
    header can carry and to the ones base64 treats specially: accepted exactly when the
    grammar accepts it, as the same bytes."""
    cookie = await sealed().create(b"v", 60)
    others = {chr(c) for c in range(256)} | {"\u00e9", "\u2028", "\udcff", "\U0001f600"}
    for i in range(len(cookie)):
        for ch in others - {cookie[i]}:
            mutant = cookie[:i] + ch + cookie[i + 1 :]
            assert _split(mutant) == _oracle(mutant), (i, ch)
    assert _split(cookie) == _oracle(cookie) is not None


_NEAR = COOKIE_CHARS * 4 + "+/=.\n \x00\u00e9"  # mostly cookie characters


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=_NEAR, min_size=64, max_size=66),
    st.sampled_from("AQgwBh=+-."),
    st.sampled_from([".", ".", ".", "=", "+", ""]),
    st.text(alphabet=_NEAR, min_size=20, max_size=22),
    st.sampled_from("AQgwBh=/_."),
)
def test_sealed_cookie_grammar_matches_the_regex_for_near_cookies(
    blob: str, last: str, dot: str, mac: str, mac_last: str
) -> None:
    value = blob + last + dot + mac + mac_last
    assert _split(value) == _oracle(value)


async def test_sealed_noncanonical_base64_is_rejected() -> None:
    # Changing the unused low bits of the last character decodes to the same bytes in a
    # lenient decoder; only one spelling of each cookie is accepted.
    s = sealed()
    cookie = await s.create(b"v", 60)
    last = cookie[-1]
    idx = COOKIE_CHARS.index(last)
    alias = cookie[:-1] + COOKIE_CHARS[idx + 1]
    assert base64.urlsafe_b64decode(alias.split(".")[1] + "==") == base64.urlsafe_b64decode(
        cookie.split(".")[1] + "=="
    )
    assert await s.load(alias) is None


async def test_sealed_foreign_secret_and_namespace_cost_no_store_access() -> None:
    spy = SpyStore()
    ours = sealed(spy)
    theirs = sealed(SpyStore(), secret=OTHER_SECRET)
    flows = sealed(spy, ns="f")
    their_cookie = await theirs.create(b"v", 60)
    flow_cookie = await flows.create(b"flow", 60)
    session_cookie = await ours.create(b"session", 60)
    spy.calls.clear()
    assert await ours.load(their_cookie) is None
    assert await ours.load(flow_cookie) is None
    assert await flows.load(session_cookie) is None
    assert spy.calls == []


async def test_sealed_namespaces_do_not_share_store_keys() -> None:
    mem = MemoryStore()
    await sealed(mem, ns="s").create(b"v", 60)
    await sealed(mem, ns="f").create(b"v", 60)
    assert sorted(k.split(":")[1] for k in mem._data) == ["f", "s"]


async def test_sealed_unknown_id_with_valid_mac_is_none() -> None:
    s = sealed()
    cookie = await s.create(b"v", 60)
    await s.delete(cookie)
    assert await s.load(cookie) is None
    fresh = await sealed().create(b"v", 60)  # same secret, record lives in another store
    assert await s.load(fresh) is None


async def test_sealed_wrong_key_or_version_with_valid_mac_is_none() -> None:
    # Only the holder of the secret can produce these; they exercise the decryption and
    # version checks behind the MAC.
    mem = MemoryStore()
    s = sealed(mem)
    cookie = await s.create(b"v", 60)
    blob, rid, key = decode_cookie(cookie)

    def forge(b: bytes) -> str:
        return _b64(b) + "." + _b64(s._mac(b))

    assert await s.load(forge(blob)) == b"v"  # the forge helper is faithful
    wrong_key = bytes([blob[0]]) + rid + bytes(32)
    assert await s.load(forge(wrong_key)) is None
    wrong_version = bytes([2]) + rid + key
    assert await s.load(forge(wrong_version)) is None


async def test_sealed_corrupted_or_truncated_record_is_none() -> None:
    mem = MemoryStore()
    s = sealed(mem)
    cookie = await s.create(b"payload", 60)
    (key,) = list(mem._data)
    good = await mem.get(key)
    assert good is not None
    for bad in (good[:-1] + bytes([good[-1] ^ 1]), good[:27], b"", good[:12] + good[13:]):
        await mem.set(key, bad, 60)
        assert await s.load(cookie) is None
    # The store key is the AAD: the same ciphertext under another id (same record key)
    # does not open, so records cannot be swapped between keys.
    blob, _, record_key = decode_cookie(cookie)
    moved_blob = bytes([blob[0]]) + bytes(16) + record_key
    moved = _b64(moved_blob) + "." + _b64(s._mac(moved_blob))
    moved_key = "gate:s:" + hashlib.sha256(bytes(16)).hexdigest()
    await mem.set(key, good, 60)
    assert await s.load(cookie) == b"payload"
    await mem.set(moved_key, good, 60)
    assert await s.load(moved) is None


async def test_sealed_store_holds_no_ids_keys_or_plaintext() -> None:
    mem = MemoryStore()
    s = sealed(mem)
    payload = b'{"refresh_token":"eyJjdHkiOiJKV1QiLCJlbmMiOiJBMjU2R0NNIi-SECRET"}' * 8
    cookie = await s.create(payload, 60)
    _, rid, key = decode_cookie(cookie)
    ((store_key, (_, raw)),) = mem._data.items()
    assert store_key == "gate:s:" + hashlib.sha256(rid).hexdigest()
    for needle in (rid.hex(), cookie.split(".")[0][:20], base64.b64encode(rid).decode()[:16]):
        assert needle not in store_key
    assert len(raw) == 12 + len(payload) + 16
    assert rid not in raw and key not in raw
    for i in range(0, len(payload) - 8):
        assert payload[i : i + 8] not in raw
    assert SECRET not in raw


async def test_sealed_fingerprint() -> None:
    mem = MemoryStore()
    s = sealed(mem)
    c1 = await s.create(b"v", 60)
    c2 = await s.create(b"v", 60)
    fp = SealedStore.fingerprint(c1)
    assert re.fullmatch(r"[0-9a-f]{12}", fp)
    assert fp == SealedStore.fingerprint(c1) != SealedStore.fingerprint(c2)
    assert fp not in c1
    _, rid, _ = decode_cookie(c1)
    assert rid.hex()[:12] != fp
    assert any(k == f"gate:s:{fp}" + k[19:] for k in mem._data)  # greppable in the store
    for bad in ("", "x" * 10_000, "é" * 89):
        assert SealedStore.fingerprint(bad) == "invalid"


async def test_sealed_store_unavailable_propagates() -> None:
    good = sealed()
    cookie = await good.create(b"v", 60)
    down = sealed(DownStore())
    with pytest.raises(StoreUnavailable):
        await down.load(cookie)
    with pytest.raises(StoreUnavailable):
        await down.create(b"v", 60)
    with pytest.raises(StoreUnavailable):
        await down.save(cookie, b"v", 60)
    with pytest.raises(StoreUnavailable):
        await down.delete(cookie)
    assert await down.load("forged") is None  # rejected before the store is asked


def test_sealed_rejects_weak_secret_and_bad_namespace() -> None:
    with pytest.raises(ValueError):
        SealedStore(MemoryStore(), b"x" * 31, namespace="s")
    for ns in ("", "a:b", "a b", "x" * 33, "é"):
        with pytest.raises(ValueError):
            SealedStore(MemoryStore(), SECRET, namespace=ns)


def test_sealed_repr_hides_secret() -> None:
    text = repr(SealedStore(MemoryStore(), b"TOPSECRET" * 4, namespace="s"))
    assert "TOPSECRET" not in text and "s" in text


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200) | st.text(alphabet=COOKIE_CHARS + ".", min_size=85, max_size=93))
async def test_sealed_load_of_arbitrary_text_never_raises(text: str) -> None:
    # DownStore: any text that reached the store would raise; none may.
    assert await sealed(DownStore()).load(text) is None
    assert SealedStore.fingerprint(text)
    await sealed(DownStore()).delete(text)


_PROPERTY_STORE = MemoryStore()
_PROPERTY_SEALED = sealed(_PROPERTY_STORE)
_PROPERTY_COOKIE = asyncio.run(_PROPERTY_SEALED.create(b"v", 3600))


@settings(max_examples=300)
@given(
    pos=st.integers(min_value=0, max_value=88),
    repl=st.text(alphabet=COOKIE_CHARS + ".=;é", min_size=0, max_size=3),
)
async def test_sealed_any_edit_of_a_valid_cookie_is_none(pos: int, repl: str) -> None:
    edited = _PROPERTY_COOKIE[:pos] + repl + _PROPERTY_COOKIE[pos + 1 :]
    result = await _PROPERTY_SEALED.load(edited)
    assert result == (b"v" if edited == _PROPERTY_COOKIE else None)


async def test_sealed_timing_forged_cookie_is_cheap() -> None:
    # A forged cookie must be rejected in CPU time only: well under any store round-trip.
    s = sealed(DownStore())
    forged = (await sealed().create(b"v", 60))[:-2] + "AA"
    start = time.perf_counter()
    for _ in range(1000):
        assert await s.load(forged) is None
    assert (time.perf_counter() - start) / 1000 < 1e-3


# --- Timeouts: idle and absolute limits ----------------------------------------------------


def _session(created: float, last_seen: float = 0.0, remember: bool = False) -> Session:
    return Session(
        username="u",
        sub="s",
        claims={},
        id_token="i",
        access_token="a",
        refresh_token=None,
        expires_at=created + 3600,
        created_at=created,
        last_seen=last_seen,
        remember=remember,
    )


def test_a_session_ends_at_the_earlier_of_its_idle_and_absolute_limits() -> None:
    t = Timeouts(lifetime=1000, idle=100, remember_lifetime=10_000, remember_idle=2000)
    assert t.ends_at(_session(0)) == 100  # never seen since creation: idle from created_at
    assert t.ends_at(_session(0, last_seen=950)) == 1000  # absolute wins near the end
    assert t.ends_at(_session(0, last_seen=500)) == 600


def test_keep_me_signed_in_uses_the_longer_limits() -> None:
    t = Timeouts(lifetime=1000, idle=100, remember_lifetime=10_000, remember_idle=2000)
    assert t.ends_at(_session(0, last_seen=500, remember=True)) == 2500
    assert t.ends_at(_session(0, last_seen=9500, remember=True)) == 10_000


def test_idle_zero_means_only_the_absolute_limit() -> None:
    assert Timeouts(lifetime=1000).ends_at(_session(0)) == 1000


async def test_load_refuses_a_session_past_its_idle_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = SessionManager(MemoryStore(), b"s" * 32, lifetime=1000, idle_timeout=100)
    now = [10_000.0]
    monkeypatch.setattr("proxy.sessions.session.time.time", lambda: now[0])
    cookie = await manager.create(_session(now[0]))
    now[0] += 99
    assert await manager.load(cookie) is not None
    now[0] += 2
    assert await manager.load(cookie) is None


async def test_activity_is_written_at_most_once_per_quarter_idle_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = SpyStore()
    manager = SessionManager(spy, b"s" * 32, lifetime=1000, idle_timeout=100)  # type: ignore[arg-type]
    now = [10_000.0]
    monkeypatch.setattr("proxy.sessions.session.time.time", lambda: now[0])
    cookie = await manager.create(_session(now[0]))
    spy.calls.clear()
    for _ in range(24):  # one request a second for 24 s: no write
        now[0] += 1
        session = await manager.load(cookie)
        assert session is not None
        await manager.touch(cookie, session)
    assert [c for c in spy.calls if c[0] != "get"] == []
    now[0] += 2
    session = await manager.load(cookie)
    assert session is not None
    await manager.touch(cookie, session)
    reloaded = await manager.load(cookie)
    assert reloaded is not None and reloaded.last_seen == now[0]


def _index(sub: str = "s") -> str:
    return "gate:u:" + hashlib.sha256(sub.encode()).hexdigest()


async def test_the_user_index_drops_sessions_whose_record_is_gone_at_the_next_sign_in() -> None:
    store = MemoryStore()
    manager = SessionManager(store, b"s" * 32, lifetime=1000)
    for _ in range(5):
        cookie = await manager.create(_session(time.time()))
        await store.delete(manager.record_key(cookie) or "")  # expired, or idle: no logout
    live = await manager.create(_session(time.time()))
    assert await store.members(_index()) == {manager.record_key(live)}
    assert await manager.end_all("s") == 1
    assert await manager.load(live) is None
    assert await store.members(_index()) == frozenset()


async def test_reading_the_index_drops_records_that_are_gone_with_their_companions() -> None:
    store = MemoryStore()
    manager = SessionManager(
        store, b"s" * 32, lifetime=1000, companions=lambda record: (f"card:{record}",)
    )
    a, b = [await manager.create(_session(time.time())) for _ in range(2)]
    for cookie in (a, b):
        await store.set(f"card:{manager.record_hash(cookie)}", b"card", 1000)
    await store.delete(manager.record_key(a) or "")  # a's record expired
    assert await manager.live_records("s") == [manager.record_hash(b)]
    assert await store.members(_index()) == {manager.record_key(b)}
    assert await store.get(f"card:{manager.record_hash(a)}") is None
    assert await store.get(f"card:{manager.record_hash(b)}") == b"card"


async def test_ending_sessions_ends_their_companions_and_tells_the_end_hook_once() -> None:
    store = MemoryStore()
    told: list[list[str]] = []

    async def on_end(records: Any) -> None:
        told.append(list(records))

    manager = SessionManager(
        store,
        b"s" * 32,
        lifetime=1000,
        on_end=on_end,
        companions=lambda record: (f"card:{record}",),
    )
    cookies = [await manager.create(_session(time.time())) for _ in range(4)]
    hashes = [manager.record_hash(c) or "" for c in cookies]
    for record in hashes:
        await store.set(f"card:{record}", b"card", 1000)
    # "Sign out other sessions": all but the first, in one end.
    assert await manager.end_all("s", keep=hashes[0]) == 3
    assert told == [sorted(hashes[1:])]  # one call for the three, however many there are
    assert [await manager.load(c) is not None for c in cookies] == [True, False, False, False]
    assert [await store.get(f"card:{h}") is not None for h in hashes] == [True, False, False, False]
    # The one left signs out: its card goes too, and the index with it.
    await manager.delete(cookies[0], await manager.load(cookies[0]))
    assert told[-1] == [hashes[0]]
    assert await store.get(f"card:{hashes[0]}") is None
    assert await store.members(_index()) == frozenset()


async def test_the_index_lives_until_the_absolute_end_of_its_longest_session() -> None:
    store = MemoryStore()
    manager = SessionManager(
        store, b"s" * 32, lifetime=1000, idle_timeout=100, remember_lifetime=5000
    )
    now = time.time()
    await manager.create(_session(now - 400, remember=True))  # absolute end in 4600 s
    await manager.create(_session(now))  # in 1000 s
    deadline = store._sets[_index()][0] - store._clock()  # the TTL itself
    assert 4590 < deadline <= 4600


async def test_a_session_ended_elsewhere_hands_its_token_over_once_its_cookie_returns() -> None:
    store = MemoryStore()
    retired: list[str | None] = []

    async def on_retire(session: Session) -> None:
        retired.append(session.refresh_token)

    manager = SessionManager(
        store,
        b"s" * 32,
        lifetime=1000,
        companions=lambda record: (f"card:{record}",),
        on_retire=on_retire,
    )
    session = _session(time.time())
    session.refresh_token = "the-refresh-token"
    mine, other = [await manager.create(session) for _ in range(2)]
    key = manager.record_key(other) or ""
    sealed = await store.get(key)
    await store.set(f"card:{manager.record_hash(other)}", b"card", 1000)
    assert await manager.end_record("s", manager.record_hash(other) or "")
    # Set aside: the same sealed bytes (only that cookie opens them), nothing else left.
    assert await store.get(key) is None
    assert await store.get("{" + key + "}:aside") == sealed
    assert b"the-refresh-token" not in (sealed or b"")
    assert await store.get(f"card:{manager.record_hash(other)}") is None
    assert await store.members(_index()) == {manager.record_key(mine)}
    assert retired == []
    assert await manager.load(mine) is not None  # another cookie: nothing handed over
    assert retired == []
    assert await manager.load(other) is None  # its own cookie: signed out, token handed over
    assert retired == ["the-refresh-token"]
    assert await manager.load(other) is None
    assert retired == ["the-refresh-token"]  # once
    assert await store.get("{" + key + "}:aside") is None


async def test_sign_out_everywhere_sets_every_other_session_aside() -> None:
    store = MemoryStore()
    retired: list[str | None] = []

    async def on_retire(session: Session) -> None:
        retired.append(session.refresh_token)

    manager = SessionManager(store, b"s" * 32, lifetime=1000, on_retire=on_retire)
    cookies = []
    for n in range(3):
        session = _session(time.time())
        session.refresh_token = f"token-{n}"
        cookies.append(await manager.create(session))
    assert await manager.end_all("s", keep=manager.record_hash(cookies[0])) == 2
    assert [await manager.load(c) is None for c in cookies] == [False, True, True]
    assert sorted(retired) == ["token-1", "token-2"]
