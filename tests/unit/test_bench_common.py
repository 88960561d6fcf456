"""The helpers the benchmarks share (bench/common.py)."""

from __future__ import annotations

import math
import random

import pytest

from bench.common import machine, percentile


def test_a_percentile_is_the_reading_at_its_nearest_rank() -> None:
    readings = [float(n) for n in range(1, 1001)]
    # the p99 of 1,000 readings is the 990th, never a value between two readings
    assert percentile(readings, 99) == 990.0
    assert percentile(readings, 50) == 500.0
    assert percentile(readings, 100) == 1000.0
    assert percentile(readings, 0) == 1.0


def test_a_percentile_of_few_readings_rounds_its_rank_up() -> None:
    assert percentile([3.0, 7.0], 50) == 3.0
    assert percentile([3.0, 7.0], 51) == 7.0
    assert percentile([4.0], 99) == 4.0


def test_a_percentile_is_one_of_the_readings_whatever_their_count() -> None:
    rnd = random.Random(11)
    for n in (1, 2, 9, 100, 1001):
        readings = sorted(rnd.uniform(0, 50) for _ in range(n))
        for p in (50, 90, 99, 99.9):
            value = percentile(readings, p)
            assert value in readings
            # at least p % of the readings are at or below it, and fewer at or below the one before
            at_or_below = sum(1 for r in readings if r <= value)
            assert at_or_below >= p / 100 * n
            assert at_or_below - 1 < p / 100 * n


def test_no_readings_no_percentile() -> None:
    assert math.isnan(percentile([], 99))


@pytest.mark.parametrize("key", ["cpu", "python", "kernel"])
def test_the_machine_is_named(key: str) -> None:
    assert machine()[key]


def test_the_machine_counts_its_cores() -> None:
    cores = machine()["cores"]
    assert isinstance(cores, int)
    assert cores >= 1
