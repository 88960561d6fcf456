"""The token bucket, on a clock the test moves."""

from __future__ import annotations

import pytest

from pipeline.http.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, burst=3, clock=clock)
    assert [limiter.take("acme") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("acme") == pytest.approx(0.5)  # one token comes every 0.5 s
    clock.now += 0.5
    assert limiter.take("acme") == 0.0
    assert limiter.take("acme") > 0


def test_tenants_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(1.0, burst=1, clock=Clock())
    assert limiter.take("acme") == 0.0
    assert limiter.take("acme") > 0
    assert limiter.take("globex") == 0.0


def test_an_idle_bucket_fills_only_to_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(10.0, burst=2, clock=clock)
    limiter.take("acme")
    clock.now += 3600
    assert [limiter.take("acme") == 0.0 for _ in range(3)] == [True, True, False]


def test_the_default_burst_is_one_second_of_the_rate() -> None:
    limiter = RateLimiter(5.0, clock=Clock())
    assert [limiter.take("acme") == 0.0 for _ in range(6)] == [True] * 5 + [False]


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)
