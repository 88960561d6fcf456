"""The spool's books: what is durable, what is drained, and the cursor that divides them.

The ledger holds the durable size of every segment on disk, the committed cursor (segment
id, byte offset: everything before it has reached Kafka), and what lies between the two:
how many records (``depth``), how many bytes (``live``, what ``max_bytes`` bounds) and the
oldest one's age. The writer reports appends, the drain reports commits; only the ledger
writes the cursor file, atomically, so a crash leaves the old cursor or the new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from pipeline.spool import segment
from pipeline.spool.recovery import CURSOR, Recovered


class Ledger:
    def __init__(self, directory: Path, recovered: Recovered, clock: Callable[[], float]) -> None:
        self.directory = directory
        self._clock = clock
        self._cursor_path = directory / CURSOR
        self.sizes = recovered.sizes
        self.cursor = recovered.cursor
        self.tail_id = recovered.tail_id
        self.depth = recovered.depth
        self.live = recovered.live
        self.head_ms = recovered.head_ms
        # clock() when the spool last drained a record or went from empty to holding one
        self.progress_at = clock() if recovered.depth else 0.0

    @property
    def bytes(self) -> int:
        """Bytes of segment files on disk, drained parts of the oldest one included."""
        return sum(self.sizes.values())

    @property
    def oldest_age_s(self) -> float:
        if not self.depth or self.head_ms is None:
            return 0.0
        return max(0.0, self._clock() - self.head_ms / 1000)

    @property
    def stalled_s(self) -> float:
        if not self.depth:
            return 0.0
        return max(0.0, self._clock() - self.progress_at)

    def tail_drained(self, tail_id: int, tail_size: int) -> bool:
        return self.cursor == (tail_id, tail_size)

    # -- the writer's side -----------------------------------------------------------------

    def rolled(self, new_id: int) -> None:
        self.sizes[new_id] = 0
        self.tail_id = new_id

    def appended(self, segment_id: int, size: int, count: int, nbytes: int, first_ms: int) -> None:
        """``count`` records of ``nbytes`` are durable; the segment is now ``size`` long."""
        self.sizes[segment_id] = size
        self.live += nbytes
        if not self.depth:
            self.head_ms = first_ms
            self.progress_at = self._clock()
        self.depth += count

    # -- the drain's side ------------------------------------------------------------------

    async def commit(self, segment_id: int, offset: int) -> None:
        """Move the cursor to ``offset`` within its segment; OSError if it could not."""
        assert segment_id == self.cursor[0]
        await asyncio.to_thread(segment.write_cursor, self._cursor_path, segment_id, offset)
        self.live -= offset - self.cursor[1]
        self.cursor = (segment_id, offset)

    def drained(self, count: int, next_head_ms: int | None) -> None:
        self.depth -= count
        if count:
            self.progress_at = self._clock()
        if next_head_ms is not None:
            self.head_ms = next_head_ms

    def lost(self, count: int) -> None:
        """Frames counted at open that turned out unreadable when drained."""
        self.depth = max(0, self.depth - count)

    def empty(self) -> None:
        """Caught up with the tail: exact even if a frame rotted after it was counted in."""
        self.depth = 0
        self.head_ms = None

    async def next_segment(self, segment_id: int) -> tuple[int, OSError | None]:
        """Move the cursor past a fully drained segment and delete it.

        Returns the next segment's id, and the error of the delete if it failed (the
        next open deletes what is left behind). OSError if the cursor could not move.
        """
        following = min(i for i in self.sizes if i > segment_id)
        await asyncio.to_thread(segment.write_cursor, self._cursor_path, following, 0)
        self.live -= self.sizes.pop(segment_id) - self.cursor[1]
        self.cursor = (following, 0)
        path = self.directory / segment.name(segment_id)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as exc:
            return following, exc
        return following, None
