"""The wallboard's telemetry in Prometheus form."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class LiveMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "plug_live_events", "Events read into the live figures, per type", ["type"], registry=r
        )
        self.undecodable = Counter(
            "plug_live_undecodable", "Records skipped as undecodable, per topic", ["topic"],
            registry=r,
        )  # fmt: skip
        self.lag = Gauge(
            "plug_live_lag_records", "Records on the topics not read yet, per topic", ["topic"],
            registry=r,
        )  # fmt: skip
        self.caught_up = Gauge(
            "plug_live_caught_up", "1 once the day's events were read again after a start",
            registry=r,
        )  # fmt: skip
        self.catch_up_seconds = Gauge(
            "plug_live_catch_up_seconds", "Time from start to caught up with the topics",
            registry=r,
        )  # fmt: skip
        self.publish_age = Gauge(
            "plug_live_publish_age_seconds", "Seconds since the figures were last published",
            registry=r,
        )  # fmt: skip
        self.streams = Gauge(
            "plug_live_streams", "Open wallboard streams (server-sent events)", registry=r
        )
        self.refused = Counter(
            "plug_live_refused", "Requests refused, by reason", ["reason"], registry=r
        )
