"""``plug-pipeline simulate`` against the running ingress: every acked event is in Kafka."""

from __future__ import annotations

from pathlib import Path

from pipeline.webhooks import EventType, Webhook
from tests.support import kafka, simulate
from tests.support.ingress import Ingress


def test_simulated_traffic_is_all_in_kafka(ingress: Ingress, tmp_path: Path) -> None:
    acked_file = tmp_path / "acked.txt"
    simulate.run(
        ingress,
        "--rate", "300", "--duration", "4", "--seed", "11", "--acked-file", str(acked_file),
    )  # fmt: skip
    acked = simulate.acked(acked_file)
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
        if topic_of[eid]
        not in {ingress.topic(e.topic_suffix) for e in simulate.TOPICS[Webhook(kind)]}
    ]
    assert misrouted == []
    print(f"simulate: acked {len(acked)}, found {len(acked) - len(lost)}, lost {len(lost)}")
