"""The warehouse round trip on both engines: every column of every table holds the value
of the event field it is named for (tests/support/roundtrip.py says which field).

The fixture's webhooks go through the ingress's ``ingest`` and the loader's own batch and
target, into a DuckDB file and a PostgreSQL database of the test's own, and are read back
by a separate connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import roundtrip as rt
from tests.support.loader import pg_database


@pytest.fixture(params=["duckdb", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty warehouse: a DuckDB file, or a PostgreSQL database dropped afterwards."""
    if request.param == "duckdb":
        yield str(tmp_path / "plug.duckdb")
    else:
        with pg_database() as url:
            yield url


def test_every_column_holds_the_field_it_is_named_for(where: str) -> None:
    sent = rt.records()
    want = rt.expected_rows(sent)
    rt.check_fixture(want)
    rt.write(where, sent)
    assert rt.differences(where, want) == []


def test_a_redelivered_batch_changes_no_column(where: str) -> None:
    """Written again under another group, as a replay does: each row is there once,
    with the values it had."""
    sent = rt.records()
    rt.write(where, sent)
    rt.write(where, sent, group="replay")
    assert rt.differences(where, rt.expected_rows(sent)) == []
