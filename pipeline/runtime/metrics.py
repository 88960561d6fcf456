"""Telemetry as named events (received, published, rejected by reason...), in Prometheus form."""

from __future__ import annotations

from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)

from pipeline.runtime.loop_metrics import LoopCounter, LoopHistogram

# The *_created series only double every counter on each scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]


def samples(text: str) -> dict[str, float]:
    """The series of a Prometheus text exposition (a scrape of /metrics), by name and labels.

    ``'plug_webhooks_received_total{webhook="receive-message"}' -> 12.0``; comments skipped.
    """
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


# Fine steps up to 20 ms (1 ms up to 6, then 2-5 ms): a p99 interpolated from them (the
# bench's, a dashboard's) is close enough to judge a 10 ms target.
_ACK_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.02,
    0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip


class SpoolStatsSource(Protocol):
    @property
    def depth(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def oldest_age_s(self) -> float: ...
    @property
    def torn_records(self) -> int: ...
    @property
    def stalled_s(self) -> float: ...


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # Counted for every webhook, on the event loop's thread: lock-free (see loop_metrics).
        self.received = LoopCounter(
            "plug_webhooks_received", "Webhook requests read", ["webhook"], registry=r
        )
        self.published = LoopCounter(
            "plug_events_published", "Records acknowledged by Kafka", ["topic"], registry=r
        )
        self.responses = LoopCounter(
            "plug_webhook_responses",
            "Webhook answers, by webhook and HTTP status",
            ["webhook", "status"],
            registry=r,
        )
        self.rejected = Counter(
            "plug_webhooks_rejected", "Requests refused, by reason", ["reason"], registry=r
        )
        self.deadlettered = Counter(
            "plug_webhooks_deadlettered", "Bodies kept on the dead-letter topic", registry=r
        )
        self.connections_closed = Counter(
            "plug_connections_closed",
            "Connections the ingress closed on its own, by reason (idle, shed)",
            ["reason"],
            registry=r,
        )
        self.connections_open = Gauge(
            "plug_connections_open", "Client connections open", registry=r
        )
        self.in_flight = Gauge("plug_requests_in_flight", "Webhooks being handled", registry=r)
        self.ack_latency = LoopHistogram(
            "plug_kafka_ack_seconds",
            "Time from send to Kafka's acknowledgement",
            buckets=_ACK_BUCKETS,
            registry=r,
        )

        self.spooled = Counter(
            "plug_records_spooled", "Records written to the local spool", registry=r
        )
        self.drained = Counter(
            "plug_records_drained", "Spooled records published to Kafka", registry=r
        )
        self.spool_depth = Gauge("plug_spool_depth", "Records in the spool", registry=r)
        self.spool_bytes = Gauge("plug_spool_bytes", "Bytes in the spool", registry=r)
        self.spool_age = Gauge(
            "plug_spool_oldest_age_seconds", "Age of the oldest spooled record", registry=r
        )
        self.spool_torn = Gauge(
            "plug_spool_torn_records", "Torn records skipped at start-up", registry=r
        )

        self.spool_stalled = Gauge(
            "plug_spool_drain_stalled_seconds",
            "Seconds the spool has held records without draining one (0 when draining or empty)",
            registry=r,
        )
        self.set_aside = Counter(
            "plug_records_set_aside",
            "Records Kafka will never take, moved to the dead letters or a quarantine file",
            ["reason"],
            registry=r,
        )
        self.producer_restarts = Counter(
            "plug_kafka_producer_restarts",
            "Kafka producers replaced after a fatal error or a stall",
            ["reason"],
            registry=r,
        )
        self.background_restarts = Counter(
            "plug_background_restarts",
            "Background tasks restarted after an unexpected error",
            ["task"],
            registry=r,
        )
        self.healthy = Gauge(
            "plug_healthy", "1 while the ingress can deliver, 0 once it cannot heal", registry=r
        )
        self.healthy.set(1)

    def watch_spool(self, spool: SpoolStatsSource) -> None:
        """Read the spool's figures at scrape time, so they are never stale."""
        self.spool_depth.set_function(lambda: spool.depth)
        self.spool_bytes.set_function(lambda: spool.bytes)
        self.spool_age.set_function(lambda: spool.oldest_age_s)
        self.spool_torn.set_function(lambda: spool.torn_records)
        self.spool_stalled.set_function(lambda: spool.stalled_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = Metrics()
