"""``plug-pipeline simulate`` against the running ingress: every acked event is in Kafka."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipeline.webhooks import EventType, Webhook
from tests.conftest import TOKENS
from tests.integration import kafka
from tests.integration.conftest import Ingress

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


def test_simulated_traffic_is_all_in_kafka(ingress: Ingress, tmp_path: Path) -> None:
    acked_file = tmp_path / "acked.txt"
    result = subprocess.run(
        [
            sys.executable, "-m", "pipeline", "simulate",
            "--target", ingress.url,
            "--tenant", "acme",
            "--rate", "300",
            "--duration", "4",
            "--seed", "11",
            "--acked-file", str(acked_file),
        ],
        env={**os.environ, "PLUG_PIPELINE_TOKENS": f"acme={TOKENS['acme']}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    acked = dict(line.split() for line in acked_file.read_text().splitlines())
    assert len(acked) >= 1000  # 300/s for 4 s, every one answered 200
    kinds = {Webhook(k) for k in acked.values()}
    assert kinds == set(Webhook)  # all seven kinds were exercised

    topics = [ingress.topic(e.topic_suffix) for e in EventType]
    records = kafka.read_all(topics, want=acked, timeout_s=30)
    topic_of = {r.event_id: r.topic for r in records}
    lost = [eid for eid in acked if eid not in topic_of]
    assert lost == []
    misrouted = [
        (eid, kind, topic_of[eid])
        for eid, kind in acked.items()
        if topic_of[eid] not in {ingress.topic(e.topic_suffix) for e in TOPICS[Webhook(kind)]}
    ]
    assert misrouted == []
    print(f"simulate: acked {len(acked)}, found {len(acked) - len(lost)}, lost {len(lost)}")
