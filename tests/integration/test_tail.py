"""``plug-pipeline tail`` against the running ingress: every acknowledged event is printed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import cli, kafka
from tests.support.ingress import Ingress
from tests.support.simulate import simulate


def tail(ingress: Ingress, *flags: str) -> list[dict[str, object]]:
    result = cli.run(
        "tail",
        "--until-caught-up",
        *flags,
        env={
            "KAFKA_BOOTSTRAP_SERVERS": kafka.BOOTSTRAP,
            "PLUG_PIPELINE_TOPIC_PREFIX": ingress.prefix,
        },
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_tail_until_caught_up_prints_every_acknowledged_event(
    ingress: Ingress, tmp_path: Path
) -> None:
    acked = simulate(ingress, tmp_path, count=300, seed=31)
    printed = tail(ingress)
    by_id = {str(line["event_id"]): line for line in printed}
    assert sorted(set(acked) - set(by_id)) == []
    for event_id in acked:
        envelope = by_id[event_id]
        assert set(envelope) >= {"event_type", "schema_version", "tenant", "received_at", "data"}
        assert envelope["tenant"] == "acme"


def test_tail_filters_by_topic_and_tenant(ingress: Ingress, tmp_path: Path) -> None:
    acked = simulate(ingress, tmp_path, count=100, seed=37)
    two = tail(ingress, "--topic", "message.status", "--topic", f"{ingress.prefix}.message.sent")
    assert {line["event_type"] for line in two} == {"message.status", "message.sent"}
    acme = tail(ingress, "--tenant", "acme")
    assert {line["tenant"] for line in acme} == {"acme"}
    assert set(acked) <= {line["event_id"] for line in acme}
    globex = tail(ingress, "--tenant", "globex")  # other tests may send as globex
    assert {line["tenant"] for line in globex} <= {"globex"}
    assert not set(acked) & {line["event_id"] for line in globex}
