"""``plug-pipeline replay`` re-derives events, with their event ids, from raw and dead letters."""

from __future__ import annotations

import uuid
from collections import Counter

import orjson
from confluent_kafka import Producer

from pipeline import ingest
from pipeline.webhooks import Webhook
from tests.support import cli, kafka
from tests.support.ingress import Ingress


def replay(ingress: Ingress, *args: str) -> dict[str, int]:
    result = cli.run("replay", "--topic-prefix", ingress.prefix, *args)
    assert result.returncode == 0, result.stderr
    return {k: int(v) for k, v in (pair.split("=") for pair in result.stdout.split())}


def post(ingress: Ingress, hook: str, body: bytes, tenant: str) -> str:
    import urllib.request

    request = urllib.request.Request(
        ingress.webhook_url(hook, tenant), data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        event_id: str = orjson.loads(resp.read())["event_id"]
        return event_id


def test_replay_from_the_raw_archive_keeps_event_ids(ingress: Ingress) -> None:
    marker = uuid.uuid4().hex
    ids = [
        post(
            ingress,
            "when-disconnecting",
            orjson.dumps({"disconnected": True, "instanceId": f"{marker}-{n}", "error": "x"}),
            "globex",
        )
        for n in range(3)
    ]
    counts = replay(ingress, "--source", "raw", "--tenant", "globex", "--webhook",
                    "when-disconnecting")  # fmt: skip
    assert counts["published"] >= 3
    records = kafka.read_all([ingress.topic("instance.disconnected")], want=ids)
    seen = Counter(r.event_id for r in records)
    assert all(seen[eid] >= 2 for eid in ids)  # the original and its replay, one id


def test_replay_from_dead_letters_publishes_what_now_decodes(ingress: Ingress) -> None:
    # as if an earlier decoder had refused a good body
    good = orjson.dumps({"disconnected": True, "instanceId": uuid.uuid4().hex})
    still_bad = b'{"disconnected": "not a bool"}'
    producer = Producer({"bootstrap.servers": kafka.BOOTSTRAP})
    for body in (good, still_bad):
        producer.produce(
            ingress.topic("deadletter"),
            value=body,
            key=b"acme:when-disconnecting",
            headers=[
                ("webhook", b"when-disconnecting"),
                ("tenant", b"acme"),
                ("received-at", b"1732550000000"),
                ("error-reason", b"invalid_shape"),
            ],
        )
    producer.flush(10)
    counts = replay(ingress, "--source", "deadletter", "--webhook", "when-disconnecting")
    assert counts["published"] >= 1
    assert counts["still_malformed"] >= 1
    expected = ingest.event_id("acme", Webhook.WHEN_DISCONNECTING, good)
    records = kafka.read_all([ingress.topic("instance.disconnected")], want=[expected])
    [record] = [r for r in records if r.event_id == expected]
    assert orjson.loads(record.value)["received_at"] == 1732550000000  # kept from the header


def test_replay_dry_run_publishes_nothing(ingress: Ingress) -> None:
    counts = replay(ingress, "--source", "raw", "--dry-run")
    assert counts.get("published", 0) == 0
    assert counts["would_publish"] >= 1
