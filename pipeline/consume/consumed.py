"""What the consumer hands out: decoded events, raw records, counts; and its hook types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from pipeline.consume.decode import AnyEvent
from pipeline.errors import UndecodableRecord
from pipeline.webhooks import EventType


class Partition(NamedTuple):
    topic: str
    partition: int


class RawRecord(msgspec.Struct, frozen=True):
    """A record as Kafka holds it: what an ``on_undecodable`` callback receives."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # epoch ms, as Kafka stamped it
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


class ConsumedEvent(msgspec.Struct, frozen=True):
    """One decoded event and the record it came from."""

    event: AnyEvent
    event_type: EventType
    record: RawRecord


OnUndecodable = Callable[[UndecodableRecord, RawRecord], Awaitable[None]]
StartPositions = Callable[[list[Partition]], Awaitable[Mapping[Partition, int]]]


@dataclass
class ConsumerStats:
    delivered: int = 0
    duplicates: int = 0
    undecodable: int = 0
    commits: int = 0
    commit_failures: int = 0
