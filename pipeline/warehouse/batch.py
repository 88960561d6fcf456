"""One transaction's worth of records: their rows per table and each partition's next offset.

``Batch.add`` turns a Kafka record into rows (or a load-error row when it cannot be
decoded: it never raises for a record's content). A batch is full on rows, bytes or age;
the loader writes it to the target in one transaction together with ``offsets``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from pipeline.consume.decode import AnyEvent, decode_event
from pipeline.errors import UndecodableRecord
from pipeline.events.models import ErasureRequested
from pipeline.warehouse import rows as r
from pipeline.warehouse import tables as t
from pipeline.warehouse.erase import Erasure
from pipeline.warehouse.personal import Personal
from pipeline.webhooks import EventType

TP = tuple[str, int]  # topic, partition
DEADLETTER, RAW = "deadletter", "raw"
Source = EventType | str  # an event type, DEADLETTER or RAW


class _Data(msgspec.Struct):
    """The envelope's data, untouched: the ``data`` column keeps every field it had."""

    data: msgspec.Raw


_DATA = msgspec.json.Decoder(_Data)


# A loader with this many records or more waiting in Kafka (a replay, catching up after a
# stop) is behind, until fewer than CAUGHT_UP_RECORDS wait: targets may then trade
# freshness for throughput (larger batches, rarer checkpoints).
CATCH_UP_RECORDS, CAUGHT_UP_RECORDS = 50_000, 5_000


def is_behind(backlog: int, was_behind: bool) -> bool:
    """Whether a loader with ``backlog`` records waiting is behind; between the two
    thresholds it stays as it was, so a backlog hovering around one does not flip it."""
    if backlog >= CATCH_UP_RECORDS:
        return True
    if backlog < CAUGHT_UP_RECORDS:
        return False
    return was_behind


@dataclass(frozen=True)
class Limits:
    """When a batch closes; defaults hold the memory of one batch to a few tens of MB.
    ``bytes`` also bounds what DuckDB holds for the transaction (duckdb.MEMORY_MB)."""

    rows: int = 5000
    bytes: int = 8 * 1024 * 1024
    age_s: float = 1.0

    def times(self, factor: int) -> Limits:
        """Rows and bytes ``factor`` times larger (the age is kept)."""
        if factor == 1:
            return self
        return Limits(self.rows * factor, self.bytes * factor, self.age_s)


@dataclass
class Batch:
    limits: Limits = field(default_factory=Limits)
    rows: dict[t.Table, list[r.Row]] = field(default_factory=dict)
    offsets: dict[TP, int] = field(default_factory=dict)  # next offset to read, per partition
    events: Counter[str] = field(default_factory=Counter)  # records, per topic
    errors: Counter[str] = field(default_factory=Counter)  # load errors, per topic
    timestamps: list[int] = field(default_factory=list)  # Kafka append times (ms)
    records: int = 0
    size: int = 0  # record bytes
    row_count: int = 0
    # The loader was far behind when the batch closed (``is_behind``): a target may trade
    # freshness for throughput.
    behind: bool = False
    # The rows in the target's own form, made by Target.prepare on the loop's thread while
    # the batch before is written (``rows`` is emptied then: it is the larger form); each
    # table's form has its row count as its len().
    staged: dict[t.Table, Any] = field(default_factory=dict)
    opened: float = field(default_factory=time.monotonic)
    # What the warehouse keeps of personal data (None: everything, as it came).
    personal: Personal | None = None
    # Erasure requests read in this batch, applied after its rows in its transaction.
    erasures: list[Erasure] = field(default_factory=list)
    # ``load --tenant``: only this tenant's records become rows; the others are skipped
    # (counted per topic), their offsets advancing all the same.
    tenant: str | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    _event_ids: set[str] = field(default_factory=set)
    _closed_at: float = 0.0

    def add(
        self,
        source: Source,
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
    ) -> None:
        """``headers`` are read only for dead letters and raw records: a record's own
        header pairs can be passed as they are (no dict made for every event)."""
        if not self.records:
            self.opened = time.monotonic()
        self.records += 1
        self.size += len(value or b"") + len(key or b"")
        self.offsets[(topic, partition)] = offset + 1
        self.timestamps.append(timestamp_ms)
        self.events[topic] += 1
        if source in (DEADLETTER, RAW):
            named = dict(headers)
            if self.tenant is not None and named.get("tenant") != self.tenant.encode():
                self.skipped[topic] += 1
            elif source == DEADLETTER:
                self._put(t.DEADLETTER, r.deadletter_row(partition, offset, named, value or b""))
            else:
                self._put(t.RAW_WEBHOOK, r.raw_row(partition, offset, named, value or b""))
        else:
            assert isinstance(source, EventType)
            self._add_event(source, topic, partition, offset, timestamp_ms, key, value)

    def _add_event(
        self,
        event_type: EventType,
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
    ) -> None:
        try:
            if value is None:
                raise UndecodableRecord("invalid_envelope", "the record has no value")
            event = decode_event(event_type, value)
            data_json = bytes(_DATA.decode(value).data).decode()
        except UndecodableRecord as exc:
            self._error(topic, partition, offset, exc.reason, str(exc), timestamp_ms, key, value)
            return
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # JSON text that is not UTF-8
            self._error(
                topic, partition, offset, "invalid_envelope", str(exc), timestamp_ms, key, value
            )
            return
        if self.tenant is not None and event.tenant != self.tenant:
            self.skipped[topic] += 1
            return
        if event.event_id in self._event_ids:
            return  # a redelivery inside this batch; across batches the key drops it
        self._event_ids.add(event.event_id)
        if event_type is EventType.ERASURE_REQUESTED:
            self._erasure(event)
            return
        if self.personal is not None:
            event, data_json = self.personal.event(event, data_json)
        for table, row in r.event_rows(event, data_json):
            self._put(table, row)

    def _erasure(self, event: AnyEvent) -> None:
        """An erasure request: applied by the target after the rows; and remembered at
        once, so the customer's events in the batches after this one are scrubbed."""
        request = event.data
        assert isinstance(request, ErasureRequested)
        personal = self.personal
        pseudonym = personal.pseudonym(event.tenant, request.phone) if personal else None
        erasure = Erasure.of(event, pseudonym)
        self.erasures.append(erasure)
        if personal is not None:
            personal.remember(erasure.remembered())

    def _error(
        self,
        topic: str,
        partition: int,
        offset: int,
        reason: str,
        error: str,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
    ) -> None:
        # An undecodable record names its tenant only in its key (``route.key``): one
        # that does not name this tenant is skipped, whoever it came from.
        if self.tenant is not None and not (key or b"").startswith(self.tenant.encode() + b":"):
            self.skipped[topic] += 1
            return
        self.errors[topic] += 1
        row = r.load_error_row(topic, partition, offset, reason, error, timestamp_ms, key, value)
        self._put(t.LOAD_ERRORS, row)

    def _put(self, table: t.Table, row: r.Row) -> None:
        rows = self.rows.get(table)
        if rows is None:
            rows = self.rows[table] = []
        rows.append(row)
        self.row_count += 1

    @property
    def closed_at(self) -> float:
        """Wall-clock time the batch was handed to the writer (set by ``close``)."""
        return self._closed_at

    def close(self) -> None:
        self._closed_at = time.time()

    def full(self) -> bool:
        return self.row_count >= self.limits.rows or self.size >= self.limits.bytes

    def due_in(self) -> float:
        """Seconds until the batch must close on age (0: now); the limit when empty."""
        if not self.records:
            return self.limits.age_s
        return max(0.0, self.opened + self.limits.age_s - time.monotonic())

    def stage(self, staged: dict[t.Table, Any]) -> None:
        """Hold the rows in a target's own form from now on (``Target.prepare``)."""
        self.staged = staged
        self.rows = {}

    def per_record(self) -> tuple[float, float] | None:
        """Rows and bytes per record so far; None while empty."""
        if not self.records:
            return None
        return self.row_count / self.records, self.size / self.records

    def rows_per_table(self) -> dict[str, int]:
        if self.staged:
            return {table.name: len(staged) for table, staged in self.staged.items()}
        return {table.name: len(rows) for table, rows in self.rows.items()}
