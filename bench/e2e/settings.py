"""The bench's fixed choices: CPUs, bodies, load steps and this round's targets."""

from __future__ import annotations

from dataclasses import dataclass

# The server runs alone on CPU 0, the load generators (wrk, the open-loop client, py-spy)
# on CPU 1.
SERVER_CPU = "0"
CLIENT_CPU = "1"

# body name -> (webhook path, topic suffix)
BODIES = {
    "receive": ("receive-message", "message.received"),
    "status": ("message-status", "message.status"),
    "finish40": ("finish-attendance", "attendance.finished"),
}
# The open-loop steps, as fractions of each target's own closed-loop maximum.
FRACTIONS = (0.25, 0.50, 0.75)

# This round's targets, reported against (never failing the run): receive-message
# against the Go peer (per core), the aiohttp web.Application ceiling and the
# hand-written service, the 40-message finishAttendance against the hand-written service
# (all in webhooks/s; the same ratios by CPU per request are reported beside them).
TARGET_GOPEER_RATIO = 0.5
TARGET_CEILING_RATIO = 0.6
TARGET_HANDWRITTEN_RATIO = 3.0
TARGET_FINISH40_HANDWRITTEN_RATIO = 5.0
TARGET_P99_MS = 10.0
# The ingress's histogram of each webhook's wait on Kafka (read through /metrics).
ACK_HISTOGRAM = "plug_kafka_ack_seconds"
TARGET_RSS_MB = 150.0


@dataclass
class Durations:
    """Seconds of each run: a row's warm-up, its max, each open-loop step, py-spy's
    recording, and the broker's warm-up before the first row."""

    warmup: float
    max: float
    open: float
    profile: float
    broker_warmup: float


QUICK = Durations(warmup=1, max=3, open=3, profile=4, broker_warmup=3)
FULL = Durations(warmup=3, max=10, open=10, profile=8, broker_warmup=60)
