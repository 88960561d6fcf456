"""The open-loop client: request *i* due at ``start + i/rate``, latency from the due time.

Run in a process of its own on the load generator's CPU (``python -m bench.e2e
_openloop ...``, started by ``measure.run_openloop``); it prints one JSON line of
figures. Latency counts from each request's scheduled time, so queueing in the client
counts too (no coordinated omission), and the client reports whether it kept up.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import resource
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.common import percentile
from bench.e2e.settings import CLIENT_CPU


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
        res.p50_ms, res.p90_ms, res.p99_ms = (
            percentile(lat, 50),
            percentile(lat, 90),
            percentile(lat, 99),
        )
        res.p999_ms, res.max_ms = percentile(lat, 99.9), (lat[-1] if lat else math.nan)
        res.service_p50_ms, res.service_p99_ms = percentile(svc, 50), percentile(svc, 99)
        res.lag_p50_ms, res.lag_p99_ms = percentile(lags, 50), percentile(lags, 99)
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


def main(argv: list[str]) -> int:
    """The client's own command line: one run at one rate, its figures as JSON on stdout."""
    p = argparse.ArgumentParser(prog="python -m bench.e2e _openloop")
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
