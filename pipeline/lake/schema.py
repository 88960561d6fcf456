"""The warehouse contract's tables (``warehouse/tables.py``) as Iceberg tables.

Same names, same columns, in the same order; every column optional (the rows hold nulls
where Plug sent none). Kinds map to Iceberg's types: ``ts`` is ``timestamptz`` (UTC,
microseconds), ``json`` is a string holding the JSON text (engines parse it with their
own JSON functions), ``bytes`` is binary. A table is partitioned by the day of its time
column and by tenant, where it has them: a report reads a tenant's days, erasure and
compaction touch a tenant's partitions, and files stay per tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from pipeline.warehouse import tables as t
from pipeline.warehouse.erase import AUDIT_TABLE
from pipeline.warehouse.tables import Column, Kind, Table

_ICEBERG: dict[Kind, IcebergType] = {
    "text": StringType(),
    "bigint": LongType(),
    "ts": TimestamptzType(),
    "int": IntegerType(),
    "bool": BooleanType(),
    "json": StringType(),
    "bytes": BinaryType(),
}
_TS = pa.timestamp("us", tz="UTC")
# The time column each table is partitioned by day of (the first of these it has).
_TIME_COLUMNS = ("received_at", "moment", "kafka_timestamp")
_FIRST_PARTITION_FIELD = 1000  # Iceberg's convention: partition field ids start here


@dataclass(frozen=True)
class LakeTable:
    table: Table
    schema: Schema
    spec: PartitionSpec
    time_column: str | None

    @property
    def name(self) -> str:
        return self.table.name


def lake_table(table: Table) -> LakeTable:
    fields = [
        NestedField(i, c.name, _ICEBERG[c.kind], required=False)
        for i, c in enumerate(table.columns, start=1)
    ]
    schema = Schema(*fields)
    ids = {c.name: i for i, c in enumerate(table.columns, start=1)}
    time_column = next((n for n in _TIME_COLUMNS if n in ids), None)
    partitions = []
    if time_column is not None:
        partitions.append(
            PartitionField(ids[time_column], _FIRST_PARTITION_FIELD, DayTransform(), "day")
        )
    if "tenant" in ids:
        partitions.append(
            PartitionField(
                ids["tenant"],
                _FIRST_PARTITION_FIELD + len(partitions),
                IdentityTransform(),
                "tenant",
            )
        )
    return LakeTable(table, schema, PartitionSpec(*partitions), time_column)


LAKE_TABLES: tuple[LakeTable, ...] = tuple(lake_table(table) for table in t.LOADED_TABLES)
BY_NAME = {lt.name: lt for lt in LAKE_TABLES}
BY_TABLE = {lt.table: lt for lt in LAKE_TABLES}


def to_lake(table: Table, staged: pa.Table) -> pa.Table:
    """A staging Arrow table (``warehouse/arrow.py``: epoch ms, JSON text) -> the Iceberg
    table's Arrow columns."""
    arrays = []
    for column, array in zip(table.columns, staged.columns, strict=True):
        if column.kind == "ts":
            array = pc.multiply(array, 1000).cast(_TS)
        elif column.kind == "json":
            array = pa.chunked_array(
                [chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk
                 for chunk in array.chunks],
                pa.string(),
            )  # fmt: skip
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=table.column_names)


# The loader's offsets (``ledger.py``): the columns of DuckDB's and PostgreSQL's table.
OFFSETS = lake_table(
    Table(
        t.OFFSETS_TABLE,
        (
            Column("group_name", "text"),
            Column("topic", "text"),
            Column("partition", "int"),
            Column("next_offset", "bigint"),
            Column("updated_at", "ts"),
        ),
        ("group_name", "topic", "partition"),
    )
)

# The erasure requests applied (``lake/erase.py``): the columns of ``warehouse/erase.py``'s.
ERASURES = lake_table(
    Table(
        AUDIT_TABLE,
        (
            Column("request_id", "text"),
            Column("tenant", "text"),
            Column("subject", "text"),
            Column("token", "text"),
            Column("requested_at", "ts"),
            Column("applied_at", "ts"),
            Column("suppress", "bool"),
            Column("changed", "json"),
        ),
        ("request_id",),
    )
)
# The lake's own tables beside the contract's, created with them.
BOOKKEEPING = (OFFSETS, ERASURES)
