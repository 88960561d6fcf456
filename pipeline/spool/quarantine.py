"""Quarantine: records Kafka will never take, kept on local disk where a person finds them.

Each record becomes two files in ``<spool dir>/quarantine/``: ``<name>.body``, the record's
value byte for byte (a webhook's raw body, or an event's envelope), and ``<name>.json``,
what it was (topic, key, headers, why it was refused). Both are fsynced before ``keep``
returns. The directory is bounded: past ``max_bytes`` it refuses (``SpoolFull``), so a
cluster that refuses everything cannot fill the disk.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import orjson

from pipeline.record import Record
from pipeline.spool.errors import SpoolFull

FOLDER = "quarantine"


class Quarantine:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    @property
    def bytes(self) -> int:
        if not self.directory.exists():
            return 0
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())

    async def keep(self, record: Record, reason: str, detail: str) -> Path:
        """Write ``record`` durably; return the path of its body file."""
        return await asyncio.to_thread(self._keep, record, reason, detail)

    def _keep(self, record: Record, reason: str, detail: str) -> Path:
        held = self.bytes
        if held + len(record.value) > self.max_bytes:
            raise SpoolFull(f"the quarantine holds {held} of its {self.max_bytes} bytes")
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns() // 1_000_000}-{record.event_id}-{record.topic}"
        body = self.directory / f"{name}.body"
        about = {
            "topic": record.topic,
            "key": record.key.decode(errors="replace"),
            "event_id": record.event_id,
            "headers": {k: v.decode(errors="replace") for k, v in record.headers},
            "reason": reason,
            "detail": detail,
            "body_bytes": len(record.value),
        }
        _write_durably(body, record.value)
        _write_durably(
            self.directory / f"{name}.json", orjson.dumps(about, option=orjson.OPT_INDENT_2)
        )
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)  # the new names are durable too
        finally:
            os.close(fd)
        return body


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fdatasync(f.fileno())
