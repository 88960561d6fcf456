"""The spool: records Kafka could not acknowledge in time, kept on local disk until it can.

Layout: a directory of append-only segment files (``00000000000000000001.seg``, ...) and a
``cursor`` file holding the committed read position (segment id, byte offset). Each record
is one frame (``segment``) whose payload is an ``entry``.

The parts, the way a disk buffer is usually split:

- ``recovery``: opening after a stop or a crash (torn tails cut, corrupt frames skipped);
- ``ledger``: the books — segment sizes, the cursor, depth, bytes, age;
- ``writer``: group-committed appends (one fsync for every append waiting);
- ``reader``: reading records back in order, a chunk at a time.

``Spool`` puts them together: ``append`` and ``drain``, the figures, ``close``.

Drain: records are published strictly in append order, up to ``window`` per call of the
publish function (one producer call: Kafka keeps the order of records of one partition
sent in order by one producer), and the cursor is committed after each call that
succeeded. A call that fails commits nothing: its records are all published again by the
next drain, after nothing else, so a record that reached Kafka in a failed call appears
again later (a duplicate its ``event_id`` names) but no record is ever overtaken by a later
one. Delivery is at least once: a crash between a publish and its commit publishes that
window again after restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import msgspec

from pipeline.record import Record
from pipeline.spool import segment
from pipeline.spool.errors import SpoolFull, SpoolUnavailable
from pipeline.spool.ledger import Ledger
from pipeline.spool.reader import Reader
from pipeline.spool.recovery import recover
from pipeline.spool.writer import Writer

__all__ = ["Spool", "SpoolFull", "SpoolStats", "SpoolUnavailable"]

log = logging.getLogger(__name__)

SEGMENT_BYTES = 16 * 1024 * 1024
READ_BYTES = 1024 * 1024

Publish = Callable[[Sequence[Record]], Awaitable[None]]


class SpoolStats(msgspec.Struct, frozen=True):
    depth: int
    bytes: int
    oldest_age_s: float
    appended: int
    drained: int
    rejected_full: int
    torn_records: int
    corrupt_records: int
    fsyncs: int
    segments: int
    writable: bool


class Spool:
    """Use ``await Spool.open(...)``; the constructor does no I/O and is not the API."""

    def __init__(
        self,
        directory: Path,
        ledger: Ledger,
        writer: Writer,
        reader: Reader,
        torn: int,
        corrupt: int,
    ) -> None:
        self.directory = directory
        self._ledger = ledger
        self._writer = writer
        self._reader = reader
        self._drain_lock = asyncio.Lock()
        self._nonempty = asyncio.Event()
        if ledger.depth:
            self._nonempty.set()
        self.drained = 0
        self.torn_records = torn
        self._corrupt_at_open = corrupt
        self.last_drain_error: BaseException | None = None

    @classmethod
    async def open(
        cls,
        directory: str | os.PathLike[str],
        max_bytes: int,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        read_bytes: int = READ_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> Spool:
        """Open (creating if needed) the spool in ``directory`` and recover what it holds."""
        if max_bytes <= 0 or segment_bytes <= 0 or read_bytes < segment.HEADER.size:
            raise ValueError("max_bytes and segment_bytes must be positive, read_bytes >= 8")
        path = Path(directory)
        recovered = await asyncio.to_thread(recover, path, clock)
        ledger = Ledger(path, recovered, clock)
        spool: Spool | None = None

        def on_durable() -> None:
            assert spool is not None
            spool._nonempty.set()

        writer = Writer(path, ledger, max_bytes, segment_bytes, clock, on_durable)
        reader = Reader(path, ledger, read_bytes, recovered.known_corrupt)
        spool = cls(path, ledger, writer, reader, recovered.torn, recovered.corrupt)
        return spool

    # -- visibility ------------------------------------------------------------------------

    @property
    def max_bytes(self) -> int:
        return self._writer.max_bytes

    @property
    def depth(self) -> int:
        """Durable records not yet drained."""
        return self._ledger.depth

    @property
    def bytes(self) -> int:
        """Bytes of segment files on disk, drained parts of the oldest one included."""
        return self._ledger.bytes

    @property
    def oldest_age_s(self) -> float:
        return self._ledger.oldest_age_s

    @property
    def stalled_s(self) -> float:
        """Seconds the spool has held records without draining one; 0 while empty."""
        return self._ledger.stalled_s

    @property
    def broken(self) -> bool:
        """A write failed with the tail in an unknown state: appends refused until reopened."""
        return self._writer.broken

    @property
    def writable(self) -> bool:
        """True when an append may succeed: open, disk healthy, directory writable, not full."""
        writer = self._writer
        return (
            writer.closing is None
            and not writer.broken
            and writer.held < writer.max_bytes
            and os.access(self.directory, os.W_OK)
        )

    @property
    def appended(self) -> int:
        return self._writer.appended

    @property
    def rejected_full(self) -> int:
        return self._writer.rejected_full

    @property
    def corrupt_records(self) -> int:
        return self._corrupt_at_open + self._reader.corrupt_records

    @property
    def fsyncs(self) -> int:
        """fsyncs made by appends (data and new segment names); cursor commits not included."""
        return self._writer.fsyncs

    def stats(self) -> SpoolStats:
        return SpoolStats(
            depth=self.depth,
            bytes=self.bytes,
            oldest_age_s=self.oldest_age_s,
            appended=self.appended,
            drained=self.drained,
            rejected_full=self.rejected_full,
            torn_records=self.torn_records,
            corrupt_records=self.corrupt_records,
            fsyncs=self.fsyncs,
            segments=len(self._ledger.sizes),
            writable=self.writable,
        )

    async def wait_for_records(self) -> None:
        """Return once the spool holds a durable record (at once if it already does)."""
        await self._nonempty.wait()

    # -- append and drain ------------------------------------------------------------------

    async def append(self, record: Record) -> None:
        """Return once ``record`` is fsynced; ``SpoolFull`` or ``SpoolUnavailable`` if not."""
        await self._writer.append(record)

    async def drain(self, publish: Publish, *, window: int = 64, limit: int | None = None) -> int:
        """Publish spooled records oldest first; return how many were published and committed.

        Stops when the spool is empty, after ``limit`` records, or at the first ``publish``
        call that raises: its records and those after them stay for the next call, and the
        error is kept in ``last_drain_error``. ``publish`` gets up to ``window`` records.
        """
        if window < 1:
            raise ValueError("window must be at least 1")
        async with self._drain_lock:
            self.last_drain_error = None
            done = 0
            reader, ledger = self._reader, self._ledger
            while limit is None or done < limit:
                try:
                    if not reader.cache:
                        if not await reader.fill():
                            break
                        if reader.last_error is not None:
                            log.warning(
                                "a drained spool segment was not deleted: %s", reader.last_error
                            )
                            reader.last_error = None
                        continue
                    batch = reader.window(window if limit is None else min(window, limit - done))
                    await publish([item.record for item in batch])
                    await ledger.commit(batch[-1].segment_id, batch[-1].end)
                except Exception as exc:  # a publish, or a cursor the disk refused
                    self.last_drain_error = exc
                    break
                ledger.drained(len(batch), reader.consumed(len(batch)))
                self.drained += len(batch)
                done += len(batch)
            if reader.at_end:
                ledger.empty()
                self._nonempty.clear()
            return done

    # -- close -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish pending appends and close the tail; safe to call more than once.

        Stop the drain loop first: ``close`` does not wait for a ``drain`` in progress.
        """
        await self._writer.close()
