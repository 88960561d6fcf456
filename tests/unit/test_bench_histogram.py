"""The wait on Kafka ``make bench`` reads from the ingress's /metrics (bench/histogram.py)."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram

from bench import histogram
from bench.e2e.measure import watch_kafka
from bench.e2e.report import kafka_wait
from bench.e2e.rows import median_row
from bench.e2e.settings import TARGET_P99_MS
from pipeline.runtime.metrics import METRICS, Metrics
from tests.support.bench_rows import row, step

NAME = "plug_kafka_ack_seconds"
BOUNDS = METRICS.ack_latency.bounds


def page(observed: list[float]) -> str:
    """The ingress's own /metrics page, with ``observed`` waits on Kafka in it."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    Histogram("other_seconds", "Another histogram", registry=registry).observe(0.0001)
    for w in observed:
        metrics.ack_latency.observe(w)
    return metrics.render().decode()


def test_only_the_named_histogram_is_read_in_bound_order() -> None:
    buckets = histogram.parse_buckets(page([0.0007, 0.0007, 0.004]), NAME)
    assert [le for le, _ in buckets] == list(BOUNDS)
    assert dict(buckets)[0.001] == 2
    assert dict(buckets)[0.004] == 3
    assert histogram.count(buckets) == 3


def test_lines_in_any_order_are_read_in_bound_order() -> None:
    lines = page([0.0007, 0.004]).splitlines()
    random.Random(7).shuffle(lines)
    assert histogram.parse_buckets("\n".join(lines), NAME) == histogram.parse_buckets(
        page([0.0007, 0.004]), NAME
    )


def test_a_step_is_what_was_observed_between_two_readings() -> None:
    before = histogram.parse_buckets(page([0.0007] * 50), NAME)
    after = histogram.parse_buckets(page([0.0007] * 50 + [0.0025] * 98 + [0.015, 0.04]), NAME)
    step_waits = histogram.since(before, after)
    assert histogram.count(step_waits) == 100
    assert dict(step_waits)[0.001] == 0
    # 98 of 100 at most 3 ms, two over 10 ms: 2 % waited longer than the target
    assert histogram.share_above(step_waits, 0.01) == pytest.approx(0.02)
    assert histogram.share_above(step_waits, 0.003) == pytest.approx(0.02)
    assert histogram.share_above(step_waits, 0.002) == pytest.approx(1.0)


def test_no_first_reading_gives_no_step_rather_than_everything_since_start() -> None:
    after = histogram.parse_buckets(page([0.001] * 10), NAME)
    assert histogram.since([], after) == []
    assert histogram.since(after, []) == []
    # another set of buckets (a restarted ingress of another version): no step either
    assert histogram.since(after[1:], after) == []
    assert histogram.quantile([], 0.99) is None
    assert histogram.share_above([], 0.01) is None


def test_quantile_interpolates_within_its_bucket_as_promql_does() -> None:
    # 100 observations: 50 in (0, 1 ms], 40 in (1, 2 ms], 10 in (8, 10 ms]
    buckets = histogram.parse_buckets(page([0.0009] * 50 + [0.0015] * 40 + [0.009] * 10), NAME)
    assert histogram.quantile(buckets, 0.5) == pytest.approx(0.001)
    assert histogram.quantile(buckets, 0.7) == pytest.approx(0.0015)
    assert histogram.quantile(buckets, 0.95) == pytest.approx(0.009)
    assert histogram.quantile(buckets, 0.99) == pytest.approx(0.0098)


def test_a_quantile_past_the_last_bound_reads_as_that_bound() -> None:
    buckets = histogram.parse_buckets(page([0.001, 30.0]), NAME)
    assert histogram.quantile(buckets, 0.99) == 10.0


def test_a_share_needs_a_bucket_bound() -> None:
    buckets = histogram.parse_buckets(page([0.001]), NAME)
    with pytest.raises(ValueError, match="not a bucket bound"):
        histogram.share_above(buckets, 0.007)


def test_the_p99_target_is_one_of_the_ingress_s_bounds() -> None:
    assert TARGET_P99_MS / 1000 in BOUNDS


def test_a_step_s_wait_on_kafka_in_its_figures_and_the_report() -> None:
    waited = histogram.parse_buckets(page([0.0015] * 97 + [0.012] * 3), NAME)
    ol = step(0.5, 14.0)
    watch_kafka(ol, waited)
    # the 99th of 100 is the second of the three in (10, 12.5 ms]: 10 + 2.5 * 2/3
    assert ol["kafka_p99_ms"] == pytest.approx(10 + 2.5 * 2 / 3)
    assert ol["kafka_over_target"] == pytest.approx(0.03)
    assert kafka_wait(ol) == f"{ol['kafka_p99_ms']:.1f} / 3.0%"
    assert kafka_wait(step(0.5, 14.0)) == "-"


def test_medians_and_rounds_carry_the_wait_on_kafka() -> None:
    rounds = [row(n, 9000, 100, 9.0) for n in (1, 2, 3)]
    for r, p99, share in zip(rounds, (4.0, 12.0, 6.0), (0.001, 0.02, 0.004), strict=True):
        half = r.at(0.5)
        assert half is not None
        half.update(kafka_p99_ms=p99, kafka_over_target=share)
    m = median_row(rounds)
    half = m.at(0.5)
    assert half is not None
    assert (half["kafka_p99_ms"], half["kafka_over_target"]) == (6.0, 0.004)
    assert m.per_round["kafka p99@0.5"] == [4.0, 12.0, 6.0]
    assert m.per_round["kafka p99@0.25"] == [None, None, None]
