"""``plug-pipeline forget`` against the real broker: the request on its compacted topic,
read back by another client, by the typed library and by ``tail``; the phone never in a
key, the command's output or its logs."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

from pipeline.config import KafkaSettings
from pipeline.consume import Consumer
from pipeline.events.models import ErasureRequested
from pipeline.privacy.subject import Pseudonyms
from pipeline.webhooks import EventType
from tests.support import cli, kafka

TYPED = "+55 (11) 98765-4321"
PHONE = "5511987654321"
KEY = "acme-privacy-key"


@pytest.fixture(scope="module")
def forgotten(broker: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One ``forget`` run on topics of its own, its output and its JSON receipt."""
    prefix = f"fg{uuid.uuid4().hex[:8]}"
    spool = tmp_path_factory.mktemp("spool")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker,
        "PLUG_PIPELINE_TOPIC_PREFIX": prefix,
        "PLUG_PIPELINE_PRIVACY_KEYS": f"acme={KEY}",
        "PLUG_PIPELINE_SPOOL_DIR": str(spool),
        "PLUG_PIPELINE_LOG_FORMAT": "json",
    }
    result = cli.run(
        "-v", "forget", "--tenant", "acme", "--phone", TYPED, "--reason", "asked", "--json",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {"prefix": prefix, "env": env, "result": result, "receipt": json.loads(result.stdout)}


def _topic(forgotten: dict[str, object]) -> str:
    return f"{forgotten['prefix']}.privacy.erasure-requested"


def test_the_phone_is_in_neither_the_output_nor_the_logs(forgotten: dict[str, object]) -> None:
    result = forgotten["result"]
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.stderr  # -v: the logs are there to be searched
    for shown in (result.stdout, result.stderr):
        assert PHONE not in shown
        assert "98765" not in shown
        assert KEY not in shown


def test_the_record_is_keyed_by_subject_with_the_event_headers(
    forgotten: dict[str, object],
) -> None:
    receipt = forgotten["receipt"]
    assert isinstance(receipt, dict)
    subject = Pseudonyms({"acme": (KEY,)}).of("acme", PHONE)
    assert receipt["subject"] == subject
    published = receipt["published"]
    assert published["topic"] == _topic(forgotten)
    records = kafka.read_all([_topic(forgotten)], want=[receipt["request_id"]])
    (record,) = [r for r in records if r.event_id == receipt["request_id"]]
    assert (record.partition, record.offset) == (published["partition"], published["offset"])
    assert record.key == f"acme:{subject}".encode()
    assert PHONE.encode() not in (record.key or b"")
    assert record.headers == {
        "event-type": b"privacy.erasure_requested",
        "event-id": receipt["request_id"].encode(),
        "schema-version": b"1",
        "tenant": b"acme",
        "content-type": b"application/json",
    }
    value = json.loads(record.value)
    assert value["event_type"] == "privacy.erasure_requested"
    assert value["tenant"] == "acme"
    assert value["data"]["phone"] == PHONE  # consumers told must find their copies
    assert value["data"]["subject"] == subject
    assert value["data"]["token"].startswith("erased:")
    assert value["data"]["reason"] == "asked"


def test_the_topic_is_compacted_and_deleted(forgotten: dict[str, object]) -> None:
    resource = ConfigResource("topic", _topic(forgotten))
    client = kafka.admin()  # kept referenced: the futures fail if the client is collected
    futures = client.describe_configs([resource])
    configs = next(iter(futures.values())).result(timeout=30)
    assert configs["cleanup.policy"].value == "compact,delete"
    receipt = forgotten["receipt"]
    assert isinstance(receipt, dict)
    retention = int(configs["retention.ms"].value)
    assert retention == 30 * 24 * 60 * 60 * 1000
    stores = {held["store"] for held in receipt["still_held"]}
    assert f"kafka:{_topic(forgotten)}" in stores
    assert f"kafka:{forgotten['prefix']}.raw" in stores
    assert "warehouse" in stores


async def test_the_typed_library_yields_an_erasure_requested(
    forgotten: dict[str, object],
) -> None:
    receipt = forgotten["receipt"]
    assert isinstance(receipt, dict)
    settings = KafkaSettings(
        bootstrap_servers=kafka.BOOTSTRAP, topic_prefix=str(forgotten["prefix"])
    )
    found = []
    async with Consumer(
        settings, event_types=[EventType.ERASURE_REQUESTED], until_caught_up=True
    ) as consumer:
        async for item in consumer:
            found.append(item)
    (item,) = found
    assert item.event_type is EventType.ERASURE_REQUESTED
    assert isinstance(item.event.data, ErasureRequested)
    assert item.event.event_id == receipt["request_id"]
    assert item.event.data.subject == receipt["subject"]


def test_tail_prints_it(forgotten: dict[str, object], tmp_path: Path) -> None:
    receipt = forgotten["receipt"]
    assert isinstance(receipt, dict)
    env = forgotten["env"]
    assert isinstance(env, dict)
    printed = cli.run("tail", "--until-caught-up", env=env)
    assert printed.returncode == 0, printed.stderr
    lines = [json.loads(line) for line in printed.stdout.splitlines()]
    assert [line["event_id"] for line in lines] == [receipt["request_id"]]
    summary = cli.run("tail", "--until-caught-up", "--format", "summary", env=env)
    assert summary.returncode == 0, summary.stderr
    assert receipt["subject"] in summary.stdout
    assert PHONE not in summary.stdout


def test_a_second_forget_is_one_more_request_under_the_same_key(
    forgotten: dict[str, object],
) -> None:
    env = forgotten["env"]
    assert isinstance(env, dict)
    again = cli.run("forget", "--tenant", "acme", "--phone", PHONE, "--json", env=env)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    first = forgotten["receipt"]
    assert isinstance(first, dict)
    assert second["subject"] == first["subject"]
    assert second["request_id"] != first["request_id"]
    records = kafka.read_all([_topic(forgotten)], want=[second["request_id"]])
    keys = {r.key for r in records}
    assert keys == {f"acme:{first['subject']}".encode()}  # compaction keeps the last one


def test_without_the_tenant_key_it_exits_2_naming_the_setting(broker: str) -> None:
    result = cli.run(
        "forget", "--tenant", "globex", "--phone", PHONE,
        env={"KAFKA_BOOTSTRAP_SERVERS": broker, "PLUG_PIPELINE_PRIVACY_KEYS": f"acme={KEY}"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "PLUG_PIPELINE_PRIVACY_KEYS" in result.stderr
    assert PHONE not in result.stderr + result.stdout
