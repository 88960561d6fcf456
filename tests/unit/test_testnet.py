"""The pure parts of the test network: the iptables rules a fault is made of, and the
address a redirected connection was going to."""

from __future__ import annotations

import socket
import struct

import pytest

from tests.support.netproxy import original_destination
from tests.support.testnet import CHAIN, rules_loss, rules_partition


def test_a_partition_drops_both_ways_or_one() -> None:
    both = rules_partition(["10.0.0.2", "10.0.0.3"], inbound=True, outbound=True)
    assert both == [
        ["-A", CHAIN, "-s", "10.0.0.2", "-j", "DROP"],
        ["-A", CHAIN, "-d", "10.0.0.2", "-j", "DROP"],
        ["-A", CHAIN, "-s", "10.0.0.3", "-j", "DROP"],
        ["-A", CHAIN, "-d", "10.0.0.3", "-j", "DROP"],
    ]
    assert rules_partition(["10.0.0.2"], inbound=False, outbound=True) == [
        ["-A", CHAIN, "-d", "10.0.0.2", "-j", "DROP"]
    ]


def test_loss_is_a_share_of_each_direction() -> None:
    rules = rules_loss(0.05)
    assert [r[3] for r in rules] == ["eth0", "eth0"]
    assert {r[2] for r in rules} == {"-i", "-o"}
    assert all("0.0500" in r for r in rules)
    for share in (0, 1, -0.1):
        with pytest.raises(ValueError, match="between 0 and 1"):
            rules_loss(share)


class Redirected:
    """A socket as the kernel answers SO_ORIGINAL_DST for it: a sockaddr_in."""

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        assert (level, option, size) == (socket.SOL_IP, 80, 16)
        return struct.pack("!HH4s8x", socket.AF_INET, 9092, socket.inet_aton("10.213.0.3"))


def test_the_original_destination_of_a_redirected_connection() -> None:
    assert original_destination(Redirected()) == ("10.213.0.3", 9092)  # type: ignore[arg-type]
