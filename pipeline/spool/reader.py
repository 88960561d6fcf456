"""Reading the spool back, oldest first, a chunk at a time.

The reader keeps its own read position ahead of the ledger's cursor and a cache of records
read but not yet committed. It reads only durable bytes (up to the ledger's size of each
segment), in chunks of ``read_bytes`` (more when a single frame is larger). A frame that
fails its checks is skipped and counted once; a segment read to its end is handed back to
the ledger, which moves the cursor past it and deletes it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from pipeline.spool import segment
from pipeline.spool.entry import ENTRY, Item
from pipeline.spool.ledger import Ledger


@dataclass(slots=True)
class _Chunk:
    items: list[Item] = field(default_factory=list)
    corrupt: list[int] = field(default_factory=list)
    undecodable: int = 0
    next_offset: int = 0


class Reader:
    def __init__(
        self,
        directory: Path,
        ledger: Ledger,
        read_bytes: int,
        known_corrupt: set[tuple[int, int]],
    ) -> None:
        self.directory = directory
        self.read_bytes = read_bytes
        self._ledger = ledger
        self.position = ledger.cursor
        self.cache: deque[Item] = deque()
        self._known_corrupt = known_corrupt
        self.corrupt_records = 0  # found while draining, beyond those found at open
        self.last_error: OSError | None = None

    @property
    def at_end(self) -> bool:
        """Nothing cached and everything durable read."""
        tail = self._ledger.tail_id
        return not self.cache and self.position == (tail, self._ledger.sizes[tail])

    def window(self, most: int) -> list[Item]:
        return [self.cache[i] for i in range(min(most, len(self.cache)))]

    def consumed(self, count: int) -> int | None:
        """Drop ``count`` committed records; the next one's append time, if cached."""
        for _ in range(count):
            self.cache.popleft()
        return self.cache[0].appended_ms if self.cache else None

    async def fill(self) -> bool:
        """Read the next records into the cache; False when nothing durable is left to read.

        Raises OSError when the cursor could not be moved (then nothing has changed).
        """
        segment_id, offset = self.position
        end = self._ledger.sizes[segment_id]
        if offset >= end:
            if segment_id == self._ledger.tail_id:
                return False
            following, error = await self._ledger.next_segment(segment_id)
            self.position = (following, 0)
            self.last_error = error
            return True
        chunk = await asyncio.to_thread(self._read_chunk, segment_id, offset, end)
        for bad in chunk.corrupt:
            if (segment_id, bad) not in self._known_corrupt:
                self._known_corrupt.add((segment_id, bad))
                self.corrupt_records += 1
        self._ledger.lost(chunk.undecodable)
        self.position = (segment_id, chunk.next_offset)
        self.cache.extend(chunk.items)
        if self.cache:
            self._ledger.drained(0, self.cache[0].appended_ms)
        else:
            # Only corrupt frames were read; moving the cursor past them keeps a restart from
            # counting them again.
            await self._ledger.commit(segment_id, chunk.next_offset)
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
                entry = ENTRY.decode(view[first + segment.HEADER.size : last])
            except msgspec.MsgspecError:
                chunk.corrupt.append(start + first)
                chunk.undecodable += 1
                continue
            chunk.items.append(Item(segment_id, start + last, entry.appended_ms, entry.record))
        if found.torn:
            # Durable bytes cannot be torn; these rotted after they were written.
            chunk.corrupt.append(start + found.stop)
            chunk.next_offset = start + len(buf)
        else:
            chunk.next_offset = start + found.stop
        return chunk
