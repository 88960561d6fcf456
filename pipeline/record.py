"""The unit the sinks and the spool deal in: one Kafka record, ready to send."""

from __future__ import annotations

import msgspec

Headers = list[tuple[str, bytes]]


class Record(msgspec.Struct, frozen=True):
    topic: str
    key: bytes
    value: bytes
    headers: Headers
    event_id: str
