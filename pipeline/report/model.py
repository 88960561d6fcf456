"""What the report shows, as plain values: filled by ``queries``, drawn by ``page``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Filters:
    """Days are local to the views' time zone; both ends are included."""

    since: dt.date | None = None
    until: dt.date | None = None
    tenant: str | None = None


@dataclass(frozen=True)
class Headline:
    attendances_started: int = 0
    attendances_finished: int = 0
    avg_wait_s: float | None = None
    avg_handle_s: float | None = None
    avg_first_response_s: float | None = None
    p90_first_response_s: float | None = None
    sla_pct: float | None = None
    recontact_pct: float | None = None
    transferred_pct: float | None = None
    messages_per_attendance: float | None = None
    messages_out: int = 0
    failure_pct: float | None = None
    read_pct: float | None = None


@dataclass(frozen=True)
class Day:
    day: dt.date
    started: int
    finished: int
    sla_pct: float | None
    p50_first_response_s: float | None
    p90_first_response_s: float | None


@dataclass(frozen=True)
class Hour:
    hour: dt.datetime  # local, naive
    attendances: int
    messages_in: int
    messages_out: int


@dataclass(frozen=True)
class Bucket:
    label: str
    count: int


@dataclass(frozen=True)
class Distribution:
    name: str
    buckets: list[Bucket]

    @property
    def total(self) -> int:
        return sum(b.count for b in self.buckets)


@dataclass(frozen=True)
class Department:
    department: str
    started: int
    finished: int
    avg_wait_s: float | None
    avg_handle_s: float | None
    avg_first_response_s: float | None
    sla_pct: float | None
    recontact_pct: float | None


@dataclass(frozen=True)
class Operator:
    operator: str
    attendances: int
    avg_handle_s: float | None
    avg_first_response_s: float | None
    sla_pct: float | None
    transferred: int
    avg_concurrency: float | None
    max_concurrency: int


@dataclass(frozen=True)
class CategoryCount:
    category: str
    item: str
    attendances: int


@dataclass(frozen=True)
class Funnel:
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    p50_deliver_s: float | None = None
    p50_read_s: float | None = None


@dataclass(frozen=True)
class ErrorCount:
    error: str
    error_code: str
    failures: int


@dataclass(frozen=True)
class InstanceDowntime:
    instance_id: str
    disconnects: int
    total_s: float | None
    longest_s: float | None
    still_down: int
    last_disconnect: dt.datetime | None
    last_error: str


@dataclass(frozen=True)
class Report:
    filters: Filters
    time_zone: str
    sla_seconds: float
    tenants: list[str]
    headline: Headline
    days: list[Day] = field(default_factory=list)
    hours: list[Hour] = field(default_factory=list)
    distributions: list[Distribution] = field(default_factory=list)
    departments: list[Department] = field(default_factory=list)
    operators: list[Operator] = field(default_factory=list)
    categories: list[CategoryCount] = field(default_factory=list)
    funnel: Funnel = field(default_factory=Funnel)
    errors: list[ErrorCount] = field(default_factory=list)
    downtime: list[InstanceDowntime] = field(default_factory=list)
    unmatched_disconnects: int = 0
