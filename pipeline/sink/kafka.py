"""The Kafka sink: aiokafka with acks=all and idempotence, every wait bounded, self-healing.

aiokafka's ``send`` and ``stop`` can wait forever when the broker is gone, so every call
here runs under a timeout and turns what it raises into one of our errors, keeping
aiokafka's own ``retriable`` flag across the edge:

- retriable (connection lost, leader moving, timeout): ``NotDurable`` — the caller spools;
- a record Kafka will never take (too large for the topic, invalid topic, a policy):
  ``RefusedByKafka`` — never spooled, the caller sets it aside;
- writes denied (an ACL): not the record's fault, and an operator can lift it, so it is
  ``NotDurable`` (spooled) like a transient error, but no new producer can cure it: the
  sink is unhealthy at once, the reason named, until a record is taken again;
- fatal to the idempotent producer (``OutOfOrderSequenceNumber``, ``UnknownProducerId``,
  ``InvalidProducerEpoch``, a dead sender task): the producer's sequence state no longer
  matches the broker's and no retry can succeed, so the producer is closed and a new one
  (a new producer id) is started. Records of the old one may then arrive twice; their
  ``event_id`` names them.

A watchdog also replaces a producer that has failed every publish for ``heal_after_s``
while the cluster still answers metadata requests, and declares the sink unhealthy
(``/healthz`` 503, so an orchestrator restarts the process) when that keeps happening for
``give_up_s`` despite new producers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    BrokerResponseError,
    ClusterAuthorizationFailedError,
    IllegalStateError,
    InvalidProducerEpoch,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnknownProducerId,
)

from pipeline.config import Config
from pipeline.errors import AckTimeout, BrokerUnavailable, RefusedByKafka, TooLargeForKafka
from pipeline.kafka_client import producer_settings
from pipeline.record import Record
from pipeline.runtime.loop_metrics import Tally
from pipeline.runtime.metrics import METRICS
from pipeline.runtime.tasks import cancel, supervise
from pipeline.sink.base import Durability
from pipeline.sink.codecs import levels_for, set_levels
from pipeline.sink.deadlines import Deadlines
from pipeline.sink.ensure import check_message_limits, ensure_topics
from pipeline.sink.partitioner import partition_for

log = logging.getLogger(__name__)

_READY_CACHE_S = 1.0
_RESTART_DELAY_S = 1.0
_WATCH_EVERY_S = 1.0
_HEADROOM_BYTES = 64 * 1024

# Errors after which this producer can never deliver again.
_FATAL_TO_PRODUCER: tuple[type[KafkaError], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
    ProducerClosed,
    IllegalStateError,
)
_TOO_LARGE: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)


# Writes not allowed to this client: a setting of the cluster, not a property of the record.
_DENIED: tuple[type[KafkaError], ...] = (
    TopicAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)


def classify(exc: BaseException) -> str:
    """``"refused"`` (never retry this record), ``"fatal"`` (replace the producer),
    ``"denied"`` (keep the record, say the ingress cannot heal) or ``"transient"`` (try
    again later)."""
    if isinstance(exc, _FATAL_TO_PRODUCER):
        return "fatal"
    if isinstance(exc, _DENIED):
        return "denied"
    if isinstance(exc, _TOO_LARGE):
        return "refused"
    if isinstance(exc, BrokerResponseError) and not exc.retriable:
        return "refused"  # invalid topic, not authorised, policy violation...
    if isinstance(exc, KafkaError) and type(exc) is KafkaError:
        return "fatal"  # aiokafka's "Unexpected error during batch delivery": sender died
    return "transient"


class KafkaSink:
    def __init__(self, config: Config, heal_after_s: float | None = None) -> None:
        self._config = config
        set_levels(levels_for(config))
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._ready_at = 0.0
        self._ready = False
        self._published: dict[str, Tally] = {}
        # topic -> its partitions, from the current producer's metadata
        self._partitions: dict[str, list[TopicPartition]] = {}
        # the producer's loop's create_future, once one is connected (see ``_appended``)
        self._new_future: Callable[[], asyncio.Future[object]] | None = None
        settings = producer_settings(config)
        # Records up to this size cannot pass the request limit with their key and headers.
        self._direct_bytes = settings["max_request_size"] - _HEADROOM_BYTES
        self._append_timeout_s = settings["request_timeout_ms"] / 1000
        # every publish waits at most ack_timeout_s: one shared timer per tick, not one each
        self._deadlines = Deadlines(config.ack_timeout_s)
        self._heal_after_s = heal_after_s or max(10.0, 2 * config.ack_timeout_s)
        self.give_up_s = 12 * self._heal_after_s
        self._failing_since: float | None = None  # first failure of the current streak
        self._failed_at = 0.0  # the latest failure
        self._replaced_at = 0.0  # the latest replacement
        self._replaced_in_streak = 0
        self.unhealthy: str | None = None
        self.producer_restarts = 0

    async def start(self) -> None:
        """Connect in the background; wait a little for it, so a fresh ingress starts ready."""
        self._connect()
        self._watchdog = supervise("kafka-watchdog", self._watch)
        assert self._connector is not None
        await asyncio.wait({self._connector}, timeout=self._config.ack_timeout_s)

    def _connect(self) -> None:
        self._connector = supervise("kafka-connect", self._connect_loop)

    async def _connect_loop(self) -> None:
        while self._producer is None:
            producer = AIOKafkaProducer(**producer_settings(self._config))
            try:
                await asyncio.wait_for(producer.start(), self._config.ack_timeout_s * 2)
            except asyncio.CancelledError:  # shut down while connecting
                await _stop_quietly(producer, self._config.ack_timeout_s)
                raise
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("Kafka not reachable at %s: %s", self._config.bootstrap_servers, exc)
                await _stop_quietly(producer, self._config.ack_timeout_s)
                await asyncio.sleep(_RESTART_DELAY_S)
                continue
            log.info("connected to Kafka at %s", self._config.bootstrap_servers)
            if self._config.create_topics:
                await ensure_topics(self._config)
            await check_message_limits(self._config)
            self._partitions.clear()
            # A metadata update may add partitions: counts are read again after each one.
            producer.client.cluster.add_listener(lambda _cluster: self._partitions.clear())
            self._new_future = asyncio.get_running_loop().create_future
            self._producer = producer

    def _published_counter(self, topic: str) -> Tally:
        counter = self._published.get(topic)
        if counter is None:  # a handful of topics: made once each, not per record
            counter = self._published[topic] = METRICS.published.labels(topic)
        return counter

    async def wait_connected(self, timeout_s: float = 30.0) -> None:
        """For commands that need Kafka before they start, not the ingress."""
        deadline = time.monotonic() + timeout_s
        while self._producer is None:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"Kafka not reachable within {timeout_s:g} s")
            connector = self._connector
            if connector is not None and not connector.done():
                await asyncio.wait({connector}, timeout=max(0.0, deadline - time.monotonic()))
            else:
                self._connect()

    async def publish(self, records: Sequence[Record]) -> Durability:
        started = time.perf_counter()
        deliveries: list[asyncio.Future[object]] = []
        outcomes: list[object] = []
        failed = False
        producer = self._producer
        try:
            with self._deadlines.bound():
                if producer is None:
                    producer = await self._reconnected()
                # Appending can itself wait (full buffer, missing metadata): bound both steps.
                for r in records:
                    try:
                        tp = self._direct_partition(r)
                        delivery = None if tp is None else self._appended(producer, tp, r)
                        if delivery is None:
                            delivery = await self._append(producer, tp, r)
                    except KafkaError as exc:  # refused before it left: too large, closed...
                        delivery = _failed_future(exc)
                    deliveries.append(delivery)
                # One after the other: a webhook's records are acknowledged by one response,
                # so the later awaits find their futures done (cheaper than a gather).
                for delivery in deliveries:
                    try:
                        outcomes.append(await delivery)
                    except Exception as exc:
                        outcomes.append(exc)
                        failed = True
        except TimeoutError as exc:
            if producer is None:
                raise BrokerUnavailable("not connected to Kafka (yet, or again)") from exc
            # Deliveries left behind still finish or fail; nobody awaits them any more.
            for delivery in deliveries:
                delivery.add_done_callback(_swallow)
            self._failed(producer)
            raise AckTimeout(
                f"Kafka did not acknowledge within {self._config.ack_timeout_s:g} s"
            ) from exc
        if not failed:
            self._acknowledged(records, started)
            return "published"
        return self._outcome(producer, records, outcomes, started)

    def _direct_partition(self, record: Record) -> TopicPartition | None:
        """The record's partition, once its topic's partitions are known and the record is
        well under the request limit; None: aiokafka's ``send`` does it all (``_send``)."""
        partitions = self._partitions.get(record.topic)
        if partitions is None or len(record.value) > self._direct_bytes:
            return None
        return partitions[partition_for(record.key, len(partitions))]

    def _appended(
        self, producer: AIOKafkaProducer, tp: TopicPartition, record: Record
    ) -> asyncio.Future[object] | None:
        """The record added to the open batch of ``tp``, if there is room; else None.

        What aiokafka's ``add_message`` does first, without its coroutine and the future it
        makes through a lookup of the running loop (a getpid() system call on Python 3.11):
        about 2 us a record.
        """
        new_future = self._new_future
        accumulator = producer._message_accumulator
        if new_future is None or accumulator._exception is not None or accumulator._closed:
            return None  # add_message raises it
        open_batches = accumulator._batches.get(tp)
        if not open_batches:
            return None  # add_message opens one
        future: asyncio.Future[object] | None = open_batches[-1].append(
            record.key, record.value, None, _create_future=new_future, headers=record.headers
        )
        return future  # None when full: add_message waits for room

    async def _append(
        self, producer: AIOKafkaProducer, tp: TopicPartition | None, record: Record
    ) -> asyncio.Future[object]:
        """The record into the producer's batch for ``tp``; its delivery future.

        With a partition (``_direct_partition``), straight into aiokafka's accumulator: its
        ``send`` would look the partition set up twice (copying it each time), check the
        partition we chose, and estimate the size we bound here (about 8 us a record).
        Without one (partitions not known yet, a record near the request limit), ``send``.
        """
        if tp is None:
            return await self._send(producer, record)
        future: asyncio.Future[object] = await producer._message_accumulator.add_message(
            tp, record.key, record.value, self._append_timeout_s, headers=record.headers
        )
        return future

    async def _send(self, producer: AIOKafkaProducer, record: Record) -> asyncio.Future[object]:
        partition = None
        known = producer.client.cluster.partitions_for_topic(record.topic)
        if known:
            count = len(known)
            self._partitions[record.topic] = [TopicPartition(record.topic, p) for p in range(count)]
            partition = partition_for(record.key, count)
        future: asyncio.Future[object] = await producer.send(
            record.topic, record.value, key=record.key, partition=partition, headers=record.headers
        )
        return future

    async def _reconnected(self) -> AIOKafkaProducer:
        """The producer once connected; a replacement usually takes tens of milliseconds.

        Only while a connection attempt is under way: with none (stopped), fail at once.
        """
        while True:
            connector = self._connector
            if connector is None or connector.done():
                raise BrokerUnavailable("not connected to Kafka")
            await asyncio.wait({connector})
            if self._producer is not None:
                return self._producer

    def _outcome(
        self,
        producer: AIOKafkaProducer,
        records: Sequence[Record],
        outcomes: list[object],
        started: float,
    ) -> Durability:
        """A publish of which some record failed (``publish`` answers the rest itself)."""
        errors = [
            (r, o) for r, o in zip(records, outcomes, strict=True) if isinstance(o, BaseException)
        ]
        by_kind: dict[str, BaseException] = {}
        for _, error in errors:
            by_kind.setdefault(classify(error), error)
        if "fatal" in by_kind:
            fatal = by_kind["fatal"]
            self._replace(producer, f"{type(fatal).__name__}: {fatal}")
            raise BrokerUnavailable(f"Kafka producer failed for good ({fatal!r}); replacing it")
        if "denied" in by_kind:
            denied = by_kind["denied"]
            self._denied(f"Kafka denies this client's writes ({denied!r}): an ACL or the principal")
            # the refused batch used up its sequence numbers (see below): a new producer
            self._replace(producer, f"Denied: {denied!r}")
            raise BrokerUnavailable(f"Kafka denied the write: {denied!r}")
        if "transient" in by_kind:
            self._failed(producer)
            raise BrokerUnavailable(f"Kafka refused the record for now: {by_kind['transient']!r}")
        taken = [
            r for r, o in zip(records, outcomes, strict=True) if not isinstance(o, BaseException)
        ]
        self._acknowledged(taken, started)
        # What is left was refused: a batch the broker refused still used up its sequence numbers,
        # and the next one for that partition would fail with OutOfOrderSequenceNumber. A
        # new producer starts its sequences afresh.
        self._replace(producer, f"AfterRefusal: {errors[0][1]!r}", failure=False)
        refused = [r for r, _ in errors]
        too_large = all(isinstance(e, _TOO_LARGE) for _, e in errors)
        kind = TooLargeForKafka if too_large else RefusedByKafka
        raise kind(f"Kafka will not take the record: {errors[0][1]!r}", refused)

    def _acknowledged(self, records: Sequence[Record], started: float) -> None:
        self._succeeded()
        METRICS.ack_latency.observe(time.perf_counter() - started)
        for r in records:
            self._published_counter(r.topic).inc()

    # -- healing ---------------------------------------------------------------------------

    def _succeeded(self) -> None:
        self._failing_since = None
        self._replaced_in_streak = 0
        if self.unhealthy is not None:
            log.info("Kafka takes records again: healthy")
            self.unhealthy = None
            METRICS.healthy.set(1)

    def _denied(self, reason: str) -> None:
        """Unhealthy at once: no new producer lifts a denial; a record taken ends it."""
        if self.unhealthy != reason:
            self.unhealthy = reason
            METRICS.healthy.set(0)
            log.error("the ingress cannot heal: %s", reason)

    def _failed(self, producer: AIOKafkaProducer) -> None:
        if producer is self._producer:
            self._failed_at = time.monotonic()
            if self._failing_since is None:
                self._failing_since = self._failed_at

    def _replace(self, producer: AIOKafkaProducer, reason: str, failure: bool = True) -> None:
        """Drop ``producer`` (once, however many publishes saw it fail) and connect anew.

        ``failure``: the producer failed (part of a streak the watchdog judges), rather
        than being renewed as a precaution.
        """
        if producer is not self._producer:
            return  # already replaced
        log.warning("replacing the Kafka producer: %s", reason)
        METRICS.producer_restarts.labels(reason.partition(":")[0]).inc()
        self.producer_restarts += 1
        self._replaced_at = time.monotonic()
        if failure:
            self._failed(producer)
            self._replaced_in_streak += 1
        self._producer = None
        closing = asyncio.create_task(_stop_quietly(producer, self._config.ack_timeout_s))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        if self._connector is None or self._connector.done():
            self._connect()

    async def _watch(self) -> None:
        """Replace a producer stuck while the cluster answers; give up after ``give_up_s``."""
        while True:
            await asyncio.sleep(_WATCH_EVERY_S)
            producer = self._producer
            if producer is not None and _sender_dead(producer):
                self._replace(producer, "SenderStopped: the producer's sender task ended")
                continue
            since = self._failing_since
            if since is None or time.monotonic() - self._failed_at > self._heal_after_s:
                continue  # no failure lately: nothing to judge (no traffic is no evidence)
            failing_s = time.monotonic() - since
            if producer is None or not await self._metadata_ok(producer):
                continue  # Kafka itself is away: the spool holds on, nothing to heal here
            # Each new producer gets its own grace, longer than the one before it had.
            quiet_s = time.monotonic() - max(since, self._replaced_at)
            if quiet_s >= self._heal_after_s * (self._replaced_in_streak + 1):
                self._replace(producer, f"Stalled: no record taken for {failing_s:.0f} s")
            if failing_s >= self.give_up_s and self._replaced_in_streak >= 2 and not self.unhealthy:
                self.unhealthy = (
                    f"no record taken for {failing_s:.0f} s while the cluster answers, despite "
                    f"{self._replaced_in_streak} new producers: restart needed"
                )
                METRICS.healthy.set(0)
                log.error("the ingress cannot heal: %s", self.unhealthy)

    async def _metadata_ok(self, producer: AIOKafkaProducer) -> bool:
        try:
            async with asyncio.timeout(min(2.0, self._config.ack_timeout_s)):
                return bool(await producer.client.fetch_all_metadata())
        except (KafkaError, OSError, TimeoutError):
            return False

    # -- the Sink contract -----------------------------------------------------------------

    async def ready(self) -> bool:
        producer = self._producer
        if producer is None:
            return False
        now = time.monotonic()
        if now - self._ready_at < _READY_CACHE_S:
            return self._ready
        self._ready = await self._metadata_ok(producer)
        self._ready_at = time.monotonic()
        return self._ready

    def health(self) -> str | None:
        return self.unhealthy

    def describe(self) -> dict[str, object]:
        return {
            "kafka_connected": self._producer is not None,
            "kafka_producer_restarts": self.producer_restarts,
        }

    async def stop(self) -> None:
        await cancel(self._watchdog)
        await cancel(self._connector)
        if self._producer is not None:
            await _stop_quietly(self._producer, self._config.ack_timeout_s * 2)
            self._producer = None
        if self._closing:
            await asyncio.gather(*self._closing)


def _swallow(future: asyncio.Future[object]) -> None:
    """Retrieve a late delivery's error, so asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()


def _failed_future(exc: BaseException) -> asyncio.Future[object]:
    future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


def _sender_dead(producer: AIOKafkaProducer) -> bool:
    """aiokafka's sender task ends only on a fatal error; then nothing is ever delivered."""
    sender = getattr(producer, "_sender", None)
    task = getattr(sender, "sender_task", None)
    return task is not None and task.done()


async def _stop_quietly(producer: AIOKafkaProducer, timeout_s: float) -> None:
    """Flush and close, giving up after ``timeout_s``: stop() alone can hang on a dead broker."""
    try:
        await asyncio.wait_for(producer.stop(), timeout_s)
    except Exception as exc:  # a failed producer may raise anything while closing
        log.warning("Kafka producer did not close cleanly: %r", exc)
