"""This run's own Kafka broker, and the end offsets that check every 2xx is on its topic."""

from __future__ import annotations

import asyncio
import os
import subprocess

from bench.common import ROOT, log
from bench.e2e.procfs import cpu_seconds

KAFKA_SCRIPT = ROOT / "deploy" / "kafka-local" / "kafka-local.sh"
KL_RUN = ROOT / ".kafka-bench"
BROKER_PORT = 19092
BOOTSTRAP = f"127.0.0.1:{BROKER_PORT}"


class Broker:
    """This run's own single-node Kafka on 127.0.0.1:19092; stopped and deleted on exit."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.env = dict(os.environ, KL_RUN=str(KL_RUN))
        self.started = False
        self.pids: list[int] = []  # its JVMs, once started

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def _script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        script = ["bash", str(KAFKA_SCRIPT), *args]
        return subprocess.run(script, env=self.env, text=True, capture_output=True, check=check)

    def __enter__(self) -> Broker:
        # A leftover from an interrupted run is stopped and wiped: every run starts empty.
        self._script("clean", check=False)
        log(f"starting Kafka on {BOOTSTRAP} (KL_RUN={KL_RUN})")
        self.started = True
        try:
            self._script("single", str(BROKER_PORT))
        except subprocess.CalledProcessError as exc:
            raise SystemExit(f"bench: the broker did not start:\n{exc.stdout}{exc.stderr}") from exc
        self.pids = [int(f.read_text()) for f in sorted(KL_RUN.glob("node*/pid"))]
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.started:
            return
        log("stopping Kafka" + (" (data kept)" if self.keep else " and deleting its data"))
        self._script("stop" if self.keep else "clean", check=False)
        self.started = False


async def _end_offsets(topics: list[str]) -> dict[str, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10_000)
    await consumer.start()
    try:
        known = await consumer.topics()
        for topic in topics:
            if topic in known:
                consumer._client.add_topic(topic)  # the consumer's own metadata lacks them
        await consumer._client.force_metadata_update()
        out = {}
        for topic in topics:
            parts = consumer.partitions_for_topic(topic) if topic in known else None
            if not parts:
                out[topic] = 0
                continue
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
            out[topic] = sum(ends.values())
        return out
    finally:
        await consumer.stop()


def end_offsets(topics: list[str]) -> dict[str, int]:
    if not topics:
        return {}
    return asyncio.run(_end_offsets(topics))
