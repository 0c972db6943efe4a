"""Redis backend over redis.asyncio: one server, a Sentinel-managed master, or a Cluster."""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisClusterException, RedisError

from proxy.sessions.pipelined import PipelinedGets
from proxy.sessions.store import StoreFull, StoreUnavailable, check_ttl

# Everything a backend call can fail with is "unavailable": the caller fails closed either
# way, and a misconfiguration (auth, OOM, read-only replica) must not read as "no session".
# OSError covers asyncio/socket timeouts that escape redis-py unwrapped.
_FAILURES = (RedisError, RedisClusterException, OSError)


def _failed(exc: BaseException, message: str) -> StoreUnavailable:
    """A write's failure: StoreFull when Redis is at maxmemory (noeviction), else unavailable."""
    return StoreFull(message) if isinstance(exc, OutOfMemoryError) else StoreUnavailable(message)


# Compare-and-renew / compare-and-delete: a lock is only ever touched by its owner.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# SADD, then lengthen (never shorten) the set's TTL; PTTL is -1 for a fresh set.
_ADD_MEMBER = """
redis.call('sadd', KEYS[1], ARGV[1])
if redis.call('pttl', KEYS[1]) < tonumber(ARGV[2]) then redis.call('pexpire', KEYS[1], ARGV[2]) end
return 1
"""

# Rename keeping the remaining TTL (RENAME would too, but fails on a missing key and overwrites
# whatever the new name holds with a value that never expires if the old one had no TTL).
_SET_ASIDE = """
local v = redis.call('get', KEYS[1])
if not v then return 0 end
local t = redis.call('pttl', KEYS[1])
if t > 0 then redis.call('set', KEYS[2], v, 'PX', t) end
redis.call('del', KEYS[1])
return 1
"""
# GETDEL before Redis 6.2.
_TAKE = """
local v = redis.call('get', KEYS[1])
if v then redis.call('del', KEYS[1]) end
return v
"""

_HEALTH_CHECK_INTERVAL = 30  # PING a connection idle this long before reuse (half-open sockets)
_MAX_CONNECTIONS = 64


def _retry() -> Retry:
    # One immediate retry on a *connection* error replaces a pooled socket that died with a
    # Redis restart; timeouts are never retried, so a hung server costs one `timeout`.
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


@functools.cache
def _driver_kwargs() -> dict[str, Any]:
    """redis-py (8.1 here) builds a ``DriverInfo`` (for CLIENT SETINFO) per new connection
    unless given one, and each reads redis-py's installed METADATA file through
    ``importlib.metadata`` (~1 ms, on the event loop): a burst of concurrent store calls that
    grows the pool paid it once per connection. One per process, shared by every connection,
    says the same."""
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # older redis-py: no DriverInfo, nothing to share
        return {}
    return {"driver_info": DriverInfo()}


def _common_kwargs(timeout: float) -> dict[str, Any]:
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "socket_keepalive": True,
        "health_check_interval": _HEALTH_CHECK_INTERVAL,
        "retry": _retry(),
        **_driver_kwargs(),
    }


@dataclass(frozen=True, slots=True)
class Tls:
    """TLS for the ``rediss+sentinel://`` / ``rediss+cluster://`` schemes: the server
    certificate is verified against ``ca_certs`` (a PEM file) or the system trust store."""

    ca_certs: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"ssl": True, "ssl_ca_certs": self.ca_certs}


@dataclass(frozen=True, slots=True)
class SentinelURL:
    """redis+sentinel://[user:pass@]host:port[,host:port]/service_name[/db]

    The credentials are for the master; sentinels are contacted without AUTH.
    ``rediss+sentinel://...[?ssl_ca_certs=/path/ca.pem]`` speaks TLS to sentinels and master.
    """

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: Tls | None = None

    @classmethod
    def parse(cls, url: str) -> SentinelURL:
        username, password, hosts, path, tls = _split_multi_host(url, "sentinel", 26379)
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        if not parts or len(parts) > 2 or not parts[0]:
            raise ValueError("redis+sentinel URL needs a path of /service_name[/db]")
        db = _parse_int(parts[1], "db") if len(parts) == 2 else 0
        return cls(hosts, parts[0], db, username, password, tls)


@dataclass(frozen=True, slots=True)
class ClusterURL:
    """redis+cluster://[user:pass@]host:port[,host:port] (startup nodes; db is always 0).

    ``rediss+cluster://...[?ssl_ca_certs=/path/ca.pem]`` speaks TLS to every node.
    """

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: Tls | None = None

    @classmethod
    def parse(cls, url: str) -> ClusterURL:
        username, password, hosts, path, tls = _split_multi_host(url, "cluster", 6379)
        if path.strip("/") not in ("", "0"):
            raise ValueError("redis+cluster URLs take no path: a cluster only has db 0")
        return cls(hosts, username, password, tls)


def _split_multi_host(
    url: str, kind: str, default_port: int
) -> tuple[str | None, str | None, tuple[tuple[str, int], ...], str, Tls | None]:
    # urlsplit accepts a netloc with several hosts but its .hostname/.port would not.
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in (f"redis+{kind}", f"rediss+{kind}"):
        raise ValueError(f"expected a redis+{kind}:// or rediss+{kind}:// URL")
    tls = Tls() if scheme.startswith("rediss") else None
    if parts.fragment:
        raise ValueError(f"{scheme} URLs take no fragment")
    if parts.query:
        query = parse_qs(parts.query, strict_parsing=True)
        if tls is None or set(query) != {"ssl_ca_certs"} or len(query["ssl_ca_certs"]) != 1:
            raise ValueError(f"{scheme} URLs take no query string but rediss+ ?ssl_ca_certs=")
        tls = Tls(query["ssl_ca_certs"][0])
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if colon else None
    hosts = tuple(_parse_host_port(h, default_port) for h in hostlist.split(","))
    return username, password, hosts, parts.path, tls


def _parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:port
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("malformed IPv6 host in session store URL")
        port_text = rest[1:]
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise ValueError("session store URL has an empty host")
    port = _parse_int(port_text, "port") if port_text else default_port
    if not 0 < port < 65536:
        raise ValueError("session store URL port out of range")
    return unquote(host), port


def _parse_int(text: str, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"session store URL {what} must be a number")
    return int(text)


class RedisStore:
    """SessionStore over one redis.asyncio client (`Redis` or `RedisCluster`).

    The client must return bytes (decode_responses=False). Its pool reconnects by itself,
    so the store survives Redis restarts and failovers without being rebuilt. With ``timeout``
    (one server or a Sentinel's master, not Cluster), GETs are pipelined on one connection of
    their own (sessions/pipelined.py), through the pool whenever that one is not there.
    """

    __slots__ = ("_client", "_gets", "_sentinel")

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        sentinel: Sentinel | None = None,
        timeout: float | None = None,
    ) -> None:
        self._client = client
        self._sentinel = sentinel  # its own connections to the sentinels are closed with us
        self._gets: PipelinedGets | None = None
        if (
            timeout is not None
            and isinstance(client, Redis)
            and PipelinedGets.usable_with(client.connection_pool)
        ):
            self._gets = PipelinedGets(
                client.connection_pool,
                client.get,
                timeout=timeout,
                health_interval=_HEALTH_CHECK_INTERVAL,
            )

    def __repr__(self) -> str:
        return f"RedisStore({type(self._client).__name__})"  # the client's repr names hosts

    @property
    def pubsub_client(self) -> Redis | None:
        """The client for pub/sub (session cache invalidation); None on Cluster."""
        return self._client if isinstance(self._client, Redis) else None

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 2.0) -> RedisStore:
        """redis://, rediss://, redis+sentinel:// or redis+cluster:// (see `open_store`)."""
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError("timeout must be a positive number of seconds")
        kwargs = _common_kwargs(timeout)
        scheme = url.partition("://")[0].lower()
        if scheme in ("redis+sentinel", "rediss+sentinel"):
            s = SentinelURL.parse(url)
            tls = s.tls.kwargs() if s.tls else {}
            # Sentinel clients get the same fail-fast settings; redis-py's defaults would
            # retry ten times with backoff.
            sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                list(s.sentinels), sentinel_kwargs={**_common_kwargs(timeout), **tls}
            )
            master = sentinel.master_for(
                s.service_name,
                db=s.db,
                username=s.username,
                password=s.password,
                max_connections=_MAX_CONNECTIONS,
                **kwargs,
                **tls,
            )
            return cls(master, sentinel=sentinel, timeout=timeout)
        if scheme in ("redis+cluster", "rediss+cluster"):
            c = ClusterURL.parse(url)
            cluster = RedisCluster(
                startup_nodes=[ClusterNode(h, p) for h, p in c.nodes],
                username=c.username,
                password=c.password,
                max_connections=_MAX_CONNECTIONS,
                **kwargs,
                **(c.tls.kwargs() if c.tls else {}),
            )
            return cls(cluster)
        if scheme in ("redis", "rediss"):
            # A blocking pool queues bursts for up to `timeout` instead of failing at once
            # when every connection is busy. Query-string options in the URL win.
            pool = BlockingConnectionPool.from_url(
                url, max_connections=_MAX_CONNECTIONS, timeout=timeout, **kwargs
            )
            return cls(Redis.from_pool(pool), timeout=timeout)
        raise ValueError(
            "not a redis://, rediss://, redis[s]+sentinel:// or redis[s]+cluster:// URL"
        )

    async def get(self, key: str) -> bytes | None:
        try:
            if self._gets is not None:
                return cast("bytes | None", await self._gets.get(key))
            return cast("bytes | None", await self._client.get(key))
        except _FAILURES as exc:
            raise StoreUnavailable(f"redis GET failed: {type(exc).__name__}") from exc

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if not check_ttl(ttl):
            await self.delete(key)
            return
        try:
            # PX in whole milliseconds, rounded up so a tiny positive ttl still stores.
            await self._client.set(key, value, px=math.ceil(ttl * 1000))
        except _FAILURES as exc:
            raise _failed(exc, f"redis SET failed: {type(exc).__name__}") from exc

    async def replace(self, key: str, value: bytes, ttl: float) -> bool:
        if not check_ttl(ttl):
            # Replaced by "expired": True when the key was there, as for a positive ttl.
            try:
                return bool(await self._client.delete(key))
            except _FAILURES as exc:
                raise StoreUnavailable(f"redis DEL failed: {type(exc).__name__}") from exc
        try:
            # SET XX is atomic: a concurrent DEL (logout) wins and stays won.
            done = await self._client.set(key, value, px=math.ceil(ttl * 1000), xx=True)
        except _FAILURES as exc:
            raise _failed(exc, f"redis SET XX failed: {type(exc).__name__}") from exc
        return bool(done)

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete(key)
        except _FAILURES as exc:
            raise StoreUnavailable(f"redis DEL failed: {type(exc).__name__}") from exc

    async def _eval(self, script: str, key: str, *args: str | int) -> Any:
        # Plain EVAL (one key, so Cluster routes it): the scripts are tiny and Redis caches
        # their compiled form, and nothing breaks when a failover empties the script cache.
        return await self._client.eval(script, 1, key, *args)

    async def acquire(self, key: str, token: str, ttl: float) -> bool:
        if not check_ttl(ttl):
            return False
        try:
            done = await self._client.set(key, token, px=math.ceil(ttl * 1000), nx=True)
        except _FAILURES as exc:
            raise _failed(exc, f"redis SET NX failed: {type(exc).__name__}") from exc
        return bool(done)

    async def renew(self, key: str, token: str, ttl: float) -> bool:
        check_ttl(ttl)  # raises for a non-finite ttl; one <= 0 ends the lease (PEXPIRE)
        try:
            done = await self._eval(_RENEW, key, token, math.ceil(ttl * 1000))
        except _FAILURES as exc:
            raise StoreUnavailable(f"redis lock renew failed: {type(exc).__name__}") from exc
        return bool(done)

    async def release(self, key: str, token: str) -> None:
        try:
            await self._eval(_RELEASE, key, token)
        except _FAILURES as exc:
            raise StoreUnavailable(f"redis lock release failed: {type(exc).__name__}") from exc

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        if not check_ttl(ttl):
            return
        try:
            await self._eval(_ADD_MEMBER, key, member, math.ceil(ttl * 1000))
        except _FAILURES as exc:
            raise _failed(exc, f"redis SADD failed: {type(exc).__name__}") from exc

    async def remove_member(self, key: str, member: str) -> None:
        try:
            await self._client.srem(key, member)
        except _FAILURES as exc:
            raise StoreUnavailable(f"redis SREM failed: {type(exc).__name__}") from exc

    async def members(self, key: str) -> frozenset[str]:
        try:
            raw = await self._client.smembers(key)
        except _FAILURES as exc:
            raise StoreUnavailable(f"redis SMEMBERS failed: {type(exc).__name__}") from exc
        return frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in raw)

    async def existing(self, keys: Collection[str]) -> frozenset[str]:
        ordered = list(keys)
        if not ordered:
            return frozenset()
        try:
            # One EXISTS per key (a multi-key EXISTS would cross Cluster slots), one round trip.
            async with self._client.pipeline(transaction=False) as pipe:
                for key in ordered:
                    pipe.exists(key)
                found = await pipe.execute()
        except _FAILURES as exc:
            raise StoreUnavailable(f"redis EXISTS failed: {type(exc).__name__}") from exc
        return frozenset(key for key, n in zip(ordered, found, strict=True) if n)

    async def delete_members(
        self, key: str, members: Collection[str], also: Collection[str] = ()
    ) -> None:
        doomed = [*members, *also]
        if not doomed:
            return
        try:
            # One DEL per key (Cluster routes each to its slot); the SREM after them: a member
            # stays listed until its key is gone, never the other way round.
            async with self._client.pipeline(transaction=False) as pipe:
                for doomed_key in doomed:
                    pipe.delete(doomed_key)
                if members:
                    pipe.srem(key, *members)
                await pipe.execute()
        except _FAILURES as exc:
            raise StoreUnavailable(f"redis DEL failed: {type(exc).__name__}") from exc

    async def set_aside(
        self, key: str, moves: Mapping[str, str], also: Collection[str] = ()
    ) -> None:
        if not moves and not also:
            return
        try:
            # One script per rename (its two keys share a Cluster slot: the caller's naming),
            # one DEL per other key, the SREM last; one round trip.
            async with self._client.pipeline(transaction=False) as pipe:
                for old, new in moves.items():
                    pipe.eval(_SET_ASIDE, 2, old, new)
                for doomed in also:
                    pipe.delete(doomed)
                if moves:
                    pipe.srem(key, *moves)
                await pipe.execute()
        except _FAILURES as exc:
            raise _failed(exc, f"redis set aside failed: {type(exc).__name__}") from exc

    async def take(self, key: str) -> bytes | None:
        try:
            return cast("bytes | None", await self._eval(_TAKE, key))
        except _FAILURES as exc:
            raise StoreUnavailable(f"redis take failed: {type(exc).__name__}") from exc

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except _FAILURES as exc:
            raise StoreUnavailable(f"redis PING failed: {type(exc).__name__}") from exc

    async def close(self) -> None:
        try:
            if self._gets is not None:
                await self._gets.close()
            await self._client.aclose()
        finally:
            if self._sentinel is not None:
                for client in self._sentinel.sentinels:
                    await client.aclose()

    async def incr(self, key: str, ttl: float) -> int:
        if not check_ttl(ttl):
            raise ValueError("a counter needs a positive ttl")
        try:
            # MULTI/EXEC: the count and its expiry land together (one key, so one cluster slot).
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.pexpire(key, math.ceil(ttl * 1000))
                value, _ = await pipe.execute()
        except _FAILURES as exc:
            raise _failed(exc, f"redis INCR failed: {type(exc).__name__}") from exc
        return int(value)
