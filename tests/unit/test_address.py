"""Warehouse addresses: a path is DuckDB, known schemes their target, others refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.report.source import is_postgres_url
from pipeline.warehouse.address import kind_of, scheme_of
from pipeline.warehouse.target import open_target

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("plug.duckdb", "duckdb"),
        ("/var/lib/plug/w.duckdb", "duckdb"),
        ("data/a:b.duckdb", "duckdb"),  # a colon is not a scheme without "://"
        (r"C:\plug\w.duckdb", "duckdb"),
        ("postgresql://u@h:5432/db", "postgresql"),
        ("postgres://u@h/db", "postgresql"),
        ("PostgreSQL://u@h/db", "postgresql"),
    ],
)
def test_an_address_names_its_kind(address: str, kind: str) -> None:
    assert kind_of(address) == kind


@pytest.mark.parametrize("address", ["mysql://x@h/db", "s3://bucket/w", "file:///tmp/w.duckdb"])
def test_an_unknown_scheme_is_refused_with_the_known_ones(address: str) -> None:
    with pytest.raises(ConfigError) as raised:
        kind_of(address)
    said = str(raised.value)
    assert f"{scheme_of(address)}://" in said
    assert all(word in said for word in ("postgresql://", "postgres://", "DuckDB"))


def test_an_empty_address_is_refused() -> None:
    with pytest.raises(ConfigError):
        kind_of("  ")


def test_open_target_refuses_an_unknown_scheme_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError):
        open_target("mysql://x@h/db")
    assert list(tmp_path.iterdir()) == []  # no mysql:/x@h/ folder, no DuckDB file


def test_the_report_reads_postgres_as_postgresql() -> None:
    assert is_postgres_url("postgres://u@h/db")
    assert not is_postgres_url("w.duckdb")
    with pytest.raises(ConfigError):
        is_postgres_url("mysql://x@h/db")


def test_load_refuses_an_unknown_scheme_before_kafka(tmp_path: Path) -> None:
    # a broker nobody listens on: the refusal must come before any connection
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "load", "--to", "mysql://x@h/db", "--until-caught-up"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT),
                           "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown warehouse scheme mysql://" in result.stderr
    assert list(tmp_path.iterdir()) == []
