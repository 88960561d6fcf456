"""The loader's telemetry in Prometheus form; the ops dashboards use these exact names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Freshness is judged against a 2 s target: fine buckets below it, coarse above.
FRESHNESS_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 5, 10, 30, 60, 300, 3600)
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class LoaderMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "plug_loader_events", "Records loaded (committed), per topic", ["topic"], registry=r
        )
        self.rows = Counter(
            "plug_loader_rows", "Rows handed to the warehouse, per table", ["table"], registry=r
        )
        self.load_errors = Counter(
            "plug_loader_load_errors",
            "Undecodable records kept in plug_load_errors, per topic",
            ["topic"],
            registry=r,
        )
        self.lag = Gauge(
            "plug_loader_lag_records",
            "Records in Kafka not yet in the warehouse, per topic (assigned partitions)",
            ["topic"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "plug_loader_batch_seconds",
            "Time to write one batch and its offsets",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.freshness = Histogram(
            "plug_loader_freshness_seconds",
            "From the record's Kafka timestamp to its committed row",
            buckets=FRESHNESS_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "plug_loader_write_retries",
            "Batch writes retried because the warehouse was unavailable",
            registry=r,
        )
        self.warehouse_up = Gauge(
            "plug_loader_warehouse_up",
            "1 while the warehouse answers, 0 from the first call that found it unavailable "
            "until one succeeds",
            registry=r,
        )
        self.warehouse_last_ok = Gauge(
            "plug_loader_warehouse_last_ok_timestamp_seconds",
            "When the warehouse last answered (a write committed, a query or a probe), epoch s",
            registry=r,
        )
        self.skipped = Counter(
            "plug_loader_skipped_records",
            "Records of other tenants passed over by a loader of one tenant (load --tenant), "
            "per topic",
            ["topic"],
            registry=r,
        )
        self.keyless = Counter(
            "plug_loader_keyless_events",
            "Events of a tenant under the pseudonymise policy with no pseudonym key, stored "
            "under drop (no phone numbers), per tenant",
            ["tenant"],
            registry=r,
        )
