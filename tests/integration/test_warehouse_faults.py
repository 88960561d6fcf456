"""The loader under faults: kill -9 mid-load, Kafka and PostgreSQL stopped mid-load, two
loaders sharing a group, SIGTERM. Afterwards every event is in the warehouse exactly once.

Brokers and servers that a test stops are its own; the shared ones are never touched.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.record import Record
from pipeline.runtime.metrics import samples
from pipeline.simulate.generator import Generator
from tests.support import loader as wh
from tests.support.brokers import LocalKafka, free_base_port
from tests.support.ingress import free_port

# generous: a 100k load, brokers and servers restarted, on a 2-core machine shared with others
pytestmark = pytest.mark.timeout(400)

PG_SCRIPT = Path(__file__).parents[2] / "deploy" / "postgres-local" / "pg-local.sh"


def many_records(prefix: str, n: int) -> list[Record]:
    """``n`` distinct events: realistic bodies, each tenant's copy with its own event id."""
    items = Generator(31).take(min(n, 20000))
    return [
        wh.record_for(webhook, body, prefix, f"t{i // len(items)}")
        for i, (webhook, body) in zip(range(n), itertools.cycle(items))
    ]


def loaded_count(log: Path) -> int:
    match = re.search(r"loaded (\d+) records", log.read_text())
    return int(match.group(1)) if match else -1


def test_kill_9_at_random_points_then_exactly_once(broker: str, tmp_path: Path) -> None:
    prefix = wh.new_topics(partitions=3)
    produced = wh.produce(many_records(prefix, 100_000))
    assert produced == 100_000
    rng = random.Random(9)
    log = tmp_path / "loader.log"
    with wh.pg_database() as target:
        kills = 0
        last = 0
        while kills < 5:
            loader = wh.start_loader(prefix, target, log, "--instance-id", "kill-test")
            # progress first (a batch past the last kill's), then the kill at a random moment
            wh.wait_for(
                lambda last=last: wh.loaded_records(target) > last,  # type: ignore[misc]
                "the loader to make progress",
            )
            time.sleep(rng.uniform(0, 0.3))  # the fault's random point, not a synchronisation
            loader.kill()
            loader.wait()
            kills += 1
            last = wh.loaded_records(target)
            assert last < produced, "the load finished before the kills were done"
        wh.load(prefix, target, "--instance-id", "kill-test")
        assert wh.assert_exactly_once(prefix, target) == produced


def test_kafka_stopped_mid_load_the_loader_waits_and_resumes(
    own_broker: LocalKafka, tmp_path: Path
) -> None:
    bootstrap = own_broker.bootstrap
    prefix = wh.new_topics(partitions=3, bootstrap=bootstrap)
    produced = wh.produce(many_records(prefix, 10_000), bootstrap=bootstrap)
    log = tmp_path / "loader.log"
    with wh.pg_database() as target:
        loader = wh.start_loader(
            prefix, target, log, "--until-caught-up", "--batch-rows", "200", bootstrap=bootstrap
        )
        try:
            wh.wait_for(lambda: wh.loaded_records(target) > 0, "the first batch")
            own_broker.kill()
            assert loader.poll() is None, "the load ended before the broker was stopped"
            stalled = wh.loaded_records(target)
            own_broker.start()
            assert loader.wait(timeout=240) == 0, log.read_text()[-3000:]
        finally:
            loader.kill()
        assert stalled < produced  # the broker died mid-load
        assert wh.assert_exactly_once(prefix, target, bootstrap) == produced


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, dict[str, str]]]:
    # Not under pytest's tmp_path: pytest makes its base directory private (0700) again
    # whenever a run starts, and the server's user must be able to reach its data.
    run_dir = Path(tempfile.mkdtemp(prefix="plug-pg-test-"))
    env = {**os.environ, "PG_RUN": str(run_dir / "pg")}
    port = free_base_port((0,))
    result = subprocess.run(
        ["bash", str(PG_SCRIPT), "up", str(port)], env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    try:
        assert result.returncode == 0, result.stderr
        yield result.stdout.strip(), env
    finally:
        subprocess.run(["bash", str(PG_SCRIPT), "clean"], env=env, timeout=120, check=False)
        shutil.rmtree(run_dir, ignore_errors=True)


def test_postgresql_stopped_mid_load_the_loader_waits_and_resumes(
    broker: str, own_postgres: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    target, env = own_postgres
    prefix = wh.new_topics(partitions=3)
    produced = wh.produce(many_records(prefix, 15_000))
    log = tmp_path / "loader.log"
    # small batches: the load takes long enough to be caught in the middle
    loader = wh.start_loader(prefix, target, log, "--until-caught-up", "--batch-rows", "200")
    try:
        wh.wait_for(lambda: wh.loaded_records(target) > 0, "the first batch")
        pg = ["bash", str(PG_SCRIPT)]
        subprocess.run([*pg, "crash"], env=env, check=True, timeout=60)
        assert loader.poll() is None, "the load ended before the server was stopped"
        # the loader is left waiting on a dead server until it is back
        wh.wait_for(lambda: "warehouse unavailable" in log.read_text(), "the loader to wait")
        port = target.rsplit(":", 1)[1].split("/")[0]
        subprocess.run([*pg, "up", port], env=env, check=True, timeout=120, capture_output=True)
        assert loader.wait(timeout=240) == 0, log.read_text()[-3000:]
    finally:
        loader.kill()
    assert wh.assert_exactly_once(prefix, target) == produced


def test_two_loaders_in_one_group_share_the_partitions(broker: str, tmp_path: Path) -> None:
    prefix = wh.new_topics(partitions=6)
    records = many_records(prefix, 20_000)
    produced = wh.produce(records[:10_000])
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with wh.pg_database() as target:
        args = ("--group", "shared", "--batch-rows", "500")
        first = wh.start_loader(prefix, target, logs[0], *args)
        second = None
        try:
            wh.wait_for(lambda: wh.loaded_records(target) > 0, "the first loader's first batch")
            second = wh.start_loader(prefix, target, logs[1], *args)
            # the group rebalanced: the second loader holds partitions of its own now
            wh.wait_for(lambda: assigned(logs[1]) > 0, "the second loader's partitions")
            produced += wh.produce(records[10_000:])  # on every partition, so on both loaders
            wh.wait_for(lambda: wh.loaded_records(target) >= produced, "every record loaded")
            wh.stop_loaders((first, second), logs)
        finally:
            first.kill()
            if second is not None:
                second.kill()
        assert wh.assert_exactly_once(prefix, target) == produced
        # both took part, and between them every record was loaded exactly once
        assert loaded_count(logs[0]) > 0
        assert loaded_count(logs[1]) > 0
        assert loaded_count(logs[0]) + loaded_count(logs[1]) >= produced


def assigned(log: Path) -> int:
    """Partitions the loader last said it was assigned (0 before any assignment)."""
    found = re.findall(r"assigned (\d+) partitions", log.read_text())
    return int(found[-1]) if found else 0


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return samples(text)


def test_metrics_and_a_clean_stop_on_sigterm(broker: str, tmp_path: Path) -> None:
    prefix = wh.new_topics(partitions=3)
    records = many_records(prefix, 2000)
    produced = wh.produce(records)
    port = free_port()
    log = tmp_path / "loader.log"
    target = wh.duckdb_path(tmp_path)
    loader = wh.start_loader(prefix, target, log, "--metrics-port", str(port))
    try:

        def events() -> float:
            try:
                figures = scrape(port)
            except OSError:
                return 0
            return sum(v for k, v in figures.items() if k.startswith("plug_loader_events_total"))

        wh.wait_for(lambda: events() >= produced, "every record to be counted")
        figures = scrape(port)
        loader.send_signal(signal.SIGTERM)
        assert loader.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        loader.kill()
    topic = f"{prefix}.message.status"
    assert figures[f'plug_loader_events_total{{topic="{topic}"}}'] == sum(
        r.topic == topic for r in records
    )
    assert figures['plug_loader_rows_total{table="message_status"}'] > 0
    assert figures["plug_loader_freshness_seconds_count"] == produced
    assert figures["plug_loader_batch_seconds_count"] >= 1
    assert f'plug_loader_lag_records{{topic="{topic}"}}' in figures
    assert loaded_count(log) == produced
    assert wh.assert_exactly_once(prefix, target) == produced
