"""A network namespace joined to this one by a veth pair, for faults loopback cannot fake: packets
dropped (a black hole), not refused. Needs root (`ip netns`, `iptables` inside the namespace only,
so the host's tables are never touched). Everything is removed on exit, even on failure."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Namespace", "namespace"]


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=10)


@dataclass(frozen=True)
class Namespace:
    name: str
    host_ip: str  # our end of the veth
    ip: str  # the namespace's end: servers inside bind here

    @property
    def exec_prefix(self) -> Sequence[str]:
        """Prefix a command with this to run it inside the namespace."""
        return ("ip", "netns", "exec", self.name)

    def _iptables(self, action: str, port: int) -> None:
        _run(*self.exec_prefix, "iptables", action, "INPUT", "-p", "tcp", "--dport", str(port),
             "-j", "DROP")  # fmt: skip

    def drop(self, port: int) -> None:
        """Black-hole TCP to ``port`` inside: every packet (SYNs too) silently discarded."""
        self._iptables("-A", port)

    def restore(self, port: int) -> None:
        self._iptables("-D", port)


@contextmanager
def namespace() -> Iterator[Namespace]:
    """A fresh namespace with a /30 on a veth pair; deleted (with the pair) afterwards."""
    tag = f"{os.getpid() % 10000}{random.randrange(100, 1000)}"
    name, host_if, ns_if = f"fgate{tag}", f"fgh{tag}", f"fgn{tag}"
    subnet = random.randrange(0, 64) * 4
    octet = random.randrange(1, 255)
    host_ip, ns_ip = f"10.213.{octet}.{subnet + 1}", f"10.213.{octet}.{subnet + 2}"
    try:
        _run("ip", "netns", "add", name)
        _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _run("ip", "link", "set", ns_if, "netns", name)
        _run("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        _run("ip", "link", "set", host_if, "up")
        inside = ("ip", "netns", "exec", name)
        _run(*inside, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        _run(*inside, "ip", "link", "set", ns_if, "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        yield Namespace(name, host_ip, ns_ip)
    finally:
        # Deleting the namespace destroys its veth end, and with it our end of the pair.
        subprocess.run(("ip", "netns", "del", name), capture_output=True, timeout=10)
        subprocess.run(("ip", "link", "del", host_if), capture_output=True, timeout=10)
