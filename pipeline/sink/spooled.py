"""Kafka first, the local spool when Kafka cannot acknowledge in time.

A record is either acknowledged by Kafka or fsynced in the spool before the
ingress answers 200; a background task drains the spool to Kafka in order. While
the spool holds anything, new records go to the spool too, behind the ones
already there, so a conversation's events keep their order.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from pipeline.aio import cancel
from pipeline.errors import ConfigError, NotDurable
from pipeline.metrics import METRICS
from pipeline.record import Record
from pipeline.sink.base import Durability, Sink
from pipeline.spool import Spool
from pipeline.spool.spool import SpoolFull, SpoolUnavailable

log = logging.getLogger(__name__)

_BACKOFF_MIN_S = 0.2
_BACKOFF_MAX_S = 5.0


class SpooledSink:
    def __init__(self, kafka: Sink, directory: str, max_bytes: int) -> None:
        self._kafka = kafka
        self._directory = Path(directory)
        self._max_bytes = max_bytes
        self._spool: Spool | None = None
        self._lock_fd: int | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._spooling = 0  # publishes on their way into the spool

    @property
    def spool(self) -> Spool | None:
        return self._spool

    async def start(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self._directory)
        self._spool = spool = await Spool.open(self._directory, self._max_bytes)
        METRICS.watch_spool(spool)
        if spool.depth:
            log.info("spool holds %d records from before; draining them first", spool.depth)
        await self._kafka.start()
        self._drainer = asyncio.create_task(self._drain_loop(spool), name="spool-drain")

    async def publish(self, records: Sequence[Record]) -> Durability:
        spool = self._spool
        if spool is None:
            raise SpoolUnavailable("the spool is not open")
        if not spool.depth and not self._spooling:
            try:
                return await self._kafka.publish(records)
            except (SpoolFull, SpoolUnavailable):
                raise
            except NotDurable as exc:
                log.warning("Kafka did not acknowledge (%s): spooling", exc.reason)
        self._spooling += 1
        try:
            # appended together, so they share one fsync
            await asyncio.gather(*(spool.append(r) for r in records))
        finally:
            self._spooling -= 1
        METRICS.spooled.inc(len(records))
        return "spooled"

    async def ready(self) -> bool:
        spool = self._spool
        return spool is not None and spool.writable and await self._kafka.ready()

    def describe(self) -> dict[str, object]:
        figures = self._kafka.describe()
        if self._spool is not None:
            figures |= {
                "spool_depth": self._spool.depth,
                "spool_bytes": self._spool.bytes,
                "spool_oldest_age_s": round(self._spool.oldest_age_s, 3),
                "spool_writable": self._spool.writable,
            }
        return figures

    async def _drain_loop(self, spool: Spool) -> None:
        backoff = _BACKOFF_MIN_S
        while True:
            await spool.wait_for_records()
            drained = await spool.drain(self._publish_one)
            if drained:
                METRICS.drained.inc(drained)
            if spool.last_drain_error is not None and spool.depth:
                # Kafka is still away: try again later rather than spin
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
            else:
                backoff = _BACKOFF_MIN_S

    async def _publish_one(self, record: Record) -> None:
        await self._kafka.publish((record,))

    async def stop(self) -> None:
        await cancel(self._drainer)
        if self._spool is not None:
            await self._spool.close()
        await self._kafka.stop()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _lock(directory: Path) -> int:
    """One process per spool directory: two writers would interleave segments."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise ConfigError(f"spool directory {directory} is in use by another process") from exc
    return fd
