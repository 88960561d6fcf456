"""The settings of every Kafka client we make: producer, consumer and admin.

One place builds the connection and security part (bootstrap servers, SASL, TLS) from a
``KafkaSettings``, so the ingress, ``replay``, the consumer library and the loader all
honour the same ``KAFKA_*`` settings. Only the producer takes the whole ``Config``: its
batch and request sizes, codec and timeout are the ingress's settings.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import Config, KafkaSettings

CLIENT_ID = "plug-pipeline"
# An admin request's bound when the caller has no ack timeout of its own to extend it.
ADMIN_TIMEOUT_S = 5.0


def connection_settings(kafka: KafkaSettings, client_id: str = CLIENT_ID) -> dict[str, Any]:
    """Bootstrap servers, client id and the security pass-through, for any aiokafka client."""
    sec = kafka.security
    settings: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": client_id,
        "security_protocol": sec.security_protocol,
    }
    if sec.sasl_mechanism:
        settings["sasl_mechanism"] = sec.sasl_mechanism
        settings["sasl_plain_username"] = sec.sasl_username
        settings["sasl_plain_password"] = sec.sasl_password
    if sec.security_protocol in {"SSL", "SASL_SSL"}:
        from aiokafka.helpers import create_ssl_context

        settings["ssl_context"] = create_ssl_context(
            cafile=sec.ssl_cafile, certfile=sec.ssl_certfile, keyfile=sec.ssl_keyfile
        )
    return settings


# The producer's largest record batch, before compression.
MAX_BATCH_BYTES = 3 << 20


def message_bytes_needed(config: Config) -> int:
    """A record batch that holds a body at the limit, normalised (the envelope holds the
    transcript with every absent field as null: up to about twice the body) plus headers.

    The producer's ``max_request_size`` and the ``max.message.bytes`` of topics we create.
    """
    return 3 * config.max_body_bytes


def producer_settings(config: Config) -> dict[str, Any]:
    """The producer's keyword arguments; durability settings are not configurable."""
    return connection_settings(config.kafka) | {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": config.linger_ms,
        "compression_type": config.compression,
        # Large transcripts fill a batch in a few records; a full batch makes the next
        # record wait for a round trip, and each wait costs CPU. 64 finishAttendance
        # webhooks at once (43 KB events) fill 2.75 MB: at 3 MiB their records took 28-30 us
        # of the sink's CPU a webhook against 39 at 1 MiB (256 KiB was ~15% worse again;
        # bench/RESULTS.md). Below the ingress's malloc mmap threshold with the builder's
        # growth, so a batch's buffer comes from the heap. Never above what our topics'
        # max.message.bytes holds.
        "max_batch_size": min(MAX_BATCH_BYTES, message_bytes_needed(config)),
        # A body at the limit plus its normalised envelope must fit in one request.
        "max_request_size": message_bytes_needed(config),
        "request_timeout_ms": max(1000, int(config.ack_timeout_s * 1000)),
        "retry_backoff_ms": 100,
    }


def consumer_settings(
    kafka: KafkaSettings, group_id: str | None, client_id: str = CLIENT_ID, **extra: Any
) -> dict[str, Any]:
    """A consumer's keyword arguments: offsets are committed by the caller, never on a timer."""
    return (
        connection_settings(kafka, client_id)
        | {"group_id": group_id, "enable_auto_commit": False}
        | extra
    )


def admin_settings(kafka: KafkaSettings, timeout_s: float = ADMIN_TIMEOUT_S) -> dict[str, Any]:
    """An admin client's keyword arguments; ``timeout_s`` (the ingress passes its ack
    timeout) bounds each request, never below ``ADMIN_TIMEOUT_S``."""
    return connection_settings(kafka) | {
        "request_timeout_ms": int(max(ADMIN_TIMEOUT_S, timeout_s) * 1000),
    }
