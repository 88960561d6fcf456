"""The warehouse round trip: every column of every table holds the value it is named for.

Plug webhooks with a different value in every field go through the ingress's own
``ingest``, then through the loader's own write path (``loader.sources``, ``Batch.add``,
``Target.prepare`` and ``Target.write``), and are read back by a connection of the
test's own. Each column is compared with the field of the event (or of the Kafka record)
that ``COLUMNS`` names for it.

``COLUMNS`` is written out by hand rather than derived from ``pipeline.warehouse.rows``:
it is the second, independent statement of the contract, so a column filled from the
wrong field fails here instead of being copied into the expectation. ``check_fixture``
guards the fixture itself: for every pair of columns of a table some row expects
different values, so no swap of two columns can go unnoticed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import psycopg

from pipeline import ingest
from pipeline.consume.decode import decode_event
from pipeline.errors import Malformed, UndecodableRecord
from pipeline.warehouse.batch import Batch
from pipeline.warehouse.loader import sources
from pipeline.warehouse.target import open_target
from pipeline.webhooks import EventType, Webhook

PREFIX = "rt"
GROUP = "roundtrip"
T0 = 1_741_780_000_000  # epoch ms; every time below is T0 plus a different amount

_EVENT = {
    "event_id": "event.event_id",
    "tenant": "event.tenant",
    "received_at": "event.received_at",
}
_SENT = {
    **_EVENT,
    "message_id": "event.data.message_id",
    "zaap_id": "event.data.zaap_id",
    "phone": "event.data.phone",
    "instance_id": "event.data.instance_id",
    "moment": "event.data.moment",
}
_MESSAGE = "event.data.messages[position]"

# table -> column -> where its value comes from. Roots: ``event`` (the envelope on the
# topic, as JSON), ``record`` (the Kafka record: topic, partition, offset, timestamp,
# key, value, headers), ``position`` (the row's index in the list it comes from) and
# ``decoded`` (what the consumer's decoder said of a record it refused). A suffix says
# how to compare: ``|text`` a number kept as its decimal text, ``|int`` a header's
# digits as a number, ``|json`` a JSON document compared parsed.
COLUMNS: dict[str, dict[str, str]] = {
    "attendance_finished": {
        **_EVENT,
        "attendance_number": "event.data.attendance_number|text",
        "status": "event.data.status",
        "customer_name": "event.data.customer.name",
        "customer_phone": "event.data.customer.phone",
        "department": "event.data.department",
        "finished_by": "event.data.finished_by",
        "operator_report": "event.data.operator_report",
        "rating_observation": "event.data.rating_observation",
        "request_time": "event.data.request_time",
        "start_time": "event.data.start_time",
        "end_time": "event.data.end_time",
        "data": "event.data|json",
    },
    "attendance_started": {
        **_EVENT,
        "attendance_number": "event.data.attendance_number|text",
        "status": "event.data.status",
        "customer_name": "event.data.customer.name",
        "customer_phone": "event.data.customer.phone",
        "department": "event.data.department",
        "operator": "event.data.operator",
        "moment": "event.data.moment",
        "start_time": "event.data.start_time",
        "data": "event.data|json",
    },
    "attendance_message": {
        "event_id": "event.event_id",
        "position": "position",
        "event_type": "event.event_type",
        "tenant": "event.tenant",
        "message_id": f"{_MESSAGE}.message_id",
        "moment": f"{_MESSAGE}.moment",
        "from_me": f"{_MESSAGE}.from_me",
        "is_automatic": f"{_MESSAGE}.is_automatic",
        "status": f"{_MESSAGE}.status",
        # every transcript message of the fixture is a text: its kind and its words
        "kind": f"{_MESSAGE}.content.kind",
        "text": f"{_MESSAGE}.content.message",
        "sender_name": f"{_MESSAGE}.sender_name",
        "participant_phone": f"{_MESSAGE}.participant_phone",
    },
    "attendance_category": {
        "event_id": "event.event_id",
        "position": "position",
        "tenant": "event.tenant",
        "category_id": "event.data.categories[position].category_id",
        "category_name": "event.data.categories[position].category_name",
        "color": "event.data.categories[position].color",
        "item_id": "event.data.categories[position].item_id",
        "item_name": "event.data.categories[position].item_name",
    },
    "message_received": {
        **_EVENT,
        "message_id": "event.data.message_id",
        "phone": "event.data.phone",
        "moment": "event.data.moment",
        "from_me": "event.data.from_me",
        "status": "event.data.status",
        "kind": "event.data.content.kind",
        "text": "event.data.content.message",
        "is_group": "event.data.is_group",
        "instance_id": "event.data.instance_id",
        "reference_message_id": "event.data.reference_message_id",
        "chat_name": "event.data.chat_name",
        "sender_name": "event.data.sender_name",
        "data": "event.data|json",
    },
    "message_sent": {**_SENT, "data": "event.data|json"},
    "message_delivery_failed": {
        **_SENT,
        "error": "event.data.error",
        "error_code": "event.data.error_code",
        "data": "event.data|json",
    },
    "message_status": {
        **_EVENT,
        "position": "position",
        "message_id": "event.data.message_ids[position]",
        "status": "event.data.status",
        "phone": "event.data.phone",
        "instance_id": "event.data.instance_id",
        "moment": "event.data.moment",
        "is_group": "event.data.is_group",
        "data": "event.data|json",
    },
    "instance_disconnected": {
        **_EVENT,
        "instance_id": "event.data.instance_id",
        "disconnected": "event.data.disconnected",
        "moment": "event.data.moment",
        "error": "event.data.error",
        "data": "event.data|json",
    },
    "deadletter": {
        "partition": "record.partition",
        "offset": "record.offset",
        "event_id": "record.headers.event-id",
        "tenant": "record.headers.tenant",
        "webhook": "record.headers.webhook",
        "reason": "record.headers.error-reason",
        "error": "record.headers.error-message",
        "received_at": "record.headers.received-at|int",
        "body": "record.value",
    },
    "raw_webhook": {
        "partition": "record.partition",
        "offset": "record.offset",
        "event_id": "record.headers.event-id",
        "tenant": "record.headers.tenant",
        "webhook": "record.headers.webhook",
        "received_at": "record.headers.received-at|int",
        "body": "record.value",
    },
    "plug_load_errors": {
        "topic": "record.topic",
        "partition": "record.partition",
        "offset": "record.offset",
        "reason": "decoded.reason",
        "error": "decoded.error",
        "kafka_timestamp": "record.timestamp",
        "key": "record.key",
        "value": "record.value",
    },
}

# DuckDB's event tables carry one column beyond the contract (``sql.ID_NUMBER``, read by
# its search for redeliveries): the MD5 of the event id as a little-endian 128-bit number.
DUCKDB_ONLY = {"event_id_number": "event.event_id|md5"}

# Tables that hold no event's value: the loader's offsets, the applied migrations, the
# erasure audit, the key chains and (PostgreSQL) the tenants' roles (each checked by its
# own tests). Any other table must be in COLUMNS.
BOOKKEEPING = frozenset(
    {
        "plug_offsets",
        "plug_schema_migrations",
        "plug_erasure",
        "plug_pseudonym_chain",
        "plug_tenant_roles",
    }
)

# Where each event type's row goes, and the key that finds it again.
EVENT_TABLES = {
    "attendance.finished": "attendance_finished",
    "attendance.started": "attendance_started",
    "message.received": "message_received",
    "message.sent": "message_sent",
    "message.delivery_failed": "message_delivery_failed",
    "message.status": "message_status",
    "instance.disconnected": "instance_disconnected",
}


def columns_at(where: str) -> dict[str, dict[str, str]]:
    """``COLUMNS`` as the engine at ``where`` stores them."""
    if where.startswith("postgresql://"):
        return COLUMNS
    event_tables = set(EVENT_TABLES.values())
    return {t: {**m, **DUCKDB_ONLY} if t in event_tables else m for t, m in COLUMNS.items()}


@dataclass(frozen=True)
class Sent:
    """One record as the loader reads it from Kafka."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def _chat_message(tag: str, at: int, *, from_me: bool, automatic: bool) -> dict[str, Any]:
    return {
        "messageId": f"{tag}-id",
        "phone": f"{tag}-phone",
        "fromMe": from_me,
        "momment": at,
        "status": f"{tag}-status",
        "isAutomaticMessage": automatic,
        "senderName": f"{tag}-sender-name",
        "participantPhone": f"{tag}-participant-phone",
        "text": {"message": f"{tag}-text"},
    }


def _chat(tag: str, at: int) -> dict[str, Any]:
    # from_me and is_automatic differ in each message and between the two
    return {
        f"{tag}-m0": _chat_message(f"{tag}-m0", at, from_me=False, automatic=True),
        f"{tag}-m1": _chat_message(f"{tag}-m1", at + 1, from_me=True, automatic=False),
    }


def _category(tag: str) -> dict[str, str]:
    return {
        "categoryId": f"{tag}-category-id",
        "categoryName": f"{tag}-category-name",
        "color": f"{tag}-color",
        "itemId": f"{tag}-item-id",
        "itemName": f"{tag}-item-name",
    }


def webhooks() -> list[tuple[Webhook, dict[str, Any]]]:
    """One webhook of each kind, no two fields alike."""
    finished = {
        "attendance": {
            "attendanceNumber": 7001,
            "customer": {"name": "fin-customer-name", "phone": "fin-customer-phone"},
            "departament": "fin-department",
            "status": "fin-status",
            "requestTime": T0 + 1_001,
            "startTime": T0 + 2_002,
            "endTime": T0 + 3_003,
            "finishBy": "fin-finished-by",
            "operatorReport ": "fin-operator-report",
            "ratingObservation": "fin-rating-observation",
            "attendanceCategories": [_category("fin-c0"), _category("fin-c1")],
        },
        "chat": _chat("fin", T0 + 4_004),
    }
    started = {
        "attendance": {
            "attendanceNumber": 7002,
            "customer": {"name": "sta-customer-name", "phone": "sta-customer-phone"},
            "departament": "sta-department",
            "status": "sta-status",
            "operator": "sta-operator",
            "momment": T0 + 5_005,
            "startTime": T0 + 6_006,
        },
        "chat": _chat("sta", T0 + 7_007),
    }
    received = {
        "type": "ReceivedCallback",
        "messageId": "rec-id",
        "phone": "rec-phone",
        "fromMe": True,
        "momment": T0 + 8_008,
        "status": "rec-status",
        "isGroup": False,
        "instanceId": "rec-instance",
        "referenceMessageId": "rec-reference",
        "chatName": "rec-chat-name",
        "senderName": "rec-sender-name",
        "text": {"message": "rec-text"},
    }

    def delivery(tag: str, at: int) -> dict[str, Any]:
        return {
            "type": "DeliveryCallback",
            "phone": f"{tag}-phone",
            "messageId": f"{tag}-id",
            "zaapId": f"{tag}-zaap",
            "instanceId": f"{tag}-instance",
            "momment": at,
        }

    failed = {**delivery("dlf", T0 + 10_010), "error": "dlf-error", "errorCode": "dlf-code"}
    status = {
        "type": "MessageStatusCallback",
        "status": "sts-status",
        "ids": ["sts-id-0", "sts-id-1"],
        "phone": "sts-phone",
        "instanceId": "sts-instance",
        "momment": T0 + 11_011,
        "isGroup": True,
    }
    disconnected = {
        "type": "DisconnectedCallback",
        "disconnected": True,
        "error": "dis-error",
        "momment": T0 + 12_012,
        "instanceId": "dis-instance",
    }
    return [
        (Webhook.FINISH_ATTENDANCE, finished),
        (Webhook.START_ATTENDANCE, started),
        (Webhook.RECEIVE_MESSAGE, received),
        (Webhook.SENDING_MESSAGE, delivery("snt", T0 + 9_009)),
        (Webhook.MESSAGE_DELIVERY_ERROR, failed),
        (Webhook.MESSAGE_STATUS, status),
        (Webhook.WHEN_DISCONNECTING, disconnected),
    ]


def records() -> list[Sent]:
    """The fixture as Kafka records: every event, a raw copy, a dead letter and a record
    the consumer cannot decode; each at its own partition, offset and append time."""
    ingested = []
    for i, (webhook, body) in enumerate(webhooks()):
        # tenants, and receive times, differ between events too
        ingested.append(ingest.ingest(webhook, f"tenant-{i}", orjson.dumps(body), T0 + i, PREFIX))
    sending, sending_body = webhooks()[3]
    raw = ingest.raw(
        sending, "tenant-raw", orjson.dumps(sending_body), T0 + 20, PREFIX, ingested[3]
    )
    not_json = b"{not json"
    try:
        ingest.ingest(Webhook.RECEIVE_MESSAGE, "tenant-dead", not_json, T0 + 21, PREFIX)
    except Malformed as exc:
        dead = ingest.deadletter(
            Webhook.RECEIVE_MESSAGE, "tenant-dead", not_json, T0 + 21, PREFIX, exc
        )
    else:  # pragma: no cover - the body is not JSON
        raise AssertionError("the ingress accepted a body that is not JSON")
    received_topic = ingested[2].topic
    found = [
        Sent(r.topic, 1 + i % 3, 100 + 7 * i, T0 + 50_000 + i, r.key, r.value, r.headers)
        for i, r in enumerate([*ingested, raw, dead])
    ]
    # on the topic of an event type but not an envelope: a load error, never a stop
    found.append(Sent(received_topic, 0, 300, T0 + 60_000, b"bad-key", b"\xff bad value", []))
    return found


def write(where: str, sent: list[Sent], group: str = GROUP) -> None:
    """Through the loader's own path: its topic -> source table, one batch, one write."""
    source_of = sources(PREFIX, include_raw=True)
    target = open_target(where)
    try:
        target.migrate()
        batch = Batch()
        for s in sent:
            batch.add(
                source_of[s.topic], s.topic, s.partition, s.offset, s.timestamp, s.key, s.value,
                s.headers,
            )  # fmt: skip
        batch.close()
        target.prepare(batch)
        target.write(group, batch, dict.fromkeys(batch.offsets))
    finally:
        target.close()


# --- what each record must put where (stated here, not taken from rows.py) ---

Context = dict[str, Any]
Key = tuple[Any, ...]


def _record_context(s: Sent) -> dict[str, Any]:
    return {
        "topic": s.topic,
        "partition": s.partition,
        "offset": s.offset,
        "timestamp": s.timestamp,
        "key": s.key,
        "value": s.value,
        "headers": {name: value.decode() for name, value in s.headers},
    }


def _decoded(s: Sent) -> dict[str, str] | None:
    """What the consumer's decoder says of a record it refuses; None if it decodes it."""
    suffix = s.topic.removeprefix(f"{PREFIX}.")
    event_type = next(e for e in EventType if e.topic_suffix == suffix)
    try:
        decode_event(event_type, s.value)
    except UndecodableRecord as exc:
        return {"reason": exc.reason, "error": str(exc)}
    return None


def expected_rows(sent: list[Sent]) -> dict[str, dict[Key, Context]]:
    """table -> the key of each row it must hold -> what the row's values come from."""
    want: dict[str, dict[Key, Context]] = {table: {} for table in COLUMNS}
    for s in sent:
        record = _record_context(s)
        headers = record["headers"]
        if "error-reason" in headers:
            want["deadletter"][(s.partition, s.offset)] = {"record": record}
            continue
        if s.topic == f"{PREFIX}.raw":
            want["raw_webhook"][(s.partition, s.offset)] = {"record": record}
            continue
        refused = _decoded(s)
        if refused is not None:
            context = {"record": record, "decoded": refused}
            want["plug_load_errors"][(s.topic, s.partition, s.offset)] = context
            continue
        event = orjson.loads(s.value)
        eid, data = event["event_id"], event["data"]
        table = EVENT_TABLES[event["event_type"]]
        if table == "message_status":
            for position in range(len(data["message_ids"])):
                want[table][(eid, position)] = {"event": event, "position": position}
        else:
            want[table][(eid,)] = {"event": event}
        for child, items in (
            ("attendance_message", data.get("messages")),
            ("attendance_category", data.get("categories")),
        ):
            for position in range(len(items or ())):
                want[child][(eid, position)] = {"event": event, "position": position}
    return want


_STEP = re.compile(r"^(?P<name>[^\[]+)(?:\[(?P<index>\w+)\])?$")


def expected_value(path: str, context: Context) -> tuple[Any, str]:
    """The value a path names in a row's context, and how to compare it."""
    path, _, how = path.partition("|")
    root, *steps = path.split(".")
    value = context[root]
    for step in steps:
        match = _STEP.match(step)
        assert match, step
        value = value[match["name"]]
        if match["index"] is not None:
            value = value[context[match["index"]]]
    return value, how


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def as_stored(value: Any) -> Any:
    """A database value in the fixture's terms: times as epoch ms, blobs as bytes."""
    if isinstance(value, dt.datetime):
        return (value - _EPOCH) // dt.timedelta(milliseconds=1)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def same(got: Any, want: Any, how: str) -> bool:
    if how == "json":  # DuckDB gives JSON as text, PostgreSQL's jsonb as Python values
        return bool((orjson.loads(got) if isinstance(got, str) else got) == want)
    if how == "text":
        return bool(got == str(want))
    if how == "int":
        return bool(got == int(want))
    if how == "md5":
        return bool(got == int.from_bytes(hashlib.md5(want.encode()).digest(), "little"))
    # bool is an int in Python: True must not pass for 1
    return type(got) is type(want) and bool(got == want)


def _typed(value: Any) -> tuple[str, Any]:
    return type(value).__name__, value


def check_fixture(want: dict[str, dict[Key, Context]]) -> None:
    """The fixture can catch a wrong mapping: every table has rows, every column some
    value, and for every pair of columns of a table some row expects different values."""
    for table, mapping in COLUMNS.items():
        rows = want[table]
        assert rows, f"the fixture writes no row to {table}"
        values = {
            # typed: False equals 0 in Python, but a bool column never holds a position
            column: [_typed(expected_value(path, context)[0]) for context in rows.values()]
            for column, path in mapping.items()
        }
        for column, found in values.items():
            assert any(v[1] is not None for v in found), f"{table}.{column} is null in every row"
        names = sorted(values)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                assert values[a] != values[b], f"{table}: {a} and {b} could be swapped unseen"


# --- reading back, with a connection of the test's own ---

Stored = dict[str, tuple[list[str], list[tuple[Any, ...]]]]

_TABLES = (
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_type = 'BASE TABLE' AND table_schema = current_schema()"
)


def _read(run: Callable[[str], Any]) -> Stored:
    names = [name for (name,) in run(_TABLES).fetchall()]
    stored: Stored = {}
    for name in names:
        result = run(f"SELECT * FROM {name}")
        columns = [d[0] for d in result.description]
        stored[name] = (columns, result.fetchall())
    return stored


def read_back(where: str) -> Stored:
    """Every base table, its column names and its rows."""
    if where.startswith("postgresql://"):
        with psycopg.connect(where) as conn:
            return _read(lambda sql: conn.execute(sql.encode()))
    with duckdb.connect(where, read_only=True) as con:
        return _read(con.execute)


def differences(where: str, want: dict[str, dict[Key, Context]]) -> list[str]:
    """Every way the warehouse at ``where`` differs from the fixture, read back with a
    connection of its own; empty when it holds the fixture exactly."""
    stored = read_back(where)
    expected = columns_at(where)
    found = []
    tables = set(stored) - BOOKKEEPING
    if tables != set(expected):
        found.append(f"tables: {sorted(tables)} != {sorted(expected)}")
    for table, mapping in expected.items():
        if table not in stored:
            continue
        columns, rows = stored[table]
        if set(columns) != set(mapping):
            found.append(f"{table} columns: {sorted(columns)} != {sorted(mapping)}")
            continue
        key_of = [columns.index(c) for c in _key(table)]
        got = {tuple(as_stored(row[i]) for i in key_of): row for row in rows}
        if len(got) != len(rows) or set(got) != set(want[table]):
            found.append(f"{table} rows: {sorted(got)} != {sorted(want[table])}")
            continue
        for key, context in want[table].items():
            row = dict(zip(columns, (as_stored(v) for v in got[key]), strict=True))
            for column, path in mapping.items():
                value, how = expected_value(path, context)
                if not same(row[column], value, how):
                    found.append(f"{table}.{column} of {key}: {row[column]!r}, want {value!r}")
    return found


def _key(table: str) -> tuple[str, ...]:
    if table in ("deadletter", "raw_webhook"):
        return ("partition", "offset")
    if table == "plug_load_errors":
        return ("topic", "partition", "offset")
    if table in ("attendance_message", "attendance_category", "message_status"):
        return ("event_id", "position")
    return ("event_id",)
