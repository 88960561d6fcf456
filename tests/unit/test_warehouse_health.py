"""The loader's view of its warehouse: told once, reminded, back; and the bounds every
PostgreSQL connection is made with."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, Gauge

from pipeline.warehouse.health import PROBE_S, REMIND_S, WarehouseHealth
from pipeline.warehouse.postgres import CLIENT_SETTINGS, connect_parameters


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def health(clock: Clock) -> tuple[WarehouseHealth, Gauge, Gauge]:
    r = CollectorRegistry()
    up, last_ok = Gauge("up", "u", registry=r), Gauge("ok", "o", registry=r)
    return (
        WarehouseHealth("postgresql://u:***@db:5432/plug", up, last_ok, clock, clock),
        up,
        last_ok,
    )


def value(g: Gauge) -> float:
    return g._value.get()  # type: ignore[no-any-return]


def test_an_outage_is_told_once_then_reminded_then_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    h, up, last_ok = health(clock)
    assert h.up
    assert value(up) == 1
    assert value(last_ok) == 1000.0
    with caplog.at_level(logging.WARNING, "pipeline.warehouse.health"):
        h.failed("write", OSError("timeout"), 2.0)
        clock.now += 2
        h.failed("write", OSError("timeout"), 2.0)
        assert not h.up
        assert value(up) == 0
        assert len(caplog.records) == 1
        first = caplog.records[0].getMessage()
        assert "warehouse unavailable: postgresql://u:***@db:5432/plug (write)" in first
        clock.now += REMIND_S
        h.failed("write", OSError("timeout"), 2.0)
        assert len(caplog.records) == 2
        assert "after 32s" in caplog.records[1].getMessage()
        clock.now += 3
        h.ok()
    assert h.up
    assert value(up) == 1
    assert value(last_ok) == clock.now
    assert "reachable again: postgresql://u:***@db:5432/plug, after 35.0s" in (
        caplog.records[-1].getMessage()
    )


def test_probes_are_due_after_silence_or_after_the_retry_delay() -> None:
    clock = Clock()
    h, _, _ = health(clock)
    assert not h.probe_due(2.0)
    clock.now += PROBE_S
    assert h.probe_due(2.0)
    h.ok()
    assert not h.probe_due(2.0)
    h.failed("probe", OSError("x"), 2.0)
    assert not h.probe_due(2.0)  # down: again after the retry delay, not PROBE_S
    clock.now += 2.0
    assert h.probe_due(2.0)


def test_every_connection_bounds_its_waits_unless_the_address_says_otherwise() -> None:
    params = connect_parameters("postgresql://u:pw@db:5432/plug")
    assert params["connect_timeout"] == CLIENT_SETTINGS["connect_timeout"]
    assert params["tcp_user_timeout"] == 5000
    assert params["keepalives"] == 1
    options = params["options"]
    assert options.startswith("-c TimeZone=UTC ")
    for setting in ("tcp_user_timeout=5000", "idle_in_transaction_session_timeout=30s"):
        assert f"-c {setting}" in options
    given = connect_parameters(
        "postgresql://u@db/plug?connect_timeout=10&options=-c%20statement_timeout%3D5s"
    )
    assert "connect_timeout" not in given  # the address's own is kept
    assert given["options"].endswith("-c statement_timeout=5s")  # last: it wins
