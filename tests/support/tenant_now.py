"""Hand-made live figures (``TenantNow``) for the alert tests: only what a test names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pipeline.live.figures import DepartmentNow, InstanceNow, TenantNow, Waiting

T0 = 1_796_644_800.0  # 2026-12-07 12:00 UTC, 09:00 in São Paulo


def figures(
    at: float,
    *,
    tenant: str = "acme",
    disconnected: Mapping[str, float | None] | None = None,
    waiting: tuple[tuple[str | None, float], ...] = (),
    departments: tuple[DepartmentNow, ...] = (),
    total: DepartmentNow | None = None,
    failures: int = 0,
) -> TenantNow:
    """``disconnected``: instance id -> since (None: connected); ``waiting``: (department,
    since) per customer waiting for a first answer."""
    return TenantNow(
        tenant=tenant,
        as_of=at,
        day=dt.date(2026, 12, 7),
        departments=departments,
        total=total or DepartmentNow(department=None),
        waiting=tuple(
            Waiting(attendance=f"A{n}", department=department, since=since)
            for n, (department, since) in enumerate(waiting)
        ),
        instances=tuple(
            InstanceNow(instance_id=i, disconnected_since=since)
            for i, since in (disconnected or {}).items()
        ),
        delivery_failures_15m=failures,
    )


def level(department: str | None, answered: int, finished: int) -> DepartmentNow:
    """A department's figures with this service level today."""
    return DepartmentNow(
        department=department,
        finished_today=finished,
        answered_within_sla_today=answered,
        service_level_today=answered / finished if finished else None,
    )
