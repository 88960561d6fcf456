"""Appending to the spool: group commit into the tail segment, never blocking the loop.

``append`` returns once its record is fsynced. Appends that arrive while a write is in
flight wait in a list (bounded, with the ledger's live bytes, by ``max_bytes``), then go
out together as one write and one ``fdatasync`` in a worker thread, so the event loop
never waits on disk and one fsync serves many webhooks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.record import Record
from pipeline.spool import segment
from pipeline.spool.entry import framed
from pipeline.spool.errors import SpoolFull, SpoolUnavailable
from pipeline.spool.ledger import Ledger


@dataclass(slots=True)
class _Pending:
    data: bytes
    appended_ms: int
    done: asyncio.Future[None]


class Writer:
    def __init__(
        self,
        directory: Path,
        ledger: Ledger,
        max_bytes: int,
        segment_bytes: int,
        clock: Callable[[], float],
        on_durable: Callable[[], None],
    ) -> None:
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._ledger = ledger
        self._clock = clock
        self._on_durable = on_durable
        self._tail = segment.Tail(directory, ledger.tail_id, ledger.sizes[ledger.tail_id])
        self._pending: list[_Pending] = []
        self.pending_bytes = 0
        self._flusher: asyncio.Task[None] | None = None
        self.closing: asyncio.Task[None] | None = None
        self.broken = False
        self.appended = 0
        self.rejected_full = 0

    @property
    def fsyncs(self) -> int:
        """fsyncs made by appends (data and new segment names); cursor commits not included."""
        return self._tail.fsyncs

    @property
    def held(self) -> int:
        """Undrained durable bytes plus bytes waiting to be written: what the bound counts."""
        return self._ledger.live + self.pending_bytes

    async def append(self, record: Record) -> None:
        """Return once ``record`` is fsynced; ``SpoolFull`` or ``SpoolUnavailable`` if not."""
        if self.closing is not None or self.broken:
            raise SpoolUnavailable("the spool is closed" if self.closing else "the spool failed")
        appended_ms = int(self._clock() * 1000)
        data = framed(appended_ms, record)
        if self.held + len(data) > self.max_bytes:
            self.rejected_full += 1
            raise SpoolFull(f"the spool holds {self.held} of its {self.max_bytes} bytes")
        done = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(data, appended_ms, done))
        self.pending_bytes += len(data)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._pending:
                await self._write_batch()
        finally:
            self._flusher = None

    async def _write_batch(self) -> None:
        tail = self._tail
        first = self._pending[0]
        # Rolling a fully drained tail lets the drain delete it: with the bound counting only
        # undrained bytes, a tail that never rolled would grow on disk without limit.
        roll = tail.size > 0 and (
            self._ledger.tail_drained(tail.id, tail.size)
            or tail.size + len(first.data) > self.segment_bytes
        )
        room = self.segment_bytes - (0 if roll else tail.size)
        taken, size = 0, 0
        for pending in self._pending:
            if taken and size + len(pending.data) > room:
                break
            taken += 1
            size += len(pending.data)
        batch = self._pending[:taken]
        del self._pending[:taken]
        rolled = not roll
        try:
            if roll:
                await asyncio.to_thread(tail.roll, tail.id + 1)
                self._ledger.rolled(tail.id)
                rolled = True
            await asyncio.to_thread(tail.append, b"".join(p.data for p in batch))
        except Exception as exc:
            self._fail(batch, size, exc, tail_unknown=tail.broken or not rolled)
            return
        self.pending_bytes -= size
        self._ledger.appended(tail.id, tail.size, taken, size, batch[0].appended_ms)
        self.appended += taken
        self._on_durable()
        for pending in batch:
            # An appender that was cancelled meanwhile no longer listens; its record stays.
            if not pending.done.done():
                pending.done.set_result(None)

    def _fail(self, batch: list[_Pending], size: int, exc: Exception, tail_unknown: bool) -> None:
        self.pending_bytes -= size
        failed = list(batch)
        if tail_unknown:
            # The tail's state is unknown; refuse everything until a reopen recovers it.
            self.broken = True
            failed += self._pending
            self._pending = []
            self.pending_bytes = 0
        for pending in failed:
            if not pending.done.done():
                error = SpoolUnavailable(f"could not write to the spool: {exc}")
                error.__cause__ = exc
                pending.done.set_exception(error)

    async def close(self) -> None:
        """Finish pending appends and close the tail; safe to call more than once."""
        if self.closing is None:
            self.closing = asyncio.create_task(self._shutdown())
        # Shielded so a cancelled caller does not abandon appends half way through closing.
        await asyncio.shield(self.closing)

    async def _shutdown(self) -> None:
        if self._flusher is not None:
            await self._flusher
        await asyncio.to_thread(self._tail.close)
