"""``plug-pipeline subject --tenant T --phone P``: what the warehouse holds about a customer.

The customer's right of access and portability (LGPD art. 18 II and V, art. 19): one
JSON document of every event of theirs in the order it happened (``received_at``, then
the event's own moment), each with its type, its rows in every table (children included)
and its stored data; then the raw bodies and dead letters of the tenant that hold the
phone; then the erasure requests recorded for them. Rows are found as the loader finds
them for an erasure (``erase.py``): the phone, or its pseudonym under the tenant's key,
as a whole JSON string of the event's data. Read-only: the report's connection.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from decimal import Decimal
from typing import Any

import msgspec

from pipeline import config as configuration
from pipeline.privacy.subject import Pseudonyms, requested_phone
from pipeline.report.source import Source, open_source
from pipeline.warehouse import tables as t
from pipeline.warehouse.address import add_address_argument
from pipeline.warehouse.erase import AUDIT_TABLE, CHILDREN, EVENT_TYPES
from pipeline.warehouse.sql import q


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "subject",
        help="everything the warehouse holds about one customer, as JSON (access requests)",
        description="Print one JSON document of a customer's events, rows, raw bodies and "
        "erasure requests, in the order they happened.",
    )
    p.add_argument("--tenant", required=True, help="the contact centre the customer wrote to")
    p.add_argument("--phone", required=True, help="the customer's phone number")
    add_address_argument(p, "--from", "source")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = configuration.load(None)
    phone = requested_phone(args.phone)
    pseudonyms = Pseudonyms(config.privacy_keys)
    subject = pseudonyms.of(args.tenant, phone) if args.tenant in pseudonyms else None
    with open_source(args.source or config.warehouse) as source:
        document = collect(source, args.tenant, phone, subject)
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(document).decode()) + "\n")
    return 0


def collect(source: Source, tenant: str, phone: str, subject: str | None) -> dict[str, Any]:
    """The document: the customer's events, raw records and erasure requests."""
    matches = [phone, *([subject] if subject else [])]
    return {
        "tenant": tenant,
        "subject": subject,
        "events": _events(source, tenant, matches),
        "raw": _raw(source, tenant, phone),
        "erasures": _erasures(source, tenant, subject),
    }


def _events(source: Source, tenant: str, matches: list[str]) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"tenant": tenant}
    holds = []
    for i, match in enumerate(matches):
        params[f"m{i}"] = msgspec.json.encode(match).decode()  # a whole JSON string
        holds.append(f"strpos(CAST({q('data')} AS TEXT), %(m{i})s) > 0")
    events: dict[str, dict[str, Any]] = {}
    for table, event_type in EVENT_TYPES.items():
        sql = f"SELECT * FROM {q(table.name)} WHERE tenant = %(tenant)s AND ({' OR '.join(holds)})"
        for row in source.rows(sql, params):
            event = events.get(row["event_id"])
            if event is None:
                event = events[row["event_id"]] = {
                    "event_id": row["event_id"],
                    "event_type": event_type.value,
                    "received_at": row["received_at"],
                    "moment": row.get("moment") or row.get("start_time"),
                    "data": _json(row.pop("data")),
                    "tables": {table.name: []},
                }
                for child in CHILDREN[table]:
                    event["tables"][child.name] = _children(source, child, row["event_id"])
            event["tables"][table.name].append(_plain(row))
    ordered = sorted(events.values(), key=_order)
    return [{k: _value(v) for k, v in e.items() if k != "moment"} for e in ordered]


def _order(event: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    lowest = dt.datetime.min.replace(tzinfo=dt.UTC)
    return event["received_at"] or lowest, event["moment"] or lowest


def _children(source: Source, child: t.Table, event_id: str) -> list[dict[str, Any]]:
    sql = f"SELECT * FROM {q(child.name)} WHERE event_id = %(id)s ORDER BY position"
    return [_plain(row) for row in source.rows(sql, {"id": event_id})]


def _raw(source: Source, tenant: str, phone: str) -> list[dict[str, Any]]:
    """Raw bodies and dead letters of the tenant that hold the phone's digits."""
    found = []
    for table in (t.RAW_WEBHOOK, t.DEADLETTER):
        rows = source.rows(
            f"SELECT * FROM {q(table.name)} WHERE tenant = %(tenant)s", {"tenant": tenant}
        )
        for row in rows:
            body = bytes(row["body"] or b"")
            if phone.encode() in body:
                found.append({"table": table.name, **_plain(row)})
    found.sort(key=lambda r: str(r.get("received_at") or ""))
    return found


def _erasures(source: Source, tenant: str, subject: str | None) -> list[dict[str, Any]]:
    if subject is None:
        return []
    sql = (
        f"SELECT request_id, subject, token, requested_at, applied_at, suppress, changed "
        f"FROM {AUDIT_TABLE} WHERE tenant = %(tenant)s AND subject = %(subject)s "
        "ORDER BY requested_at"
    )
    rows = source.rows(sql, {"tenant": tenant, "subject": subject})
    return [{**_plain(row), "changed": _json(row["changed"])} for row in rows]


def _json(value: Any) -> Any:
    """A JSON column: DuckDB gives its text, PostgreSQL the decoded value."""
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _value(v) for k, v in row.items() if k not in {"data", "event_id_number"}}


def _value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value
