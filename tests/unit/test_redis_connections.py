"""A new Redis connection costs a socket and a handshake, not a read of redis-py's METADATA.

redis-py (8.1 here) makes a ``DriverInfo`` per connection unless given one, and each reads the
package's METADATA through ``importlib.metadata`` (~1 ms on the event loop): a burst of
concurrent store calls that grew the pool paid it per connection (issue 12). The store hands
every connection one shared ``DriverInfo``; CLIENT SETINFO still names the library and its
version."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
import redis

from proxy.sessions.redis import RedisStore

pytest.importorskip("redis.driver_info")  # older redis-py: no DriverInfo to share


def _pool(store: RedisStore) -> Any:
    return store._client.connection_pool  # type: ignore[union-attr]


def test_new_connections_do_not_read_package_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0")
    reads: list[str] = []
    real = importlib.metadata.version

    def counting(name: str) -> str:
        reads.append(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", counting)
    pool = _pool(store)
    connections = [pool.make_connection() for _ in range(10)]
    assert reads == []
    for conn in connections:
        assert conn.driver_info.formatted_name == "redis-py"
        assert conn.driver_info.lib_version == redis.__version__


def test_sentinel_and_cluster_clients_take_the_shared_driver_info() -> None:
    plain = _pool(RedisStore.from_url("redis://127.0.0.1:1/0")).make_connection()
    sentinel = _pool(RedisStore.from_url("redis+sentinel://127.0.0.1:1/gate")).make_connection()
    cluster: Any = RedisStore.from_url("redis+cluster://127.0.0.1:1")._client
    assert sentinel.driver_info is plain.driver_info
    assert cluster.nodes_manager.connection_kwargs["driver_info"] is plain.driver_info
