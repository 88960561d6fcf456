"""What one spooled record looks like on disk: the frame payload, and the record read back.

A frame's payload (see ``segment`` for the framing) is the msgpack of
``[appended_ms, Record]``: the time the record was appended (for the spool's age) and the
record itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from pipeline.record import Record
from pipeline.spool import segment


class Entry(msgspec.Struct, array_like=True, frozen=True):
    appended_ms: int
    record: Record


class Head(msgspec.Struct, array_like=True, frozen=True):
    appended_ms: int


_ENCODER = msgspec.msgpack.Encoder()
ENTRY = msgspec.msgpack.Decoder(Entry)
# Reading only the timestamp skips decoding the record: recovery needs nothing else.
HEAD = msgspec.msgpack.Decoder(Head)


def framed(appended_ms: int, record: Record) -> bytes:
    """The bytes to append for ``record``; ValueError if it is too large to frame."""
    return segment.frame(_ENCODER.encode(Entry(appended_ms, record)))


@dataclass(frozen=True, slots=True)
class Item:
    """A record read back from a segment, with where its frame ends (its commit point)."""

    segment_id: int
    end: int
    appended_ms: int
    record: Record
