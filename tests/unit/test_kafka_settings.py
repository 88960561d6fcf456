"""KafkaSettings: what a reader of the topics configures, read as the ingress reads it."""

from __future__ import annotations

import pytest

from pipeline import config as configuration
from pipeline.config import KafkaSecurity, KafkaSettings
from pipeline.errors import ConfigError
from pipeline.kafka_client import admin_settings, connection_settings, consumer_settings

KAFKA_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "k1:9093,k2:9093",
    "PLUG_PIPELINE_TOPIC_PREFIX": "acme",
    "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "reader",
    "KAFKA_SASL_PASSWORD": "s3cret",
}


def test_from_env_reads_the_brokers_security_and_prefix() -> None:
    kafka = KafkaSettings.from_env(KAFKA_ENV)
    assert kafka.bootstrap_servers == "k1:9093,k2:9093"
    assert kafka.topic_prefix == "acme"
    assert kafka.security == KafkaSecurity(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="reader",
        sasl_password="s3cret",
    )


def test_the_ingress_config_composes_the_same_settings() -> None:
    assert configuration.load(KAFKA_ENV).kafka == KafkaSettings.from_env(KAFKA_ENV)


def test_from_env_without_variables_gives_the_defaults() -> None:
    assert KafkaSettings.from_env({}) == KafkaSettings()
    assert KafkaSettings().bootstrap_servers == configuration.Config().bootstrap_servers


def test_from_env_reads_os_environ_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUG_PIPELINE_TOPIC_PREFIX", "from-os")
    assert KafkaSettings.from_env().topic_prefix == "from-os"


def test_the_ingress_s_other_settings_are_not_read_nor_checked() -> None:
    env = KAFKA_ENV | {"PLUG_PIPELINE_PORT": "0", "PLUG_PIPELINE_COMPRESSION": "brotli"}
    with pytest.raises(ConfigError):
        configuration.load(env)
    assert KafkaSettings.from_env(env).topic_prefix == "acme"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"KAFKA_BOOTSTRAP_SERVERS": "  "}, "KAFKA_BOOTSTRAP_SERVERS is empty"),
        ({"PLUG_PIPELINE_TOPIC_PERFIX": "acme"}, "unknown setting PLUG_PIPELINE_TOPIC_PERFIX"),
    ],
)
def test_from_env_refuses_what_load_refuses(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        configuration.load(env)
    with pytest.raises(ConfigError, match=words):
        KafkaSettings.from_env(env)


def test_the_sasl_password_is_masked_in_repr() -> None:
    shown = repr(KafkaSettings.from_env(KAFKA_ENV))
    assert "s3cret" not in shown
    assert "sasl_password='***'" in shown
    assert "reader" in shown


def test_every_client_connects_with_the_same_settings() -> None:
    kafka = KafkaSettings.from_env(KAFKA_ENV)
    connection = connection_settings(kafka)
    assert connection["bootstrap_servers"] == "k1:9093,k2:9093"
    assert connection["sasl_plain_username"] == "reader"
    assert connection["sasl_plain_password"] == "s3cret"
    for settings in (consumer_settings(kafka, "g"), admin_settings(kafka)):
        assert {k: settings[k] for k in connection} == connection


def test_the_admin_timeout_follows_a_longer_ack_timeout_only() -> None:
    kafka = KafkaSettings()
    assert admin_settings(kafka)["request_timeout_ms"] == 5000
    assert admin_settings(kafka, 1.0)["request_timeout_ms"] == 5000
    assert admin_settings(kafka, 12.5)["request_timeout_ms"] == 12500
