"""An erasure request applied to the lake: the same rows as DuckDB after it, table by
table, the same audit, and a second request for the customer changes nothing."""

from __future__ import annotations

from pathlib import Path

import orjson

from pipeline.lake.target import IcebergTarget
from pipeline.privacy import erasure
from pipeline.privacy.subject import Pseudonyms
from pipeline.warehouse.duckdb import DuckDBTarget
from pipeline.warehouse.personal import Erased
from tests.support import kpi_fixtures as fx
from tests.support.lake import duckdb_tables, lake_address, lake_tables
from tests.support.loader import query
from tests.support.warehouse import write_records
from tests.unit.test_personal import KEYS, erasure_record, personal

AUDIT = "SELECT request_id, subject, token, suppress, changed FROM plug_erasure ORDER BY 1"


def test_an_erasure_leaves_the_lake_as_it_leaves_duckdb(tmp_path: Path) -> None:
    address, path = lake_address(tmp_path), str(tmp_path / "w.duckdb")
    lake, duck = IcebergTarget(address), DuckDBTarget(path)
    request = erasure.request(Pseudonyms(KEYS), "acme", fx.C1, now_ms=fx.ms(fx.DAY2, "23:00:00"))
    again = erasure.request(Pseudonyms(KEYS), "acme", fx.C1, now_ms=request.requested_at + 1)
    for target in (lake, duck):
        keeper = personal("keep")
        target.migrate()
        write_records(target, fx.records(), keeper)
        write_records(target, [erasure_record(request)], keeper)
        write_records(target, [erasure_record(again)], keeper)
    assert sorted(lake.erased(), key=repr) == sorted(duck.erased(), key=repr)
    assert Erased("acme", request.subject, request.token, request.requested_at, False) in (
        lake.erased()
    )
    duck.close()
    lake.close()
    after = lake_tables(address)
    assert fx.C1 not in repr(after)
    assert after == duckdb_tables(path)
    audits = [query(target, AUDIT) for target in (address, path)]
    assert audits[0][:4] == audits[1][:4]
    for (*_, lake_changed), (*_, duck_changed) in zip(*audits, strict=True):
        assert orjson.loads(str(lake_changed)) == orjson.loads(str(duck_changed))
    changed = {str(row[0]): orjson.loads(str(row[4])) for row in audits[0]}
    assert changed[request.request_id]["attendance_finished"] == 2
    assert set(changed[again.request_id].values()) == {0}
