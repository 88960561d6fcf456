"""The test network itself, for real: hosts reach each other, a partition makes
connections hang (both ways or one), loss drops a share, a delay holds each chunk,
reordering makes packets overtake each other, a heal undoes each, and nothing of it
outlives the net."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.support.netproxy import Proxy
from tests.support.testnet import ROOT_HOST, TestNet, namespaces, root_links

pytestmark = pytest.mark.timeout(120)

ECHO = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7777)); s.listen(64)
while True:
    c, _ = s.accept(); c.sendall(c.recv(100)); c.close()
"""
# a round trip from a host: the seconds it took, or the error's name
ROUND_TRIP = """
import socket, sys, time
t = time.monotonic()
try:
    s = socket.create_connection((sys.argv[1], 7777), timeout=float(sys.argv[2]))
    s.sendall(b"ping"); assert s.recv(100) == b"ping"
    print(time.monotonic() - t)
except OSError as exc:
    print(type(exc).__name__)
"""

# numbered datagrams: the receiver prints how many came, and how many came after a later one
RECEIVE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 7778))
print("ready", flush=True)
s.settimeout(10); got = [int(s.recv(200))]
s.settimeout(1)
try:
    while True:
        got.append(int(s.recv(200)))
except TimeoutError:
    pass
late, highest = 0, -1
for n in got:
    late, highest = late + (n < highest), max(highest, n)
print(len(got), late)
"""
SEND = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(300):
    s.sendto(str(i).encode().ljust(100), (sys.argv[1], 7778)); time.sleep(0.002)
"""


@pytest.fixture
def net() -> Iterator[TestNet]:
    with TestNet(["a", "b"]) as net:
        server = net.run("b", [sys.executable, "-c", ECHO])
        deadline = time.monotonic() + 10
        while round_trip(net, ROOT_HOST, "b") in {"ConnectionRefusedError", "TimeoutError"}:
            assert time.monotonic() < deadline
            assert server.poll() is None
            time.sleep(0.05)  # polling the echo server's start
        yield net
    assert server.wait(5) is not None  # gone with its namespace


def round_trip(net: TestNet, src: str, dst: str, timeout_s: float = 1.0) -> str:
    prefix = [] if src == ROOT_HOST else net.exec_prefix(src)
    argv = [*prefix, sys.executable, "-c", ROUND_TRIP, net.address(dst), str(timeout_s)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()


def test_partition_one_way_loss_delay_and_heal(net: TestNet) -> None:
    assert float(round_trip(net, "a", "b")) < 0.5
    net.partition(["b"], ["a"])
    assert round_trip(net, "a", "b") == "TimeoutError"  # hangs: nothing refused
    assert float(round_trip(net, ROOT_HOST, "b")) < 0.5  # only a is cut off
    net.heal()
    assert float(round_trip(net, "a", "b")) < 0.5
    # one way: a's packets to b vanish, b's to a would still arrive
    net.partition(["a"], ["b"], one_way=True)
    assert net.rules("a") == [f"-A PLUGT -d {net.address('b')}/32 -j DROP"]
    assert round_trip(net, "a", "b") == "TimeoutError"
    net.heal()
    net.delay("a", 0.2, [7777])
    took = float(round_trip(net, "a", "b", timeout_s=5))
    assert 0.4 <= took < 2.0  # 0.2 s each way
    net.heal()
    assert net.rules("a", "nat") == []
    assert float(round_trip(net, "a", "b")) < 0.2
    net.loss("a", 0.5)
    assert len(net.rules("a")) == 2
    net.heal()
    assert net.rules("a") == []


def datagrams(net: TestNet) -> tuple[int, int]:
    """300 numbered datagrams from a to b: how many arrived, how many overtaken."""
    receiver = net.run(
        "b", [sys.executable, "-c", RECEIVE, net.address("b")], stdout=subprocess.PIPE
    )
    assert receiver.stdout is not None
    assert receiver.stdout.readline() == b"ready\n"
    sender = net.run("a", [sys.executable, "-c", SEND, net.address("b")])
    assert sender.wait(30) == 0
    arrived, overtaken = receiver.communicate(timeout=30)[0].split()
    return int(arrived), int(overtaken)


def test_reordering_makes_packets_overtake_each_other_and_heals(net: TestNet) -> None:
    assert datagrams(net) == (300, 0)  # a link of its own: in order
    net.reorder("a", 0.2, hold_kbit=16)  # a held datagram waits about 70 ms
    assert "htb" in net.queues("a")
    assert len(net.rules("a", "mangle")) == 1
    arrived, overtaken = datagrams(net)
    assert arrived == 300  # held, not dropped
    assert overtaken >= 20  # of about 60 held back, those that a later one passed
    net.heal()
    assert "htb" not in net.queues("a")
    assert net.rules("a", "mangle") == []
    assert datagrams(net) == (300, 0)


def test_nothing_outlives_the_net() -> None:
    with TestNet(["x"]) as net:
        mine = [n for n in namespaces() if n.startswith(f"plugt-{net.id}-")]
        assert len(mine) == 2  # the host and the switch
        assert net.root_link in root_links()
        net.delay("x", 0.1, [1])
        proxies = list(net._proxies["x"])
    assert not [n for n in namespaces() if n.startswith(f"plugt-{net.id}-")]
    assert net.root_link not in root_links()
    assert all(p.poll() is not None for p in proxies)


def test_a_blackholed_proxy_hangs_and_a_delayed_one_holds() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as upstream,
        Proxy(upstream.getsockname()[:2]) as proxy,
    ):
        client = socket.create_connection(proxy.address, timeout=5)
        server, _ = upstream.accept()
        with client, server:
            proxy.delay_s = 0.3
            started = time.monotonic()
            client.sendall(b"late")
            assert server.recv(10) == b"late"
            assert time.monotonic() - started >= 0.3
            proxy.blackhole = True
            client.sendall(b"gone")
            server.settimeout(0.5)
            with pytest.raises(TimeoutError):
                server.recv(10)
