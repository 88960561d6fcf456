"""Opening a spool directory after a stop or a crash: what it holds, from the cursor on.

Every segment from the cursor is scanned. A torn tail (the last frame cut short, or failing
its crc with nothing after it: a crash in the middle of a write) is truncated away and
counted in ``torn``; a bad frame with good frames after it is skipped and counted in
``corrupt``. Neither stops the spool from opening. Segments wholly behind the cursor (a
crash came between moving the cursor on and deleting them) are deleted.

Synchronous file work: the spool runs ``recover`` in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from pipeline.spool import segment
from pipeline.spool.entry import HEAD

CURSOR = "cursor"


@dataclass
class Recovered:
    cursor: tuple[int, int]
    sizes: dict[int, int]  # durable size of each segment still needed, in id order
    tail_id: int
    depth: int = 0
    live: int = 0  # durable bytes after the cursor
    head_ms: int | None = None
    torn: int = 0
    corrupt: int = 0
    known_corrupt: set[tuple[int, int]] = field(default_factory=set)


def recover(directory: Path, clock: Callable[[], float]) -> Recovered:
    directory.mkdir(parents=True, exist_ok=True)
    cursor_id, cursor_offset = segment.read_cursor(directory / CURSOR) or (0, 0)
    ids = segment.segment_ids(directory)
    for stale in (i for i in ids if i < cursor_id):
        (directory / segment.name(stale)).unlink(missing_ok=True)
    ids = [i for i in ids if i >= cursor_id]
    if not ids or ids[0] != cursor_id:
        cursor_offset = 0
    found = Recovered(cursor=(cursor_id, cursor_offset), sizes={}, tail_id=cursor_id)
    for seg_id in ids:
        start = cursor_offset if seg_id == cursor_id else 0
        _scan_segment(directory, seg_id, start, found, clock)
    if ids:
        found.cursor = (ids[0], min(cursor_offset, found.sizes[ids[0]]))
        found.tail_id = ids[-1]
    else:
        found.tail_id = cursor_id + 1
        found.cursor = (found.tail_id, 0)
        found.sizes[found.tail_id] = 0
    return found


def _scan_segment(
    directory: Path, seg_id: int, start: int, found: Recovered, clock: Callable[[], float]
) -> None:
    path = directory / segment.name(seg_id)
    data = path.read_bytes()
    start = min(start, len(data))
    scan = segment.scan(data[start:], complete=True)
    size = len(data)
    if scan.torn:
        found.torn += 1
        size = start + scan.stop
        segment.truncate(path, size)
    for bad in scan.corrupt:
        found.known_corrupt.add((seg_id, start + bad))
    found.corrupt += len(scan.corrupt)
    if found.head_ms is None and scan.frames:
        first, end = scan.frames[0]
        try:
            found.head_ms = HEAD.decode(
                data[start + first + segment.HEADER.size : start + end]
            ).appended_ms
        except msgspec.MsgspecError:
            found.head_ms = int(clock() * 1000)
    found.depth += len(scan.frames)
    found.live += size - start
    found.sizes[seg_id] = size
