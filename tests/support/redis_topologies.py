"""Real multi-process Redis topologies for HA tests: a 3-master Cluster, a primary/replica
pair watched by Sentinels, and a persistent (AOF) server that can be restarted in place.

Every process runs on 127.0.0.1 on a free port in its own temp dir and is stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from proxy.demo import free_port

__all__ = ["Node", "RedisCluster", "SentinelGroup", "persistent_redis", "redis_cluster",
           "secured_redis", "sentinel_group"]  # fmt: skip


def _command(port: int, *args: str, timeout: float = 2.0) -> str:
    """One command over RESP; the reply as text (good enough for INFO-like answers)."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload.encode())
        chunks = b""
        s.settimeout(0.3)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks += data
                if chunks.endswith(b"\r\n") and _complete(chunks):
                    break
        except TimeoutError:
            pass
    return chunks.decode(errors="replace")


def _complete(reply: bytes) -> bool:
    if reply[:1] == b"$":
        header, _, rest = reply.partition(b"\r\n")
        size = int(header[1:])
        return size < 0 or len(rest) >= size + 2
    return reply[:1] != b"*"  # arrays: rely on the read timeout


def _answers(port: int) -> bool:
    try:
        return _command(port, "PING", timeout=0.5).startswith("+PONG")
    except OSError:
        return False


def _wait(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class Node:
    port: int
    workdir: str
    args: list[str]
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.args, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        if "--tls-port" in self.args:  # no plaintext PING: wait for the log line
            ready = lambda: "Ready to accept connections" in self.log()  # noqa: E731
        else:
            ready = lambda: _answers(self.port)  # noqa: E731
        _wait(lambda: ready() or self._died(), 10, f"redis on {self.port}")
        if self._died():
            raise RuntimeError(f"redis on {self.port} exited:\n{self.log()}")

    def _died(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def log(self) -> str:
        try:
            with open(os.path.join(self.workdir, "redis.log"), encoding="utf-8") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL by PID: a crash, no shutdown save."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def command(self, *args: str) -> str:
        return _command(self.port, *args)


def _server_args(port: int, workdir: str, *extra: str) -> list[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
    return [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", workdir,
        "--logfile", os.path.join(workdir, "redis.log"),
        "--save", "",
        *extra,
    ]  # fmt: skip


@contextmanager
def _nodes() -> Iterator[list[Node]]:
    nodes: list[Node] = []
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()
            shutil.rmtree(node.workdir, ignore_errors=True)


def _node(
    nodes: list[Node], *extra: str, port: int | None = None, workdir: str | None = None
) -> Node:
    port = port or free_port()
    workdir = workdir or tempfile.mkdtemp(prefix="test-redis-topo-")
    node = Node(port, workdir, _server_args(port, workdir, *extra))
    nodes.append(node)
    node.start()
    return node


@dataclass
class RedisCluster:
    masters: list[Node]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.masters)


def _tls_args(tls: Any, port: int) -> list[str]:
    return [
        "--port", "0", "--tls-port", str(port), "--tls-cluster", "yes",
        "--tls-replication", "yes", "--tls-cert-file", str(tls.cert),
        "--tls-key-file", str(tls.key), "--tls-ca-cert-file", str(tls.ca),
        "--tls-auth-clients", "no",
    ]  # fmt: skip


def _cli(tls: Any) -> list[str]:
    redis_cli = shutil.which("redis-cli")
    if redis_cli is None:
        raise RuntimeError("redis-cli is not on PATH")
    return [redis_cli, "--tls", "--cacert", str(tls.ca)] if tls else [redis_cli]


@contextmanager
def redis_cluster(masters: int = 3, tls: Any = None) -> Iterator[RedisCluster]:
    """`masters` cluster-enabled servers joined with redis-cli --cluster create (no replicas);
    with `tls` (tests.support.tls.TlsFiles) they speak TLS only, the cluster bus included."""
    with _nodes() as nodes:
        for _ in range(masters):
            port = free_port()
            # An explicit bus port: the default (port + 10000) may be taken or out of range.
            _node(nodes, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                  "--cluster-port", str(free_port()), "--cluster-node-timeout", "2000",
                  "--appendonly", "no", *(_tls_args(tls, port) if tls else []),
                  port=port)  # fmt: skip
        hosts = [f"127.0.0.1:{n.port}" for n in nodes]
        create = [*_cli(tls), "--cluster", "create", *hosts, "--cluster-replicas", "0"]
        created = subprocess.run(
            [*create, "--cluster-yes"], capture_output=True, text=True, timeout=30, check=False
        )
        if created.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed:\n{created.stdout}{created.stderr}"
            )

        def state(node: Node) -> str:
            if not tls:
                return node.command("CLUSTER", "INFO")
            info = [*_cli(tls), "-p", str(node.port), "CLUSTER", "INFO"]
            return subprocess.run(info, capture_output=True, text=True, check=False).stdout

        _wait(lambda: all("cluster_state:ok" in state(n) for n in nodes), 15, "cluster_state:ok")
        yield RedisCluster(list(nodes))


@dataclass
class SentinelGroup:
    service: str
    primary: Node
    replica: Node
    sentinels: list[Node]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    def master_port(self) -> int:
        """The master port the first live sentinel reports."""
        for sentinel in self.sentinels:
            try:
                reply = sentinel.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            except OSError:
                continue
            lines = [line for line in reply.split("\r\n") if line and line[0] not in "*$"]
            if len(lines) == 2:
                return int(lines[1])
        raise RuntimeError("no sentinel answered")


@contextmanager
def sentinel_group(sentinels: int = 3, service: str = "gate") -> Iterator[SentinelGroup]:
    """A primary, one replica and `sentinels` sentinels with a quick failure detector."""
    quorum = sentinels // 2 + 1
    with _nodes() as nodes:
        primary = _node(nodes, "--appendonly", "no")
        replica = _node(nodes, "--appendonly", "no", "--replicaof", "127.0.0.1", str(primary.port))
        _wait(
            lambda: "master_link_status:up" in replica.command("INFO", "replication"),
            10,
            "the replica to sync",
        )
        watchers: list[Node] = []
        for _ in range(sentinels):
            port = free_port()
            workdir = tempfile.mkdtemp(prefix="test-redis-sentinel-")
            conf = os.path.join(workdir, "sentinel.conf")
            with open(conf, "w", encoding="utf-8") as f:
                f.write(
                    f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                    f"logfile {os.path.join(workdir, 'redis.log')}\n"
                    f"sentinel monitor {service} 127.0.0.1 {primary.port} {quorum}\n"
                    f"sentinel down-after-milliseconds {service} 400\n"
                    f"sentinel failover-timeout {service} 4000\n"
                    f"sentinel parallel-syncs {service} 1\n"
                )
            binary = shutil.which("redis-server")
            assert binary is not None
            node = Node(port, workdir, [binary, conf, "--sentinel"])
            nodes.append(node)
            node.start()
            watchers.append(node)
        group = SentinelGroup(service, primary, replica, watchers)
        # Every sentinel must know the replica and the others before a failover can succeed.
        _wait(
            lambda: all(
                f"slaves={1}" in s.command("INFO", "sentinel")
                and f"sentinels={sentinels}" in s.command("INFO", "sentinel")
                for s in watchers
            ),
            15,
            "sentinels to discover each other and the replica",
        )
        yield group


@contextmanager
def secured_redis(tls: Any, user: str, password: str) -> Iterator[Node]:
    """TLS only (no plaintext port) and an ACL user; the default user is disabled."""
    with _nodes() as nodes:
        port = free_port()
        workdir = tempfile.mkdtemp(prefix="test-redis-tls-")
        args = _server_args(
            port, workdir,
            "--tls-port", str(port), "--appendonly", "no",
            "--tls-cert-file", str(tls.cert), "--tls-key-file", str(tls.key),
            "--tls-ca-cert-file", str(tls.ca), "--tls-auth-clients", "no",
            "--user", "default", "off",
            "--user", user, "on", f">{password}", "~gate:*", "+@all",
        )  # fmt: skip
        args[args.index("--port") + 1] = "0"  # no plaintext listener
        node = Node(port, workdir, args)
        nodes.append(node)
        node.proc = subprocess.Popen(
            args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        _wait(lambda: "Ready to accept connections" in node.log() or node._died(), 10, "tls")
        if node._died():
            raise RuntimeError(f"TLS redis exited:\n{node.log()}")
        yield node


@contextmanager
def persistent_redis() -> Iterator[Node]:
    """A server with an fsync-always append-only file; `stop()` + `start()` restarts it in
    place (same port, same data dir)."""
    with _nodes() as nodes:
        yield _node(nodes, "--appendonly", "yes", "--appendfsync", "always")
