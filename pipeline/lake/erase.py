"""An erasure request applied to the lake's tables, as ``warehouse/erase.py`` applies it
to DuckDB's and PostgreSQL's: the same rows found, re-derived and replaced.

A customer's event rows are those of the tenant whose ``data`` holds the phone (or one of
its pseudonyms) as a whole JSON string, received up to the request (any time, with
suppression); each event is decoded, scrubbed with the request's token and turned into
rows again by ``rows.py``. Its child tables are replaced first, then its own table, each
in one overwrite of those events' rows: a loader stopped in between finds the event
unscrubbed on the replay and does it all again. Raw bodies and dead letters of the
tenant holding the phone's digits, and load errors that do, are deleted. The request is
recorded in ``plug_erasure`` once (by request id). Each commit is based on the snapshot
it read, a loader's commit meanwhile making it read again (``target.py``).

The original rows stay in the files of the snapshots before the erasure until
``lake maintain`` expires those snapshots and removes the files.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import WarehouseUnavailable
from pipeline.lake.ledger import back_off
from pipeline.lake.schema import ERASURES, to_lake
from pipeline.warehouse import rows as r
from pipeline.warehouse import tables as t
from pipeline.warehouse.arrow import arrow_table
from pipeline.warehouse.erase import ALL_TABLES, CHILDREN, EVENT_TYPES, Erasure, scrubbed
from pipeline.warehouse.personal import Erased

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table as IcebergTable

ATTEMPTS = 20
Tables = Callable[[str], "IcebergTable"]  # a table by name, as of its latest commit


def apply(tables: Tables, erasure: Erasure) -> dict[str, int]:
    """Anonymise the customer's rows and record the request; rows changed per table."""
    changed = dict.fromkeys((table.name for table in ALL_TABLES), 0)
    for table, event_type in EVENT_TYPES.items():
        found = _events_of(tables(table.name), erasure)
        if not found:
            continue
        replaced: dict[t.Table, list[r.Row]] = defaultdict(list)
        for event_id, received_at, text in found:
            event = scrubbed(
                event_type, event_id, erasure.tenant, received_at, text, erasure.request.token
            )
            for each, row in r.event_rows(event, msgspec.json.encode(event.data).decode()):
                replaced[each].append(row)
        ids = sorted({event_id for event_id, _, _ in found})
        for each in (*CHILDREN[table], table):  # children first: see the docstring
            changed[each.name] += _overwrite(tables, each, ids, replaced.get(each, []))
    for table in (t.RAW_WEBHOOK, t.DEADLETTER):
        changed[table.name] = _delete_holding(tables, table, erasure, ("body",), by_tenant=True)
    changed[t.LOAD_ERRORS.name] = _delete_holding(
        tables, t.LOAD_ERRORS, erasure, ("value", "key"), by_tenant=False
    )
    _record(tables, erasure, changed)
    return changed


def erased(table: IcebergTable) -> list[Erased]:
    """Every request recorded in ``plug_erasure``."""
    if table.current_snapshot() is None:
        return []
    rows = table.scan().to_arrow().to_pylist()
    return [
        Erased(
            row["tenant"],
            row["subject"],
            row["token"],
            int(row["requested_at"].timestamp() * 1000),
            bool(row["suppress"]),
        )
        for row in rows
    ]


def _events_of(table: IcebergTable, erasure: Erasure) -> list[tuple[str, int | None, str]]:
    """(event id, received_at in ms, data) of the customer's events in the table."""
    if table.current_snapshot() is None:
        return []
    rows = table.scan(
        row_filter=_equal("tenant", erasure.tenant),
        selected_fields=("event_id", "received_at", "data"),
    ).to_arrow()
    if not rows.num_rows:
        return []
    quoted = [msgspec.json.encode(m).decode() for m in erasure.matches]
    mask = _any_holds(rows.column("data"), quoted)
    received_ms = pc.divide(rows.column("received_at").cast(pa.int64()), 1000)
    if not erasure.request.suppress:
        within = pc.or_kleene(
            pc.is_null(received_ms), pc.less_equal(received_ms, erasure.request.requested_at)
        )
        mask = pc.and_kleene(mask, within)
    mine = rows.filter(pc.fill_null(mask, False))
    found: dict[str, tuple[str, int | None, str]] = {}
    for event_id, received, text in zip(
        mine.column("event_id").to_pylist(),
        pc.divide(mine.column("received_at").cast(pa.int64()), 1000).to_pylist(),
        mine.column("data").to_pylist(),
        strict=True,
    ):
        found.setdefault(event_id, (event_id, received, text))
    return list(found.values())


def _any_holds(column: Any, needles: list[str] | list[bytes]) -> Any:
    mask = None
    for needle in needles:
        holds = pc.match_substring(column, needle)
        mask = holds if mask is None else pc.or_kleene(mask, holds)
    return mask


def _overwrite(tables: Tables, table: t.Table, ids: list[str], rows: list[r.Row]) -> int:
    """The rows of events ``ids`` replaced by ``rows``, in one commit; how many of the old
    rows are no longer there as they were (as the SQL warehouses count, ``erase.py``)."""
    from pyiceberg.exceptions import CommitFailedException

    new = to_lake(table, arrow_table(table, rows))
    for attempt in range(ATTEMPTS):
        iceberg = tables(table.name)
        old = iceberg.scan(row_filter=_in("event_id", ids)).to_arrow()
        try:
            iceberg.overwrite(new, overwrite_filter=_in("event_id", ids))
            return (_as_text(table, old) - _as_text(table, new)).total()
        except CommitFailedException:
            back_off(attempt)
    raise WarehouseUnavailable(f"{table.name}: {ATTEMPTS} commits in a row lost to others")


def _as_text(table: t.Table, rows: pa.Table) -> Counter[tuple[str, ...]]:
    columns = [rows.column(c.name).to_pylist() for c in table.columns]
    return Counter(tuple(str(v) for v in row) for row in zip(*columns, strict=True))


def _delete_holding(
    tables: Tables, table: t.Table, erasure: Erasure, columns: tuple[str, ...], by_tenant: bool
) -> int:
    """Delete the rows whose bytes hold the phone's digits; how many."""
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.expressions import AlwaysTrue, And, Or

    req = erasure.request
    key = list(table.key)
    for attempt in range(ATTEMPTS):
        iceberg = tables(table.name)
        if iceberg.current_snapshot() is None:
            return 0
        where: BooleanExpression = _equal("tenant", erasure.tenant) if by_tenant else AlwaysTrue()
        rows = iceberg.scan(row_filter=where).to_arrow()
        if not rows.num_rows:
            return 0
        mask = None
        for column in columns:
            holds = pc.fill_null(_any_holds(rows.column(column), [req.phone.encode()]), False)
            mask = holds if mask is None else pc.or_(mask, holds)
        if by_tenant and not req.suppress:
            received_ms = pc.divide(rows.column("received_at").cast(pa.int64()), 1000)
            within = pc.or_kleene(
                pc.is_null(received_ms), pc.less_equal(received_ms, req.requested_at)
            )
            mask = pc.and_kleene(mask, pc.fill_null(within, True))
        doomed = rows.filter(mask)
        if not doomed.num_rows:
            return 0
        each: list[BooleanExpression] = []
        for values in zip(*(doomed.column(k).to_pylist() for k in key), strict=True):
            one: BooleanExpression = AlwaysTrue()
            for column, value in zip(key, values, strict=True):
                one = And(one, _equal(column, value))
            each.append(one)
        condition = each[0]
        for more in each[1:]:
            condition = Or(condition, more)
        try:
            iceberg.delete(delete_filter=condition)
            return int(doomed.num_rows)
        except CommitFailedException:
            back_off(attempt)
    raise WarehouseUnavailable(f"{table.name}: {ATTEMPTS} commits in a row lost to others")


def _record(tables: Tables, erasure: Erasure, changed: dict[str, int]) -> None:
    """The request in ``plug_erasure``, unless it is there already."""
    from pyiceberg.exceptions import CommitFailedException

    req = erasure.request
    for attempt in range(ATTEMPTS):
        iceberg = tables(ERASURES.name)
        if iceberg.current_snapshot() is not None:
            held = iceberg.scan(
                row_filter=_equal("request_id", req.request_id), selected_fields=("request_id",)
            ).to_arrow()
            if held.num_rows:
                return
        row = (
            req.request_id, erasure.tenant, req.subject, req.token, req.requested_at,
            int(time.time() * 1000), req.suppress, msgspec.json.encode(changed).decode(),
        )  # fmt: skip
        try:
            iceberg.append(to_lake(ERASURES.table, arrow_table(ERASURES.table, [row])))
            return
        except CommitFailedException:
            back_off(attempt)
    raise WarehouseUnavailable(f"{ERASURES.name}: {ATTEMPTS} commits in a row lost to others")


# pyiceberg's expressions are pydantic models made by __new__, which mypy does not see
def _in(column: str, values: list[str]) -> BooleanExpression:
    from pyiceberg.expressions import In

    return In(column, values)  # type: ignore[call-arg, arg-type]


def _equal(column: str, value: Any) -> BooleanExpression:
    from pyiceberg.expressions import EqualTo

    return EqualTo(column, value)  # type: ignore[call-arg, arg-type]
