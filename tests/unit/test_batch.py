"""A batch of one tenant (``load --tenant``): only that tenant's records become rows, every
other is skipped and counted, and every record's offset advances."""

from __future__ import annotations

import orjson

from pipeline import ingest
from pipeline.errors import Malformed
from pipeline.record import Record
from pipeline.route import deadletter_topic, event_topic, raw_topic
from pipeline.warehouse import tables as t
from pipeline.warehouse.batch import DEADLETTER, RAW, Batch, Source
from pipeline.webhooks import EventType, Webhook

PREFIX = "plug"
AT = 1_700_000_000_000
BODY = orjson.dumps(
    {"phone": "5511999990000", "messageId": "m1", "momment": AT, "fromMe": False,
     "instanceId": "unit", "text": {"message": "hello"}}
)  # fmt: skip


def of_tenant(tenant: str) -> list[tuple[Source, Record]]:
    """A tenant's event, its raw body, a dead letter, and an undecodable event record."""
    event = ingest.ingest(Webhook.RECEIVE_MESSAGE, tenant, BODY, AT, PREFIX)
    raw = ingest.raw(Webhook.RECEIVE_MESSAGE, tenant, BODY, AT, PREFIX, event)
    try:
        ingest.ingest(Webhook.RECEIVE_MESSAGE, tenant, b"{not json", AT, PREFIX)
        raise AssertionError("not a dead letter")
    except Malformed as exc:
        dead = ingest.deadletter(Webhook.RECEIVE_MESSAGE, tenant, b"{", AT, PREFIX, exc)
    broken = Record(event.topic, event.key, b"\xff not an envelope", [], "x")
    return [
        (EventType.MESSAGE_RECEIVED, event),
        (RAW, raw),
        (DEADLETTER, dead),
        (EventType.MESSAGE_RECEIVED, broken),
    ]


def fill(batch: Batch) -> Batch:
    for offset, (source, record) in enumerate([*of_tenant("acme"), *of_tenant("globex")]):
        batch.add(source, record.topic, 0, offset, AT, record.key, record.value, record.headers)
    return batch


def tenants(batch: Batch) -> dict[str, set[object]]:
    found: dict[str, set[object]] = {}
    for table, rows in batch.rows.items():
        if "tenant" in table.column_names:
            at = table.column_names.index("tenant")
            found[table.name] = {row[at] for row in rows}
        else:
            found[table.name] = {len(rows)}
    return found


def test_a_batch_of_one_tenant_keeps_its_rows_and_skips_the_others() -> None:
    batch = fill(Batch(tenant="globex"))
    assert tenants(batch) == {
        "message_received": {"globex"},
        "raw_webhook": {"globex"},
        "deadletter": {"globex"},
        t.LOAD_ERRORS.name: {1},  # its key names globex
    }
    assert sum(batch.skipped.values()) == 4
    assert batch.records == 8
    # every record's offset advances, skipped or not (offsets 0-7 in turn over 3 topics)
    assert batch.offsets == {
        (event_topic(PREFIX, EventType.MESSAGE_RECEIVED), 0): 8,
        (raw_topic(PREFIX), 0): 6,
        (deadletter_topic(PREFIX), 0): 7,
    }


def test_a_batch_of_every_tenant_skips_nothing() -> None:
    batch = fill(Batch())
    assert tenants(batch)["message_received"] == {"acme", "globex"}
    assert tenants(batch)[t.LOAD_ERRORS.name] == {2}
    assert not batch.skipped
