"""How long this machine takes to wake an idle CPU, and a hold that keeps CPUs polling.

Every webhook crosses several sleeping threads before its answer: the load generator, the
server's loop, the broker's network and request threads, then back. On a virtual machine
whose idle vCPUs halt (``cpuidle`` driver ``haltpoll`` with ``guest_halt_poll_ns=0``, as
on the Firecracker hosts this bench has run on), each wake-up is a trip through the
hypervisor: a one-byte round trip between two idle CPUs measured p50 0.09-0.14 ms, p99
0.3-2.1 ms (0.008-0.016 and 0.04-0.5 ms with the hold below), and a librdkafka producer
alone against the local broker (5,000 records/s, nothing else running) p99 6.5-21 ms (5.1-5.8
with it). That is the machine's tail, and it lands in every target's p99.

``/dev/cpu_dma_latency`` is the kernel's PM QoS knob for it (what tuned's
``latency-performance`` profile holds): while a process keeps it open with a value of 0,
idle CPUs poll instead of entering any state with an exit latency, and the request ends
when the file is closed. The bench holds it by default (``--cpu-latency``), measures the
round trip before and with it, and names the setting in its report.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from bench.common import percentile

QOS = Path("/dev/cpu_dma_latency")
CPUIDLE = Path("/sys/devices/system/cpu/cpuidle")


def idle_states() -> str:
    """The cpuidle driver and CPU 0's idle states, e.g. ``haltpoll: POLL, haltpoll idle``."""
    try:
        driver = (CPUIDLE / "current_driver").read_text().strip()
    except OSError:
        return "no cpuidle driver"
    names = []
    for state in sorted(Path("/sys/devices/system/cpu/cpu0/cpuidle").glob("state*")):
        with contextlib.suppress(OSError):
            names.append((state / "name").read_text().strip())
    return f"{driver}: {', '.join(names) or 'no states'}"


class Idling(NamedTuple):
    held: bool  # whether the PM QoS request is in force
    described: str  # for the report


@contextlib.contextmanager
def cpu_latency(us: int | None) -> Iterator[Idling]:
    """Hold ``/dev/cpu_dma_latency`` at ``us`` microseconds for the block (``None``: leave
    the machine as it is); yields whether it is held and how the CPUs idle."""
    states = idle_states()
    if us is None:
        yield Idling(False, f"the machine's own idle states ({states})")
        return
    fd = -1
    try:
        fd = os.open(QOS, os.O_WRONLY)
        os.write(fd, struct.pack("i", us))
    except OSError as exc:  # not root, or no PM QoS device (a container, another OS)
        if fd >= 0:
            os.close(fd)
        yield Idling(False, f"the machine's own idle states ({states}); {QOS} not held: {exc}")
        return
    try:
        yield Idling(True, f"{QOS} held at {us} us for the run (driver {states})")
    finally:
        os.close(fd)  # ends the request


def round_trip_ms(rate: float = 1000.0, seconds: float = 1.0) -> tuple[float, float]:
    """p50 and p99 (ms) of a one-byte round trip over pipes between a process on CPU 0 and
    one on CPU 1 (both on CPU 0 on a single CPU), paced at ``rate``/s so that the far side
    sleeps between bytes."""
    cpus = (0, 1 if (os.cpu_count() or 1) > 1 else 0)
    child_reads, parent_writes = os.pipe()
    parent_reads, child_writes = os.pipe()
    pid = os.fork()
    if pid == 0:  # the echo: wakes for each byte and sends it back
        try:
            os.sched_setaffinity(0, {cpus[1]})
            os.close(parent_writes)
            os.close(parent_reads)
            while os.read(child_reads, 1):
                os.write(child_writes, b"x")
        finally:
            os._exit(0)
    os.close(child_reads)
    os.close(child_writes)
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpus[0]})
    rtts = []
    try:
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            pause = start + i / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            os.write(parent_writes, b"x")
            os.read(parent_reads, 1)
            rtts.append(time.perf_counter() - sent)
    finally:
        os.sched_setaffinity(0, own)
        os.close(parent_writes)  # the echo reads end-of-file and exits
        os.close(parent_reads)
        os.waitpid(pid, 0)
    rtts.sort()
    return percentile(rtts, 50) * 1000, percentile(rtts, 99) * 1000
