"""Kafka first, the local spool when Kafka cannot acknowledge in time.

A record is either acknowledged by Kafka or fsynced in the spool before the ingress answers
200; a supervised background task drains the spool to Kafka in order. While the spool holds
anything, new records go to the spool too, behind the ones already there, so a
conversation's events keep their order.

A record Kafka will never take (``RefusedByKafka``: too large for the topic, not
authorised...) is never spooled, and one found at the spool's head is never retried
forever: it is set aside, as a dead letter that names it, or (when even that is refused)
in a quarantine file with a truncated dead letter pointing to it.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import ConfigError, NotDurable, RefusedByKafka
from pipeline.record import Record
from pipeline.runtime.metrics import METRICS
from pipeline.runtime.tasks import cancel, supervise
from pipeline.sink.base import Durability, Sink
from pipeline.spool import Spool
from pipeline.spool.errors import SpoolFull, SpoolUnavailable
from pipeline.spool.quarantine import FOLDER, Quarantine

log = logging.getLogger(__name__)

_BACKOFF_MIN_S = 0.2
_BACKOFF_MAX_S = 5.0
_LOG_EVERY_S = 30.0
# A dead letter that points to a quarantine file keeps this much of the value.
TRUNCATED_BYTES = 64 * 1024


class SpooledSink:
    def __init__(
        self,
        kafka: Sink,
        directory: str,
        max_bytes: int,
        *,
        deadletter_topic: str = "plug.deadletter",
        shutdown_drain_s: float = 5.0,
    ) -> None:
        self._kafka = kafka
        self._directory = Path(directory)
        self._max_bytes = max_bytes
        self._deadletter_topic = deadletter_topic
        self._shutdown_drain_s = shutdown_drain_s
        self._quarantine = Quarantine(self._directory / FOLDER, max_bytes)
        self._spool: Spool | None = None
        self._lock_fd: int | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._spooling = 0  # publishes on their way into the spool
        self._logged_at = 0.0

    @property
    def spool(self) -> Spool | None:
        return self._spool

    async def start(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = lock(self._directory)
        self._spool = spool = await Spool.open(self._directory, self._max_bytes)
        METRICS.watch_spool(spool)
        if spool.depth:
            log.info("spool holds %d records from before; draining them first", spool.depth)
        await self._kafka.start()
        self._drainer = supervise("spool-drain", lambda: self._drain_loop(spool))

    async def publish(self, records: Sequence[Record]) -> Durability:
        spool = self._spool
        if spool is None:
            raise SpoolUnavailable("the spool is not open")
        if not spool.depth and not self._spooling:
            try:
                return await self._kafka.publish(records)
            except RefusedByKafka as exc:
                # Never spooled: it could never leave. Kept aside before the caller answers.
                for refused in exc.refused:
                    await self._set_aside(refused, exc, spool_on_failure=True)
                raise
            except (SpoolFull, SpoolUnavailable):
                raise
            except NotDurable as exc:
                log.warning("Kafka did not acknowledge (%s): spooling", exc.reason)
        await self._append(spool, records)
        return "spooled"

    async def _append(self, spool: Spool, records: Sequence[Record]) -> None:
        self._spooling += 1
        try:
            # appended together, so they share one fsync
            await asyncio.gather(*(spool.append(r) for r in records))
        finally:
            self._spooling -= 1
        METRICS.spooled.inc(len(records))

    async def ready(self) -> bool:
        spool = self._spool
        return spool is not None and spool.writable and await self._kafka.ready()

    def health(self) -> str | None:
        spool = self._spool
        if spool is not None and spool.broken:
            return "the spool's disk refused a write: a restart recovers it"
        return self._kafka.health()

    def describe(self) -> dict[str, object]:
        figures = self._kafka.describe()
        spool = self._spool
        if spool is not None:
            error = spool.last_drain_error
            figures |= {
                "spool_depth": spool.depth,
                "spool_bytes": spool.bytes,
                "spool_oldest_age_s": round(spool.oldest_age_s, 3),
                "spool_stalled_s": round(spool.stalled_s, 3),
                "spool_writable": spool.writable,
                "spool_last_error": None if error is None else repr(error)[:300],
            }
        return figures

    # -- draining --------------------------------------------------------------------------

    async def _drain_loop(self, spool: Spool) -> None:
        backoff = _BACKOFF_MIN_S
        while True:
            await spool.wait_for_records()
            drained = await spool.drain(self._publish_spooled)
            if drained:
                METRICS.drained.inc(drained)
            error = spool.last_drain_error
            if error is None or not spool.depth:
                backoff = _BACKOFF_MIN_S
                continue
            self._log_stall(spool, error)
            if drained:  # Kafka takes records: a failure among them is no reason to wait long
                backoff = _BACKOFF_MIN_S
            # Kafka is still away: try again later rather than spin
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    def _log_stall(self, spool: Spool, error: BaseException) -> None:
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY_S:
            self._logged_at = now
            log.warning(
                "spool not draining: %d records waiting, none drained for %.0f s; last error: %r",
                spool.depth,
                spool.stalled_s,
                error,
            )

    async def _publish_spooled(self, records: Sequence[Record]) -> None:
        try:
            await self._kafka.publish(records)
        except RefusedByKafka as exc:
            # The others were taken. A poison record left at the head would block everything
            # behind it forever: set it aside instead.
            for refused in exc.refused:
                await self._set_aside(refused, exc, spool_on_failure=False)

    async def drain_now(self, timeout_s: float) -> int:
        """Drain what the spool holds, for up to ``timeout_s``; the records left."""
        spool = self._spool
        if spool is None:
            return 0
        try:
            async with asyncio.timeout(timeout_s):
                while spool.depth:
                    METRICS.drained.inc(await spool.drain(self._publish_spooled))
                    if spool.last_drain_error is not None and spool.depth:
                        await asyncio.sleep(_BACKOFF_MIN_S)
        except TimeoutError:
            pass
        return spool.depth

    # -- setting aside ---------------------------------------------------------------------

    async def _set_aside(
        self, record: Record, error: RefusedByKafka, *, spool_on_failure: bool
    ) -> None:
        """Keep a record Kafka refused where a person finds it, durably, then forget it.

        A dead letter on the dead-letter topic names it; when that too is refused, the
        record goes to a quarantine file and a truncated dead letter points to it.
        ``NotDurable`` if neither could be made durable now.
        """
        detail = str(error)[:1000]
        if record.topic != self._deadletter_topic:
            dead = dead_letter_for(record, self._deadletter_topic, error.reason, detail)
            if await self._try_dead_letter(dead, spool_on_failure):
                METRICS.set_aside.labels(error.reason).inc()
                log.warning("set aside %s record %s: %s", record.topic, record.event_id, detail)
                return
        path = await self._quarantine.keep(record, error.reason, detail)
        METRICS.set_aside.labels(error.reason).inc()
        log.warning(
            "quarantined %s record %s in %s: %s", record.topic, record.event_id, path, detail
        )
        if record.topic != self._deadletter_topic:
            pointer = dead_letter_for(
                record, self._deadletter_topic, error.reason, detail, quarantine=path
            )
            await self._try_dead_letter(pointer, spool_on_failure)

    async def _try_dead_letter(self, dead: Record, spool_on_failure: bool) -> bool:
        """True once durable; False when Kafka refuses it for good."""
        try:
            await self._kafka.publish((dead,))
        except RefusedByKafka:
            return False
        except NotDurable:
            spool = self._spool
            if not spool_on_failure or spool is None:
                raise  # draining: the record stays at the head and is tried again later
            await self._append(spool, (dead,))
        return True

    # -- stopping --------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop draining, try to empty the spool within the bound, then close everything.

        Whatever fails on the way, the spool is closed, the producer flushed and the lock
        released.
        """
        try:
            await cancel(self._drainer)
            spool = self._spool
            if spool is not None and spool.depth and await self._kafka.ready():
                left = await self.drain_now(self._shutdown_drain_s)
                log.info("spool drained at shutdown; %d records left for the next start", left)
        except Exception:
            log.exception("draining the spool at shutdown failed")
        finally:
            try:
                if self._spool is not None:
                    await self._spool.close()
            finally:
                await self._kafka.stop()
                if self._lock_fd is not None:
                    os.close(self._lock_fd)
                    self._lock_fd = None


def dead_letter_for(
    record: Record,
    topic: str,
    reason: str,
    detail: str,
    quarantine: Path | None = None,
) -> Record:
    """A dead letter for a record Kafka refused: its value (truncated when a quarantine
    file holds the whole), its headers, and why."""
    value = record.value if quarantine is None else record.value[:TRUNCATED_BYTES]
    kept = [(k, v) for k, v in record.headers if k in {"webhook", "tenant", "received-at"}]
    headers = [
        *kept,
        ("error-reason", reason.encode()),
        ("error-message", detail.encode()),
        ("event-id", record.event_id.encode()),
        ("original-topic", record.topic.encode()),
        ("body-bytes", str(len(record.value)).encode()),
    ]
    if quarantine is not None:
        headers += [("truncated", b"true"), ("quarantine-file", str(quarantine).encode())]
    return Record(topic, record.key, value, headers, record.event_id)


def lock(directory: Path) -> int:
    """One process per spool directory: two writers would interleave segments."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise ConfigError(f"spool directory {directory} is in use by another process") from exc
    return fd
