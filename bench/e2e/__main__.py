"""End-to-end benchmark of the ingress against a real local Kafka (``make bench``).

What it measures, for each target (the ingress, the HTTP ceiling, the hand-written
FastAPI service) and each body (receive-message ~1 KB, message-status, a 40-message
finish-attendance, all from ``Generator(seed=1)``):

* max webhooks/s: closed-loop ``wrk`` (``-t1 -c64``) POSTing the body;
* p50/p99 latency at 25 %, 50 % and 75 % of that max, from an open-loop client of this
  file (``_openloop``): request *i* is due at ``start + i/rate``, latency runs from the
  due time (no coordinated omission), and the client reports whether it kept up;
* CPU microseconds per request: the server's utime + stime (``/proc/<pid>/stat``,
  summed over its process tree, so every thread and every ``--workers`` child counts)
  over the max run, divided by the requests wrk completed in it; on a shared machine
  it is steadier than webhooks/s;
* peak RSS of the server (``VmHWM``), every non-2xx answer and socket error, and
  (for the Kafka-backed targets) that every 2xx is on the topic: the end offsets grow
  by at least the number of 2xx answers.

Every row is measured in each of ``--rounds`` rounds (3 by default), the targets'
order reversed every other round, and reported as the median of its rounds with each
round's own figures beside it (``bench/e2e_rows.py``): on this shared machine one
reading per target left the ratios to the host's phase of the moment.

The server runs alone on CPU 0 (``taskset -c 0``), the load generator on CPU 1. The
broker is this run's own (``127.0.0.1:19092``, data in ``.kafka-bench``, deleted at
the end) and is not pinned: on a 2-core machine it shares both cores, as it would
share a node with the ingress in a small deployment.

    .venv/bin/python bench/e2e.py            # full run, 3 rounds, ~30 minutes
    .venv/bin/python bench/e2e.py --rounds 1 # one round, ~10 minutes
    .venv/bin/python bench/e2e.py --quick    # smoke run, one round, ~2.5 minutes
    .venv/bin/python bench/e2e.py --bodies receive --targets ingress --profile

Writes ``bench/RESULTS.md`` and ``bench/out/e2e.json``; never fails on a missed target
(exit 1 only when the harness itself cannot run, 3 when a run had errors and
``--strict`` is given).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import histogram, wakeup
from bench.e2e_rows import Row, by_round, median_rows, round_order

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
VENV_BIN = Path(sys.executable).parent
KAFKA_SCRIPT = ROOT / "deploy" / "kafka-local" / "kafka-local.sh"
KL_RUN = ROOT / ".kafka-bench"
BROKER_PORT = 19092
BOOTSTRAP = f"127.0.0.1:{BROKER_PORT}"
TOKEN = "bench-token"
TENANT = "bench"
PREFIX = "bench"
SERVER_CPU = "0"
CLIENT_CPU = "1"
PORTS = {"ingress": 18080, "ceiling": 18081, "handwritten": 18082, "ingress-workers": 18083}

# body name -> (webhook path, topic suffix)
BODIES = {
    "receive": ("receive-message", "message.received"),
    "status": ("message-status", "message.status"),
    "finish40": ("finish-attendance", "attendance.finished"),
}
FRACTIONS = (0.25, 0.50, 0.75)

# This round's targets, reported against (never failing the run): receive-message
# against the aiohttp web.Application ceiling and the hand-written service, the
# 40-message finishAttendance against the hand-written service (all in webhooks/s;
# the same ratios by CPU per request are reported beside them).
TARGET_CEILING_RATIO = 0.45
TARGET_HANDWRITTEN_RATIO = 3.0
TARGET_FINISH40_HANDWRITTEN_RATIO = 4.0
TARGET_P99_MS = 10.0
# The ingress's histogram of each webhook's wait on Kafka (read through /metrics).
ACK_HISTOGRAM = "plug_kafka_ack_seconds"
TARGET_RSS_MB = 150.0


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- open loop


@dataclass
class OpenLoopResult:
    rate: float
    duration_s: float
    scheduled: int = 0
    completed: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    unanswered: int = 0
    achieved_rps: float = 0.0
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p99_ms: float = math.nan
    p999_ms: float = math.nan
    max_ms: float = math.nan
    service_p50_ms: float = math.nan
    service_p99_ms: float = math.nan
    lag_p50_ms: float = math.nan
    lag_p99_ms: float = math.nan
    client_cpu: float = 0.0
    client_ok: bool = True
    client_note: str = ""

    @property
    def non_2xx(self) -> int:
        return sum(n for c, n in self.codes.items() if not c.startswith("2"))

    @property
    def ok_2xx(self) -> int:
        return sum(n for c, n in self.codes.items() if c.startswith("2"))


def _pct(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def _timerfd(period_s: float, first_s: float) -> int | None:
    """A periodic, non-blocking CLOCK_MONOTONIC timerfd (via libc), or None."""
    import ctypes
    import ctypes.util

    class Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    class Itimerspec(ctypes.Structure):
        _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]

    def ts(seconds: float) -> Timespec:
        ns = max(1000, int(seconds * 1e9))
        return Timespec(ns // 1_000_000_000, ns % 1_000_000_000)

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = libc.timerfd_create(1, 0o4000 | 0o2000000)  # MONOTONIC, NONBLOCK | CLOEXEC
        if fd < 0:
            return None
        spec = Itimerspec(ts(period_s), ts(first_s))
        if libc.timerfd_settime(fd, 0, ctypes.byref(spec), None) != 0:
            os.close(fd)
            return None
    except (OSError, AttributeError):
        return None
    return int(fd)


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time (no pipelining)."""

    def __init__(self, client: _OpenLoop) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = -1
        self.status = 0
        self.due = 0.0
        self.sent_at = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, due: float) -> None:
        assert self.transport is not None
        self.busy = True
        self.due = due
        self.sent_at = time.perf_counter()
        self.transport.write(self.client.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            if self.need < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).lower()
                self.status = int(head[9:12])
                at = head.find(b"\r\ncontent-length:")
                if at < 0:
                    self.client.fail(self, "no-content-length")
                    return
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop > 0 else len(head)])
                self.need = end + 4 + length
            if len(buf) < self.need:
                return
            del buf[: self.need]
            self.need = -1
            self.busy = False
            self.client.complete(self, self.status)
            if not buf:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.lost(self, exc)


class _OpenLoop:
    def __init__(self, host: str, port: int, request: bytes, conns: int, max_pending: int) -> None:
        self.host, self.port, self.request = host, port, request
        self.n_conns = conns
        self.max_pending = max_pending
        self.idle: list[_Conn] = []
        self.pending: collections.deque[float] = collections.deque()
        self.latencies: list[float] = []
        self.service: list[float] = []
        self.lags: list[float] = []
        self.codes: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.dropped = 0
        self.in_flight = 0
        self.done = asyncio.Event()

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        for attempt in range(50):
            try:
                _, proto = await loop.create_connection(lambda: _Conn(self), self.host, self.port)
            except OSError:
                await asyncio.sleep(0.1 * (attempt + 1))
                continue
            self._hand_over(proto)
            return
        self.errors["connect"] += 1

    def _hand_over(self, conn: _Conn) -> None:
        if self.pending:
            conn.send(self.pending.popleft())
        else:
            self.idle.append(conn)

    def dispatch(self, due: float) -> None:
        self.lags.append(time.perf_counter() - due)
        self.in_flight += 1
        if self.idle:
            self.idle.pop().send(due)
        elif len(self.pending) < self.max_pending:
            self.pending.append(due)
        else:
            self.dropped += 1
            self.in_flight -= 1

    def complete(self, conn: _Conn, status: int) -> None:
        now = time.perf_counter()
        self.latencies.append(now - conn.due)
        self.service.append(now - conn.sent_at)
        self.codes[str(status)] += 1
        self.in_flight -= 1
        self._hand_over(conn)
        if self.in_flight == 0:
            self.done.set()

    def fail(self, conn: _Conn, reason: str) -> None:
        self.errors[reason] += 1
        if conn.transport is not None:
            conn.transport.abort()

    def lost(self, conn: _Conn, exc: Exception | None) -> None:
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
        if conn.busy:
            conn.busy = False
            self.errors["connection-lost"] += 1
            self.in_flight -= 1
            if self.in_flight == 0:
                self.done.set()
        if not self.closing:
            asyncio.get_running_loop().create_task(self._open())

    closing = False

    async def _schedule(self, start: float, n: int, interval: float) -> None:
        """Dispatch request i at start + i * interval, woken by a periodic timerfd.

        The event loop's timers have a resolution of 1 ms, and spinning on ``sleep(0)``
        would compete with the broker for the core; a timerfd (Linux) ticks every
        ``interval`` (50 us at least) and each tick dispatches whatever is due.
        """
        loop = asyncio.get_running_loop()
        clock = time.perf_counter
        state = {"i": 0}
        finished = loop.create_future()

        def tick() -> None:
            i, now = state["i"], clock()
            while i < n and start + i * interval <= now:
                self.dispatch(start + i * interval)
                i += 1
            state["i"] = i
            if i >= n and not finished.done():
                finished.set_result(None)

        fd = _timerfd(max(interval, 50e-6), start - clock())
        if fd is None:  # no timerfd: 1 ms ticks of the loop's own timer
            while state["i"] < n:
                tick()
                await asyncio.sleep(max(start + state["i"] * interval - clock(), 0.0005))
            return

        def on_timer() -> None:
            with contextlib.suppress(BlockingIOError):
                os.read(fd, 8)
            tick()

        loop.add_reader(fd, on_timer)
        try:
            await finished
        finally:
            loop.remove_reader(fd)
            os.close(fd)

    async def run(self, rate: float, duration: float, drain_s: float) -> OpenLoopResult:
        await asyncio.gather(*(self._open() for _ in range(self.n_conns)))
        n = max(1, int(rate * duration))
        interval = 1.0 / rate
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter() + 0.02
        await self._schedule(start, n, interval)
        last_due = start + (n - 1) * interval
        if self.in_flight:
            self.done.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), drain_s)
        end = time.perf_counter()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        self.closing = True
        for conn in list(self.idle):
            if conn.transport is not None:
                conn.transport.close()
        lat = sorted(x * 1000 for x in self.latencies)
        svc = sorted(x * 1000 for x in self.service)
        lags = sorted(x * 1000 for x in self.lags)
        wall = max(end - start, 1e-9)
        res = OpenLoopResult(rate=rate, duration_s=duration)
        res.scheduled = n
        res.completed = len(lat)
        res.codes = dict(self.codes)
        res.errors = dict(self.errors)
        res.dropped = self.dropped
        res.unanswered = max(0, self.in_flight)
        res.achieved_rps = n / max(last_due - start + interval, 1e-9) if lags else 0.0
        res.p50_ms, res.p90_ms, res.p99_ms = _pct(lat, 50), _pct(lat, 90), _pct(lat, 99)
        res.p999_ms, res.max_ms = _pct(lat, 99.9), (lat[-1] if lat else math.nan)
        res.service_p50_ms, res.service_p99_ms = _pct(svc, 50), _pct(svc, 99)
        res.lag_p50_ms, res.lag_p99_ms = _pct(lags, 50), _pct(lags, 99)
        cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        res.client_cpu = cpu / wall
        # The client is the limit when its CPU is saturated or it had to drop; a late
        # schedule with a mostly idle client means the core was busy with something else
        # (the broker, other work): reported, as it is part of the measured latency.
        notes = []
        if res.client_cpu > 0.85:
            notes.append(f"client CPU {res.client_cpu:.0%}")
        if res.dropped:
            notes.append(f"{res.dropped} dropped (>{self.max_pending} queued)")
        res.client_ok = not notes
        if res.lag_p99_ms > 5.0:
            notes.append(f"schedule lag p99 {res.lag_p99_ms:.1f} ms (CPU {CLIENT_CPU} contended)")
        res.client_note = "; ".join(notes)
        return res


def openloop_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="e2e.py _openloop")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--body-file", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--conns", type=int, default=64)
    p.add_argument("--max-pending", type=int, default=100_000)
    p.add_argument("--drain-s", type=float, default=10.0)
    a = p.parse_args(argv)
    body = Path(a.body_file).read_bytes()
    request = (
        f"POST {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    import uvloop

    async def go() -> OpenLoopResult:
        client = _OpenLoop(a.host, a.port, request, a.conns, a.max_pending)
        return await client.run(a.rate, a.duration, a.drain_s)

    res = uvloop.run(go())
    out = asdict(res)
    out["non_2xx"], out["ok_2xx"] = res.non_2xx, res.ok_2xx
    print(json.dumps(out))
    return 0


# --------------------------------------------------------------------------- wrk


LUA = """-- POST the body file named by $BENCH_BODY as JSON (generated by bench/e2e.py)
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: apt-get install -y wrk")
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, stdout=subprocess.DEVNULL).returncode != 0:
        log("install failed: apt-get update, then again")
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, check=False)
        subprocess.run(install, stdout=subprocess.DEVNULL, check=False)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is needed and could not be installed (apt-get install wrk)")
    return found


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


@dataclass
class WrkResult:
    duration_s: float
    connections: int
    requests: int = 0
    rps: float = 0.0
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    raw: str = ""

    @property
    def ok_2xx(self) -> int:
        return max(0, self.requests - self.non_2xx)

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


def run_wrk(
    wrk: str, url: str, body_file: Path, lua: Path, duration: float, conns: int
) -> WrkResult:
    cmd = [
        "taskset", "-c", CLIENT_CPU, wrk, "-t1", f"-c{conns}", f"-d{duration:g}s",
        "--timeout", "10s", "--latency", "-s", str(lua), url,
    ]  # fmt: skip
    env = dict(os.environ, BENCH_BODY=str(body_file))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    text = proc.stdout + proc.stderr
    res = WrkResult(duration_s=duration, connections=conns, raw=text)
    if m := re.search(r"(\d+) requests in", text):
        res.requests = int(m.group(1))
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        res.rps = float(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        res.non_2xx = int(m.group(1))
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    ):
        names = ("connect", "read", "write", "timeout")
        res.socket_errors = dict(zip(names, map(int, m.groups()), strict=True))
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M):
        res.latency_ms[f"p{pct}"] = _ms(value, unit)
    if proc.returncode != 0 or not res.requests:
        res.socket_errors["wrk-failed"] = res.socket_errors.get("wrk-failed", 0) + 1
        log(f"wrk failed (exit {proc.returncode}): {text.strip()[-300:]}")
    return res


# --------------------------------------------------------------------------- processes


def proc_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children[ppid].append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants, in seconds.

    A process's ``/proc/<pid>/stat`` already sums all its threads (live and exited), so
    the tree covers aiokafka's and the loop's threads and ``--workers`` children alike.
    Resolution is one clock tick (10 ms at 100 Hz) per process and reading.
    """
    ticks = 0
    for p in proc_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / CLOCK_TICKS


def steal_seconds() -> float:
    """CPU time the hypervisor gave to others, summed over this machine's CPUs (``steal``)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / CLOCK_TICKS if len(fields) > 8 else 0.0


def stolen_since(steal_before: float, started: float) -> float:
    """The share of the machine's CPU time stolen since ``steal_seconds()`` read
    ``steal_before`` at ``time.monotonic()`` ``started``."""
    elapsed = time.monotonic() - started
    return (steal_seconds() - steal_before) / (elapsed * (os.cpu_count() or 1))


def vm_hwm_kb(pid: int) -> int:
    """Peak RSS (VmHWM) of ``pid`` and its descendants, summed (workers are processes)."""
    total = 0
    for p in proc_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total


class Broker:
    """This run's own single-node Kafka on 127.0.0.1:19092; stopped and deleted on exit."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.env = dict(os.environ, KL_RUN=str(KL_RUN))
        self.started = False
        self.pids: list[int] = []  # its JVMs, once started

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def _script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(KAFKA_SCRIPT), *args], env=self.env, text=True,
            capture_output=True, check=check,
        )  # fmt: skip

    def __enter__(self) -> Broker:
        # A leftover from an interrupted run is stopped and wiped: every run starts empty.
        self._script("clean", check=False)
        log(f"starting Kafka on {BOOTSTRAP} (KL_RUN={KL_RUN})")
        self.started = True
        try:
            self._script("single", str(BROKER_PORT))
        except subprocess.CalledProcessError as exc:
            raise SystemExit(f"bench: the broker did not start:\n{exc.stdout}{exc.stderr}") from exc
        self.pids = [int(f.read_text()) for f in sorted(KL_RUN.glob("node*/pid"))]
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.started:
            return
        log("stopping Kafka" + (" (data kept)" if self.keep else " and deleting its data"))
        self._script("stop" if self.keep else "clean", check=False)
        self.started = False


async def _end_offsets(topics: list[str]) -> dict[str, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10_000)
    await consumer.start()
    try:
        known = await consumer.topics()
        for topic in topics:
            if topic in known:
                consumer._client.add_topic(topic)  # the consumer's own metadata lacks them
        await consumer._client.force_metadata_update()
        out = {}
        for topic in topics:
            parts = consumer.partitions_for_topic(topic) if topic in known else None
            if not parts:
                out[topic] = 0
                continue
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
            out[topic] = sum(ends.values())
        return out
    finally:
        await consumer.stop()


def end_offsets(topics: list[str]) -> dict[str, int]:
    if not topics:
        return {}
    return asyncio.run(_end_offsets(topics))


@dataclass
class Target:
    name: str
    label: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    ready_path: str
    topic_prefix: str | None  # None: nothing goes to Kafka
    cpus: str = SERVER_CPU

    def path(self, body: str) -> str:
        return f"/webhooks/{BODIES[body][0]}?token={TOKEN}"

    def topics(self, body: str) -> list[str]:
        if self.topic_prefix is None:
            return []
        topics = [f"{self.topic_prefix}.{BODIES[body][1]}"]
        if self.name.startswith("ingress"):
            topics.append(f"{self.topic_prefix}.deadletter")
        return topics


class Server:
    def __init__(self, target: Target, logfile: Path) -> None:
        self.target = target
        self.logfile = logfile
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        t = self.target
        with contextlib.suppress(OSError):
            self.logfile.unlink()
        out = self.logfile.open("ab")
        self.proc = subprocess.Popen(
            ["taskset", "-c", t.cpus, *t.cmd], env=t.env, cwd=ROOT, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        out.close()
        url = f"http://127.0.0.1:{t.port}{t.ready_path}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{t.name} exited at start-up; see {self.logfile}")
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(url, timeout=2) as r,
            ):
                if r.status == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{t.name} not ready at {url} after 60 s; see {self.logfile}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # graceful: finish in flight, flush the producer
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            log(f"{self.target.name} did not stop on SIGINT; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def __exit__(self, *exc: object) -> None:
        self.stop()


def probe(target: Target, body_file: Path, body: str) -> tuple[int, bytes]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{target.port}{target.path(body)}",
        data=body_file.read_bytes(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def kafka_waits(target: Target) -> histogram.Buckets:
    """The ingress's wait-on-Kafka histogram as it stands ([]: the page could not be read)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{target.port}/metrics", timeout=5) as r:
            return histogram.parse_buckets(r.read().decode(), ACK_HISTOGRAM)
    except (OSError, HTTPException):  # URLError and HTTPError are OSErrors; a cut-off page
        return []


def watch_kafka(ol: dict[str, Any], waited: histogram.Buckets) -> None:
    """The step's wait on Kafka into its figures: the p99, and the share over the target."""
    p99 = histogram.quantile(waited, 0.99)
    ol["kafka_p99_ms"] = None if p99 is None else p99 * 1000
    ol["kafka_over_target"] = histogram.share_above(waited, TARGET_P99_MS / 1000)


def serve_supports_workers() -> bool:
    out = subprocess.run(
        [str(VENV_BIN / "plug-pipeline"), "serve", "--help"], capture_output=True, text=True
    )
    return "--workers" in out.stdout


def make_targets(workers: int) -> tuple[dict[str, Target], list[str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLUG_PIPELINE_", "KAFKA_"))}
    base["PYTHONUNBUFFERED"] = "1"
    ingress_env = dict(
        base,
        KAFKA_BOOTSTRAP_SERVERS=BOOTSTRAP,
        PLUG_PIPELINE_TOKENS=f"{TENANT}={TOKEN}",
        PLUG_PIPELINE_HOST="127.0.0.1",
        PLUG_PIPELINE_PORT=str(PORTS["ingress"]),
        PLUG_PIPELINE_TOPIC_PREFIX=PREFIX,
    )
    # Linger and compression are the ingress's defaults unless the caller sets them.
    for key in ("PLUG_PIPELINE_LINGER_MS", "PLUG_PIPELINE_COMPRESSION"):
        if key in os.environ:
            ingress_env[key] = os.environ[key]
    serve = [str(VENV_BIN / "plug-pipeline"), "serve"]
    targets = {
        "ingress": Target(
            "ingress", "plug-pipeline serve", serve, ingress_env, PORTS["ingress"],
            "/readyz", PREFIX,
        ),
        "ceiling": Target(
            "ceiling", "aiohttp ceiling",
            [sys.executable, str(BENCH / "baselines" / "ceiling.py"), "--port",
             str(PORTS["ceiling"])],
            base, PORTS["ceiling"], "/healthz", None,
        ),
        "handwritten": Target(
            "handwritten", "FastAPI+pydantic+send_and_wait",
            [sys.executable, str(BENCH / "baselines" / "handwritten.py"), "--port",
             str(PORTS["handwritten"]), "--bootstrap-servers", BOOTSTRAP],
            dict(base, HANDWRITTEN_TOKEN=TOKEN, HANDWRITTEN_TOPIC_PREFIX="handwritten"),
            PORTS["handwritten"], "/healthz", "handwritten",
        ),
    }  # fmt: skip
    notes = []
    if workers > 1:
        if serve_supports_workers():
            env = dict(ingress_env, PLUG_PIPELINE_PORT=str(PORTS["ingress-workers"]))
            cpus = ",".join(str(i) for i in range(min(workers, os.cpu_count() or 1)))
            targets["ingress-workers"] = Target(
                "ingress-workers", f"plug-pipeline serve --workers {workers}",
                [*serve, "--workers", str(workers)], env, PORTS["ingress-workers"], "/readyz",
                PREFIX, cpus=cpus,
            )  # fmt: skip
            if workers >= 2:
                notes.append(
                    f"`--workers {workers}` row: server on CPUs {cpus}, so it shares CPU "
                    f"{CLIENT_CPU} with the load generator; compare with care."
                )
        else:
            notes.append(
                f"`--workers {workers}` row skipped: `plug-pipeline serve --help` has no "
                "`--workers` option yet."
            )
    return targets, notes


# --------------------------------------------------------------------------- the run


@dataclass
class Durations:
    warmup: float
    max: float
    open: float
    profile: float
    broker_warmup: float


def warm_broker(
    target: Target, body: str, body_file: Path, lua: Path, wrk: str, seconds: float, conns: int
) -> None:
    """Webhooks through ``target`` for ``seconds`` before the first row, thrown away.

    A fresh broker spends its first minute of load compiling and settling: in the first
    row measured after its start it took 0.37-0.42 cores, in the rows after 0.11-0.19
    (``broker`` in bench/RESULTS.md), on both cores, so the first row (the ingress's
    receive, the one the ratios are taken from) ran beside a busier broker than the
    rest, the hand-written service's included.
    """
    log(f"warming the broker up: {seconds:g} s of {body} webhooks through {target.name}")
    with Server(target, OUT / "server-broker-warmup.log"):
        url = f"http://127.0.0.1:{target.port}{target.path(body)}"
        run_wrk(wrk, url, body_file, lua, seconds, conns)


def measure(
    target: Target, body: str, body_file: Path, lua: Path, wrk: str, d: Durations,
    conns: int, profile: bool, broker: Broker, round_no: int,
) -> Row:  # fmt: skip
    size = body_file.stat().st_size
    row = Row(target.name, target.label, body, size, load_1m=os.getloadavg()[0], round=round_no)
    topics = target.topics(body)
    before = end_offsets(topics)
    url = f"http://127.0.0.1:{target.port}{target.path(body)}"
    logfile = OUT / f"server-{target.name}-{body}-r{round_no}.log"
    acked = 0
    log(f"round {round_no}: {target.name} / {body}: starting the server")
    with Server(target, logfile) as server:
        status, answer = probe(target, body_file, body)
        if status != 200:
            row.flags.append(f"probe answered {status}: {answer[:200]!r}")
            log(f"  probe answered {status}: {answer[:200]!r}")
        else:
            acked += 1
            if target.name.startswith("ingress") and b"event_id" not in answer:
                row.flags.append("200 without event_id")
        log(f"  warm-up {d.warmup:g} s")
        warm = run_wrk(wrk, url, body_file, lua, d.warmup, conns)
        acked += warm.ok_2xx
        log(f"  max: wrk -t1 -c{conns} -d{d.max:g}s")
        cpu_before = cpu_seconds(server.pid)
        broker_before, steal_before = broker.cpu_seconds(), steal_seconds()
        started = time.monotonic()
        res = run_wrk(wrk, url, body_file, lua, d.max, conns)
        cpu_after = cpu_seconds(server.pid)
        elapsed = time.monotonic() - started
        row.broker_cores = (broker.cpu_seconds() - broker_before) / elapsed if broker.pids else None
        row.steal = stolen_since(steal_before, started)
        acked += res.ok_2xx
        row.max_rps = res.rps
        if res.requests and cpu_after > cpu_before:
            row.max_cpu_s = cpu_after - cpu_before
            row.cpu_us_per_req = row.max_cpu_s * 1e6 / res.requests
        row.wrk = {k: v for k, v in asdict(res).items() if k != "raw"}
        (OUT / f"wrk-{target.name}-{body}-r{round_no}.txt").write_text(res.raw)
        if res.errors:
            row.flags.append(f"max run: {res.non_2xx} non-2xx, socket errors {res.socket_errors}")
        log(
            f"  max {res.rps:,.0f}/s, {fmt_us(row.cpu_us_per_req)} CPU us/req "
            f"({fmt_s(row.max_cpu_s)} CPU s / {res.requests:,} requests), "
            f"non-2xx {res.non_2xx}, socket errors {res.socket_errors}; broker "
            f"{fmt_s(row.broker_cores)} cores, steal {fmt_pct(row.steal)}"
        )
        for fraction in FRACTIONS:
            rate = max(1.0, res.rps * fraction)
            log(f"  open loop at {fraction:.0%} of max: {rate:,.0f}/s for {d.open:g} s")
            # One process answers every scrape: its histogram holds the step's every webhook.
            waits = kafka_waits(target) if target.name == "ingress" else []
            steal_before, started = steal_seconds(), time.monotonic()
            ol = run_openloop(target, body, body_file, rate, d.open, conns)
            ol["steal"] = stolen_since(steal_before, started)
            if waits:
                watch_kafka(ol, histogram.since(waits, kafka_waits(target)))
            ol["fraction"] = fraction
            row.open_loop.append(ol)
            acked += ol.get("ok_2xx", 0)
            errs = (
                ol.get("non_2xx", 0) + sum(ol.get("errors", {}).values()) + ol.get("unanswered", 0)
            )
            if errs:
                row.flags.append(
                    f"open loop {fraction:.0%}: codes {ol.get('codes')}, errors "
                    f"{ol.get('errors')}, unanswered {ol.get('unanswered')}"
                )
            note = f"open loop {fraction:.0%}: {ol.get('client_note')}"
            if not ol.get("client_ok", False):
                row.flags.append(f"{note}: the client could not keep up")
            elif ol.get("client_note"):
                row.notes.append(note)
            log(
                f"    p50 {ol.get('p50_ms', math.nan):.2f} ms p99 {ol.get('p99_ms', math.nan):.2f}"
                f" ms, codes {ol.get('codes')}, client {ol.get('client_note') or 'ok'}"
            )
        if profile:
            acked += run_profile(server.pid, target, body, url, body_file, lua, wrk, d, conns)
        row.rss_peak_mb = vm_hwm_kb(server.pid) / 1024
    row.acked = acked
    after = end_offsets(topics)
    row.kafka_delta = {t: after.get(t, 0) - before.get(t, 0) for t in topics}
    if topics:
        main_topic = topics[0]
        delta = row.kafka_delta[main_topic]
        if delta < acked:
            row.flags.append(f"LOST: {acked} answers 2xx but only {delta} records on {main_topic}")
        for t in topics[1:]:
            if row.kafka_delta[t]:
                row.flags.append(f"{row.kafka_delta[t]} records on {t}")
        log(f"  Kafka: {acked} acked, {delta} new records on {main_topic}")
    return row


def measure_or_skip(
    target: Target, body: str, body_file: Path, lua: Path, wrk: str, d: Durations,
    conns: int, profile: bool, broker: Broker, round_no: int,
) -> Row:  # fmt: skip
    """``measure``, or a skipped row saying why the server could not be measured."""
    try:
        return measure(target, body, body_file, lua, wrk, d, conns, profile, broker, round_no)
    except RuntimeError as exc:
        log(f"round {round_no}: {target.name}/{body}: {exc}")
        row = Row(target.name, target.label, body, 0, skipped=str(exc), round=round_no)
        row.flags.append(str(exc))
        return row


def run_openloop(
    target: Target, body: str, body_file: Path, rate: float, duration: float, conns: int
) -> dict[str, Any]:
    cmd = [
        "taskset", "-c", CLIENT_CPU, sys.executable, str(Path(__file__).resolve()), "_openloop",
        "--port", str(target.port), "--path", target.path(body), "--body-file", str(body_file),
        "--rate", f"{rate:.1f}", "--duration", f"{duration:g}", "--conns", str(conns),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        log(f"open-loop client failed: {proc.stderr.strip()[-500:]}")
        return {"rate": rate, "errors": {"client-failed": 1}, "client_ok": False,
                "client_note": "the client failed"}  # fmt: skip
    return result


def run_profile(
    pid: int, target: Target, body: str, url: str, body_file: Path, lua: Path, wrk: str,
    d: Durations, conns: int,
) -> int:  # fmt: skip
    """py-spy the server under closed-loop load: collapsed stacks, then a flame graph."""
    spy = VENV_BIN / "py-spy"
    if not spy.exists():
        spy = Path(shutil.which("py-spy") or "")
    if not spy.is_file():
        log("  profile skipped: py-spy not found (.venv/bin/pip install py-spy)")
        return 0
    acked = 0
    for fmt, dest in (("raw", f"profile-{target.name}-{body}.txt"),
                      ("flamegraph", f"profile-{target.name}-{body}.svg")):  # fmt: skip
        log(f"  py-spy ({fmt}) for {d.profile:g} s under wrk load")
        spy_proc = subprocess.Popen(
            ["taskset", "-c", CLIENT_CPU, str(spy), "record", "--pid", str(pid), "--rate", "200",
             "--nonblocking", "--duration", f"{d.profile:g}", "--format", fmt,
             "-o", str(OUT / dest)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(0.5)
        res = run_wrk(wrk, url, body_file, lua, d.profile + 1, conns)
        acked += res.ok_2xx
        _, err = spy_proc.communicate(timeout=60)
        if spy_proc.returncode:
            log(f"  py-spy failed: {err.decode(errors='replace').strip()[-300:]}")
    return acked


def profile_of(body: str) -> dict[str, Any] | None:
    """The summary of ``run_profile``'s recording for ``body``; None if it wrote none."""
    raw = OUT / f"profile-ingress-{body}.txt"
    if not raw.exists():
        return None
    summary = summarise_profile(raw)
    summary["body"] = body
    summary["svg"] = f"profile-ingress-{body}.svg"
    return summary


def summarise_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Self time by area, module and function from py-spy's collapsed stacks.

    A sample's area is that of its innermost frame outside the standard library, so
    time in ``asyncio.StreamWriter.write`` called by aiokafka counts for aiokafka; a
    sample whose only frames are the loop's (``run_app``) is the event loop itself
    (uvloop's C code, socket reads and writes of the HTTP side).
    """
    by_area: collections.Counter[str] = collections.Counter()
    by_module: collections.Counter[str] = collections.Counter()
    by_func: collections.Counter[str] = collections.Counter()
    total = 0
    frame_re = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [m for fr in stack.split(";") if (m := frame_re.match(fr.strip()))]
        if not frames:
            continue
        leaf = frames[-1]
        by_module[_module(leaf["file"])] += n
        by_func[f"{leaf['func']} ({_module(leaf['file'])})"] += n
        owner = next((m for m in reversed(frames) if not _stdlib(m["file"])), leaf)
        loop_leaf = leaf["func"] == "run_app" or leaf["file"].endswith(_LOOP_FILES)
        if loop_leaf or owner["file"].endswith(("pipeline/cli.py", "pipeline/serve.py")):
            by_area[_EVENT_LOOP] += n
        else:
            by_area[_area(owner["file"], owner["func"])] += n

    def pct(c: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / max(total, 1), 1)) for k, v in c.most_common(top)]

    return {
        "samples": total,
        "self_by_area": pct(by_area),
        "self_by_module": pct(by_module),
        "self_by_function": pct(by_func),
    }


_EVENT_LOOP = "event loop (uvloop C code: HTTP socket I/O, callbacks)"
_LOOP_FILES = ("asyncio/runners.py", "asyncio/base_events.py")


def _stdlib(file: str) -> bool:
    f = file.replace("\\", "/")
    if "site-packages" in f or "pipeline/" in f:
        return False
    first = f.split("/lib/python3.11/")[-1].lstrip("/").split("/")[0].removesuffix(".py")
    return first in sys.stdlib_module_names


def _module(file: str) -> str:
    file = file.replace("\\", "/")
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return file.removesuffix(".py")


def _area(file: str, func: str) -> str:
    f = file.replace("\\", "/")
    if "aiokafka" in f:
        return "aiokafka (producer, batching, Kafka I/O)"
    if "pipeline/ingest" in f or "pipeline/events" in f or "pipeline/plug" in f:
        return "pipeline decode + normalise (msgspec, orjson)"
    if "pipeline/route" in f or "pipeline/webhooks" in f:
        return "pipeline route"
    if "pipeline/http" in f:
        return "pipeline HTTP handler"
    if "pipeline/sink" in f:
        return "pipeline Kafka sink (timeouts, futures)"
    if "prometheus_client" in f or "pipeline/metrics" in f:
        return "metrics (prometheus_client)"
    if "aiohttp" in f or "multidict" in f or "yarl" in f:
        return "aiohttp (HTTP parsing, routing, responses)"
    return f"other ({_module(file)})"


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for mod in ("aiohttp", "aiokafka", "msgspec", "orjson", "uvloop", "fastapi", "pydantic",
                "uvicorn"):  # fmt: skip
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[mod] = version(mod)
    try:
        import httptools  # noqa: F401

        versions["uvicorn http"] = "httptools"
    except ImportError:
        versions["uvicorn http"] = "h11"
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": wrk_v.strip(),
        "kafka": "Apache Kafka 4.3.1 (KRaft, single node, deploy/kafka-local)",
        "versions": versions,
        "loadavg_at_start": os.getloadavg(),
    }


def fmt_ms(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def fmt_us(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def fmt_pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def per_cpu_second(us_per_req: float) -> float:
    """Webhooks one CPU-second serves at ``us_per_req`` CPU microseconds each."""
    return 1e6 / us_per_req


def table(rows: list[Row]) -> list[str]:
    head = ["target", "body", "max/s", "CPU us/req", "err", "p50/p99 @25%", "p50/p99 @50%",
            "p50/p99 @75%", "RSS MB", "load", "broker", "steal", "ok"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.skipped:
            lines.append(f"| {r.target} | {r.body} | skipped: {r.skipped} |" + " |" * 10)
            continue
        cells = [r.target, f"{r.body} ({r.body_bytes} B)", f"{r.max_rps:,.0f}",
                 fmt_us(r.cpu_us_per_req)]  # fmt: skip
        errs = r.wrk.get("non_2xx", 0) + sum(r.wrk.get("socket_errors", {}).values())
        errs += sum(o.get("non_2xx", 0) + sum(o.get("errors", {}).values()) for o in r.open_loop)
        cells.append(str(errs))
        for f in FRACTIONS:
            o = r.at(f)
            if o is None:
                cells.append("-")
                continue
            mark = "" if o.get("client_ok") else "*"
            cells.append(f"{fmt_ms(o.get('p50_ms'))} / {fmt_ms(o.get('p99_ms'))}{mark}")
        cells.append(f"{r.rss_peak_mb:.0f}")
        cells.append(f"{r.load_1m:.1f}")
        cells.append(fmt_s(r.broker_cores))
        cells.append(fmt_pct(r.steal))
        cells.append("FLAGGED" if r.flags else "ok")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def over_p99_target(p99_ms: float) -> bool:
    return p99_ms > TARGET_P99_MS


def rounds_table(rows: list[Row]) -> list[str]:
    """Each round's own max/s, CPU us/req and p99 at half of max, per median row, and the
    ingress's p99 wait on Kafka at half of max.

    The ingress's p99s over the target say so; the target is only the ingress's.
    """
    head = ["target", "body", "max/s", "CPU us/req", "p99 @50% (ms)",
            "Kafka wait p99 @50% (ms)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.skipped:
            continue
        pr = r.per_round
        lines.append("| " + " | ".join([
            r.target, r.body, by_round(pr.get("max_rps", []), ",.0f"),
            by_round(pr.get("cpu_us_per_req", []), ".0f"),
            by_round(pr.get("p99@0.5", []), ".1f",
                     missed=over_p99_target if r.target == "ingress" else None),
            by_round(pr.get("kafka p99@0.5", []), ".1f") if r.target == "ingress" else "",
        ]) + " |")  # fmt: skip
    return lines


def detail_table(rows: list[Row]) -> list[str]:
    head = ["round", "target", "body", "load", "rate/s", "p50", "p90", "p99", "p99.9", "max",
            "server p50/p99", "Kafka wait p99 / over target", "client lag p99", "client CPU",
            "steal", "answers"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        for o in r.open_loop:
            codes = " ".join(f"{c}:{n}" for c, n in sorted(o.get("codes", {}).items()))
            errs = " ".join(f"{c}:{n}" for c, n in sorted(o.get("errors", {}).items()))
            lines.append("| " + " | ".join([
                str(r.round), r.target, r.body, f"{o.get('fraction', 0):.0%}",
                f"{o.get('rate', 0):,.0f}",
                *(fmt_ms(o.get(k)) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")),
                f"{fmt_ms(o.get('service_p50_ms'))} / {fmt_ms(o.get('service_p99_ms'))}",
                kafka_wait(o), fmt_ms(o.get("lag_p99_ms")), f"{o.get('client_cpu', 0):.0%}",
                fmt_pct(o.get("steal")), (codes + (" errors " + errs if errs else "")) or "-",
            ]) + " |")  # fmt: skip
    return lines


def kafka_wait(step: dict[str, Any]) -> str:
    """The step's p99 wait on Kafka and the share of webhooks that waited over the target."""
    share = step.get("kafka_over_target")
    if share is None:
        return "-"
    return f"{fmt_ms(step.get('kafka_p99_ms'))} / {share:.1%}"


def round_ratios(ing: Row, other: Row, key: str, mine_over_theirs: bool, target: float) -> str:
    """Each round's own ratio of ``key``, the two rows' readings of the same round paired.

    Empty for a single round. ``mine_over_theirs``: the ingress's figure over the
    other's (webhooks/s), else the other's over the ingress's (CPU us per request).
    """
    pairs = list(zip(ing.per_round.get(key, []), other.per_round.get(key, []), strict=False))
    if len(pairs) < 2:
        return ""
    each = [None if not a or not b else (a / b if mine_over_theirs else b / a) for a, b in pairs]
    return f"; rounds {by_round(each, '.2f', missed=lambda v: v < target)}"


def verdicts(rows: list[Row]) -> list[tuple[str, str, str]]:
    def get(target: str, body: str) -> Row | None:
        return next((r for r in rows if r.target == target and r.body == body and not r.skipped),
                    None)  # fmt: skip

    out: list[tuple[str, str, str]] = []
    compared = (
        ("receive", "ceiling", "the aiohttp web.Application ceiling", TARGET_CEILING_RATIO),
        ("receive", "handwritten", "hand-written", TARGET_HANDWRITTEN_RATIO),
        ("finish40", "handwritten", "hand-written", TARGET_FINISH40_HANDWRITTEN_RATIO),
    )
    for body, other_name, what, target in compared:
        ing, other = get("ingress", body), get(other_name, body)
        if ing is None or other is None:
            continue
        if other.max_rps:
            ratio = ing.max_rps / other.max_rps
            out.append((f">= {target:g}x {what} ({body}, webhooks/s)",
                         f"{ratio:.2f}x ({ing.max_rps:,.0f} / {other.max_rps:,.0f})"
                         + round_ratios(ing, other, "max_rps", True, target),
                         "PASS" if ratio >= target else "MISS"))  # fmt: skip
        if ing.cpu_us_per_req and other.cpu_us_per_req:
            # Webhooks per CPU-second, ours over theirs: their CPU us per request over ours.
            ratio = other.cpu_us_per_req / ing.cpu_us_per_req
            mine, theirs = per_cpu_second(ing.cpu_us_per_req), per_cpu_second(other.cpu_us_per_req)
            out.append((f"by CPU: >= {target:g}x {what} ({body}, webhooks per CPU-second)",
                         f"{ratio:.2f}x ({mine:,.0f} / {theirs:,.0f}; CPU us/req "
                         f"{ing.cpu_us_per_req:.0f} vs {other.cpu_us_per_req:.0f})"
                         + round_ratios(ing, other, "cpu_us_per_req", False, target),
                         "PASS" if ratio >= target else "MISS"))  # fmt: skip
    for r in rows:
        if r.target != "ingress" or r.skipped:
            continue
        o = r.at(0.5)
        if o is not None:
            p99 = o.get("p99_ms", math.nan)
            ok = p99 <= TARGET_P99_MS and o.get("client_ok") and not o.get("non_2xx")
            rounds = r.per_round.get("p99@0.5", [])
            over = by_round(rounds, ".1f", missed=over_p99_target)
            each = f"; rounds {over}" if len(rounds) > 1 else ""
            share = o.get("kafka_over_target")
            if share is not None:
                each += f"; {share:.1%} (median) waited over {TARGET_P99_MS:g} ms on Kafka alone"
            out.append((f"p99 <= {TARGET_P99_MS:g} ms at 50% of max ({r.body})",
                        f"{fmt_ms(p99)} ms at {o.get('rate', 0):,.0f}/s{each}",
                        "PASS" if ok else "MISS"))  # fmt: skip
    ing_rows = [r for r in rows if r.target == "ingress" and not r.skipped]
    if ing_rows:
        peak = max(r.rss_peak_mb for r in ing_rows)
        out.append((f"peak RSS <= {TARGET_RSS_MB:g} MB (ingress, any body)", f"{peak:.0f} MB",
                    "PASS" if peak <= TARGET_RSS_MB else "MISS"))  # fmt: skip
    return out


def ratios(rows: list[Row]) -> list[str]:
    """Per body: the ingress against the others, by webhooks/s and by CPU per request.

    "by CPU" is webhooks per CPU-second, the numerator's over the denominator's: the
    denominator's CPU us per request over the numerator's.
    """
    lines = []
    for body in BODIES:
        ing = next((r for r in rows if r.target == "ingress" and r.body == body), None)
        if ing is None or ing.skipped:
            continue
        parts, by_cpu = [], []
        for other in ("ceiling", "handwritten", "ingress-workers"):
            o = next((r for r in rows if r.target == other and r.body == body and not r.skipped),
                     None)  # fmt: skip
            if o is None:
                continue
            # The workers row is the numerator (its scaling); the others are baselines.
            num, den = (o, ing) if other == "ingress-workers" else (ing, o)
            name = f"{num.target}/{den.target}"
            if den.max_rps:
                parts.append(f"{name} {num.max_rps / den.max_rps:.2f}x")
            if num.cpu_us_per_req and den.cpu_us_per_req:
                by_cpu.append(f"{name} {den.cpu_us_per_req / num.cpu_us_per_req:.2f}x")
        if parts:
            lines.append(f"- {body}: " + ", ".join(parts))
        if by_cpu:
            lines.append(f"- {body}, by CPU (webhooks per CPU-second): " + ", ".join(by_cpu))
    return lines


def medians_intro(rounds: int) -> list[str]:
    if rounds < 2:
        return []
    return [
        f"Every figure is the median of the row's {rounds} rounds (`--rounds`; the targets'",
        "order reversed every other round); `err` and the flags add up the rounds, `RSS MB`",
        "is the highest round's, `*` marks a step the client missed in any round.",
    ]


def round_trips(measured: dict[str, tuple[float, float]]) -> str:
    shown = {"idle": "as the machine idles", "held": "with the hold"}
    return "; ".join(f"{p50:.3f} / {p99:.3f} ms {shown[k]}" for k, (p50, p99) in measured.items())


def render(meta: dict[str, Any], rows: list[Row], measured: list[Row], notes: list[str],
           profile: dict[str, Any] | None) -> str:  # fmt: skip
    """The report: ``rows`` are the medians over the rounds, ``measured`` every round's."""
    m = meta["machine"]
    from pipeline.config import Config

    defaults = Config()
    linger = meta["ingress_env"].get("PLUG_PIPELINE_LINGER_MS", f"{defaults.linger_ms} (default)")
    compression = meta["ingress_env"].get(
        "PLUG_PIPELINE_COMPRESSION", f"{defaults.compression} (default)"
    )
    lines = [
        "# End-to-end benchmark: webhooks through the ingress into Kafka",
        "",
        "Generated by `bench/e2e.py` (`make bench`); every run overwrites this file. The raw",
        "figures are in `bench/out/e2e.json`, wrk outputs and server logs in `bench/out/`.",
        "",
        f"- date: {meta['date']}",
        f"- command: `{meta['command']}`",
        f"- machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}",
        f"- Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"- {m['kafka']} on {BOOTSTRAP}, not pinned; {m['wrk']}",
        f"- mode: {meta['mode']}; the broker warmed up by "
        f"{meta['durations']['broker_warmup']:g} s of webhooks before the first row "
        f"(`warm_broker`); durations: warm-up {meta['durations']['warmup']:g} s, "
        f"max {meta['durations']['max']:g} s, each open-loop step {meta['durations']['open']:g} s;"
        f" {meta['connections']} connections; {meta['rounds']} round(s) of every row",
        f"- ingress settings: linger {linger} ms, compression {compression}",
        f"- CPU idle: {meta.get('cpu_idle', '-')}; a one-byte round trip between CPU 0 and "
        f"CPU 1 (`bench/wakeup.py`), p50 / p99: {round_trips(meta['round_trip_ms'])}",
        "",
        "## Results",
        "",
        "`max/s`: closed-loop wrk (`-t1 -c64`), 2xx only counted as throughput when `err` is 0.",
        "`CPU us/req`: the server's CPU time (all its threads and processes) over that max run",
        "divided by the requests wrk completed in it; 1e6 / it is webhooks per CPU-second.",
        "`p50/p99 @N%`: latency in ms from each request's scheduled time, open loop at N% of",
        "that target's own max. `*`: the load client could not keep the schedule (see flags).",
        "`err`: non-2xx answers plus socket errors over all runs of the row. `RSS MB`: VmHWM",
        "(summed over the server's processes). `load`: the machine's 1-minute load average",
        "when the row started (above ~2 on 2 cores, other work was competing). `broker`: the",
        "broker's CPU over the max run, in cores (it shares both cores with the server and the",
        "load generator); `steal`: the share of the machine's CPU time the hypervisor gave to",
        "other guests over that run (a row with more than a few % ran on a slower machine).",
        *medians_intro(meta["rounds"]),
        "",
        *table(rows),
        "",
        *(
            ["Each round's own readings (in round order):", "", *rounds_table(rows), ""]
            if meta["rounds"] > 1
            else []
        ),
        "Open-loop steps in detail (ms; `server` runs from the request's actual write, so",
        "`p99` minus `server p99` is roughly what queueing and a late client added; `Kafka",
        "wait`: the ingress's own `plug_kafka_ack_seconds` over the step, from a webhook's",
        "records handed to the producer to the handler seeing their acknowledgement (the",
        "broker's round trip, the wait for the request before it, the event loop's turn), its",
        "p99 and the share of webhooks that waited longer than the p99 target on Kafka alone:",
        "over 1 %, the target was out of reach in that step whatever the rest of the server did;",
        "`steal` as above, over the step), every round's:",
        "",
        *detail_table(measured),
        "",
        "Ratios (max webhooks/s; by CPU: webhooks per CPU-second, from CPU us/req):",
        "",
        *ratios(rows),
        "",
        "## Targets (reported, never failing the run)",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in verdicts(rows)],
        "",
    ]
    flagged = [(r, f) for r in rows for f in r.flags]
    lines += ["## Flags", ""]
    clean = "- none: every answer was 2xx, every 2xx is on its topic, the client kept up"
    lines += [f"- {r.target}/{r.body}: {f}" for r, f in flagged] or [clean]
    row_notes = [f"{r.target}/{r.body}: {n}" for r in rows for n in r.notes]
    if notes or row_notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes + row_notes]]
    if profile:
        lines += ["", f"## Where the ingress's time goes (py-spy, {profile['body']} body, "
                  f"closed loop, {profile['samples']} samples, idle excluded)", "",
                  "Self time by area (each sample charged to its innermost non-stdlib "
                  "frame):", ""]  # fmt: skip
        lines += [f"- {k}: {v}%" for k, v in profile["self_by_area"]]
        lines += [
            "",
            "Self time by module (the innermost Python frame; C extensions such as",
            "msgspec, orjson and uvloop are charged to their Python caller):",
            "",
        ]
        lines += [f"- {k}: {v}%" for k, v in profile["self_by_module"]]
        lines += ["", "Self time by function:", ""]
        lines += [f"- {k}: {v}%" for k, v in profile["self_by_function"]]
        lines += ["", f"Flame graph: `bench/out/{profile['svg']}`."]
    lines += [
        "",
        "## Method",
        "",
        f"- Servers run alone on CPU {SERVER_CPU} (`taskset -c {SERVER_CPU}`); wrk and the "
        f"open-loop client on CPU {CLIENT_CPU}. Each (target, body) row starts a fresh server,",
        "  so its peak RSS is that row's. The broker is the run's own, started empty and deleted",
        "  at the end; it is not pinned and shares both cores with everything else.",
        "- CPU us/req: utime + stime from `/proc/<pid>/stat` (clock ticks, "
        f"`SC_CLK_TCK` = {CLOCK_TICKS}),",
        "  summed over the server's process tree (every thread; `--workers` children too),",
        "  read just before and just after the closed-loop max run and divided by the requests",
        "  wrk completed in it. The Kafka broker is the run's own process, outside the server's",
        "  tree: its CPU counts for neither the ingress nor the hand-written service, and wrk's",
        "  does not count either. Each reading is exact to a clock tick per process, a few",
        "  hundredths of a second over the run.",
        "- Bodies: `Generator(seed=1)`: `receive_message_body(size_hint=1024)`,",
        "  `message_status_body()`, `finish_attendance_body(40)`, written to `bench/out/bodies/`.",
        "- Every 2xx of a Kafka-backed target must be on its topic: the topic's end offsets",
        "  after the row (server stopped gracefully) minus before must be at least the number",
        "  of 2xx answers (more is normal: wrk does not count requests cut off at its end).",
        "- The open-loop client (`bench/e2e.py _openloop`, uvloop, raw HTTP/1.1 keep-alive",
        "  connections) dispatches request *i* at `start + i/rate` onto an idle connection or",
        "  queues it; latency runs from the scheduled time, so queueing in the client counts.",
        "  The client flags itself when its schedule lags (p99 > 5 ms), its CPU passes 85 %,",
        "  or it had to drop requests.",
        "- The hand-written baseline (`bench/baselines/handwritten.py`): FastAPI, pydantic v2",
        "  models, `send_and_wait` per request (acks=all, idempotent, aiokafka defaults: no",
        "  linger, no compression), uvicorn with one worker. The ceiling",
        "  (`bench/baselines/ceiling.py`): aiohttp on uvloop, reads the body, answers 200.",
        "- On a 2-core machine with a broker on the same cores the figures are a lower bound",
        "  and noisy from run to run (other work on the machine shows in the load average).",
    ]
    return "\n".join(lines) + "\n"


def write_bodies() -> dict[str, Path]:
    from pipeline.simulate.generator import Generator

    gen = Generator(seed=1)
    made = {
        "receive": gen.receive_message_body(size_hint=1024),
        "status": gen.message_status_body(),
        "finish40": gen.finish_attendance_body(40),
    }
    folder = OUT / "bodies"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, body in made.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_bytes(body)
    return paths


# Sections of RESULTS.md that other benches write (bench/handler.py's, from this marker
# on): a run of this file rewrites its own report and keeps them.
KEPT_MARKER = "<!-- kept by bench/e2e.py: sections below are written by other benches -->"


def kept_sections(path: Path) -> str:
    text = path.read_text() if path.exists() else ""
    at = text.find(KEPT_MARKER)
    return "" if at < 0 else "\n" + text[at:]


def cpu_latency_arg(value: str) -> int | None:
    """``--cpu-latency``: microseconds to hold, or None for ``off``."""
    if value == "off":
        return None
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"microseconds or off, not {value!r}")
    return int(value)


def rounds_arg(value: str) -> int:
    """``--rounds``: a whole number of rounds, at least one."""
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"a number of rounds, 1 or more, not {value!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_openloop"]:
        return openloop_main(argv[1:])
    p = argparse.ArgumentParser(description="End-to-end benchmark of the ingress (make bench).")
    p.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    p.add_argument("--bodies", default="receive,status,finish40",
                   help="comma-separated: receive, status, finish40")  # fmt: skip
    p.add_argument("--targets", default="ingress,ceiling,handwritten",
                   help="comma-separated: ingress, ceiling, handwritten")  # fmt: skip
    p.add_argument("--workers", type=int, default=1,
                   help="also measure `serve --workers N` when the ingress has it")  # fmt: skip
    p.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    p.add_argument("--duration", type=float, help="override the max and open-loop durations (s)")
    p.add_argument("--profile", action="store_true",
                   help="py-spy the ingress under load (receive body) into bench/out/")  # fmt: skip
    p.add_argument("--keep-kafka", action="store_true", help="stop the broker but keep its data")
    p.add_argument("--cpu-latency", type=cpu_latency_arg, default=0, metavar="US|off",
                   help="hold /dev/cpu_dma_latency at US microseconds for the run (default 0: "
                        "idle CPUs poll, see bench/wakeup.py); off: the machine's own idle "
                        "states")  # fmt: skip
    p.add_argument("--rounds", type=rounds_arg, metavar="N",
                   help="measure every row N times, the targets' order reversed every other "
                        "round, and report the medians (default 3; 1 with --quick)")  # fmt: skip
    p.add_argument("--strict", action="store_true", help="exit 3 when a run had errors")
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3

    bodies = [b.strip() for b in args.bodies.split(",") if b.strip()]
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    for b in bodies:
        if b not in BODIES:
            p.error(f"unknown body {b!r}; known: {', '.join(BODIES)}")
    if (os.cpu_count() or 1) < 2:
        log("fewer than 2 CPUs: server and load generator will share a core")
    if shutil.which("taskset") is None:
        raise SystemExit("bench: taskset (util-linux) is needed")
    d = (Durations(warmup=1, max=3, open=3, profile=4, broker_warmup=3) if args.quick
         else Durations(warmup=3, max=10, open=10, profile=8, broker_warmup=60))  # fmt: skip
    if args.duration:
        d.max = d.open = args.duration

    OUT.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    lua = OUT / "post.lua"
    lua.write_text(LUA)
    body_files = write_bodies()
    targets, notes = make_targets(args.workers)
    for n in names:
        if n not in targets and n != "ingress-workers":
            p.error(f"unknown target {n!r}; known: {', '.join(targets)}")
    if "ingress-workers" in targets and "ingress-workers" not in names:
        names.insert(names.index("ingress") + 1 if "ingress" in names else 0, "ingress-workers")
    for port in {targets[n].port for n in names if n in targets}:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"bench: 127.0.0.1:{port} is already in use")

    command = shlex.join([os.path.relpath(sys.executable, ROOT), "bench/e2e.py", *argv])
    if os.environ.get("MAKELEVEL"):
        command = f"make bench  # {command}"
    meta: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": command,
        "mode": "quick" if args.quick else "full",
        "rounds": args.rounds,
        "durations": asdict(d),
        "connections": args.connections,
        "machine": machine(),
        "ingress_env": {
            k: v
            for k, v in targets["ingress"].env.items()
            if k.startswith("PLUG_PIPELINE_") and "TOKEN" not in k
        },
    }
    rows: list[Row] = []
    profile_summary = None

    # SIGTERM (e.g. from make being stopped) unwinds like Ctrl-C: servers, then the broker.
    def _term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    # The CPUs' wake-up is measured as the machine has it, then with the run's hold.
    meta["round_trip_ms"] = {"idle": wakeup.round_trip_ms()}
    try:
        with wakeup.cpu_latency(args.cpu_latency) as idle, Broker(keep=args.keep_kafka) as broker:
            meta["cpu_idle"] = idle.described
            if idle.held:
                meta["round_trip_ms"]["held"] = wakeup.round_trip_ms()
            kafka_targets = [n for n in names if n in targets and targets[n].topic_prefix]
            if kafka_targets:
                first = targets[kafka_targets[0]]
                warm_broker(first, bodies[0], body_files[bodies[0]], lua, wrk, d.broker_warmup,
                            args.connections)  # fmt: skip
            for round_no in range(1, args.rounds + 1):
                for name in round_order(names, round_no):
                    if name not in targets:
                        continue  # ingress-workers without `serve --workers`: reported below
                    for body in bodies:
                        prof = (args.profile and round_no == 1 and name == "ingress"
                                and body == bodies[0])  # fmt: skip
                        rows.append(measure_or_skip(targets[name], body, body_files[body], lua,
                                                    wrk, d, args.connections, prof, broker,
                                                    round_no))  # fmt: skip
                        if prof:
                            profile_summary = profile_of(body)
    except KeyboardInterrupt:
        log("interrupted: servers and broker stopped; no report written")
        return 130
    if args.workers > 1 and "ingress-workers" not in targets:
        rows.append(Row("ingress-workers", "", "-", 0,
                        skipped=f"`serve --workers {args.workers}` not available"))  # fmt: skip

    measured, rows = rows, median_rows(rows)
    report = render(meta, rows, measured, notes, profile_summary)
    (BENCH / "RESULTS.md").write_text(report + kept_sections(BENCH / "RESULTS.md"))
    dump = {
        "meta": meta,
        "rows": [asdict(r) for r in rows],
        "rounds": [asdict(r) for r in measured],
        "notes": notes,
        "targets": verdicts(rows),
        "profile": profile_summary,
    }
    (OUT / "e2e.json").write_text(json.dumps(dump, indent=2, default=str))
    print()
    print("\n".join(table(rows)))
    print()
    print("\n".join(ratios(rows)))
    print()
    for a, b, c in verdicts(rows):
        print(f"{c:4}  {a}: {b}")
    for r in rows:
        for f in r.flags:
            print(f"FLAG  {r.target}/{r.body}: {f}")
    for n in notes + [f"{r.target}/{r.body}: {n}" for r in rows for n in r.notes]:
        print(f"NOTE  {n}")
    print(f"\nwrote {BENCH / 'RESULTS.md'} and {OUT / 'e2e.json'}")
    return 3 if args.strict and any(r.flags for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
