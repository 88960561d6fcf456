"""Consumer construction: the settings it passes to Kafka, the ones it keeps for itself."""

from __future__ import annotations

import pytest

from pipeline.config import Config, KafkaSecurity, KafkaSettings
from pipeline.consume import ConsumeFailed, Consumer
from pipeline.kafka_client import producer_settings
from pipeline.webhooks import EventType
from tests.support.ingress import free_port


def test_the_consumer_keeps_the_settings_at_least_once_depends_on() -> None:
    with pytest.raises(ValueError, match="enable_auto_commit"):
        Consumer(KafkaSettings(), group_id="g", kafka_settings={"enable_auto_commit": True})
    consumer = Consumer(
        KafkaSettings(), dedup=5
    )  # no event loop, no connection needed to build one
    assert consumer.dedup is not None
    assert consumer.dedup.size == 5
    assert len(consumer.topics) == len(EventType)  # every event topic, erasures too


async def test_iterating_before_start_is_an_error_not_an_empty_stream() -> None:
    consumer = Consumer(KafkaSettings())
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
    settings = Consumer(config.kafka, group_id="kpi")._settings
    shared = ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_plain_username",
              "sasl_plain_password")  # fmt: skip
    ingress = producer_settings(config)
    assert {k: settings[k] for k in shared} == {k: ingress[k] for k in shared}
    assert settings["group_id"] == "kpi"
    assert settings["enable_auto_commit"] is False


def test_event_types_choose_the_topics_under_the_prefix() -> None:
    consumer = Consumer(
        KafkaSettings(topic_prefix="acme"), event_types=[EventType.MESSAGE_DELIVERY_FAILED]
    )
    assert consumer.topics == ["acme.message.delivery-failed"]


def test_a_consumer_is_built_from_the_environment_without_an_ingress_config() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9093",
        "PLUG_PIPELINE_TOPIC_PREFIX": "acme",
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "reader",
        "KAFKA_SASL_PASSWORD": "s3cret",
        # an ingress setting the ingress would refuse: a reader does not read it
        "PLUG_PIPELINE_PORT": "0",
    }
    consumer = Consumer(
        KafkaSettings.from_env(env), group_id="kpi", event_types=[EventType.MESSAGE_STATUS]
    )
    assert consumer.topics == ["acme.message.status"]
    assert consumer._settings["bootstrap_servers"] == "k1:9093"
    assert consumer._settings["security_protocol"] == "SASL_PLAINTEXT"
    assert consumer._settings["sasl_plain_username"] == "reader"
    assert consumer._settings["sasl_plain_password"] == "s3cret"


def test_a_config_is_still_taken_with_a_deprecation_warning() -> None:
    config = Config(bootstrap_servers="k1:9093", topic_prefix="acme")
    with pytest.warns(DeprecationWarning, match="KafkaSettings"):
        old = Consumer(config, group_id="kpi")
    assert old.kafka == config.kafka
    assert old._settings == Consumer(config.kafka, group_id="kpi")._settings
    assert old.topics == Consumer(config.kafka).topics


async def test_no_broker_is_a_consume_failure_saying_so() -> None:
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(ConsumeFailed, match="cannot consume from Kafka") as info:
        async with Consumer(kafka):
            pass
    assert info.value.retriable is True
