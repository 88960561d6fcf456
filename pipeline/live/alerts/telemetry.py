"""The alerts' telemetry, on the process's registry (``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from pipeline.runtime.metrics import METRICS

TRANSITIONS = Counter(
    "plug_alert_transitions_total",
    "Alerts fired, repeated and resolved",
    ["state"],
    registry=METRICS.registry,
)
FIRING = Gauge("plug_alerts_firing", "Alerts holding now", registry=METRICS.registry)
# outcome: sent, retried (one failed attempt), refused (the receiver will never take it),
# expired (undelivered past give_up_after_hours), overflow (dropped from a full queue)
NOTIFICATIONS = Counter(
    "plug_alert_notifications_total",
    "Notification attempts and their outcome, per receiver",
    ["receiver", "outcome"],
    registry=METRICS.registry,
)
OUTBOX = Gauge(
    "plug_alert_outbox_depth",
    "Notifications waiting to be delivered, per receiver",
    ["receiver"],
    registry=METRICS.registry,
)
STATE_WRITE_FAILURES = Counter(
    "plug_alert_state_write_failures_total",
    "Times the alerts' state file could not be written",
    registry=METRICS.registry,
)
