"""Brokers of their own for the fault tests, run by the project's kafka-local.sh."""

from __future__ import annotations

import os
import random
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.support.testnet import TestNet

SCRIPT = Path(__file__).parents[2] / "deploy" / "kafka-local" / "kafka-local.sh"


def free_base_port(offsets: tuple[int, ...]) -> int:
    """A port P such that P + each offset is free; below the kernel's ephemeral range."""
    for _ in range(200):
        base = random.randrange(20000, 32000)
        sockets = []
        try:
            for offset in offsets:
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free ports for a broker")


SINGLE_PORTS = (0, 1)  # client, controller
CLUSTER_PORTS = (0, 1, 10, 11, 20, 21)


class LocalKafka:
    """A single node (``nodes=1``) or a three-node cluster, in a directory of its own."""

    def __init__(self, run_dir: Path, nodes: int = 1, authorizer: bool = False) -> None:
        """``authorizer``: ACLs enforced (none at first: everything allowed)."""
        self.run_dir = run_dir
        self.authorizer = authorizer
        port = free_base_port(SINGLE_PORTS if nodes == 1 else CLUSTER_PORTS)
        self.port = port
        self.nodes = nodes
        ports = [port] if nodes == 1 else [port + 10 * i for i in range(nodes)]
        self.bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports)

    heap: str | None = None  # the script's default (512m) when None
    authorizer = False

    def _run(self, *args: str) -> None:
        heap = {"KL_HEAP": self.heap} if self.heap else {}
        if self.authorizer:
            heap["KL_AUTHORIZER"] = "1"
        result = subprocess.run(
            ["bash", str(SCRIPT), *args],
            env={**os.environ, "KL_RUN": str(self.run_dir), **heap},
            check=False,
            timeout=240,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka-local.sh {' '.join(args)} failed:\n{result.stderr}")

    def up(self) -> LocalKafka:
        self._run("single" if self.nodes == 1 else "cluster", str(self.port))
        return self

    def kill(self, node: int = 1) -> None:
        """SIGKILL: no controlled shutdown, as in a crash."""
        self._run("kill", str(node))

    def term(self, node: int = 1) -> None:
        """SIGTERM: a controlled shutdown, as in a routine restart."""
        self._run("term", str(node))

    def start(self, node: int = 1) -> None:
        """Start a stopped node and return once it serves."""
        self._run("start", str(node))

    def clean(self) -> None:
        self._run("clean")


class NetKafka(LocalKafka):
    """A three-node cluster (RF 3, min ISR 2), node N on the test network's host
    ``hosts[N - 1]``, each in its namespace listening on its address at 9092."""

    def __init__(self, run_dir: Path, net: TestNet, hosts: Sequence[str]) -> None:
        self.run_dir = run_dir
        self.net = net
        self.hosts = list(hosts)
        self.nodes = len(self.hosts)
        self.port = 9092
        self.bootstrap = ",".join(f"{net.address(h)}:9092" for h in self.hosts)
        self.heap = "384m"  # three JVMs on a shared 2-core machine

    def up(self) -> NetKafka:
        specs = [f"{self.net.hosts[h].ns}={self.net.address(h)}" for h in self.hosts]
        self._run("netcluster", *specs)
        return self

    def node_of(self, host: str) -> int:
        return self.hosts.index(host) + 1

    def host_of(self, node: int) -> str:
        return self.hosts[node - 1]
