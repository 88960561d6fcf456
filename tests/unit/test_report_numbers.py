"""Numbers, durations and dates in the report, in English and Brazilian Portuguese."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.report.numbers import MISSING, NumberFormat

EN, BR = NumberFormat("en"), NumberFormat("pt-BR")


@pytest.mark.parametrize(
    ("value", "digits", "en", "br"),
    [
        (1234567.891, 1, "1,234,567.9", "1.234.567,9"),
        (0, 0, "0", "0"),
        (999.5, 0, "1,000", "1.000"),
        (-1234.5, 2, "-1,234.50", "-1.234,50"),
    ],
)
def test_numbers(value: float, digits: int, en: str, br: str) -> None:
    assert EN.number(value, digits) == en
    assert BR.number(value, digits) == br


def test_percent_and_missing_values() -> None:
    assert EN.percent(66.666) == "66.7%"
    assert BR.percent(66.666) == "66,7%"
    assert EN.percent(None) == BR.number(None) == BR.duration(None) == MISSING


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (2.5, "2.5 s"),
        (42, "42 s"),
        (60, "1 min"),
        (125, "2 min 05 s"),
        (3600, "1 h 00 min"),
        (7620, "2 h 07 min"),
    ],
)
def test_durations(seconds: float, text: str) -> None:
    assert EN.duration(seconds) == text


def test_durations_use_the_decimal_mark() -> None:
    assert BR.duration(2.5) == "2,5 s"


def test_dates() -> None:
    day = dt.date(2025, 3, 10)
    assert EN.date(day) == "2025-03-10"
    assert BR.date(day) == "10/03/2025"
    assert (EN.plotly_separators, BR.plotly_separators) == (".,", ",.")
