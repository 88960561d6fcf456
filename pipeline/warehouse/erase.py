"""An erasure request applied to the stored rows, in the transaction of the batch that read
it (so with its offsets: applied once, or not at all), and recorded in ``plug_erasure``.

The customer's event rows are found by their ``data`` JSON holding the phone, or one of
its pseudonyms, as a whole JSON string (``"5511..."``: a longer number does not match).
Each is re-derived the way it was loaded: its data decoded to the event's Struct,
scrubbed with the request's token in place of every phone, and turned into rows by
``rows.py``; the event's rows and child rows are replaced by those. Counts, times and
durations are untouched, and the token is one value for all of the customer's rows, so
every KPI view gives the same figures before and after (distinct customers and
recontacts included). Only what was received up to the request is erased (everything,
with suppression): a customer who writes afterwards is a new contact.

Raw bodies and dead letters of the tenant that hold the phone's digits, and load errors
that do, are deleted: they cannot be re-derived. ``plug_erasure`` keeps the request by
its subject (the pseudonym), never the phone, with the rows changed per table; a
second request for the same customer finds nothing left to change and says 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from pipeline.consume.decode import AnyEvent
from pipeline.events.models import DATA_OF, Envelope, ErasureRequested
from pipeline.privacy.scrub import scrub
from pipeline.warehouse import rows as r
from pipeline.warehouse import tables as t
from pipeline.warehouse.personal import Erased
from pipeline.warehouse.sql import (
    ID_NUMBER,
    STAGED,
    TYPES,
    Dialect,
    Session,
    convert,
    id_number,
    id_number_of,
    q,
)
from pipeline.webhooks import EventType

AUDIT_TABLE = "plug_erasure"

# The tables whose rows name a customer, and the event type each one's data is of.
EVENT_TYPES: dict[t.Table, EventType] = {
    t.ATTENDANCE_FINISHED: EventType.ATTENDANCE_FINISHED,
    t.ATTENDANCE_STARTED: EventType.ATTENDANCE_STARTED,
    t.MESSAGE_RECEIVED: EventType.MESSAGE_RECEIVED,
    t.MESSAGE_SENT: EventType.MESSAGE_SENT,
    t.MESSAGE_DELIVERY_FAILED: EventType.MESSAGE_DELIVERY_FAILED,
    t.MESSAGE_STATUS: EventType.MESSAGE_STATUS,
}
CHILDREN: dict[t.Table, tuple[t.Table, ...]] = {
    table: tuple(c for c in t.CHILD_TABLES if table.name in c.parent) for table in EVENT_TYPES
}
# Every table an erasure may change, in the order the audit row lists them.
TABLES: tuple[t.Table, ...] = (*EVENT_TYPES, *t.CHILD_TABLES, t.RAW_WEBHOOK, t.DEADLETTER)
ALL_TABLES: tuple[t.Table, ...] = (*TABLES, t.LOAD_ERRORS)


@dataclass(frozen=True)
class Erasure:
    """One request, read from Kafka, with what the customer's rows may hold of them:
    the phone, the request's subject and the loader's own pseudonym of the phone."""

    tenant: str
    request: ErasureRequested
    matches: tuple[str, ...]

    @classmethod
    def of(cls, event: AnyEvent, pseudonym: str | None) -> Erasure:
        request = event.data
        assert isinstance(request, ErasureRequested)
        found = dict.fromkeys([request.phone, request.subject, *([pseudonym] if pseudonym else [])])
        return cls(event.tenant, request, tuple(found))

    def remembered(self) -> Erased:
        req = self.request
        return Erased(self.tenant, req.subject, req.token, req.requested_at, req.suppress)


def audit_table(dialect: Dialect) -> str:
    types = TYPES[dialect]
    return (
        f"CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (request_id {types['text']} PRIMARY KEY, "
        f"tenant {types['text']} NOT NULL, subject {types['text']} NOT NULL, "
        f"token {types['text']} NOT NULL, requested_at {types['ts']} NOT NULL, "
        f"applied_at {types['ts']} NOT NULL, suppress {types['bool']} NOT NULL, "
        f"changed {types['json']} NOT NULL)"
    )


def epoch_ms(column: str, dialect: Dialect) -> str:
    """A ``ts`` column as epoch milliseconds."""
    if dialect == "duckdb":
        return f"epoch_ms({column})"
    return f"CAST(round(extract(epoch FROM {column}) * 1000) AS bigint)"


def _ts(dialect: Dialect) -> str:
    """A parameter of epoch milliseconds as a ``ts``."""
    if dialect == "duckdb":
        return "epoch_ms(CAST(? AS BIGINT))::TIMESTAMPTZ"
    return "to_timestamp(CAST(? AS bigint) / 1000.0)"


def _holds_bytes(column: str, dialect: Dialect) -> str:
    """Whether a bytes column holds the parameter's bytes (DuckDB: as text, whose digits a
    BLOB's text form keeps as they are)."""
    if dialect == "duckdb":
        return f"strpos(CAST({column} AS VARCHAR), ?) > 0"
    return f"position(CAST(? AS bytea) IN {column}) > 0"


def insert_row(table: t.Table, dialect: Dialect) -> str:
    """One row of ``table`` from parameters in the staging form (as the batch's insert)."""
    types = TYPES[dialect]
    staged = ", ".join(
        f"CAST(? AS {types[STAGED.get(c.kind, c.kind)]}) AS {q(c.name)}" for c in table.columns
    )
    names = [q(c.name) for c in table.columns]
    values = [convert(c, dialect) for c in table.columns]
    if id_number(table, dialect):
        names.append(q(ID_NUMBER))
        values.append(id_number_of(q("event_id")))
    return (
        f"INSERT INTO {q(table.name)} ({', '.join(names)}) "
        f"SELECT {', '.join(values)} FROM (SELECT {staged}) AS s"
    )


def apply(session: Session, erasure: Erasure) -> dict[str, int]:
    """Anonymise the customer's rows and record the request; rows changed per table."""
    req = erasure.request
    dialect = session.dialect
    changed = dict.fromkeys((table.name for table in ALL_TABLES), 0)
    within = f"({q('received_at')} IS NULL OR ? OR {q('received_at')} <= {_ts(dialect)})"
    for table, event_type in EVENT_TYPES.items():
        quoted = [msgspec.json.encode(m).decode() for m in erasure.matches]
        holds = " OR ".join([f"strpos(CAST({q('data')} AS TEXT), ?) > 0"] * len(quoted))
        found = session.query(
            f"SELECT DISTINCT event_id, {epoch_ms(q('received_at'), dialect)}, "
            f"CAST({q('data')} AS TEXT) FROM {q(table.name)} "
            f"WHERE tenant = ? AND ({holds}) AND {within}",
            (erasure.tenant, *quoted, req.suppress, req.requested_at),
        )
        for event_id, received_at, text in found:
            event = _scrubbed(event_type, event_id, erasure.tenant, received_at, text, req.token)
            for name, n in replace_event(session, table, event).items():
                changed[name] += n
    digits = req.phone
    for table in (t.RAW_WEBHOOK, t.DEADLETTER):
        changed[table.name] = session.changed(
            f"DELETE FROM {q(table.name)} WHERE tenant = ? AND {within} AND "
            f"{_holds_bytes(q('body'), dialect)}",
            (erasure.tenant, req.suppress, req.requested_at, _needle(digits, dialect)),
        )
    changed[t.LOAD_ERRORS.name] = session.changed(
        f"DELETE FROM {q(t.LOAD_ERRORS.name)} WHERE {_holds_bytes(q('value'), dialect)} "
        f"OR {_holds_bytes(q('key'), dialect)}",
        (_needle(digits, dialect), _needle(digits, dialect)),
    )
    session.execute(
        f"INSERT INTO {AUDIT_TABLE} (request_id, tenant, subject, token, requested_at, "
        f"applied_at, suppress, changed) VALUES (?, ?, ?, ?, {_ts(dialect)}, now(), ?, "
        f"CAST(? AS {TYPES[dialect]['json']})) ON CONFLICT DO NOTHING",
        (
            req.request_id,
            erasure.tenant,
            req.subject,
            req.token,
            req.requested_at,
            req.suppress,
            msgspec.json.encode(changed).decode(),
        ),
    )
    return changed


def _needle(digits: str, dialect: Dialect) -> str | bytes:
    return digits if dialect == "duckdb" else digits.encode()


def _scrubbed(
    event_type: EventType,
    event_id: str,
    tenant: str,
    received_at: int | None,
    text: str,
    token: str,
) -> AnyEvent:
    data = msgspec.json.decode(text, type=DATA_OF[event_type])
    return Envelope(  # type: ignore[return-value]  # data is of the event type's Struct
        event_id=event_id,
        event_type=event_type.value,
        tenant=tenant,
        received_at=received_at,  # type: ignore[arg-type]  # null only for absurd times
        data=scrub(data, lambda _phone: token),  # type: ignore[type-var]
    )


def replace_event(session: Session, table: t.Table, event: AnyEvent) -> dict[str, int]:
    """The event's rows and child rows replaced by ``event``'s; per table, how many of the
    old rows are no longer there as they were (a category row, which names no one, comes
    back the same and is not counted: the audit says what the erasure changed)."""
    data_json = msgspec.json.encode(event.data).decode()
    family = (table, *CHILDREN[table])
    old = {each.name: _as_text(session, each, event.event_id) for each in family}
    for each in family:
        session.changed(f"DELETE FROM {q(each.name)} WHERE event_id = ?", (event.event_id,))
    for each, row in r.event_rows(event, data_json):
        session.execute(insert_row(each, session.dialect), row)
    return {
        each.name: (old[each.name] - _as_text(session, each, event.event_id)).total()
        for each in family
    }


def _as_text(session: Session, table: t.Table, event_id: str) -> Counter[tuple[Any, ...]]:
    """The event's rows of ``table``, every column as text: comparable on both engines."""
    columns = ", ".join(f"CAST({q(c.name)} AS TEXT)" for c in table.columns)
    found = session.query(f"SELECT {columns} FROM {q(table.name)} WHERE event_id = ?", (event_id,))
    return Counter(tuple(row) for row in found)


def apply_all(session: Session, erasures: Iterable[Erasure]) -> list[dict[str, int]]:
    return [apply(session, e) for e in erasures]


def erased_query(dialect: Dialect) -> str:
    """Every request recorded, as ``Erased`` fields (requested_at in epoch ms)."""
    return (
        f"SELECT tenant, subject, token, {epoch_ms('requested_at', dialect)}, suppress "
        f"FROM {AUDIT_TABLE}"
    )


def erased(rows: Sequence[Sequence[Any]]) -> list[Erased]:
    return [Erased(str(a), str(b), str(c), int(d), bool(e)) for a, b, c, d, e in rows]
