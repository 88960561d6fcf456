"""Kafka -> batches -> the warehouse, exactly once.

The warehouse holds the only offsets the loader trusts: on every partition assignment
it seeks to them (the partition's beginning when there is none), and each batch's rows
and offsets commit in one transaction, the offset move checking the offset it expected.
So a crash at any point leaves the warehouse at a batch boundary it can resume from, a
stale loader cannot move a partition back, and ``event_id`` keys drop Plug's own
redeliveries. Kafka's committed offsets are written too, for lag tools only.

Target calls are blocking and run on one worker thread, one write at a time and in
order; the event loop keeps fetching and decoding meanwhile. Closed batches queue for
the writer (``writes.py``: at most ``QUEUED``, each expecting the offsets the one before
it leaves), so the next write starts as soon as the last one commits; with the queue
full, partitions are paused until the writer catches up (bounded memory). While the
warehouse is unavailable, partitions are paused and the batch is retried as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from pipeline.config import Config
from pipeline.consume.decode import event_type_of_topic
from pipeline.errors import StaleOffsets, TopicRecreated, WarehouseUnavailable
from pipeline.kafka_client import admin_settings, consumer_settings
from pipeline.route import deadletter_topic, event_topic, raw_topic
from pipeline.warehouse.batch import DEADLETTER, RAW, TP, Batch, Limits, Source, is_behind
from pipeline.warehouse.health import WarehouseHealth
from pipeline.warehouse.metrics import LoaderMetrics
from pipeline.warehouse.personal import Personal
from pipeline.warehouse.target import Target
from pipeline.warehouse.writes import QUEUED, Writes
from pipeline.webhooks import EventType

log = logging.getLogger(__name__)
T = TypeVar("T")
Fetched = list[tuple[TopicPartition, list[Any]]]  # records as getmany returns them, in order

DEFAULT_GROUP = "plug-pipeline-load"
# A warehouse back after an outage is written to within a retry and a connect timeout
# (postgres.py): at most 2 + 3 s.
_RETRY_MIN_S, _RETRY_MAX_S = 0.2, 2.0
_KAFKA_RETRY_MAX_S = 5.0  # the ingress's own wait between tries
# The most records one fetch hands over: aiokafka makes a record object of each, and
# those of one fetch are alive together until they are rows (or carried, see _add); the
# rest wait in aiokafka's buffer, still compressed. Asking for a batch's whole room at once
# (about 2,900 of the bench's records), replays of 200,000 lz4 records into DuckDB peaked
# at 242-256 MB of RSS (target 256); 500 at a time, at 233-237, events/s within the runs'
# noise (alternated, four each).
FETCH_RECORDS = 500


@dataclass(frozen=True)
class Options:
    group: str = DEFAULT_GROUP
    include_raw: bool = False
    until_caught_up: bool = False
    limits: Limits = field(default_factory=Limits)
    instance_id: str | None = None  # static group membership: a restart takes its place back
    tenant: str | None = None  # only this tenant's records become rows (the rest: skipped)


def sources(prefix: str, include_raw: bool) -> dict[str, Source]:
    """Topic -> what its records are: every event topic, the dead letters, raw if asked."""
    found: dict[str, Source] = {event_topic(prefix, e): e for e in EventType}
    found[deadletter_topic(prefix)] = DEADLETTER
    if include_raw:
        found[raw_topic(prefix)] = RAW
    return found


class Loader:
    def __init__(
        self, config: Config, target: Target, options: Options, metrics: LoaderMetrics
    ) -> None:
        self.config = config
        self.target = target
        self.options = options
        self.metrics = metrics
        self.sources = sources(config.topic_prefix, options.include_raw)
        # the policy and the erased customers, shared by every batch (personal.py)
        self.personal = Personal.of(config, lambda tenant: metrics.keyless.labels(tenant).inc())
        self.stored: dict[TP, int | None] = {}  # the warehouse's offsets, assigned partitions
        self.next: dict[TP, int | None] = {}  # the next offset to add to the batch
        self.batch = self._new_batch(options.limits)
        self.generation = 0  # bumped on every (re)assignment: older fetches are dropped
        # Records fetched past a full batch, with the generation they were fetched in: the
        # next batch starts with them (see _add).
        self._carried: tuple[int, Fetched] | None = None
        self._per_record = (1.0, 1024.0)  # the last batch's rows and bytes a record (_room)
        self.loaded = 0  # records committed since start
        self.rows = 0  # rows handed to the warehouse since start
        self.skipped = 0  # records of other tenants committed as passed over (--tenant)
        self.ends: dict[TP, int] = {}
        self.begins: dict[TP, int] = {}
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="warehouse")
        self._consumer: AIOKafkaConsumer | None = None
        self._writes = Writes(
            functools.partial(_write, target, options.group), self._executor, self._committed
        )
        self._to_kafka: dict[TP, int] = {}  # committed offsets not yet told to Kafka
        self._failure: TopicRecreated | None = None  # found in a rebalance callback
        self._last_check = 0.0
        self._lag_at = 0.0
        self._behind = False  # is_behind, as of the last _close
        self.health = WarehouseHealth(
            target.describe(), metrics.warehouse_up, metrics.warehouse_last_ok
        )

    def _new_batch(self, limits: Limits) -> Batch:
        return Batch(limits, personal=self.personal, tenant=self.options.tenant)

    # -- the target, on its own thread --------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _retrying(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """Call the target until it answers; the warehouse being down is a wait, not an end."""
        delay = _RETRY_MIN_S
        while True:
            try:
                result = await self._call(fn, *args)
            except WarehouseUnavailable as exc:
                if self._stop.is_set():
                    raise
                self.metrics.retries.inc()
                self.health.failed(what, exc, _RETRY_MAX_S)
                await self._sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
            else:
                self.health.ok()
                return result

    async def _probe(self) -> None:
        """Ask the warehouse whether it is there when nothing else has for a while (and
        no write is in flight): a dead connection is found and told while idle too."""
        if self._writes or not self.health.probe_due(_RETRY_MAX_S):
            return
        try:
            await self._call(self.target.ping)
        except WarehouseUnavailable as exc:
            self.health.failed("probe", exc, _RETRY_MAX_S)
        else:
            self.health.ok()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def stop(self) -> None:
        self._stop.set()

    # -- the run ------------------------------------------------------------------------
    async def run(self) -> None:
        """Load until stopped (or caught up); the last batch is written before returning."""
        migrated = await self._retrying("migrate", self.target.migrate)
        if migrated:
            log.info("warehouse %s: applied migrations %s", self.target.describe(), migrated)
        await self._check_chains()
        await self._load_erased()
        settings = consumer_settings(
            self.config.kafka,
            self.options.group,
            client_id="plug-pipeline-load",
            auto_offset_reset="earliest",
            group_instance_id=self.options.instance_id,
            # Larger fetches per partition mean fewer fetch requests and responses to
            # decode, but these limits count compressed bytes: 256 KiB of lz4 records (the
            # ingress's default) hold as many records as about 1 MiB uncompressed. Replays
            # of lz4 records into DuckDB peaked at 239-247 MB of RSS with 256 KiB and at
            # 246-265 with 512 KiB (target 256), which was about 6 % faster (five of each,
            # alternated). Uncompressed, 512 KiB took 3-5 us less CPU per event than 256.
            fetch_max_bytes=4 * 1024 * 1024,
            max_partition_fetch_bytes=256 * 1024,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
            # a topic created after start (the ingress makes them) is joined within this
            metadata_max_age_ms=30000,
        )
        consumer = await self._start_consumer(settings)
        if consumer is None:  # stopped while Kafka was unreachable
            await self._call(self.target.close)
            self._executor.shutdown(wait=True)
            return
        self._consumer = consumer
        try:
            await self._measure_ends(consumer)
            consumer.subscribe(list(self.sources), listener=_Listener(self))
            await self._loop(consumer)
        finally:
            await self._shutdown(consumer)

    async def _start_consumer(self, settings: dict[str, Any]) -> AIOKafkaConsumer | None:
        """A started consumer; while Kafka cannot be reached, a warning and another try
        (as the ingress does), each failed consumer closed. None when stopped meanwhile."""
        delay = _RETRY_MIN_S
        while True:
            consumer = AIOKafkaConsumer(**settings)
            try:
                await consumer.start()
            except (KafkaError, OSError) as exc:
                await consumer.stop()
                if self._stop.is_set():
                    return None
                log.warning(
                    "Kafka not reachable at %s, trying again in %.1fs: %s",
                    self.config.kafka.bootstrap_servers, delay, exc,
                )  # fmt: skip
                await self._sleep(delay)
                if self._stop.is_set():
                    return None
                delay = min(delay * 2, _KAFKA_RETRY_MAX_S)
                continue
            log.info("connected to Kafka at %s", self.config.kafka.bootstrap_servers)
            return consumer

    async def _measure_ends(self, consumer: AIOKafkaConsumer) -> None:
        """The end offsets at start: what ``--until-caught-up`` waits for."""
        if not self.options.until_caught_up:
            return
        # the consumer's metadata knows only subscribed topics once assigned: ask the cluster
        admin = AIOKafkaAdminClient(**admin_settings(self.config.kafka, self.config.ack_timeout_s))
        await admin.start()
        try:
            described = await admin.describe_topics(list(self.sources))
        finally:
            await admin.close()
        tps = [
            TopicPartition(d["topic"], p["partition"])
            for d in described
            if d["error_code"] == 0
            for p in d["partitions"]
        ]
        if tps:
            ends = await consumer.end_offsets(tps)
            begins = await consumer.beginning_offsets(tps)
            self.ends = _keyed(ends)
            self.begins = _keyed(begins)
            # before any assignment: a recreated topic would otherwise look caught up
            stored = await self._retrying("offsets", self.target.offsets, self.options.group)
            self._check_positions(stored, {}, self.ends)  # a gap is told on assignment

    def _check_positions(
        self, stored: dict[TP, int], begins: dict[TP, int], ends: dict[TP, int]
    ) -> dict[TP, int]:
        """The stored offsets against Kafka's: raises ``TopicRecreated`` where one is past
        the partition's end; where one is before its beginning (retention deleted records
        never loaded) says so and returns the beginning to load from instead."""
        moved: dict[TP, int] = {}
        for tp, end in sorted(ends.items()):
            offset = stored.get(tp)
            if offset is None:
                continue
            if offset > end:
                topic, partition = tp
                group = self.options.group
                raise TopicRecreated(
                    f"{topic}[{partition}]: the warehouse has loaded up to offset {offset} "
                    f"(group {group!r}) but the partition now ends at offset {end}: the topic "
                    "was deleted and created again, and loading on would skip its new "
                    "records. To load the new topic from its beginning, run "
                    f"DELETE FROM plug_offsets WHERE group_name = '{group}' AND topic = "
                    f"'{topic}' in the warehouse, then start the loader again (events "
                    "already loaded are dropped by their event_id). An Iceberg lake keeps "
                    "its offsets in plug_offsets' snapshot summary, not in rows: load it "
                    "with a new --group instead (every topic is read again; what is "
                    "there already is dropped by its keys)."
                )
            begin = begins.get(tp, 0)
            if offset < begin:
                log.error(
                    "%s[%d]: records %d..%d were deleted by Kafka (retention) before they "
                    "were loaded; loading from offset %d",
                    *tp, offset, begin - 1, begin,
                )  # fmt: skip
                moved[tp] = begin
        return moved

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await self._load(consumer)
        except WarehouseUnavailable:
            if not self._stop.is_set():
                raise
            # stopped while waiting for the warehouse: the batch is reloaded next time

    async def _load(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stop.is_set():
            generation, fetched = await self._fetch(consumer)
            async with self._lock:
                if self._failure is not None:
                    raise self._failure
                below = self._take(consumer, generation, fetched)
                # the records are rows now (or carried): not held while the writer is awaited
                del fetched
                if below:
                    await self._check_ends(consumer, below)
                if self.batch.full() or (self.batch.records and self.batch.due_in() == 0):
                    await self._settle(consumer, keep=QUEUED - 1)
                    self._close()
                elif self._writes.failed():
                    await self._settle(consumer, keep=len(self._writes))
            if self._to_kafka:
                offsets, self._to_kafka = self._to_kafka, {}
                await self._commit_to_kafka(consumer, offsets)
            await self._probe()
            if time.monotonic() - self._lag_at >= 1:
                self._lag_at = time.monotonic()
                for topic, n in self.lag().items():
                    self.metrics.lag.labels(topic).set(n)
            if self.options.until_caught_up and await self._caught_up():
                log.info("caught up with the end offsets seen at start")
                return

    async def _fetch(self, consumer: AIOKafkaConsumer) -> tuple[int, Fetched]:
        """The records carried over from the last batch, or what the batch has room for;
        with the generation they were fetched in."""
        if self._carried is not None:
            carried, self._carried = self._carried, None
            return carried
        generation = self.generation
        got = await consumer.getmany(
            timeout_ms=max(1, int(min(self.batch.due_in(), 0.5) * 1000)),
            max_records=self._room(),
        )
        return generation, list(got.items())

    def _room(self) -> int:
        """About how many more records the batch holds, were they like those before them
        (in rows: an attendance is a row per message too, and in bytes), at most
        ``FETCH_RECORDS``. What a fetch brings beyond it is carried over, and held
        meanwhile."""
        batch = self.batch
        rows, size = batch.per_record() or self._per_record
        by_rows = (batch.limits.rows - batch.row_count) / max(rows, 1.0)
        by_bytes = (batch.limits.bytes - batch.size) / max(size, 1.0)
        return max(1, min(int(min(by_rows, by_bytes)) + 1, FETCH_RECORDS))

    def _take(
        self, consumer: AIOKafkaConsumer, generation: int, fetched: Fetched
    ) -> list[TopicPartition]:
        """Fetched records into the batch (what does not fit is carried over); the
        partitions that went below their offset (see ``_add``)."""
        if generation != self.generation:
            self._refetch(consumer, fetched)
            return []
        below, rest = self._add(fetched)
        if rest:
            self._carried = (generation, rest)
        return below

    def _refetch(self, consumer: AIOKafkaConsumer, fetched: Fetched) -> None:
        """Records fetched across a (re)assignment may predate its seek: read them again."""
        for tp, _ in fetched:
            position = self.next.get((tp.topic, tp.partition))
            if position is not None:
                consumer.seek(tp, position)

    async def _check_ends(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        """Records came from below where a partition was: if it now ends below too, the
        topic was recreated under the loader (faster than the consumer's metadata saw)."""
        ends = await consumer.end_offsets(tps)
        loaded = {key: n for key, n in self.next.items() if n is not None}
        self._check_positions(loaded, {}, _keyed(ends))

    def _add(self, fetched: Fetched) -> tuple[list[TopicPartition], Fetched]:
        """Records into the batch until it is full; the partitions whose records started
        below the offset expected (their records skipped), and the records left over.

        A fetch can hold far more than a batch: Kafka's fetch limits count compressed
        bytes, so a fetch of lz4 records (the ingress's default) holds several times the
        records its size says, and ``getmany`` hands over as many records as asked whatever
        their rows and bytes. Added whole, they made batches of up to 20 MB and 25,000 rows
        where the limits were 8 MiB and 5,000 (bench/load.py, records in lz4). What is left
        starts the next batch, in order.
        """
        below = []
        batch = self.batch
        for i, (tp, records) in enumerate(fetched):
            key = (tp.topic, tp.partition)
            if key not in self.stored:
                continue  # no longer ours
            source = self.sources.get(tp.topic) or event_type_of_topic(
                self.config.topic_prefix, tp.topic
            )
            if source is None:
                continue
            expected = self.next.get(key)
            if records and expected is not None and records[0].offset < expected:
                below.append(tp)
            for j, rec in enumerate(records):
                if expected is not None and rec.offset < expected:
                    continue  # already in this batch or in the warehouse
                if batch.full():
                    self.next[key] = expected
                    return below, [(tp, records[j:]), *fetched[i + 1 :]]
                batch.add(
                    source,
                    tp.topic,
                    tp.partition,
                    rec.offset,
                    rec.timestamp,
                    rec.key,
                    rec.value,
                    rec.headers,
                )
                expected = rec.offset + 1
            self.next[key] = expected
        return below, []

    def _close(self) -> None:
        """Queue the batch for the writer; the next one fills meanwhile (larger while the
        loader is far behind, if the target asks for it)."""
        self._behind = is_behind(sum(self.lag().values()), self._behind)
        limits = self.options.limits
        if self._behind:
            limits = limits.times(self.target.catch_up_factor)
        batch, self.batch = self.batch, self._new_batch(limits)
        if not batch.records:
            return
        self._per_record = batch.per_record() or self._per_record
        batch.behind = self._behind
        batch.close()
        self.target.prepare(batch)
        self._writes.add(batch, self.stored)

    async def _settle(
        self, consumer: AIOKafkaConsumer | None, keep: int, once: bool = False
    ) -> None:
        """Wait until at most ``keep`` batches are queued and the head has not failed; the
        partitions are paused while waiting (no more records held). A write that found the
        warehouse unavailable is retried (unless ``once``); on a stale offset it and every
        batch after it are dropped, and the partitions seek to the warehouse's offsets."""
        delay = _RETRY_MIN_S
        with _pausing(consumer) as pause:
            while True:
                try:
                    await self._writes.settle(keep, pause)
                    return
                except WarehouseUnavailable as exc:
                    if once or self._stop.is_set():
                        raise
                    self.metrics.retries.inc()
                    self.health.failed("write", exc, _RETRY_MAX_S)
                    await self._sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX_S)
                    self._writes.retry()
                except StaleOffsets as exc:
                    dropped = self._writes.records + self.batch.records
                    log.warning("dropped %d records to reload them: %s", dropped, exc)
                    self._writes.clear()
                    self.batch = self._new_batch(self.options.limits)
                    if consumer is not None:
                        tps = [TopicPartition(*tp) for tp in self.stored]
                        await self._seek_stored(consumer, tps)
                    return

    async def _flush(self, once: bool = False) -> None:
        """Write everything held, and wait for it."""
        self._close()
        await self._settle(None, keep=0, once=once)

    def _committed(self, batch: Batch, committed_at: float) -> None:
        """A batch's write committed: its offsets are the warehouse's now."""
        self.health.ok()
        self.stored.update(batch.offsets)
        self._to_kafka.update(batch.offsets)
        self.loaded += batch.records
        self.rows += batch.row_count
        m = self.metrics
        m.batch_seconds.observe(committed_at - batch.closed_at)
        for topic, n in batch.events.items():
            m.events.labels(topic).inc(n)
        for topic, n in batch.skipped.items():
            m.skipped.labels(topic).inc(n)
            self.skipped += n
        for topic, n in batch.errors.items():
            m.load_errors.labels(topic).inc(n)
        for table, n in batch.rows_per_table().items():
            m.rows.labels(table).inc(n)
        now_ms = committed_at * 1000
        observe = m.freshness.observe
        for ts in batch.timestamps:
            observe(max(0.0, now_ms - ts) / 1000)

    async def _commit_to_kafka(self, consumer: AIOKafkaConsumer, offsets: dict[TP, int]) -> None:
        """Informational only (lag tools read it); the warehouse's offsets decide."""
        mine = consumer.assignment()
        commit = {
            TopicPartition(*tp): OffsetAndMetadata(off, "")
            for tp, off in offsets.items()
            if TopicPartition(*tp) in mine
        }
        if not commit:
            return
        try:
            await asyncio.wait_for(consumer.commit(commit), 5)
        except (KafkaError, TimeoutError) as exc:
            log.debug("Kafka offset commit skipped: %r", exc)

    async def _caught_up(self) -> bool:
        busy = self.batch.records or self._writes or self._carried
        if busy or time.monotonic() - self._last_check < 0.5:
            return False
        self._last_check = time.monotonic()
        stored = await self._retrying("offsets", self.target.offsets, self.options.group)
        return all(stored.get(tp, self.begins[tp]) >= end for tp, end in self.ends.items())

    # -- rebalances ---------------------------------------------------------------------
    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            if self.batch.records or self._writes:
                try:  # one attempt: whoever gets the partitions resumes from the warehouse
                    await self._flush(once=True)
                except Exception as exc:
                    log.warning("batch not written before a rebalance (reloaded later): %s", exc)
            self._writes.clear()
            self.batch = self._new_batch(self.options.limits)
            for tp in revoked:
                self.stored.pop((tp.topic, tp.partition), None)
                self.next.pop((tp.topic, tp.partition), None)
            self.generation += 1

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._lock:
            if self._consumer is not None:
                try:
                    await self._seek_stored(self._consumer, list(assigned))
                except TopicRecreated as exc:
                    # raised here it would only be logged by the consumer: the loop raises it
                    self._consumer.pause(*assigned)
                    self._failure = exc
            log.info("assigned %d partitions", len(assigned))

    async def _check_chains(self) -> None:
        """Each keyed tenant's pseudonym key chain against the warehouse's (``chain.py``):
        recorded when new; a rotation not yet applied by ``rekey`` stops the loader."""
        pseudonyms = self.personal.policies.pseudonyms
        recorded = await self._retrying("key chains", self.target.check_chains, pseudonyms)
        if recorded:
            log.info("pseudonym key chains recorded for %d tenant(s)", len(recorded))

    async def _load_erased(self) -> None:
        """The erased customers as the warehouse holds them: another loader may have
        applied requests since (read at start and on every assignment)."""
        erased = await self._retrying("erasures", self.target.erased)
        self.personal.reset(erased)

    async def _seek_stored(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        """Seek to the offsets the warehouse holds; the beginning where it holds none."""
        await self._load_erased()
        stored = await self._retrying("offsets", self.target.offsets, self.options.group)
        begins = await consumer.beginning_offsets(tps) if tps else {}
        known = [tp for tp in tps if (tp.topic, tp.partition) in stored]
        ends = await consumer.end_offsets(known) if known else {}
        moved = self._check_positions(stored, _keyed(begins), _keyed(ends))
        # what is queued would expect offsets from before the seek: read again instead
        self._writes.clear()
        self.batch = self._new_batch(self.options.limits)
        self.generation += 1
        for tp in tps:
            key = (tp.topic, tp.partition)
            self.stored[key] = stored.get(key)
            position = moved.get(key, stored.get(key, begins.get(tp)))
            self.next[key] = position
            if position is not None:
                consumer.seek(tp, position)

    # -- lag and shutdown ---------------------------------------------------------------
    def lag(self) -> dict[str, int]:
        """Records not yet loaded, per topic, over the assigned partitions."""
        per_topic: dict[str, int] = {}
        consumer = self._consumer
        if consumer is None:
            return per_topic
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            key = (tp.topic, tp.partition)
            position = self.stored.get(key)
            if position is None:
                position = self.next.get(key) or 0
            behind = high - position
            per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(0, behind)
        return per_topic

    async def _shutdown(self, consumer: AIOKafkaConsumer) -> None:
        try:
            async with self._lock:
                if self.batch.records or self._writes:
                    try:
                        await self._flush(once=True)
                    except Exception as exc:
                        log.warning("last batch not written (it is reloaded next time): %s", exc)
        finally:
            await consumer.stop()
            await self._call(self.target.close)
            self._executor.shutdown(wait=True)


def _write(target: Target, group: str, batch: Batch, expected: dict[TP, int | None]) -> float:
    """On the target's thread: the write, and when it committed (for freshness)."""
    target.write(group, batch, expected)
    return time.time()


@contextlib.contextmanager
def _pausing(consumer: AIOKafkaConsumer | None) -> Iterator[Callable[[], None]]:
    """A ``pause()`` that pauses the assigned partitions (once); resumed on leaving."""
    paused = False

    def pause() -> None:
        nonlocal paused
        if consumer is not None and not paused and consumer.assignment():
            consumer.pause(*consumer.assignment())
            paused = True

    try:
        yield pause
    finally:
        if paused and consumer is not None:
            consumer.resume(*consumer.assignment())


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.loader.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.loader.on_assigned(assigned)


def _keyed(offsets: dict[TopicPartition, int]) -> dict[TP, int]:
    """Kafka's offsets by (topic, partition), the loader's key."""
    return {(tp.topic, tp.partition): offset for tp, offset in offsets.items()}
