"""A test network: hosts in network namespaces on one bridge, and the faults of a real
network between them (a partition where packets vanish, loss, delay, reordering), made and
undone with Debian's iproute2 and iptables. Runs as root.

Every name starts with ``plugt-`` (the root's link ``plugt<id>r``), so ``clean_all`` and
``deploy/testnet/testnet.sh clean`` find whatever a failed run left. The bridge lives in
a namespace of its own, and the faults are iptables rules inside the hosts' namespaces:
the machine's own interfaces, routes and rules are never touched, but for one veth that
lets the test process (in the root namespace) reach the hosts.

    with TestNet(["pg", "loader"]) as net:
        net.run("pg", ["postgres", ...])
        net.partition(["pg"], ["loader"])   # both ways; one=True: from the first only
        net.heal()

Also a command for people: ``python -m tests.support.testnet up pg loader`` (see
``deploy/testnet/testnet.sh``).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.support.netproxy import MARK

PREFIX = "plugt-"
CHAIN = "PLUGT"  # our rules in each host's namespace, flushed by heal()
ROOT_HOST = "root"  # the test process's end of the bridge
# One /24 per net, in a range the machine does not route; the root link's address is .254.
SUBNETS = ipaddress.IPv4Network("10.213.0.0/16")
PROXY_PORT = 47000  # a delaying proxy's port in its host's namespace (the first; then +1...)
_REPO = Path(__file__).parents[2]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _tc(ns: str, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, "tc", *args],
        capture_output=True, text=True, check=check, timeout=30,
    )  # fmt: skip


def namespaces() -> list[str]:
    """Every namespace of ours on the machine."""
    out = _ip("netns", "list").stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.startswith(PREFIX))


def root_links() -> list[str]:
    """Every root-namespace link of ours on the machine."""
    out = _ip("-o", "link", "show").stdout
    names = (line.split(":")[1].strip().split("@")[0] for line in out.splitlines())
    return sorted(n for n in names if n.startswith(PREFIX.rstrip("-")))


def kill_namespace(ns: str) -> None:
    """SIGKILL every process in ``ns``, then delete it (its veths and rules go with it)."""
    pids = _ip("netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "del", ns, check=False)


def clean_all(net_id: str = "") -> None:
    """Remove the namespaces and root links of one net (``net_id``), or of every net."""
    for ns in namespaces():
        if ns.startswith(f"{PREFIX}{net_id}"):
            kill_namespace(ns)
    for link in root_links():
        if link.startswith(f"{PREFIX.rstrip('-')}{net_id}"):
            _ip("link", "del", link, check=False)


def _used_subnets() -> set[ipaddress.IPv4Network]:
    out = _ip("-4", "-o", "addr", "show").stdout
    return {ipaddress.IPv4Interface(line.split()[3]).network for line in out.splitlines()}


def free_subnet() -> ipaddress.IPv4Network:
    used = _used_subnets()
    for net in SUBNETS.subnets(new_prefix=24):
        if net not in used:
            return net
    raise RuntimeError("no free /24 left for a test network")


def rules_partition(peers: Iterable[str], inbound: bool, outbound: bool) -> list[list[str]]:
    """The iptables arguments (in one host's namespace) that drop its traffic with
    ``peers``: packets vanish, nothing is refused."""
    rules = []
    for peer in peers:
        if inbound:
            rules.append(["-A", CHAIN, "-s", peer, "-j", "DROP"])
        if outbound:
            rules.append(["-A", CHAIN, "-d", peer, "-j", "DROP"])
    return rules


def rules_loss(share: float) -> list[list[str]]:
    """Drop ``share`` of the packets on the host's link, each way."""
    if not 0 < share < 1:
        raise ValueError("a loss share is between 0 and 1")
    return [
        ["-A", CHAIN, "-i", "eth0", "-m", "statistic", "--mode", "random",
         "--probability", f"{share:.4f}", "-j", "DROP"],
        ["-A", CHAIN, "-o", "eth0", "-m", "statistic", "--mode", "random",
         "--probability", f"{share:.4f}", "-j", "DROP"],
    ]  # fmt: skip


@dataclass(frozen=True)
class Host:
    name: str
    ns: str
    address: str


class TestNet:
    """Hosts on one bridge; usable as a context manager, which removes everything."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, hosts: Sequence[str], net_id: str | None = None) -> None:
        if len(hosts) > 200 or len(set(hosts)) != len(hosts) or ROOT_HOST in hosts:
            raise ValueError("hosts: distinct names, at most 200, not 'root'")
        self.id = net_id or secrets.token_hex(2)
        self.switch = f"{PREFIX}{self.id}-sw"
        self.root_link = f"{PREFIX.rstrip('-')}{self.id}r"
        self.names = list(hosts)
        self.subnet: ipaddress.IPv4Network | None = None
        self.hosts: dict[str, Host] = {}
        self._proxies: dict[str, list[subprocess.Popen[bytes]]] = {}  # by host

    # -- making and removing ----------------------------------------------------------
    def up(self) -> TestNet:
        try:
            self._up()
        except BaseException:
            self.clean()
            raise
        return self

    def _up(self) -> None:
        subnet = self.subnet = free_subnet()
        addresses = list(subnet.hosts())
        _ip("netns", "add", self.switch)
        sw = ["-n", self.switch]
        _ip(*sw, "link", "add", "br0", "type", "bridge")
        _ip(*sw, "link", "set", "br0", "up")
        for i, name in enumerate(self.names):
            ns = f"{PREFIX}{self.id}-{name}"
            address = str(addresses[i])
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            port = f"h{i}"
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", port, "netns", self.switch)
            _ip(*sw, "link", "set", port, "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{address}/{subnet.prefixlen}", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            self._iptables(ns, ["-N", CHAIN])
            self._iptables(ns, ["-A", "INPUT", "-j", CHAIN])
            self._iptables(ns, ["-A", "OUTPUT", "-j", CHAIN])
            self._iptables(ns, ["-t", "nat", "-N", CHAIN])
            self._iptables(ns, ["-t", "nat", "-A", "OUTPUT", "-j", CHAIN])
            self._iptables(ns, ["-t", "mangle", "-N", CHAIN])
            self._iptables(ns, ["-t", "mangle", "-A", "POSTROUTING", "-j", CHAIN])
            self.hosts[name] = Host(name, ns, address)
        # the test process's way in: one veth in the root namespace, its own address only
        root_address = addresses[-1]
        _ip("link", "add", self.root_link, "type", "veth", "peer", "root", "netns", self.switch)
        _ip(*sw, "link", "set", "root", "master", "br0", "up")
        _ip("addr", "add", f"{root_address}/{subnet.prefixlen}", "dev", self.root_link)
        _ip("link", "set", self.root_link, "up")
        self.hosts[ROOT_HOST] = Host(ROOT_HOST, "", str(root_address))

    def clean(self) -> None:
        for host in list(self._proxies):
            self._stop_proxies(host)
        clean_all(self.id)

    def __enter__(self) -> TestNet:
        return self.up()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.clean()

    # -- using ------------------------------------------------------------------------
    def address(self, host: str) -> str:
        return self.hosts[host].address

    def exec_prefix(self, host: str) -> list[str]:
        """The words that run a command in ``host``'s namespace."""
        return ["ip", "netns", "exec", self.hosts[host].ns]

    def run(self, host: str, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*self.exec_prefix(host), *argv], **kwargs)  # type: ignore[call-overload, no-any-return]

    def _iptables(self, ns: str, args: list[str]) -> None:
        subprocess.run(
            ["ip", "netns", "exec", ns, "iptables", "-w", *args],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip

    # -- faults -----------------------------------------------------------------------
    def partition(self, side: Iterable[str], other: Iterable[str], one_way: bool = False) -> None:
        """Packets between ``side`` and ``other`` vanish; with ``one_way``, only those
        from ``side`` to ``other`` (replies still arrive, requests do not)."""
        others = [self.address(h) for h in other]
        for host in side:
            if host == ROOT_HOST:
                raise ValueError("the root namespace is not partitioned; pick the peer")
            rules = rules_partition(others, inbound=not one_way, outbound=True)
            for rule in rules:
                self._iptables(self.hosts[host].ns, rule)

    def loss(self, host: str, share: float) -> None:
        for rule in rules_loss(share):
            self._iptables(self.hosts[host].ns, rule)

    def delay(self, host: str, delay_s: float, ports: Sequence[int]) -> None:
        """Connections ``host`` opens to these ports, from now on, go through a proxy in
        its namespace that holds every chunk ``delay_s`` each way (order kept): latency on
        its link, where the kernel has no ``netem``. Connections already open are not
        delayed. Undone by ``heal``."""
        proxies = self._proxies.setdefault(host, [])
        listen = f"{self.address(host)}:{PROXY_PORT + len(proxies)}"
        proxy = self.run(
            host,
            [sys.executable, "-m", "tests.support.netproxy", "--listen", listen,
             "--delay", str(delay_s)],
            cwd=_REPO, stdout=subprocess.PIPE,
        )  # fmt: skip
        proxies.append(proxy)
        assert proxy.stdout is not None
        if not proxy.stdout.readline().startswith(b"netproxy on"):
            raise RuntimeError("the delaying proxy did not start")
        self._iptables(
            self.hosts[host].ns,
            ["-t", "nat", "-A", CHAIN, "-p", "tcp", "-m", "multiport",
             "--dports", ",".join(str(p) for p in ports), "-m", "mark", "!", "--mark",
             hex(MARK), "-j", "DNAT", "--to-destination", listen],
        )  # fmt: skip

    def reorder(self, host: str, share: float, hold_kbit: int = 1000) -> None:
        """``share`` of the packets ``host`` sends, picked at random, wait in a queue of
        their own drained at ``hold_kbit`` (a full-size TCP segment: 12 ms at 1000), while
        the others go at once: packets arrive out of order, as on a network with more than
        one path. The kernel has no ``netem``; this is HTB's rate limit on one class and
        iptables' ``CLASSIFY`` (the others are not delayed, so it is not also a latency).
        Undone by ``heal``."""
        if not 0 < share < 1:
            raise ValueError("a reordered share is between 0 and 1")
        ns = self.hosts[host].ns
        for args in (
            ["qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "htb", "default",
             "10", "r2q", "1"],
            ["class", "replace", "dev", "eth0", "parent", "1:", "classid", "1:10", "htb",
             "rate", "10gbit", "quantum", "200000"],
            ["class", "replace", "dev", "eth0", "parent", "1:", "classid", "1:20", "htb",
             "rate", f"{hold_kbit}kbit", "ceil", f"{hold_kbit}kbit", "burst", "1600b",
             "cburst", "1600b", "quantum", "1600"],
        ):  # fmt: skip
            _tc(ns, args)
        self._iptables(
            ns,
            ["-t", "mangle", "-A", CHAIN, "-o", "eth0", "-m", "statistic", "--mode",
             "random", "--probability", f"{share:.4f}", "-j", "CLASSIFY", "--set-class",
             "1:20"],
        )  # fmt: skip

    def queues(self, host: str) -> str:
        """The queueing discipline on ``host``'s link (``tc qdisc show``)."""
        return _tc(self.hosts[host].ns, ["qdisc", "show", "dev", "eth0"]).stdout

    def _stop_proxies(self, host: str) -> None:
        for proxy in self._proxies.pop(host, []):
            proxy.kill()
            proxy.wait()
            if proxy.stdout is not None:
                proxy.stdout.close()

    def heal(self, hosts: Iterable[str] | None = None) -> None:
        """Every fault of ``hosts`` (all when None) undone."""
        for name in self.names if hosts is None else hosts:
            self._iptables(self.hosts[name].ns, ["-F", CHAIN])
            self._iptables(self.hosts[name].ns, ["-t", "nat", "-F", CHAIN])
            self._iptables(self.hosts[name].ns, ["-t", "mangle", "-F", CHAIN])
            _tc(self.hosts[name].ns, ["qdisc", "del", "dev", "eth0", "root"], check=False)
            self._stop_proxies(name)

    def rules(self, host: str, table: str = "filter") -> list[str]:
        """Our rules in ``host``'s namespace, as ``iptables -S`` prints them."""
        out = subprocess.run(
            ["ip", "netns", "exec", self.hosts[host].ns, "iptables", "-w", "-t", table,
             "-S", CHAIN],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout  # fmt: skip
        return [line for line in out.splitlines() if line.startswith("-A")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="testnet", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="make a net of these hosts; prints its id and addresses")
    up.add_argument("hosts", nargs="+")
    sub.add_parser("list", help="our namespaces and root links")
    clean = sub.add_parser("clean", help="remove one net (by id) or every net")
    clean.add_argument("net_id", nargs="?", default="")
    args = parser.parse_args(argv)
    if args.cmd == "up":
        net = TestNet(args.hosts).up()
        print(f"net {net.id}: root {net.address(ROOT_HOST)}")
        for name in args.hosts:
            print(f"  {name}: {net.address(name)}  (ip netns exec {net.hosts[name].ns} CMD)")
    elif args.cmd == "list":
        print("\n".join([*namespaces(), *root_links()]) or "nothing")
    else:
        clean_all(args.net_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
