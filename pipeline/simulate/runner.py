"""The load client: POST generated webhooks to an ingress, open- or closed-loop.

Open loop (``rate``): request *i* is due at ``start + i / rate`` whatever the
server does, and its latency is measured from that due time, so a slow server
shows up as latency instead of quietly lowering the rate. At most
``max_outstanding`` requests are in flight; a due request beyond that is counted
as dropped by the client rather than queued. Closed loop (``concurrency``): N
workers each send the next request as soon as their previous one is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import sys
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, TextIO

import aiohttp
import orjson

from pipeline.simulate.generator import Item
from pipeline.webhooks import Webhook


@dataclass(frozen=True)
class LoadSpec:
    target: str
    token: str | None = None
    token_in: Literal["query", "header"] = "query"
    rate: float | None = None
    concurrency: int | None = None
    duration_s: float | None = None
    count: int | None = None
    max_outstanding: int = 1024
    timeout_s: float = 30.0
    progress_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if (self.rate is None) == (self.concurrency is None):
            raise ValueError("give exactly one of rate (open loop) or concurrency (closed loop)")
        if self.duration_s is None and self.count is None:
            raise ValueError("give a duration, a count, or both")


@dataclass
class Stats:
    sent: int = 0
    dropped: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    no_answer: Counter[str] = field(default_factory=Counter)  # exception name -> count
    missing_event_id: int = 0
    elapsed_s: float = 0.0
    # A flat array of doubles: hours of traffic fit in a few tens of MB.
    latencies_ms: array[float] = field(default_factory=lambda: array("d"))

    @property
    def answered(self) -> int:
        return sum(self.by_status.values())

    @property
    def connection_errors(self) -> int:
        return sum(self.no_answer.values())

    @property
    def outstanding(self) -> int:
        return self.sent - self.answered - self.connection_errors

    def non_2xx(self) -> int:
        return sum(n for code, n in self.by_status.items() if not 200 <= code < 300)

    def percentile(self, p: float, start: int = 0) -> float:
        """Nearest-rank percentile of the latencies recorded from index ``start`` on."""
        values = sorted(self.latencies_ms[start:])
        if not values:
            return math.nan
        return values[max(0, math.ceil(p / 100 * len(values)) - 1)]

    def summary(self) -> str:
        elapsed = max(self.elapsed_s, 1e-9)
        codes = " ".join(f"{code}={n}" for code, n in sorted(self.by_status.items())) or "none"
        errors = " ".join(f"{name}={n}" for name, n in sorted(self.no_answer.items()))
        lat = " ".join(
            f"{name} {self.percentile(p):.1f}"
            for name, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
        )
        return "\n".join(
            [
                f"sent {self.sent} in {self.elapsed_s:.1f} s ({self.sent / elapsed:.1f}/s), "
                f"answered {self.answered} ({self.answered / elapsed:.1f}/s)",
                f"answers by status: {codes}",
                f"connection errors: {self.connection_errors}" + (f" ({errors})" if errors else ""),
                f"dropped by client: {self.dropped}",
                f"200 without event_id: {self.missing_event_id}",
                f"latency ms: {lat}",
            ]
        )


def exit_code(stats: Stats, tolerate_errors: bool = False) -> int:
    """1 when any answer was not 2xx, or a request got no answer, unless tolerated."""
    if tolerate_errors:
        return 0
    failed = stats.non_2xx() or stats.connection_errors or stats.missing_event_id
    return 1 if failed else 0


def _event_id(raw: bytes) -> str | None:
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    event_id = answer.get("event_id") if isinstance(answer, dict) else None
    return event_id if isinstance(event_id, str) and event_id else None


class Runner:
    def __init__(
        self,
        spec: LoadSpec,
        items: Iterator[Item],
        *,
        acked: TextIO | None = None,
        progress: TextIO | None = None,
    ) -> None:
        self.spec = spec
        self.stats = Stats()
        self._items = items
        self._acked = acked
        self._progress = progress
        self._base = spec.target.rstrip("/")
        self._params: dict[str, str] = {}
        self._headers = {"Content-Type": "application/json"}
        if spec.token and spec.token_in == "query":
            self._params["token"] = spec.token
        elif spec.token:
            self._headers["Authorization"] = f"Bearer {spec.token}"
        self._stop = asyncio.Event()
        # Set once no new request will be started (open loop); in-flight ones may remain.
        self.schedule_over = asyncio.Event()
        self._start = 0.0

    def stop(self) -> None:
        """Stop scheduling new requests; those in flight still finish."""
        self._stop.set()

    async def run(self) -> Stats:
        loop = asyncio.get_running_loop()
        limit = self.spec.concurrency or self.spec.max_outstanding
        timeout = aiohttp.ClientTimeout(total=self.spec.timeout_s)
        connector = aiohttp.TCPConnector(limit=limit)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self._start = loop.time()
            reporter = asyncio.create_task(self._report())
            try:
                if self.spec.rate is not None:
                    await self._open_loop(session, self.spec.rate)
                else:
                    await self._closed_loop(session, limit)
            finally:
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
            self.stats.elapsed_s = loop.time() - self._start
        if self._acked is not None:
            self._acked.flush()
        return self.stats

    def _finished(self, offset_s: float) -> bool:
        spec = self.spec
        if self._stop.is_set() or (spec.count is not None and self.stats.sent >= spec.count):
            return True
        return spec.duration_s is not None and offset_s >= spec.duration_s

    def _next_item(self) -> Item | None:
        try:
            return next(self._items)
        except StopIteration:
            return None

    async def _open_loop(self, session: aiohttp.ClientSession, rate: float) -> None:
        loop = asyncio.get_running_loop()
        in_flight: set[asyncio.Task[None]] = set()
        slot = 0
        while True:
            offset = slot / rate
            due = self._start + offset
            slot += 1
            if self._finished(offset):
                break
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(in_flight) >= self.spec.max_outstanding:
                self.stats.dropped += 1
                continue
            item = self._next_item()
            if item is None:
                break
            # Counted here, not in the task, so that ``count`` sees it before the task runs.
            self.stats.sent += 1
            task = asyncio.create_task(self._send(session, *item, due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        self.schedule_over.set()
        if in_flight:
            await asyncio.gather(*in_flight)

    async def _closed_loop(self, session: aiohttp.ClientSession, workers: int) -> None:
        loop = asyncio.get_running_loop()

        async def worker() -> None:
            while not self._finished(loop.time() - self._start):
                item = self._next_item()
                if item is None:
                    return
                self.stats.sent += 1
                await self._send(session, *item, loop.time())

        await asyncio.gather(*(worker() for _ in range(workers)))
        self.schedule_over.set()

    async def _send(
        self, session: aiohttp.ClientSession, webhook: Webhook, body: bytes, due: float
    ) -> None:
        stats = self.stats
        url = f"{self._base}/webhooks/{webhook.value}"
        try:
            async with session.post(
                url, data=body, params=self._params, headers=self._headers
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            stats.no_answer[type(exc).__name__] += 1
            return
        stats.latencies_ms.append((asyncio.get_running_loop().time() - due) * 1000)
        stats.by_status[status] += 1
        if status != 200:
            return
        event_id = _event_id(raw)
        if event_id is None:
            stats.missing_event_id += 1
        elif self._acked is not None:
            self._acked.write(f"{event_id} {webhook.value}\n")

    async def _report(self) -> None:
        if self._progress is None:
            return
        loop = asyncio.get_running_loop()
        last_sent, last_latency = 0, 0
        while True:
            await asyncio.sleep(self.spec.progress_interval_s)
            stats = self.stats
            window = stats.percentile(99, last_latency)
            rate = (stats.sent - last_sent) / self.spec.progress_interval_s
            last_sent, last_latency = stats.sent, len(stats.latencies_ms)
            print(
                f"[{loop.time() - self._start:6.1f}s] sent {stats.sent} ({rate:.0f}/s) "
                f"answered {stats.answered} non-2xx {stats.non_2xx()} "
                f"conn-err {stats.connection_errors} dropped {stats.dropped} "
                f"outstanding {stats.outstanding} p99 {window:.1f} ms",
                file=self._progress,
                flush=True,
            )


async def execute(
    spec: LoadSpec,
    items: Iterator[Item],
    *,
    acked: TextIO | None = None,
    tolerate_errors: bool = False,
    out: TextIO | None = None,
    progress: TextIO | None = None,
    handle_sigint: bool = False,
) -> int:
    """Run the load, print the summary, and return the process exit code."""
    runner = Runner(spec, items, acked=acked, progress=progress)
    loop = asyncio.get_running_loop()
    if handle_sigint:
        # Ctrl-C ends the schedule but still drains, reports and writes the acked file.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, runner.stop)
    try:
        stats = await runner.run()
    finally:
        if handle_sigint:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
    print(stats.summary(), file=out or sys.stdout)
    return exit_code(stats, tolerate_errors)
