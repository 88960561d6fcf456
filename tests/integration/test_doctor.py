"""``plug-pipeline doctor`` against the real broker, and against an address with no Kafka."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from tests.support import cli, kafka
from tests.support.ingress import free_port
from tests.support.loader import PG_URL
from tests.support.payloads import TOKENS


def doctor(tmp_path: Path, bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PLUG_PIPELINE_TOKENS": ",".join(f"{t}={k}" for t, k in TOKENS.items()),
        "PLUG_PIPELINE_SPOOL_DIR": str(tmp_path / "spool"),
    }
    return cli.run("doctor", "--timeout", "10", *args, env=env)


def statuses(output: str) -> dict[str, str]:
    """check name -> its worst status, from doctor's lines."""
    rank = {"ok": 0, "warn": 1, "fail": 2}
    found: dict[str, str] = {}
    for line in output.splitlines():
        status, name, _detail = line.split(maxsplit=2)
        if rank[status] >= rank.get(found.get(name, "ok"), 0):
            found[name] = status
    return found


def test_doctor_passes_against_the_real_broker_and_postgresql(broker: str, tmp_path: Path) -> None:
    prefix = f"doc{uuid.uuid4().hex[:8]}"
    applied = cli.run(
        "topics", "apply", "--topic-prefix", prefix, env={"KAFKA_BOOTSTRAP_SERVERS": broker}
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr

    result = doctor(tmp_path, broker, "--topic-prefix", prefix, "--warehouse", PG_URL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert statuses(result.stdout) == {
        "warehouse": "ok",  # logged in to the suite's PostgreSQL
        "configuration": "ok",
        "kafka": "ok",
        "kafka-auth": "ok",
        "topics": "ok",
        "spool": "ok",
        "tls": "ok",
    }
    assert (tmp_path / "spool").is_dir()  # made, probed, and left empty
    assert list((tmp_path / "spool").iterdir()) == []


def test_doctor_fails_a_topic_too_small_for_the_body_limit(broker: str, tmp_path: Path) -> None:
    prefix = f"doc{uuid.uuid4().hex[:8]}"
    small = f"{prefix}.message.received"
    client = kafka.admin()
    client.create_topics(
        [
            NewTopic(
                small,
                num_partitions=1,
                replication_factor=1,
                config={"max.message.bytes": "1000000"},
            )
        ]
    )[small].result(timeout=30)

    result = doctor(tmp_path, broker, "--topic-prefix", prefix)
    assert result.returncode == 1
    failing = [line for line in result.stdout.splitlines() if line.startswith("fail")]
    assert len(failing) == 1, result.stdout
    assert small in failing[0]
    assert "max.message.bytes 1000000" in failing[0]


def test_doctor_fails_naming_kafka_when_nothing_listens(tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    result = doctor(tmp_path, nowhere, "--timeout", "5")
    assert result.returncode == 1
    failing = [line for line in result.stdout.splitlines() if line.startswith("fail")]
    assert len(failing) == 1, result.stdout
    assert failing[0].split()[1] == "kafka"
    assert f"Kafka at {nowhere} unreachable" in failing[0]
    assert statuses(result.stdout)["spool"] == "ok"  # the other checks still ran
