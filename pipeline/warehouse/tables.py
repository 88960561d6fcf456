"""The warehouse contract: every table the loader writes, once for both dialects.

A column has a logical kind; each target maps kinds to its own types (``ts`` is a
``TIMESTAMP WITH TIME ZONE`` in UTC, ``json`` is DuckDB's ``JSON`` or PostgreSQL's
``jsonb``). Rows travel with times as epoch milliseconds and JSON as text; the target's
insert-if-absent statement converts them, so the Python side never builds a datetime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["text", "bigint", "int", "bool", "ts", "json", "bytes"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


# eq=False: a table is itself (identity hash), and batches key their rows by it cheaply
@dataclass(frozen=True, eq=False)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # A child's rows are written only with its event's first row, so its key holds by
    # construction; DuckDB then keeps no index for it (an index costs more than the insert).
    parent: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _cols(spec: str) -> tuple[Column, ...]:
    """``"name:kind name:kind ..."`` -> columns (kind ``text`` when left out)."""
    columns = []
    for item in spec.split():
        name, _, kind = item.partition(":")
        columns.append(Column(name, kind or "text"))  # type: ignore[arg-type]
    return tuple(columns)


_EVENT = "event_id tenant received_at:ts"

ATTENDANCE_FINISHED = Table(
    "attendance_finished",
    _cols(
        f"{_EVENT} attendance_number status customer_name customer_phone department "
        "finished_by operator_report rating_observation request_time:ts start_time:ts "
        "end_time:ts data:json"
    ),
    ("event_id",),
)
ATTENDANCE_STARTED = Table(
    "attendance_started",
    _cols(
        f"{_EVENT} attendance_number status customer_name customer_phone department operator "
        "moment:ts start_time:ts data:json"
    ),
    ("event_id",),
)
# One row per transcript message of either attendance event; event_type says which.
ATTENDANCE_MESSAGE = Table(
    "attendance_message",
    _cols(
        "event_id position:int event_type tenant message_id moment:ts from_me:bool "
        "is_automatic:bool status kind text sender_name participant_phone"
    ),
    ("event_id", "position"),
    parent=("attendance_finished", "attendance_started"),
)
ATTENDANCE_CATEGORY = Table(
    "attendance_category",
    _cols("event_id position:int tenant category_id category_name color item_id item_name"),
    ("event_id", "position"),
    parent=("attendance_finished",),
)
MESSAGE_RECEIVED = Table(
    "message_received",
    _cols(
        f"{_EVENT} message_id phone moment:ts from_me:bool status kind text is_group:bool "
        "instance_id reference_message_id chat_name sender_name data:json"
    ),
    ("event_id",),
)
_SENT = f"{_EVENT} message_id zaap_id phone instance_id moment:ts"
MESSAGE_SENT = Table("message_sent", _cols(f"{_SENT} data:json"), ("event_id",))
MESSAGE_DELIVERY_FAILED = Table(
    "message_delivery_failed", _cols(f"{_SENT} error error_code data:json"), ("event_id",)
)
# One row per message id of a status callback; a callback with no id keeps one row whose
# message_id is null, so every event is in the table.
MESSAGE_STATUS = Table(
    "message_status",
    _cols(
        f"{_EVENT} position:int message_id status phone instance_id moment:ts is_group:bool "
        "data:json"
    ),
    ("event_id", "position"),
)
INSTANCE_DISCONNECTED = Table(
    "instance_disconnected",
    _cols(f"{_EVENT} instance_id disconnected:bool moment:ts error data:json"),
    ("event_id",),
)
DEADLETTER = Table(
    "deadletter",
    _cols(
        "partition:int offset:bigint event_id tenant webhook reason error received_at:ts body:bytes"
    ),
    ("partition", "offset"),
)
RAW_WEBHOOK = Table(
    "raw_webhook",
    _cols("partition:int offset:bigint event_id tenant webhook received_at:ts body:bytes"),
    ("partition", "offset"),
)
# Records that could not be decoded, with their bytes: the loader never stops on one.
LOAD_ERRORS = Table(
    "plug_load_errors",
    _cols(
        "topic partition:int offset:bigint reason error kafka_timestamp:ts key:bytes value:bytes"
    ),
    ("topic", "partition", "offset"),
)

EVENT_TABLES = (
    ATTENDANCE_FINISHED,
    ATTENDANCE_STARTED,
    MESSAGE_RECEIVED,
    MESSAGE_SENT,
    MESSAGE_DELIVERY_FAILED,
    MESSAGE_STATUS,
    INSTANCE_DISCONNECTED,
)
CHILD_TABLES = (ATTENDANCE_MESSAGE, ATTENDANCE_CATEGORY)
LOADED_TABLES: tuple[Table, ...] = (
    *EVENT_TABLES,
    *CHILD_TABLES,
    DEADLETTER,
    RAW_WEBHOOK,
    LOAD_ERRORS,
)
BY_NAME = {t.name: t for t in LOADED_TABLES}

# Bookkeeping: the offsets the loader trusts (written with the rows), and the migrations.
OFFSETS_TABLE = "plug_offsets"
MIGRATIONS_TABLE = "plug_schema_migrations"
