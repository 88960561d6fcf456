"""Numbers, durations and dates as people read them, in English or Brazilian Portuguese.

English: ``12,345.6``, ``97.5%``, ``2025-01-31``. pt-BR: ``12.345,6``, ``97,5%``,
``31/01/2025``. Absent values (no data in the period) print as an em dash.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

LocaleName = Literal["en", "pt-BR"]
LOCALES: tuple[LocaleName, ...] = ("en", "pt-BR")
MISSING = "—"


@dataclass(frozen=True)
class NumberFormat:
    locale: LocaleName = "en"

    @property
    def decimal(self) -> str:
        return "," if self.locale == "pt-BR" else "."

    @property
    def thousands(self) -> str:
        return "." if self.locale == "pt-BR" else ","

    @property
    def plotly_separators(self) -> str:
        """Plotly's ``layout.separators``: the decimal mark, then the thousands mark."""
        return self.decimal + self.thousands

    def number(self, value: float | None, digits: int = 0) -> str:
        if value is None:
            return MISSING
        text = f"{value:,.{digits}f}"
        # Swap through a placeholder so "," and "." can trade places.
        return text.replace(",", "\0").replace(".", self.decimal).replace("\0", self.thousands)

    def percent(self, value: float | None, digits: int = 1) -> str:
        return MISSING if value is None else f"{self.number(value, digits)}%"

    def duration(self, seconds: float | None) -> str:
        """``42 s``, ``3 min 05 s``, ``2 h 07 min``: whole seconds below an hour."""
        if seconds is None:
            return MISSING
        sign = "-" if seconds < 0 else ""
        total = round(abs(seconds))
        if total < 60:
            if abs(seconds) < 10 and total != abs(seconds):
                return f"{sign}{self.number(abs(seconds), 1)} s"
            return f"{sign}{total} s"
        if total < 3600:
            if total % 60 == 0:
                return f"{sign}{total // 60} min"
            return f"{sign}{total // 60} min {total % 60:02d} s"
        return f"{sign}{total // 3600} h {total % 3600 // 60:02d} min"

    def date(self, day: dt.date | None) -> str:
        if day is None:
            return MISSING
        return day.strftime("%d/%m/%Y") if self.locale == "pt-BR" else day.isoformat()

    def short_date(self, day: dt.date) -> str:
        return day.strftime("%d/%m") if self.locale == "pt-BR" else day.strftime("%b %d")

    def hour(self, at: dt.datetime) -> str:
        if self.locale == "pt-BR":
            return at.strftime("%d/%m %Hh")
        return at.strftime("%b %d %H:00")

    def timestamp(self, at: dt.datetime | None) -> str:
        if at is None:
            return MISSING
        if self.locale == "pt-BR":
            return at.strftime("%d/%m/%Y %H:%M")
        return at.strftime("%Y-%m-%d %H:%M")
