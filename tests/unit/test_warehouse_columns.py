"""The warehouse round trip on DuckDB (no server needed): every column of every table
holds the value of the field it is named for. PostgreSQL: tests/integration."""

from __future__ import annotations

from pathlib import Path

from tests.support import roundtrip as rt


def test_the_fixture_can_tell_every_column_from_every_other() -> None:
    rt.check_fixture(rt.expected_rows(rt.records()))


def test_every_duckdb_column_holds_the_field_it_is_named_for(tmp_path: Path) -> None:
    sent = rt.records()
    where = str(tmp_path / "plug.duckdb")
    rt.write(where, sent)
    assert rt.differences(where, rt.expected_rows(sent)) == []
