"""A table's rows as one Arrow table in the staging form: times in epoch ms, JSON as text.

DuckDB takes these as they are (its insert converts them); the Iceberg target converts
them to its column types (``pipeline/lake/schema.py``). One builder for both, so a row
reaches every target the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from pipeline.warehouse.rows import Row
from pipeline.warehouse.tables import Kind, Table

_ARROW: dict[Kind, pa.DataType] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "ts": pa.int64(),  # epoch ms; converted by the insert
    "int": pa.int32(),
    "bool": pa.bool_(),
    "json": pa.string(),
    "bytes": pa.binary(),
}
_JSON = pa.json_()
# Arrow's default pool (mimalloc) keeps what a batch freed for the next one, tens of MB
# the process would show as its own; each batch's arrays are short-lived.
_POOL = pa.system_memory_pool()


def arrow_table(table: Table, rows: Sequence[Row]) -> pa.Table:
    """Rows -> one Arrow table with the staging types of ``table``'s columns."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in table.columns]
    arrays = []
    for values, column in zip(columns, table.columns, strict=True):
        array = pa.array(values, type=_ARROW[column.kind], memory_pool=_POOL)
        if column.kind == "json":
            # Arrow's JSON type reaches DuckDB as JSON, which it stores without parsing
            # it again (a cast from text parses every document: a third of the insert
            # time for attendances, whose data carries the transcript). The text is
            # JSON already: msgspec decoded the envelope it was cut from (batch._Data).
            array = pa.ExtensionArray.from_storage(_JSON, array)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=table.column_names)
