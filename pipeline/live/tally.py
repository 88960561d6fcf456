"""The day's counts per department, kept as sums that an attendance can be taken out of.

``kpi_daily`` counts an attendance once, as its latest finish says, with its first
start's time when the finish has none. Live, a later finish (or an earlier start that
arrives late) changes what an attendance contributes: the old contribution is taken out
and the new one put in. Durations are summed in integer milliseconds so that taking a
value out leaves exactly what was there before it (float sums would drift).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finished:
    """What one finished attendance adds to its day and department (as ``kpi_daily``)."""

    day: dt.date  # local day of ended_at
    department: str | None
    wait_ms: int | None  # start_time - request_time
    handle_ms: int | None  # end_time - start_time
    first_response_ms: int | None
    customer_wrote: bool


@dataclass(frozen=True, slots=True)
class Started:
    """A first start: counted on its local day, under its department."""

    day: dt.date
    department: str | None


@dataclass(slots=True)
class Tally:
    """One (day, department): the sums behind ``DepartmentNow``'s "today" figures."""

    started: int = 0
    finished: int = 0
    wait_sum_ms: int = 0
    wait_n: int = 0
    handle_sum_ms: int = 0
    handle_n: int = 0
    sla_eligible: int = 0
    sla_met: int = 0

    def is_empty(self) -> bool:
        return not (self.started or self.finished)

    def add_finished(self, f: Finished, sla_ms: float, sign: int = 1) -> None:
        self.finished += sign
        if f.wait_ms is not None:
            self.wait_sum_ms += sign * f.wait_ms
            self.wait_n += sign
        if f.handle_ms is not None:
            self.handle_sum_ms += sign * f.handle_ms
            self.handle_n += sign
        if f.customer_wrote:
            self.sla_eligible += sign
        # kpi_daily: first_response_s <= threshold; an unanswered customer is a miss
        if f.first_response_ms is not None and f.first_response_ms <= sla_ms:
            self.sla_met += sign

    def add(self, other: Tally) -> None:
        self.started += other.started
        self.finished += other.finished
        self.wait_sum_ms += other.wait_sum_ms
        self.wait_n += other.wait_n
        self.handle_sum_ms += other.handle_sum_ms
        self.handle_n += other.handle_n
        self.sla_eligible += other.sla_eligible
        self.sla_met += other.sla_met

    @property
    def service_level(self) -> float | None:
        return self.sla_met / self.sla_eligible if self.sla_eligible else None

    @property
    def average_wait_s(self) -> float | None:
        return self.wait_sum_ms / self.wait_n / 1000 if self.wait_n else None

    @property
    def average_handle_s(self) -> float | None:
        return self.handle_sum_ms / self.handle_n / 1000 if self.handle_n else None
