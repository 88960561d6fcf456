"""A Prometheus histogram read from a ``/metrics`` page, and what one step of load put in it.

``make bench`` reads the ingress's ``plug_kafka_ack_seconds`` before and after each
open-loop step: the difference is the wait on Kafka of that step's webhooks alone, from
their records handed to the producer to their acknowledgement as the handler saw it (the
ingress observes it for every publish Kafka acknowledged; in a bench step, one a
webhook). The share of webhooks that waited longer than the p99 target on Kafka alone
says whether the rest of the server could have met the target at all: with more than
1 % over it, it could not.
"""

from __future__ import annotations

import math
import re

from pipeline.runtime.metrics import samples

# Cumulative buckets in order of their upper bound: (le, observations <= le).
Buckets = list[tuple[float, float]]

_LE = re.compile(r'(?:^|[{,])le="(?P<le>[^"]+)"')


def parse_buckets(text: str, name: str) -> Buckets:
    """The buckets of histogram ``name`` (without labels other than ``le``) on the page."""
    return buckets(samples(text), name)


def buckets(figures: dict[str, float], name: str) -> Buckets:
    """The buckets of histogram ``name`` among a page's series (runtime.metrics.samples)."""
    head = f"{name}_bucket{{"
    found: Buckets = []
    for series, value in figures.items():
        if series.startswith(head) and (le := _LE.search(series, len(head) - 1)) is not None:
            found.append((float(le["le"]), value))
    return sorted(found)


def since(before: Buckets, after: Buckets) -> Buckets:
    """What was observed between two readings of the same histogram.

    An empty ``before`` (the page could not be read then) yields nothing rather than
    the counts since the process started.
    """
    if not before or [le for le, _ in before] != [le for le, _ in after]:
        return []
    return [(le, a - b) for (le, b), (_, a) in zip(before, after, strict=True)]


def count(buckets: Buckets) -> float:
    return buckets[-1][1] if buckets else 0.0


def quantile(buckets: Buckets, q: float) -> float | None:
    """The ``q`` quantile, interpolated within its bucket as PromQL's histogram_quantile.

    None without observations; the largest finite bound when it falls in ``+Inf``.
    """
    total = count(buckets)
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(le):
                return lower
            inside = cumulative - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, cumulative
    return lower


def share_above(buckets: Buckets, bound: float) -> float | None:
    """The share of observations over ``bound``, which must be one of the bucket bounds."""
    total = count(buckets)
    if total <= 0:
        return None
    for le, cumulative in buckets:
        if le == bound:
            return (total - cumulative) / total
    raise ValueError(f"{bound} is not a bucket bound")
