"""The spool: records Kafka could not acknowledge in time, kept on local disk until it can.

Layout: a directory of append-only segment files (``00000000000000000001.seg``, ...) and a
``cursor`` file holding the committed read position (segment id, byte offset). Each record
is one frame (see ``segment``) whose payload is the msgpack of ``[appended_ms, Record]``.

Writes: ``append`` returns once its record is fsynced. Appends that arrive while a write is
in flight wait in a list bounded by ``max_bytes``, then go out together as one write and
one ``fdatasync`` in a worker thread (group commit), so the event loop never waits on disk.

Reads: ``drain`` publishes records strictly in append order and commits the cursor after
each published prefix. Delivery is at least once: a crash after a publish but before its
cursor commit publishes that record again after restart, as does a partial window failure
(below); consumers deduplicate on ``event_id``.

Order: a record is published only after every earlier record of its (topic, key) succeeded.
Up to ``window`` records are sent concurrently, but never two of one (topic, key): a window
ends before a key it already holds. So when record *k* fails, no later record of its key
can have overtaken it; later records of other keys that were acknowledged in the same
window are sent again after *k* (duplicates, named by their ``event_id``, never reordered).

Recovery: ``open`` scans every segment from the cursor. A torn tail (the last frame cut
short, or failing its crc with nothing after it) is truncated away and counted in
``torn_records``; a bad frame with good frames after it is skipped and counted in
``corrupt_records``. Neither stops the spool from opening.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from pipeline.errors import NotDurable
from pipeline.record import Record
from pipeline.spool import segment

SEGMENT_BYTES = 16 * 1024 * 1024
READ_BYTES = 1024 * 1024
CURSOR = "cursor"


class SpoolFull(NotDurable):
    """Appending the record would take the spool past ``max_bytes``."""

    reason = "spool_full"


class SpoolUnavailable(NotDurable):
    """The spool is closed, or its disk refused a write."""

    reason = "spool_unavailable"


class _Entry(msgspec.Struct, array_like=True, frozen=True):
    appended_ms: int
    record: Record


class _Head(msgspec.Struct, array_like=True, frozen=True):
    appended_ms: int


_ENCODER = msgspec.msgpack.Encoder()
_ENTRY = msgspec.msgpack.Decoder(_Entry)
# Reading only the timestamp skips decoding the record: recovery needs nothing else.
_HEAD = msgspec.msgpack.Decoder(_Head)


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


@dataclass(frozen=True, slots=True)
class _Item:
    segment_id: int
    end: int
    appended_ms: int
    record: Record


@dataclass(slots=True)
class _Chunk:
    items: list[_Item] = field(default_factory=list)
    corrupt: list[int] = field(default_factory=list)
    undecodable: int = 0
    next_offset: int = 0


@dataclass(slots=True)
class _Pending:
    data: bytes
    appended_ms: int
    done: asyncio.Future[None]


def _one_per_key(cache: deque[_Item], most: int) -> list[_Item]:
    """The longest prefix of ``cache`` (up to ``most``) holding each (topic, key) once."""
    batch: list[_Item] = []
    keys: set[tuple[str, bytes]] = set()
    for item in cache:
        key = (item.record.topic, item.record.key)
        if len(batch) == most or key in keys:
            break
        keys.add(key)
        batch.append(item)
    return batch


def _failed(outcome: object) -> bool:
    return isinstance(outcome, BaseException)


class Spool:
    """Use ``await Spool.open(...)``; the constructor does no I/O and is not the API."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        segment_bytes: int,
        read_bytes: int,
        clock: Callable[[], float],
    ) -> None:
        if max_bytes <= 0 or segment_bytes <= 0 or read_bytes < segment.HEADER.size:
            raise ValueError("max_bytes and segment_bytes must be positive, read_bytes >= 8")
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.read_bytes = read_bytes
        self._clock = clock
        self._cursor_path = directory / CURSOR
        # Durable size of every segment on disk, in id order; the last one is the tail.
        self._sizes: dict[int, int] = {}
        self._cursor = (0, 0)
        self._read = (0, 0)
        self._cache: deque[_Item] = deque()
        self._known_corrupt: set[tuple[int, int]] = set()
        self._depth = 0
        self._live = 0  # durable bytes not yet drained: what max_bytes bounds, with pending
        self._head_ms: int | None = None
        self._progress_at = 0.0  # clock() when the spool last drained or became non-empty
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._tail: segment.Tail | None = None
        self._tail_id = 0
        self._flusher: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._drain_lock = asyncio.Lock()
        self._nonempty = asyncio.Event()
        self._broken = False
        self.appended = 0
        self.drained = 0
        self.rejected_full = 0
        self.torn_records = 0
        self.corrupt_records = 0
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
        spool = cls(Path(directory), max_bytes, segment_bytes, read_bytes, clock)
        await asyncio.to_thread(spool._recover)
        if spool._depth:
            spool._nonempty.set()
            spool._progress_at = spool._clock()
        return spool

    def _recover(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        cursor_id, cursor_offset = segment.read_cursor(self._cursor_path) or (0, 0)
        ids = segment.segment_ids(self.directory)
        for stale in (i for i in ids if i < cursor_id):
            # Fully drained: the cursor moved past it before a crash let the unlink happen.
            (self.directory / segment.name(stale)).unlink(missing_ok=True)
        ids = [i for i in ids if i >= cursor_id]
        if not ids or ids[0] != cursor_id:
            cursor_offset = 0
        for seg_id in ids:
            path = self.directory / segment.name(seg_id)
            data = path.read_bytes()
            start = min(cursor_offset, len(data)) if seg_id == cursor_id else 0
            found = segment.scan(data[start:], complete=True)
            size = len(data)
            if found.torn:
                self.torn_records += 1
                size = start + found.stop
                segment.truncate(path, size)
            for bad in found.corrupt:
                self._known_corrupt.add((seg_id, start + bad))
            self.corrupt_records += len(found.corrupt)
            if self._head_ms is None and found.frames:
                first, end = found.frames[0]
                try:
                    head = _HEAD.decode(data[start + first + segment.HEADER.size : start + end])
                    self._head_ms = head.appended_ms
                except msgspec.MsgspecError:
                    self._head_ms = int(self._clock() * 1000)
            self._depth += len(found.frames)
            self._live += size - start
            self._sizes[seg_id] = size
        if ids:
            self._cursor = (ids[0], min(cursor_offset, self._sizes[ids[0]]))
            tail_id = ids[-1]
        else:
            tail_id = cursor_id + 1
            self._cursor = (tail_id, 0)
            self._sizes[tail_id] = 0
        self._read = self._cursor
        self._tail = segment.Tail(self.directory, tail_id, self._sizes[tail_id])
        self._tail_id = tail_id

    # -- visibility ------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Durable records not yet drained."""
        return self._depth

    @property
    def bytes(self) -> int:
        """Bytes of segment files on disk, drained parts of the oldest one included."""
        return sum(self._sizes.values())

    @property
    def oldest_age_s(self) -> float:
        if not self._depth or self._head_ms is None:
            return 0.0
        return max(0.0, self._clock() - self._head_ms / 1000)

    @property
    def broken(self) -> bool:
        """A write failed with the tail in an unknown state: appends refused until reopened."""
        return self._broken

    @property
    def stalled_s(self) -> float:
        """Seconds the spool has held records without draining one; 0 while empty."""
        if not self._depth:
            return 0.0
        return max(0.0, self._clock() - self._progress_at)

    @property
    def writable(self) -> bool:
        """True when an append may succeed: open, disk healthy, directory writable, not full."""
        return (
            self._closing is None
            and not self._broken
            and self._live + self._pending_bytes < self.max_bytes
            and os.access(self.directory, os.W_OK)
        )

    @property
    def fsyncs(self) -> int:
        """fsyncs made by appends (data and new segment names); cursor commits not included."""
        return self._tail.fsyncs if self._tail else 0

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
            segments=len(self._sizes),
            writable=self.writable,
        )

    async def wait_for_records(self) -> None:
        """Return once the spool holds a durable record (at once if it already does)."""
        await self._nonempty.wait()

    # -- append ----------------------------------------------------------------------------

    async def append(self, record: Record) -> None:
        """Return once ``record`` is fsynced; ``SpoolFull`` or ``SpoolUnavailable`` if not."""
        if self._closing is not None or self._broken:
            raise SpoolUnavailable("the spool is closed" if self._closing else "the spool failed")
        appended_ms = int(self._clock() * 1000)
        data = segment.frame(_ENCODER.encode(_Entry(appended_ms, record)))
        if self._live + self._pending_bytes + len(data) > self.max_bytes:
            self.rejected_full += 1
            held = self._live + self._pending_bytes
            raise SpoolFull(f"the spool holds {held} of its {self.max_bytes} bytes")
        done = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(data, appended_ms, done))
        self._pending_bytes += len(data)
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
        assert tail is not None
        first = self._pending[0]
        drained = self._cursor == (tail.id, tail.size)
        # Rolling a fully drained tail lets the drainer delete it: with the bound counting only
        # undrained bytes, a tail that never rolled would grow on disk without limit.
        roll = tail.size > 0 and (drained or tail.size + len(first.data) > self.segment_bytes)
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
                self._sizes[tail.id] = 0
                self._tail_id = tail.id
                rolled = True
            await asyncio.to_thread(tail.append, b"".join(p.data for p in batch))
        except Exception as exc:
            self._pending_bytes -= size
            failed = list(batch)
            if tail.broken or not rolled:
                # The tail's state is unknown; refuse everything until a reopen recovers it.
                self._broken = True
                failed += self._pending
                self._pending = []
                self._pending_bytes = 0
            for pending in failed:
                if not pending.done.done():
                    error = SpoolUnavailable(f"could not write to the spool: {exc}")
                    error.__cause__ = exc
                    pending.done.set_exception(error)
            return
        self._pending_bytes -= size
        self._sizes[tail.id] = tail.size
        self._live += size
        if not self._depth:
            self._head_ms = batch[0].appended_ms
            self._progress_at = self._clock()
        self._depth += taken
        self.appended += taken
        self._nonempty.set()
        for pending in batch:
            # An appender that was cancelled meanwhile no longer listens; its record stays.
            if not pending.done.done():
                pending.done.set_result(None)

    # -- drain -----------------------------------------------------------------------------

    async def drain(
        self,
        publish: Callable[[Record], Awaitable[None]],
        *,
        window: int = 64,
        limit: int | None = None,
    ) -> int:
        """Publish spooled records oldest first; return how many were published and committed.

        Stops when the spool is empty, after ``limit`` records, or at the first ``publish``
        that raises: that record and those after it stay for the next call, and the error is
        kept in ``last_drain_error``. Up to ``window`` publishes run concurrently.
        """
        if window < 1:
            raise ValueError("window must be at least 1")
        async with self._drain_lock:
            self.last_drain_error = None
            done = 0
            while limit is None or done < limit:
                if not self._cache:
                    if not await self._fill():
                        break
                    continue
                most = window if limit is None else min(window, limit - done)
                batch = _one_per_key(self._cache, most)
                count = len(batch)
                outcomes = await asyncio.gather(
                    *(publish(item.record) for item in batch), return_exceptions=True
                )
                ok = next((i for i, o in enumerate(outcomes) if _failed(o)), count)
                if ok and not await self._commit(batch[ok - 1].segment_id, batch[ok - 1].end):
                    break
                for _ in range(ok):
                    self._cache.popleft()
                self._depth -= ok
                self.drained += ok
                if ok:
                    self._progress_at = self._clock()
                done += ok
                if self._cache:
                    self._head_ms = self._cache[0].appended_ms
                if ok < count:
                    failure = outcomes[ok]
                    assert isinstance(failure, BaseException)
                    self.last_drain_error = failure
                    break
            if not self._cache and self._read == (self._tail_id, self._sizes[self._tail_id]):
                # Caught up: exact even if a frame rotted after it was counted in.
                self._depth = 0
                self._head_ms = None
                self._nonempty.clear()
            return done

    async def _commit(self, segment_id: int, offset: int) -> bool:
        assert segment_id == self._cursor[0]
        try:
            await asyncio.to_thread(segment.write_cursor, self._cursor_path, segment_id, offset)
        except OSError as exc:
            self.last_drain_error = exc
            return False
        self._live -= offset - self._cursor[1]
        self._cursor = (segment_id, offset)
        return True

    async def _fill(self) -> bool:
        """Read the next records into the cache; False when nothing durable is left to read."""
        segment_id, offset = self._read
        end = self._sizes[segment_id]
        if offset >= end:
            if segment_id == self._tail_id:
                return False
            return await self._next_segment(segment_id)
        chunk = await asyncio.to_thread(self._read_chunk, segment_id, offset, end)
        for bad in chunk.corrupt:
            if (segment_id, bad) not in self._known_corrupt:
                self._known_corrupt.add((segment_id, bad))
                self.corrupt_records += 1
        self._depth = max(0, self._depth - chunk.undecodable)
        self._read = (segment_id, chunk.next_offset)
        self._cache.extend(chunk.items)
        if self._cache:
            self._head_ms = self._cache[0].appended_ms
        elif not await self._commit(segment_id, chunk.next_offset):
            # Only corrupt frames were read; moving the cursor past them keeps a restart from
            # counting them again. If that fails, stop rather than loop.
            return False
        return True

    async def _next_segment(self, segment_id: int) -> bool:
        later = [i for i in self._sizes if i > segment_id]
        following = min(later)
        try:
            await asyncio.to_thread(segment.write_cursor, self._cursor_path, following, 0)
        except OSError as exc:
            self.last_drain_error = exc
            return False
        self._live -= self._sizes.pop(segment_id) - self._cursor[1]
        self._cursor = self._read = (following, 0)
        path = self.directory / segment.name(segment_id)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as exc:
            # The cursor has moved on; the next open deletes what is left behind.
            self.last_drain_error = exc
        return True

    def _read_chunk(self, segment_id: int, start: int, end: int) -> _Chunk:
        path = self.directory / segment.name(segment_id)
        limit = self.read_bytes
        while True:
            size = min(end - start, limit)
            buf = segment.read(path, start, size)
            complete = len(buf) < size or start + size == end
            found = segment.scan(buf, complete)
            if found.stop or found.torn or complete:
                break
            # Not even one whole frame fits: read more, until the durable end if need be.
            limit *= 2
        chunk = _Chunk(corrupt=[start + bad for bad in found.corrupt])
        view = memoryview(buf)
        for first, last in found.frames:
            try:
                entry = _ENTRY.decode(view[first + segment.HEADER.size : last])
            except msgspec.MsgspecError:
                chunk.corrupt.append(start + first)
                chunk.undecodable += 1
                continue
            chunk.items.append(_Item(segment_id, start + last, entry.appended_ms, entry.record))
        if found.torn:
            # Durable bytes cannot be torn; these rotted after they were written.
            chunk.corrupt.append(start + found.stop)
            chunk.next_offset = start + len(buf)
        else:
            chunk.next_offset = start + found.stop
        return chunk

    # -- close -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish pending appends and close the tail; safe to call more than once.

        Stop the drain loop first: ``close`` does not wait for a ``drain`` in progress.
        """
        if self._closing is None:
            self._closing = asyncio.create_task(self._shutdown())
        # Shielded so a cancelled caller does not abandon appends half way through closing.
        await asyncio.shield(self._closing)

    async def _shutdown(self) -> None:
        if self._flusher is not None:
            await self._flusher
        if self._tail is not None:
            await asyncio.to_thread(self._tail.close)
