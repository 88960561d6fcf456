"""``plug-pipeline simulate`` against a running ingress, and where its traffic must land."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from pipeline.webhooks import EventType, Webhook
from tests.support import cli
from tests.support.ingress import Ingress
from tests.support.payloads import TOKENS

# The topics a webhook's events may land on (a delivery with an error is a failure).
TOPICS = {
    Webhook.FINISH_ATTENDANCE: {EventType.ATTENDANCE_FINISHED},
    Webhook.START_ATTENDANCE: {EventType.ATTENDANCE_STARTED},
    Webhook.RECEIVE_MESSAGE: {EventType.MESSAGE_RECEIVED},
    Webhook.SENDING_MESSAGE: {EventType.MESSAGE_SENT, EventType.MESSAGE_DELIVERY_FAILED},
    Webhook.MESSAGE_DELIVERY_ERROR: {EventType.MESSAGE_DELIVERY_FAILED},
    Webhook.MESSAGE_STATUS: {EventType.MESSAGE_STATUS},
    Webhook.WHEN_DISCONNECTING: {EventType.INSTANCE_DISCONNECTED},
}
START_MS = 1_767_000_000_000  # fixed, so two runs with one seed send the same bodies


def run(ingress: Ingress, *flags: str) -> subprocess.CompletedProcess[str]:
    """Send as tenant acme; the run must exit 0."""
    result = cli.run(
        "simulate", "--target", ingress.url, "--tenant", "acme", *flags,
        env={"PLUG_PIPELINE_TOKENS": f"acme={TOKENS['acme']}"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def acked(acked_file: Path) -> dict[str, str]:
    """``--acked-file``'s lines as ``event_id -> webhook``."""
    return dict(line.split() for line in acked_file.read_text().splitlines())


def simulate(ingress: Ingress, tmp_path: Path, count: int, seed: int) -> dict[str, str]:
    """POST ``count`` webhooks of all kinds; returns the acknowledged ``event_id -> webhook``."""
    acked_file = tmp_path / f"acked-{uuid.uuid4().hex[:6]}.txt"
    run(
        ingress,
        "--rate", "500", "--count", str(count), "--seed", str(seed),
        "--start-ms", str(START_MS), "--acked-file", str(acked_file),
    )  # fmt: skip
    lines = acked_file.read_text().splitlines()
    assert len(lines) == count  # every request answered 200
    return acked(acked_file)
