"""Fault injection: nothing answered 200 may be missing from Kafka afterwards.

Every test prints sent / acked / found / lost / duplicates (run pytest with -s
to see them); lost must be 0. Duplicates are allowed: the event_id names them.
"""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from pipeline.webhooks import all_topics
from tests.support import kafka
from tests.support.brokers import LocalKafka
from tests.support.ingress import Ingress, free_port, start_ingress, stop_ingress
from tests.support.load import Load, run_load, verify
from tests.support.payloads import TOKENS
from tests.support.probe import readyz

FAULT_ENV = {"PLUG_PIPELINE_ACK_TIMEOUT_S": "1"}


def wait_drained(ingress: Ingress, timeout_s: float = 120) -> None:
    """Until the ingress is ready and its spool is empty (a condition, polled)."""
    deadline = time.monotonic() + timeout_s
    while True:
        figures = readyz(ingress)
        if figures.get("status") == "ready" and figures.get("spool_depth") == 0:
            return
        assert time.monotonic() < deadline, f"spool never drained: {figures}"
        time.sleep(0.2)


@pytest.fixture
def prefix() -> str:
    return f"fault{uuid.uuid4().hex[:8]}"


def test_kill_9_of_the_ingress_under_load(broker: str, prefix: str, tmp_path: Path) -> None:
    kafka.create_topics(all_topics(prefix))
    port = free_port()
    spool = str(tmp_path / "spool")
    env = {**FAULT_ENV, "PLUG_PIPELINE_SPOOL_DIR": spool}
    ingress = start_ingress(tmp_path, prefix, port=port, extra_env=env)

    def url(hook: str) -> str:
        return f"http://127.0.0.1:{port}/webhooks/{hook}?token={TOKENS['acme']}"

    async def scenario() -> tuple[Load, Ingress]:
        load = asyncio.create_task(run_load(url, prefix, "acme", seconds=8))
        await asyncio.sleep(2.5)  # let load build up before the crash
        ingress.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(ingress.process.wait)
        # back on the same port with the same spool, while the load goes on
        restarted = await asyncio.to_thread(
            start_ingress, tmp_path, prefix, port=port, extra_env=env
        )
        return await load, restarted

    load, restarted = asyncio.run(scenario())
    try:
        wait_drained(restarted)
        verdict = verify(load, prefix)
    finally:
        stop_ingress(restarted)
    print(verdict.line("kill -9 ingress"), dict(load.answers))
    assert verdict.acked > 100
    assert "connection error" in load.answers  # the crash was felt
    assert verdict.lost == []
    assert verdict.out_of_order == 0


def test_broker_stopped_for_30_s_under_load(
    own_broker: LocalKafka, prefix: str, tmp_path: Path
) -> None:
    kafka.create_topics(all_topics(prefix), bootstrap=own_broker.bootstrap)
    ingress = start_ingress(tmp_path, prefix, bootstrap=own_broker.bootstrap, extra_env=FAULT_ENV)

    async def scenario() -> Load:
        load = asyncio.create_task(run_load(ingress.webhook_url, prefix, "acme", seconds=42))
        await asyncio.sleep(4)  # a few seconds of normal traffic first
        await asyncio.to_thread(own_broker.kill)
        await asyncio.sleep(30)  # the outage itself
        await asyncio.to_thread(own_broker.start)
        return await load

    try:
        load = asyncio.run(scenario())
        wait_drained(ingress)
        verdict = verify(load, prefix, bootstrap=own_broker.bootstrap)
    finally:
        stop_ingress(ingress)
    print(verdict.line("broker down 30 s"), dict(load.answers))
    assert set(load.answers) <= {"200 published", "200 spooled"}
    assert load.answers["200 spooled"] > 1000  # the outage was felt, and spooled
    assert verdict.lost == []
    assert verdict.out_of_order == 0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalKafka]:
    brokers = LocalKafka(tmp_path / "cluster", nodes=3).up()
    try:
        yield brokers
    finally:
        brokers.clean()


@pytest.mark.timeout(300)  # three brokers to start, kill, restart and stop on 2 cores
def test_partition_leader_killed_in_a_three_broker_cluster(
    cluster: LocalKafka, prefix: str, tmp_path: Path
) -> None:
    kafka.create_topics(all_topics(prefix), replication=3, bootstrap=cluster.bootstrap)
    ingress = start_ingress(tmp_path, prefix, bootstrap=cluster.bootstrap, extra_env=FAULT_ENV)
    topic = f"{prefix}.message.received"

    async def scenario() -> tuple[Load, int]:
        load = asyncio.create_task(run_load(ingress.webhook_url, prefix, "acme", seconds=20))
        await asyncio.sleep(5)
        metadata = kafka.admin(cluster.bootstrap).list_topics(topic, timeout=10)
        leader: int = metadata.topics[topic].partitions[0].leader
        await asyncio.to_thread(cluster.kill, leader)
        await asyncio.sleep(8)  # the cluster elects a new leader from the in-sync replicas
        await asyncio.to_thread(cluster.start, leader)
        return await load, leader

    try:
        load, leader = asyncio.run(scenario())
        wait_drained(ingress)
        verdict = verify(load, prefix, bootstrap=cluster.bootstrap)
    finally:
        stop_ingress(ingress)
    print(verdict.line(f"leader (node {leader}) killed"), dict(load.answers))
    assert verdict.acked > 1000
    assert verdict.lost == []
    assert verdict.out_of_order == 0


def test_spool_full_answers_503_and_never_200(broker: str, tmp_path: Path) -> None:
    ingress = start_ingress(
        tmp_path,
        "spoolfull",
        bootstrap="127.0.0.1:1",  # Kafka away: everything goes to the spool
        ready=False,
        PLUG_PIPELINE_SPOOL_MAX_BYTES=str(1024 * 1024),
        extra_env=FAULT_ENV,
    )
    body = orjson.dumps(
        {"type": "ReceivedCallback", "phone": "5511", "text": {"message": "y" * 20_000}}
    )
    answers: list[tuple[int, str | None]] = []
    try:
        for _ in range(60):  # about 40 kB a webhook with its raw copy: full before 30
            request = urllib.request.Request(
                ingress.webhook_url("receive-message"),
                data=body,
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:
                    answers.append((resp.status, orjson.loads(resp.read())["status"]))
            except urllib.error.HTTPError as exc:
                answers.append((exc.code, exc.headers.get("Retry-After")))
        figures = readyz(ingress)
        assert ingress.process.poll() is None  # no crash
    finally:
        stop_ingress(ingress)
    first_refusal = next(i for i, (status, _) in enumerate(answers) if status == 503)
    assert first_refusal > 10
    assert all(a == (200, "spooled") for a in answers[:first_refusal])
    assert all(status == 503 and retry for status, retry in answers[first_refusal:])
    assert figures["status"] != "ready"
    assert isinstance(figures["spool_bytes"], int)
    assert figures["spool_bytes"] > 1024 * 1024 * 0.9  # full to within one webhook
    print(f"spool full: {first_refusal} spooled, then {len(answers) - first_refusal} x 503")


def test_torn_spool_tail_is_recovered_at_start_up(broker: str, prefix: str, tmp_path: Path) -> None:
    kafka.create_topics(all_topics(prefix))
    spool = tmp_path / "spool"
    env = {**FAULT_ENV, "PLUG_PIPELINE_SPOOL_DIR": str(spool)}
    away = start_ingress(tmp_path, prefix, bootstrap="127.0.0.1:1", ready=False, extra_env=env)
    acked = []
    for n in range(20):
        body = orjson.dumps(
            {"type": "ReceivedCallback", "phone": "5512", "messageId": f"{prefix}-{n}",
             "text": {"message": f"torn tail {n}"}}
        )  # fmt: skip
        request = urllib.request.Request(
            away.webhook_url("receive-message"),
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            answer = orjson.loads(resp.read())
            assert answer["status"] == "spooled"
            acked.append(answer["event_id"])
    away.process.send_signal(signal.SIGKILL)
    away.process.wait()
    [segment] = sorted(spool.glob("*.seg"))
    with segment.open("r+b") as f:  # a crash in the middle of the last write
        f.truncate(segment.stat().st_size - 5)

    ingress = start_ingress(tmp_path, prefix, extra_env=env)
    try:
        wait_drained(ingress)
        with urllib.request.urlopen(ingress.url + "/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
    finally:
        stop_ingress(ingress)
    records = kafka.read_all([f"{prefix}.message.received"], want=acked)
    found = {r.event_id for r in records}
    # the torn record is the last one written: the raw copy of the last webhook
    assert [eid for eid in acked if eid not in found] == []
    assert "plug_spool_torn_records 1.0" in metrics
    raw = kafka.read_all([f"{prefix}.raw"], want=acked[:-1])
    assert {r.event_id for r in raw} == set(acked[:-1])
    print(f"torn tail: acked 20, events found {len(found)}, lost 0, torn raw records 1")


def test_sigterm_stops_in_order_and_loses_nothing(broker: str, prefix: str, tmp_path: Path) -> None:
    kafka.create_topics(all_topics(prefix))
    ingress = start_ingress(tmp_path, prefix, PLUG_PIPELINE_SHUTDOWN_GRACE_S="1.5")

    async def scenario() -> tuple[Load, dict[str, object], float]:
        load = asyncio.create_task(run_load(ingress.webhook_url, prefix, "acme", seconds=5))
        await asyncio.sleep(1.5)
        ingress.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)  # inside the grace period
        during = await asyncio.to_thread(readyz, ingress)
        started = time.monotonic()
        await asyncio.to_thread(ingress.process.wait, 30)
        return await load, during, time.monotonic() - started

    load, during, stopping_s = asyncio.run(scenario())
    verdict = verify(load, prefix)
    print(verdict.line("SIGTERM"), dict(load.answers), f"stopped in {stopping_s:.1f} s")
    assert during["status"] == "stopping"  # readiness fails first, while still serving
    assert ingress.process.returncode == 0
    assert verdict.acked > 100
    assert verdict.lost == []
    assert "200 published" in load.answers
