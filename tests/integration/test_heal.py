"""The ingress heals itself: a broker restart never leaves the spool stuck.

Run with the ingress's default settings (ack timeout included): after the broker comes
back, the same ingress process must drain its spool to depth 0 within 30 s and answer
"published" again, and nothing it acknowledged may be missing from Kafka. Each test
prints sent / acked / found / lost / duplicates / seconds-to-drain (pytest -s).
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time
import uuid
from pathlib import Path

import orjson
import pytest

from pipeline.ingest import event_id
from pipeline.webhooks import Webhook, all_topics
from tests.support import kafka
from tests.support.brokers import LocalKafka
from tests.support.ingress import Ingress, free_port, start_ingress, stop_ingress
from tests.support.load import Load, run_load, verify
from tests.support.probe import post, readyz

CLIENTS = 16
DRAIN_BOUND_S = 30.0


@pytest.fixture
def prefix() -> str:
    return f"heal{uuid.uuid4().hex[:8]}"


def seconds_to_drain(ingress: Ingress, bound_s: float) -> float:
    """From now until the spool is empty (polled); fails the test past ``bound_s``."""
    started = time.monotonic()
    while True:
        figures = readyz(ingress)
        if figures.get("spool_depth") == 0:
            return time.monotonic() - started
        assert time.monotonic() - started < bound_s, f"spool not drained: {figures}"
        time.sleep(0.2)


def after_the_bounce(ingress: Ingress, prefix: str, load: Load, bootstrap: str, name: str) -> None:
    """The checks every bounce ends with: drained in time, publishing again, nothing lost."""
    assert ingress.process.poll() is None, "the same ingress process must heal"
    drain_s = seconds_to_drain(ingress, DRAIN_BOUND_S)
    after = asyncio.run(run_load(ingress.webhook_url, prefix, "acme", seconds=2, workers=4))
    assert set(after.answers) == {"200 published"}, after.answers
    verdict = verify(load, prefix, bootstrap=bootstrap)
    late = verify(after, prefix, bootstrap=bootstrap)
    print(
        verdict.line(name),
        f"/ seconds-to-drain {drain_s:.1f}",
        dict(load.answers),
        f"then {dict(after.answers)}",
    )
    assert load.answers["200 spooled"] > 0  # the outage was felt
    assert verdict.lost == []
    assert late.lost == []
    assert verdict.out_of_order == 0


@pytest.mark.timeout(300)  # a broker restart, then up to 30 s to drain, on 2 cores
@pytest.mark.parametrize("stop", ["term", "kill"])
def test_broker_restart_under_load_heals(
    own_broker: LocalKafka, prefix: str, tmp_path: Path, stop: str
) -> None:
    kafka.create_topics(all_topics(prefix), bootstrap=own_broker.bootstrap)
    ingress = start_ingress(tmp_path, prefix, bootstrap=own_broker.bootstrap)

    async def scenario() -> Load:
        load = asyncio.create_task(
            run_load(ingress.webhook_url, prefix, "acme", seconds=16, workers=CLIENTS)
        )
        await asyncio.sleep(3)  # normal traffic first
        await asyncio.to_thread(own_broker.term if stop == "term" else own_broker.kill)
        await asyncio.sleep(8)  # the broker is away
        await asyncio.to_thread(own_broker.start)
        return await load

    try:
        load = asyncio.run(scenario())
        after_the_bounce(ingress, prefix, load, own_broker.bootstrap, f"broker {stop} restart")
    finally:
        stop_ingress(ingress)


@pytest.mark.timeout(300)
def test_ingress_kill_9_then_broker_bounce_heals(
    own_broker: LocalKafka, prefix: str, tmp_path: Path
) -> None:
    kafka.create_topics(all_topics(prefix), bootstrap=own_broker.bootstrap)
    port = free_port()
    spool = str(tmp_path / "spool")
    first = start_ingress(
        tmp_path, prefix, bootstrap=own_broker.bootstrap, port=port, PLUG_PIPELINE_SPOOL_DIR=spool
    )

    async def scenario() -> tuple[Load, Ingress]:
        load = asyncio.create_task(
            run_load(first.webhook_url, prefix, "acme", seconds=18, workers=CLIENTS)
        )
        await asyncio.sleep(3)
        first.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.process.wait)
        await asyncio.to_thread(own_broker.term)
        second = await asyncio.to_thread(
            start_ingress,
            tmp_path,
            prefix,
            bootstrap=own_broker.bootstrap,
            port=port,
            ready=False,
            PLUG_PIPELINE_SPOOL_DIR=spool,
        )
        await asyncio.sleep(5)  # the restarted ingress spools while the broker is away
        await asyncio.to_thread(own_broker.start)
        return await load, second

    load, second = asyncio.run(scenario())
    try:
        after_the_bounce(second, prefix, load, own_broker.bootstrap, "ingress kill -9 + bounce")
    finally:
        stop_ingress(second)


def small(prefix: str, n: int) -> bytes:
    return orjson.dumps(
        {
            "type": "ReceivedCallback",
            "phone": "5511777",
            "messageId": f"{prefix}-{n}",
            "text": {"message": f"after the big one {n}"},
        }
    )


def test_a_webhook_too_large_for_kafka_is_refused_and_never_blocks_others(
    broker: str, prefix: str, tmp_path: Path
) -> None:
    # Kafka's default limit (our local brokers allow 16 MiB): below the 4 MiB body limit.
    kafka.create_topics(all_topics(prefix), config={"max.message.bytes": "1048588"})
    ingress = start_ingress(tmp_path, prefix)
    # Incompressible: Kafka checks the compressed batch, and lz4 cannot shrink random text.
    text = base64.b64encode(os.urandom(1_100_000)).decode()
    big = orjson.dumps(
        {"type": "ReceivedCallback", "phone": "5511777", "messageId": f"{prefix}-big",
         "text": {"message": text}}
    )  # fmt: skip
    try:
        status, answer = post(ingress, "receive-message", big)
        later = [post(ingress, "receive-message", small(prefix, n)) for n in range(20)]
        figures = readyz(ingress)
    finally:
        stop_ingress(ingress)
    big_id = event_id("acme", Webhook.RECEIVE_MESSAGE, big)
    print(f"1.5 MB webhook: {status} {answer}; then {[s for s, _ in later]}")
    assert status == 413
    assert answer["error"] == "too_large_for_kafka"
    assert [(s, a["status"]) for s, a in later] == [(200, "published")] * 20
    assert figures["spool_depth"] == 0
    dead = kafka.read_all([f"{prefix}.deadletter"], want=[big_id])
    named = {r.headers["original-topic"].decode(): r for r in dead if r.event_id == big_id}
    # the event and its raw copy were both refused; each has a dead letter that names it
    assert set(named) == {f"{prefix}.message.received", f"{prefix}.raw"}
    for letter in named.values():
        assert letter.headers["error-reason"] == b"too_large_for_kafka"
        assert letter.headers["truncated"] == b"true"  # too large for the dead letters too
    kept = Path(named[f"{prefix}.raw"].headers["quarantine-file"].decode())
    assert kept.read_bytes() == big  # the body, byte for byte, where the dead letter points
