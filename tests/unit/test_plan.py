"""The topic plan and the changes ``topics apply`` derives from it (pure)."""

from __future__ import annotations

from pipeline.config import Config
from pipeline.kafka_client import producer_settings
from pipeline.ops.plan import DAY_MS, plan
from pipeline.ops.topics import TopicState, changes
from pipeline.webhooks import all_topics


def test_every_topic_is_planned_with_room_for_a_record_at_the_body_limit() -> None:
    config = Config(max_body_bytes=8 * 1024 * 1024)
    planned = plan(config, brokers=5)
    assert [t.name for t in planned] == all_topics("plug")
    largest = producer_settings(config)["max_request_size"]
    for t in planned:
        assert int(t.configs["max.message.bytes"]) > largest
        assert t.replication == 3
        assert t.configs["min.insync.replicas"] == "2"  # one broker may be down


def test_the_archives_keep_longer_than_the_event_topics() -> None:
    config = Config(topic_prefix="p", retention_days=3, raw_retention_days=45)
    retention = {t.name: int(t.configs["retention.ms"]) for t in plan(config, brokers=1)}
    assert retention.pop("p.raw") == retention.pop("p.deadletter") == 45 * DAY_MS
    # Erasure requests outlive every copy they erase (test_erasure_topic.py).
    assert retention.pop("p.privacy.erasure-requested") == 45 * DAY_MS
    assert set(retention.values()) == {3 * DAY_MS}


def test_a_single_broker_gets_replication_and_min_insync_of_one() -> None:
    (first, *_) = plan(Config(), brokers=1)
    assert first.replication == 1
    assert first.configs["min.insync.replicas"] == "1"


def _state(partitions: int, **configs: str) -> TopicState:
    return TopicState(
        name="plug.raw", partitions=partitions, replication=1, configs=configs, overrides={}
    )


def test_changes_refuse_fewer_partitions_and_name_each_differing_setting() -> None:
    wanted = [t for t in plan(Config(topic_partitions=4), brokers=1) if t.name == "plug.raw"]
    matching = _state(4, **wanted[0].configs)
    assert list(changes(wanted, {"plug.raw": matching})) == []

    wider = _state(9, **(wanted[0].configs | {"retention.ms": "1"}))
    found = {(c.kind, c.text.split()[0]) for c in changes(wanted, {"plug.raw": wider})}
    assert found == {("refuse", "has"), ("config", "retention.ms")}

    assert [c.kind for c in changes(wanted, {})] == ["create"]
