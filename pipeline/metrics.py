"""Telemetry as named events (received, published, rejected by reason...), in Prometheus form."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "plug_webhooks_received", "Webhook requests read", ["webhook"], registry=r
        )
        self.published = Counter(
            "plug_events_published", "Records acknowledged by Kafka", ["topic"], registry=r
        )
        self.rejected = Counter(
            "plug_webhooks_rejected", "Requests refused, by reason", ["reason"], registry=r
        )
        self.deadlettered = Counter(
            "plug_webhooks_deadlettered", "Bodies kept on the dead-letter topic", registry=r
        )
        self.in_flight = Gauge("plug_requests_in_flight", "Webhooks being handled", registry=r)
        self.ack_latency = Histogram(
            "plug_kafka_ack_seconds",
            "Time from send to Kafka's acknowledgement",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = Metrics()
