"""Consumer construction: the settings it passes to Kafka, the ones it keeps for itself."""

from __future__ import annotations

import pytest

from pipeline.config import Config, KafkaSecurity
from pipeline.consume import ConsumeFailed, Consumer
from pipeline.kafka_client import producer_settings
from pipeline.webhooks import EventType
from tests.support.ingress import free_port


def test_the_consumer_keeps_the_settings_at_least_once_depends_on() -> None:
    with pytest.raises(ValueError, match="enable_auto_commit"):
        Consumer(Config(), group_id="g", kafka_settings={"enable_auto_commit": True})
    consumer = Consumer(Config(), dedup=5)  # no event loop, no connection needed to build one
    assert consumer.dedup is not None
    assert consumer.dedup.size == 5
    assert len(consumer.topics) == 7


async def test_iterating_before_start_is_an_error_not_an_empty_stream() -> None:
    consumer = Consumer(Config())
    with pytest.raises(RuntimeError, match="start"):
        await anext(consumer)


def test_the_consumer_connects_with_the_ingress_s_security_settings() -> None:
    security = KafkaSecurity(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="reader",
        sasl_password="s3cret",
    )
    config = Config(bootstrap_servers="k1:9093,k2:9093", kafka_security=security)
    settings = Consumer(config, group_id="kpi")._settings
    shared = ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_plain_username",
              "sasl_plain_password")  # fmt: skip
    ingress = producer_settings(config)
    assert {k: settings[k] for k in shared} == {k: ingress[k] for k in shared}
    assert settings["group_id"] == "kpi"
    assert settings["enable_auto_commit"] is False


def test_event_types_choose_the_topics_under_the_prefix() -> None:
    consumer = Consumer(
        Config(topic_prefix="acme"), event_types=[EventType.MESSAGE_DELIVERY_FAILED]
    )
    assert consumer.topics == ["acme.message.delivery-failed"]


async def test_no_broker_is_a_consume_failure_saying_so() -> None:
    config = Config(bootstrap_servers=f"127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(ConsumeFailed, match="cannot consume from Kafka") as info:
        async with Consumer(config):
            pass
    assert info.value.retriable is True
