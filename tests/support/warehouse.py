"""A warehouse written without Kafka: ingress records straight into a target."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.consume.decode import event_type_of_header
from pipeline.record import Record
from pipeline.warehouse.batch import DEADLETTER, RAW, Batch, Source
from pipeline.warehouse.personal import Personal
from pipeline.warehouse.target import Target


def write_records(
    target: Target, records: Iterable[Record], personal: Personal | None = None
) -> Batch:
    """Write ingress records (events and dead letters) as the loader would, without Kafka
    and without moving any offset. Each record counts as offset n of partition 0.
    ``personal``: the loader's privacy policy and erased customers (None: keep all)."""
    batch = Batch(personal=personal)
    for offset, record in enumerate(records):
        headers = dict(record.headers)
        source: Source | None
        if "error-reason" in headers:
            source = DEADLETTER
        elif "event-type" in headers:
            source = event_type_of_header(headers["event-type"])
        else:
            source = RAW
        if source is None:
            raise ValueError(f"record {record.event_id}: unknown event type")
        batch.add(source, record.topic, 0, offset, 0, record.key, record.value, headers)
    batch.offsets.clear()
    target.write("", batch, {})
    return batch
