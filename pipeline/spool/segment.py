"""Segment files and their framing: ``[length u32][crc32 u32][payload]``, little-endian.

Everything here is synchronous file or buffer work; the spool runs it in a worker thread.
A payload is capped below 2**24 bytes, so the high byte of every valid length is zero: a
resync after corruption only tries offsets where that byte is zero, found by ``bytes.find``
in C rather than by stepping through the buffer in Python.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

HEADER = struct.Struct("<II")
MAX_PAYLOAD = (1 << 24) - 1
SUFFIX = ".seg"
_NONZERO = re.compile(rb"[^\x00]")
_CURSOR = struct.Struct("<QQI")


def frame(payload: bytes) -> bytes:
    if not 0 < len(payload) <= MAX_PAYLOAD:
        raise ValueError(f"a spooled payload must be 1..{MAX_PAYLOAD} bytes, not {len(payload)}")
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def name(segment_id: int) -> str:
    return f"{segment_id:020d}{SUFFIX}"


def segment_ids(directory: Path) -> list[int]:
    ids = []
    for path in directory.glob("*" + SUFFIX):
        stem = path.name.removesuffix(SUFFIX)
        if stem.isdigit():
            ids.append(int(stem))
    return sorted(ids)


@dataclass
class Scan:
    """What one pass over a buffer found, offsets relative to the buffer's start."""

    frames: list[tuple[int, int]] = field(default_factory=list)  # (start, end) of good frames
    corrupt: list[int] = field(default_factory=list)  # start of each bad region skipped
    stop: int = 0  # where the next read should start
    torn: bool = False  # the buffer ends in a frame that was never completely written


def _valid_at(buf: bytes, view: memoryview, at: int) -> bool:
    if at + HEADER.size > len(buf):
        return False
    length: int
    crc: int
    length, crc = HEADER.unpack_from(buf, at)
    end = at + HEADER.size + length
    return 0 < length <= MAX_PAYLOAD and end <= len(buf) and zlib.crc32(view[at + 8 : end]) == crc


def _resync(buf: bytes, view: memoryview, start: int) -> int | None:
    """The first offset at or after ``start`` where a whole valid frame begins."""
    high = start + 3  # index of the candidate length's high byte, which must be zero
    while True:
        high = buf.find(b"\x00", high)
        if high < 0 or high - 3 + HEADER.size > len(buf):
            return None
        at = high - 3
        if _valid_at(buf, view, at):
            return at
        if buf[at : at + 4] == b"\x00\x00\x00\x00":
            # A zero-filled tail (a crash after the size grew, before the data landed) would
            # otherwise cost one Python step per byte; a frame can begin at most 3 bytes
            # before the run's end, and its high byte is then at or after that end.
            run_end = _NONZERO.search(buf, high)
            if run_end is None:
                return None
            high = max(high + 1, run_end.start())
        else:
            high += 1


def scan(buf: bytes, complete: bool) -> Scan:
    """Split ``buf`` into frames, skipping corrupt regions.

    ``complete`` says the buffer runs to the end of the durable data. If it does not, an
    unfinished frame at the end is left for the next, longer read instead of being judged.
    """
    view = memoryview(buf)
    result = Scan()
    at, n = 0, len(buf)
    while at < n:
        if _valid_at(buf, view, at):
            length = HEADER.unpack_from(buf, at)[0]
            result.frames.append((at, at + HEADER.size + length))
            at += HEADER.size + length
            continue
        if not complete and _unfinished(buf, at):
            break
        resumed = _resync(buf, view, at + 1)
        if resumed is None:
            if complete:
                result.torn = True
            break
        result.corrupt.append(at)
        at = resumed
    result.stop = at
    return result


def _unfinished(buf: bytes, at: int) -> bool:
    if at + HEADER.size > len(buf):
        return True
    length: int = HEADER.unpack_from(buf, at)[0]
    return 0 < length <= MAX_PAYLOAD and at + HEADER.size + length > len(buf)


def read(path: Path, start: int, size: int) -> bytes:
    with path.open("rb", buffering=0) as f:
        return os.pread(f.fileno(), size, start)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Tail:
    """The one segment being appended to; only the spool's writer task touches it."""

    def __init__(self, directory: Path, segment_id: int, size: int) -> None:
        self.directory = directory
        self.fsyncs = 0
        self.broken = False
        self._fd = -1
        self.id = segment_id
        self.size = size
        self._open(segment_id, size)

    def _open(self, segment_id: int, size: int) -> None:
        self._fd = os.open(self.directory / name(segment_id), os.O_WRONLY | os.O_CREAT, 0o644)
        self.id = segment_id
        self.size = size
        if size == 0:
            # The new name must survive a crash, or records fsynced into it could vanish.
            fsync_dir(self.directory)
            self.fsyncs += 1

    def append(self, data: bytes) -> None:
        """Write and fsync ``data``; on failure, cut the file back so the tail stays clean."""
        start = self.size
        try:
            view = memoryview(data)
            written = 0
            while written < len(data):
                written += os.pwrite(self._fd, view[written:], start + written)
            os.fdatasync(self._fd)
            self.fsyncs += 1
        except OSError:
            try:
                os.ftruncate(self._fd, start)
                os.fdatasync(self._fd)
            except OSError:
                # Nothing more is appended here; a reopen's scan treats the half-written
                # bytes as a torn tail.
                self.broken = True
            raise
        self.size = start + len(data)

    def roll(self, segment_id: int) -> None:
        """Continue in a new, empty segment; every byte of the old one is already fsynced."""
        self.close()
        self._open(segment_id, 0)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def truncate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_cursor(path: Path) -> tuple[int, int] | None:
    """The committed (segment, offset), or None when absent or unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(raw) != _CURSOR.size:
        return None
    segment_id, offset, crc = _CURSOR.unpack(raw)
    if zlib.crc32(raw[:16]) != crc:
        return None
    return segment_id, offset


def write_cursor(path: Path, segment_id: int, offset: int) -> None:
    """Atomically replace the cursor: a crash leaves the old one or the new one, never half."""
    body = struct.pack("<QQ", segment_id, offset)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, body + struct.pack("<I", zlib.crc32(body)))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)
