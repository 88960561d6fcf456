"""The loop's counters and histogram expose exactly what prometheus_client's would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from pipeline.runtime.loop_metrics import LoopCounter, LoopHistogram

BUCKETS = (0.001, 0.005, 0.01, 0.5, 1, 10)
# below the first bound, on bounds (counted in their own bucket), between, past the last
OBSERVED = (0.0, 0.0005, 0.001, 0.003, 0.005, 0.0100001, 0.5, 0.75, 1.0, 10.0, 12.5, 1e9)


def test_labelled_counter_matches_prometheus_client() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Counter("hooks_received", "Hooks read", ["webhook", "status"], registry=theirs)
    counter = LoopCounter("hooks_received", "Hooks read", ["webhook", "status"], registry=ours)
    assert generate_latest(ours) == generate_latest(theirs)  # no series yet: help and type
    for webhook, status, amount in [("a", "200", 1), ("b", "503", 2.5), ("a", "200", 3)]:
        reference.labels(webhook, status).inc(amount)
        counter.labels(webhook, status).inc(amount)
    assert generate_latest(ours) == generate_latest(theirs)
    assert ours.get_sample_value("hooks_received_total", {"webhook": "a", "status": "200"}) == 4


def test_counter_without_labels_and_its_refusals() -> None:
    registry = CollectorRegistry()
    counter = LoopCounter("spooled", "Records spooled", registry=registry)
    counter.inc()
    counter.inc(4)
    assert registry.get_sample_value("spooled_total") == 5
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc(-1)
    with pytest.raises(ValueError, match="takes the labels"):
        counter.labels("extra")
    assert registry.get_sample_value("spooled_total") == 5


def test_a_name_registered_twice_is_refused() -> None:
    registry = CollectorRegistry()
    LoopCounter("twice", "First", registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        Counter("twice", "Second", registry=registry)


def test_histogram_matches_prometheus_client() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("ack_seconds", "Ack latency", buckets=BUCKETS, registry=theirs)
    histogram = LoopHistogram("ack_seconds", "Ack latency", buckets=BUCKETS, registry=ours)
    assert generate_latest(ours) == generate_latest(theirs)
    for amount in OBSERVED:
        reference.observe(amount)
        histogram.observe(amount)
        assert generate_latest(ours) == generate_latest(theirs)
    assert ours.get_sample_value("ack_seconds_bucket", {"le": "0.001"}) == 3
    assert ours.get_sample_value("ack_seconds_count") == len(OBSERVED)
