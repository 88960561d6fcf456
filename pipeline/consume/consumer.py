"""The consumer: an async iterator of typed events, at-least-once.

::

    async with Consumer(KafkaSettings.from_env(), group_id="kpi") as consumer:
        async for item in consumer:
            handle(item.event)          # an Envelope[AttendanceFinished], ...

An event counts as handled when the caller asks for the next one (or stops the loop
with ``stop()``); only handled events have their offsets committed, every
``commit_every`` events or ``commit_interval_s`` seconds, when partitions are taken
away in a rebalance, and on close. If the loop body raises, the event it was handling
is not committed and comes again after a restart.

A record that does not decode raises ``UndecodableRecord`` naming its topic, partition
and offset, and the consumer stays failed (asking again raises again), so no later
offset is committed past it; or, with ``on_undecodable``, it goes to that callback and
counts as handled once the callback returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, KafkaError

from pipeline.config import Config, KafkaSettings
from pipeline.consume.consumed import (
    ConsumedEvent,
    ConsumerStats,
    OnUndecodable,
    Partition,
    RawRecord,
    StartPositions,
)
from pipeline.consume.decode import (
    decode_event,
    event_type_of_header,
    event_type_of_topic,
)
from pipeline.consume.dedup import DedupWindow
from pipeline.errors import ConsumeFailed, UndecodableRecord
from pipeline.kafka_client import admin_settings, consumer_settings
from pipeline.route import event_topic
from pipeline.webhooks import EventType

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 30.0
# What at-least-once and the group depend on: chosen through the constructor's arguments.
_OWN_SETTINGS = {"group_id", "enable_auto_commit", "auto_offset_reset"}


class Consumer:
    """Typed events from our topics; use ``async with`` and ``async for``.

    ``group_id``: a consumer group (offsets committed) or None (every partition read,
    nothing committed). ``start``: where a group with no committed offset (or no group)
    begins. ``dedup``: a window size or a ``DedupWindow`` to drop repeated event ids.
    ``until_caught_up``: end the iteration once every partition reached the end offset it
    had when first assigned. ``start_positions``: a hook giving the offset to start each
    newly assigned partition from (a loader that stores its own offsets); partitions it
    leaves out start from the committed offset.

    ``kafka``: the brokers, security and topic prefix (``KafkaSettings.from_env()``). An
    ingress ``Config`` is still taken, with a ``DeprecationWarning``, until the next release.
    """

    def __init__(
        self,
        kafka: KafkaSettings | Config,
        *,
        group_id: str | None = None,
        event_types: Iterable[EventType] | None = None,
        start: Literal["earliest", "latest"] = "earliest",
        dedup: DedupWindow | int | None = None,
        on_undecodable: OnUndecodable | None = None,
        until_caught_up: bool = False,
        start_positions: StartPositions | None = None,
        commit_every: int = 500,
        commit_interval_s: float = 5.0,
        max_records: int = 2000,
        client_id: str = "plug-pipeline-consumer",
        kafka_settings: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(kafka, Config):
            warnings.warn(
                "Consumer takes a KafkaSettings (config.kafka or KafkaSettings.from_env()); "
                "a Config will be refused in the next release",
                DeprecationWarning,
                stacklevel=2,
            )
            kafka = kafka.kafka
        self.kafka = kafka
        self.prefix = kafka.topic_prefix
        self.group_id = group_id
        self.stats = ConsumerStats()
        types = list(EventType) if event_types is None else list(event_types)
        self.topics = [event_topic(self.prefix, e) for e in types]
        self.dedup = DedupWindow(dedup) if isinstance(dedup, int) else dedup
        self._on_undecodable = on_undecodable
        self._until_caught_up = until_caught_up
        self._start_positions = start_positions
        self._commit_every = commit_every
        self._commit_interval_s = commit_interval_s
        self._max_records = max_records
        extra = dict(kafka_settings or {})
        if owned := _OWN_SETTINGS & extra.keys():
            raise ValueError(f"the consumer sets {', '.join(sorted(owned))} itself")
        self._settings = consumer_settings(
            kafka, group_id, client_id, auto_offset_reset=start, **extra
        )
        # Made in start(): aiokafka wants a running event loop, a Consumer need not.
        self._kafka: Any = None
        self._buffer: deque[Any] = deque()  # aiokafka ConsumerRecords, oldest first
        self._current: tuple[TopicPartition, int] | None = None  # yielded, being handled
        self._handled: dict[TopicPartition, int] = {}  # next offset to commit
        self._since_commit = 0
        self._last_commit = time.monotonic()
        self._ends: dict[TopicPartition, int] = {}
        self._assigned = False
        self._owned: set[TopicPartition] = set()  # assigned now; kept here, read per event
        self._failure: BaseException | None = None
        self._stopping = asyncio.Event()
        self._started = False

    async def __aenter__(self) -> Consumer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._kafka is not None:
            raise RuntimeError("a Consumer starts once")
        self._kafka = AIOKafkaConsumer(**self._settings)
        try:
            await asyncio.wait_for(self._kafka.start(), _START_TIMEOUT_S)
            self._started = True
            if self.group_id is None:
                await self._assign_all()
            else:
                self._kafka.subscribe(self.topics, listener=_Listener(self))
        except (KafkaError, OSError, TimeoutError) as exc:
            self._started = False
            await self._stop_kafka()
            raise ConsumeFailed(f"cannot consume from Kafka: {exc}", _retriable(exc)) from exc

    async def _assign_all(self) -> None:
        """No group: every partition of every topic that exists now."""
        # the consumer's own metadata knows only topics it was told about: ask the cluster
        admin = AIOKafkaAdminClient(**admin_settings(self.kafka))
        await admin.start()
        try:
            described = await admin.describe_topics(self.topics)
        finally:
            await admin.close()
        partitions = []
        for topic in described:
            if topic["error_code"] != 0 or not topic["partitions"]:
                log.warning("topic %s not found: not read", topic["topic"])
                continue
            ids = sorted(p["partition"] for p in topic["partitions"])
            partitions += [TopicPartition(topic["topic"], p) for p in ids]
        self._kafka.assign(partitions)
        await self._on_assigned(set(partitions))

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self._owned |= assigned
        if self._start_positions is not None and assigned:
            wanted = await self._start_positions(
                [Partition(tp.topic, tp.partition) for tp in assigned]
            )
            for tp in assigned:
                offset = wanted.get(Partition(tp.topic, tp.partition))
                if offset is not None:
                    self._kafka.seek(tp, offset)
        if self._until_caught_up:
            new = [tp for tp in assigned if tp not in self._ends]
            if new:
                self._ends.update(await self._kafka.end_offsets(new))
        self._assigned = True

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Commit what was handled on partitions we lose; forget what we had buffered."""
        self._owned -= revoked
        await self.commit({tp: o for tp, o in self._handled.items() if tp in revoked})
        for tp in revoked:
            self._handled.pop(tp, None)
        self._buffer = deque(r for r in self._buffer if _tp(r) not in revoked)

    async def offsets_at(
        self, partitions: Iterable[Partition], timestamp_ms: int
    ) -> dict[Partition, int]:
        """Each partition's first offset stamped at or after ``timestamp_ms`` (the record's
        Kafka timestamp), or its end offset when nothing was written since: what a reader
        of "today" seeks to. Call it once started (a ``start_positions`` hook may)."""
        tps = [TopicPartition(p.topic, p.partition) for p in partitions]
        if not tps:
            return {}
        found = await self._kafka.offsets_for_times(dict.fromkeys(tps, timestamp_ms))
        ends = await self._kafka.end_offsets(tps)
        return {
            Partition(tp.topic, tp.partition): found[tp].offset if found[tp] else ends[tp]
            for tp in tps
        }

    async def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """Each partition's end offset now (the offset the next record will get)."""
        tps = [TopicPartition(p.topic, p.partition) for p in partitions]
        ends = await self._kafka.end_offsets(tps) if tps else {}
        return {Partition(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    def highwater(self, partition: Partition) -> int | None:
        """The end offset last seen in a fetch of ``partition`` (no request): for lag."""
        found: int | None = self._kafka.highwater(TopicPartition(*partition))
        return found

    def stop(self) -> None:
        """End the iteration after the event being handled: safe from a signal handler."""
        self._stopping.set()

    async def close(self) -> None:
        """Commit what was handled, then leave the group and close the connection."""
        if not self._started:
            return
        self._started = False
        try:
            await self.commit()
        finally:
            await self._stop_kafka()

    async def _stop_kafka(self) -> None:
        try:  # leaving the group can wait on a broker that is gone: bounded
            await asyncio.wait_for(self._kafka.stop(), _START_TIMEOUT_S)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("Kafka consumer did not close cleanly: %s", exc)

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit the handled offsets (all, or those given); a failure is logged and counted.

        A commit that fails is retried with the next one; if none succeeds the events come
        again after a restart, which at-least-once allows.
        """
        pending = dict(self._handled if offsets is None else offsets)
        if self.group_id is None or not pending:
            return
        try:
            await self._kafka.commit(pending)
        except (CommitFailedError, KafkaError) as exc:
            self.stats.commit_failures += 1
            log.warning("offset commit failed (events will come again): %s", exc)
            if offsets is None:  # retried when the next commit is due, not on every event
                self._since_commit = 0
                self._last_commit = time.monotonic()
            return
        self.stats.commits += 1
        for tp, offset in pending.items():
            if self._handled.get(tp) == offset:
                del self._handled[tp]
        if offsets is None:
            self._since_commit = 0
            self._last_commit = time.monotonic()

    def __aiter__(self) -> AsyncIterator[ConsumedEvent]:
        return self

    async def __anext__(self) -> ConsumedEvent:
        if not self._started:
            raise RuntimeError("start the consumer first: async with Consumer(...)")
        if self._failure is not None:
            raise self._failure
        if self._current is not None:
            self._mark_handled(*self._current)
            self._current = None
        if self._commit_due():
            await self.commit()
        while not self._stopping.is_set():
            if self._failure is not None:  # a rebalance step failed meanwhile
                raise self._failure
            if not self._buffer:
                if self._until_caught_up and await self._caught_up():
                    break
                await self._fill()
                continue
            msg = self._buffer.popleft()
            record = RawRecord(
                msg.topic, msg.partition, msg.offset, msg.timestamp, msg.key, msg.value,
                list(msg.headers or ()),
            )  # fmt: skip
            try:
                item = self._take(record)
            except UndecodableRecord as exc:
                await self._undecodable(
                    exc.at(record.topic, record.partition, record.offset), record
                )
                continue
            if item is not None:
                self._current = (_tp(msg), msg.offset)
                self.stats.delivered += 1
                return item
        if self._failure is not None:
            raise self._failure
        raise StopAsyncIteration

    # Per record: plain calls, no coroutine, as most records decode and are no duplicate.
    def _take(self, record: RawRecord) -> ConsumedEvent | None:
        """The record decoded, or None for a duplicate; raises ``UndecodableRecord``."""
        event_type = _event_type(self.prefix, record)
        event = decode_event(event_type, record.value or b"")
        if self.dedup is not None and self.dedup.seen(event.event_id):
            self.stats.duplicates += 1
            self._mark_handled(TopicPartition(record.topic, record.partition), record.offset)
            return None
        return ConsumedEvent(event, event_type, record)

    async def _undecodable(self, located: UndecodableRecord, record: RawRecord) -> None:
        """Raise it, and stay failed so nothing past it is committed; or hand it over."""
        self.stats.undecodable += 1
        if self._on_undecodable is None:
            self._failure = located
            raise located
        await self._on_undecodable(located, record)
        self._mark_handled(TopicPartition(record.topic, record.partition), record.offset)

    def _mark_handled(self, tp: TopicPartition, offset: int) -> None:
        if self.group_id is None:
            return  # nothing is committed: nothing to remember (nor a commit to come due)
        if tp not in self._owned:
            return  # taken away meanwhile: its new owner reads it again from the last commit
        self._handled[tp] = offset + 1
        self._since_commit += 1

    def _commit_due(self) -> bool:
        return bool(self._since_commit) and (
            self._since_commit >= self._commit_every
            or time.monotonic() - self._last_commit >= self._commit_interval_s
        )

    async def _fill(self) -> None:
        """Wait for records, a stop, or the next commit time, whichever comes first."""
        wait_ms = 1000
        if self._since_commit:
            due = self._last_commit + self._commit_interval_s - time.monotonic()
            wait_ms = max(0, min(wait_ms, int(due * 1000)))
        getter = asyncio.ensure_future(
            self._kafka.getmany(timeout_ms=wait_ms, max_records=self._max_records)
        )
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not getter.done():
                getter.cancel()
        if getter.cancelled():
            return
        try:
            batches = getter.result()
        except KafkaError as exc:
            self._failure = ConsumeFailed(f"reading from Kafka failed: {exc}", _retriable(exc))
            raise self._failure from exc
        assigned = self._kafka.assignment()
        for tp in sorted(batches, key=lambda tp: (tp.topic, tp.partition)):
            if tp in assigned:
                self._buffer.extend(batches[tp])
        if self._commit_due():
            await self.commit()

    async def _caught_up(self) -> bool:
        """Every assigned partition has reached the end offset it had when first assigned."""
        if not self._assigned:
            return False
        for tp in self._kafka.assignment():
            end = self._ends.get(tp)
            if end is None or await self._kafka.position(tp) < end:
                return False
        return True


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Forwards a group's rebalances to the consumer; keeps their errors for the caller.

    aiokafka logs and swallows what a listener raises: a start-positions hook that failed
    would then silently start from the committed offsets, so the error is kept and
    raised by the next ``__anext__``.
    """

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._guard(self._consumer._on_revoked(set(revoked)))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._guard(self._consumer._on_assigned(set(assigned)))

    async def _guard(self, step: Awaitable[None]) -> None:
        try:
            await step
        except Exception as exc:  # the edge: kept and raised to the caller, never lost
            log.exception("rebalance step failed")
            self._consumer._failure = ConsumeFailed(f"rebalance failed: {exc}", False)
            self._consumer.stop()


def _tp(msg: Any) -> TopicPartition:
    return TopicPartition(msg.topic, msg.partition)


def _event_type(prefix: str, record: RawRecord) -> EventType:
    by_topic = event_type_of_topic(prefix, record.topic)
    if by_topic is not None:
        return by_topic
    header = next((v for k, v in record.headers if k == "event-type"), None)
    by_header = event_type_of_header(header)
    if by_header is None:
        raise UndecodableRecord(
            "unknown_topic", f"neither topic {record.topic!r} nor its headers name an event type"
        )
    return by_header


def _retriable(exc: BaseException) -> bool:
    return bool(getattr(exc, "retriable", isinstance(exc, OSError | TimeoutError)))
