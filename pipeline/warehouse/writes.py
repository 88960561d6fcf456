"""The loader's write queue: closed batches written in order, one at a time, off the loop.

Each batch expects the offsets the one before it leaves (or the warehouse's, for the
first), so the next write can start the moment the last one commits, while the event
loop goes on fetching and decoding. A write that committed leaves the queue and is
handed to ``committed`` (then, and only then, its offsets count as stored); a write that
failed stays at the head, and nothing after it is written, until the owner retries it
or clears the queue. What to do about a failure (retry, drop, give up) and when to stop
filling the queue are the owner's: ``settle`` only waits and reports.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass

from pipeline.warehouse.batch import TP, Batch

# Closed batches held for the writer, the one being written included: with two, the next
# is ready when a write commits, so the writer never waits for the decoding of a batch.
# A third full batch waits (its partitions paused): memory stays a few batches.
QUEUED = 2

Write = Callable[[Batch, dict[TP, int | None]], float]
"""Rows and offsets of a batch in one transaction, given the offsets it expects; blocking;
returns when it committed (``time.time()``)."""


@dataclass
class _Queued:
    """A closed batch, the offsets it expects, and its write once started."""

    batch: Batch
    expected: dict[TP, int | None]
    future: asyncio.Future[float] | None = None

    def committed(self) -> bool:
        f = self.future
        return f is not None and f.done() and not f.cancelled() and f.exception() is None

    def failed(self) -> bool:
        f = self.future
        return f is not None and f.done() and not self.committed()


class Writes:
    """Batches queued for ``write``, which runs on ``executor`` (one thread: the target's
    calls are never concurrent); ``committed(batch, committed_at)`` is called on the event
    loop for each batch that committed, in queue order."""

    def __init__(
        self,
        write: Write,
        executor: Executor,
        committed: Callable[[Batch, float], None],
    ) -> None:
        self._write = write
        self._executor = executor
        self._committed = committed
        self._queue: deque[_Queued] = deque()  # commit order; the head in flight

    def __len__(self) -> int:
        """Batches queued, the one being written included."""
        return len(self._queue)

    @property
    def records(self) -> int:
        """Records held in the queue."""
        return sum(q.batch.records for q in self._queue)

    def failed(self) -> bool:
        """Whether the head's write failed (it waits for ``retry`` or ``clear``)."""
        return bool(self._queue) and self._queue[0].failed()

    def expected(self, tp: TP, stored: Mapping[TP, int | None]) -> int | None:
        """The partition's offset in the warehouse once every queued batch is written;
        ``stored`` is what the warehouse holds now (None: no row)."""
        for queued in reversed(self._queue):
            if tp in queued.batch.offsets:
                return queued.batch.offsets[tp]
        return stored.get(tp)

    def add(self, batch: Batch, stored: Mapping[TP, int | None]) -> None:
        """Queue a closed batch, expecting what the batches before it leave; it is written
        at once if the writer is idle. Must be called on the event loop."""
        expected = {tp: self.expected(tp, stored) for tp in batch.offsets}
        self._queue.append(_Queued(batch, expected))
        self._kick()

    def retry(self) -> None:
        """Write the failed head again, as it was."""
        if self.failed():
            self._queue[0].future = None
            self._kick()

    def clear(self) -> None:
        """Drop every queued batch. A write in flight still runs to its end, but is not
        reported as committed: the owner reads the warehouse's offsets again instead."""
        self._queue.clear()

    async def settle(self, keep: int, waiting: Callable[[], None] = lambda: None) -> None:
        """Wait until at most ``keep`` batches are queued and the head's write has not
        failed; ``waiting`` is called before each wait (to pause the source). A failed
        write raises its error, the batch staying at the head."""
        while self._queue:
            head = self._queue[0]
            future = head.future
            assert future is not None  # the head is always started (_kick)
            if not future.done():
                if len(self._queue) <= keep:
                    return
                waiting()
                await asyncio.wait([future])
                continue
            if head.committed():
                self._finish(head)  # normally done by its callback already
                continue
            exc = future.exception()
            assert exc is not None
            raise exc

    def _kick(self) -> None:
        """Start writing the head unless a write is in flight."""
        if not self._queue or self._queue[0].future is not None:
            return
        head = self._queue[0]
        head.future = asyncio.get_running_loop().run_in_executor(
            self._executor, self._write, head.batch, head.expected
        )
        head.future.add_done_callback(lambda _: self._finish(head))

    def _finish(self, queued: _Queued) -> None:
        """A write that committed leaves the queue and the next starts at once; a failed
        one stays at the head. A write the queue no longer holds (cleared) is ignored."""
        if not self._queue or self._queue[0] is not queued or not queued.committed():
            return
        self._queue.popleft()
        assert queued.future is not None
        self._committed(queued.batch, queued.future.result())
        self._kick()
