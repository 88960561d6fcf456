"""The event topics -> the board: from the window's start (see ``state.py``), then live.

No consumer group and nothing committed: at every start (and every restart of this
task) each partition is read again from the first record stamped at or after the
window's start, found with ``offsets_for_times``, so a restart rebuilds the figures the
process showed before it. The state takes events in any order and more than once, so
a feed restarted half-way reads again from the start without counting anything twice.
The board is ready once every partition has reached the end offset it had at the start.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping

from pipeline.config import KafkaSettings
from pipeline.consume.consumed import Partition, RawRecord
from pipeline.consume.consumer import Consumer
from pipeline.consume.decode import AnyEvent
from pipeline.errors import ConsumeFailed, UndecodableRecord
from pipeline.live.board import Board
from pipeline.live.metrics import LiveMetrics
from pipeline.webhooks import EventType

log = logging.getLogger(__name__)

# What the wallboard reads: every webhook's topic (erasure requests change no figure).
EVENT_TYPES = tuple(e for e in EventType if e is not EventType.ERASURE_REQUESTED)


class Feed:
    def __init__(self, kafka: KafkaSettings, board: Board, metrics: LiveMetrics) -> None:
        self.kafka = kafka
        self.board = board
        self.metrics = metrics
        self._consumer: Consumer | None = None
        self._next: dict[Partition, int] = {}  # the next offset to read, per partition
        self._behind: dict[Partition, int] = {}  # end offsets at start not reached yet
        self._started_at = time.monotonic()
        self.catch_up_s: float | None = None
        self.caught_up_events = 0
        self.read = 0  # events handed to the board since this process started
        self._topics: set[str] = set()  # the topics found at the consumer's start

    async def run(self) -> None:
        """Read until cancelled; raises when Kafka fails (the caller supervises it)."""
        self._started_at = time.monotonic()
        consumer = Consumer(
            self.kafka,
            event_types=EVENT_TYPES,
            start="latest",
            # no dedup window: the state counts a repeated event once by itself, and a
            # record the consumer dropped would leave its offset unseen by the catch-up
            on_undecodable=self._undecodable,
            start_positions=self._positions,
            client_id="plug-pipeline-live",
            # a fetch returns as soon as a record is there, or after this: a figure is due
            # on screen within 2 s of the webhook's 200, and aiokafka's default is 500 ms
            kafka_settings={"fetch_max_wait_ms": 100},
        )
        self._consumer = consumer  # the start-positions hook asks it for offsets
        try:
            # not ``async with``: a start whose hook raised must close the client too
            self._topics = set()
            await consumer.start()
            missing = set(consumer.topics) - self._topics
            if missing:
                # a topic the ingress has not created yet: figures without it would be
                # wrong, not late, so the feed fails and its supervisor tries again
                raise ConsumeFailed(f"topics not found: {', '.join(sorted(missing))}", True)
            self._check_caught_up()
            async for item in consumer:
                self._take(item.record, item.event, item.event_type)
        finally:
            self._consumer = None
            await consumer.close()

    def _take(self, record: RawRecord, event: AnyEvent, event_type: EventType) -> None:
        self.board.apply(event)
        self.read += 1
        self.metrics.events.labels(event_type.value).inc()
        self._passed(record)

    def _passed(self, record: RawRecord) -> None:
        """A record read, applied or skipped: the catch-up counts offsets, not events."""
        where = Partition(record.topic, record.partition)
        self._next[where] = record.offset + 1
        if self._behind:
            end = self._behind.get(where)
            if end is not None and record.offset + 1 >= end:
                del self._behind[where]
                self._check_caught_up()

    async def _positions(self, partitions: list[Partition]) -> Mapping[Partition, int]:
        consumer = self._consumer
        assert consumer is not None  # set before the consumer starts and calls this hook
        self._topics.update(p.topic for p in partitions)
        since = self.board.state.window_start_ms(self.board.clock())
        starts = await consumer.offsets_at(partitions, since)
        ends = await consumer.end_offsets(partitions)
        self._next.update(starts)
        self._behind.update({p: ends[p] for p in partitions if starts[p] < ends[p]})
        log.info(
            "reading %d partitions from %s: %d records to catch up",
            len(partitions),
            dt.datetime.fromtimestamp(since / 1000, self.board.state.zone).isoformat(),
            sum(ends[p] - starts[p] for p in partitions),
        )
        return starts

    def _check_caught_up(self) -> None:
        if self._behind or self.board.ready.is_set():
            return
        self.catch_up_s = time.monotonic() - self._started_at
        self.caught_up_events = self.read
        log.info("caught up in %.1f s (%d events)", self.catch_up_s, self.caught_up_events)
        self.metrics.catch_up_seconds.set(self.catch_up_s)
        self.board.ready.set()

    async def _undecodable(self, error: UndecodableRecord, record: RawRecord) -> None:
        # one bad record must not stop the wallboard: counted, located, skipped
        self.metrics.undecodable.labels(record.topic).inc()
        log.warning("record skipped: %s", error)
        self._passed(record)

    def lag(self) -> dict[str, int]:
        """Records not read yet, per topic."""
        consumer = self._consumer
        per_topic: dict[str, int] = {}
        if consumer is None:
            return per_topic
        for where, position in self._next.items():
            high = consumer.highwater(where)
            if high is not None:
                per_topic[where.topic] = per_topic.get(where.topic, 0) + max(0, high - position)
        return per_topic
