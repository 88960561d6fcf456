"""The KPI view statements: one text for both engines, safe to run on every start."""

from __future__ import annotations

import pytest

from pipeline.warehouse import views


def test_the_same_sql_for_both_dialects_but_the_invoker_s_rights() -> None:
    invoker = " WITH (security_invoker = true) AS"
    postgres = views.statements("postgresql")
    n = len(views.VIEW_NAMES)
    assert all(invoker in s for s in postgres[n:])
    assert [s.replace(invoker, " AS", 1) for s in postgres] == views.statements("duckdb")


def test_views_are_dropped_before_they_are_created() -> None:
    statements = views.statements("duckdb")
    n = len(views.VIEW_NAMES)
    assert statements[:n] == [f"DROP VIEW IF EXISTS {v}" for v in reversed(views.VIEW_NAMES)]
    created = [s.split()[2] for s in statements[n:]]
    assert created == list(views.VIEW_NAMES)


def test_settings_are_written_into_the_views() -> None:
    sql = "\n".join(views.statements("duckdb", time_zone="UTC", sla_seconds=30))
    assert "AT TIME ZONE 'UTC'" in sql
    assert "America/Sao_Paulo" not in sql
    assert "first_response_s <= 30.0" in sql


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "UTC'; DROP TABLE attendance_finished; --", "../../etc/passwd", ""]
)
def test_bad_time_zones_are_refused(zone: str) -> None:
    with pytest.raises(ValueError, match="time zone"):
        views.statements("postgresql", time_zone=zone)


@pytest.mark.parametrize("sla", [0, -5, float("nan"), float("inf")])
def test_bad_sla_thresholds_are_refused(sla: float) -> None:
    with pytest.raises(ValueError, match="SLA"):
        views.statements("duckdb", sla_seconds=sla)
