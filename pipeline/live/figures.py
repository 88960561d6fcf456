"""The figures of *now* for one tenant, as the wallboard shows them and alerts judge them.

These are plain values: the live state (fed by the event topics) makes a new
``TenantNow`` after every change, the wallboard serialises it, and every listener
(alerts among them) receives it. Times are epoch seconds (float) so that the figures
compare with the KPI views without a time-zone step; "today" is the tenant's day in
the KPI time zone, and ``day`` says which.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Waiting:
    """An attendance whose customer has not had a first answer yet."""

    attendance: str  # the attendance number as Plug sent it: never the phone
    department: str | None
    since: float  # epoch seconds of the request (the first customer message)


@dataclass(frozen=True, slots=True)
class DepartmentNow:
    """One department (the name as Plug sent it; ``None`` when Plug sent none)."""

    department: str | None
    open_attendances: int = 0
    waiting: int = 0
    longest_wait_seconds: float | None = None  # of those waiting now
    finished_today: int = 0
    answered_within_sla_today: int = 0
    service_level_today: float | None = None  # 0..1, as kpi_daily defines it
    average_wait_seconds_today: float | None = None
    average_handle_seconds_today: float | None = None
    open_per_operator: dict[str, int] = field(default_factory=dict)
    sla_eligible_today: int = 0  # finished today with a customer message (kpi_daily's)
    started_today: int = 0  # first starts today: kpi_daily's attendances_started


@dataclass(frozen=True, slots=True)
class InstanceNow:
    """A WhatsApp number (Plug's instance) and whether it is disconnected now."""

    instance_id: str
    disconnected_since: float | None  # epoch seconds; None while connected
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TenantNow:
    """Everything the wallboard shows of one tenant at ``as_of``."""

    tenant: str
    as_of: float
    day: dt.date  # today in the tenant's KPI time zone
    departments: tuple[DepartmentNow, ...]
    total: DepartmentNow  # the same figures over every department
    waiting: tuple[Waiting, ...]
    instances: tuple[InstanceNow, ...]
    delivery_failures_15m: int = 0


# What the live state calls after every change of a tenant's figures (and once a second,
# so that waits grow on screen): the wallboard's push and the alert rules are two.
Listener = Callable[[TenantNow], Awaitable[None]]
