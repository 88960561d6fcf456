"""A loader cut off from Kafka during a rebalance: two loaders of one group, each on its
own host of a test network with the three brokers and PostgreSQL; the second joins, and
the first loses every broker at that moment (packets vanish) for 30 s. The group goes on
without it, it comes back after the heal, and every event is in the warehouse once."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import loader as wh
from tests.support.brokers import NetKafka
from tests.support.testnet import TestNet

pytestmark = pytest.mark.timeout(420)

BROKERS = ("k1", "k2", "k3")
PG_SCRIPT = Path(__file__).parents[2] / "deploy" / "postgres-local" / "pg-local.sh"


@dataclass
class Warehouse:
    net: TestNet
    kafka: NetKafka
    url: str  # over the network
    socket_url: str  # the test's own way in


@pytest.fixture
def warehouse() -> Iterator[Warehouse]:
    run_dir = Path(tempfile.mkdtemp(prefix="plug-loader-net-"))
    with TestNet([*BROKERS, "a", "b", "pg"]) as net:
        env = {
            **os.environ, "PG_RUN": str(run_dir / "pg"), "PG_LISTEN": net.address("pg"),
            "PG_ALLOW": str(net.subnet),
        }  # fmt: skip
        brokers = NetKafka(run_dir / "kafka", net, BROKERS)
        try:
            up = subprocess.run(
                [*net.exec_prefix("pg"), "bash", str(PG_SCRIPT), "up", "5432"],
                env=env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert up.returncode == 0, up.stderr
            brokers.up()
            socket_url = f"postgresql://postgres@/plug?host={run_dir / 'pg'}&port=5432"
            yield Warehouse(net, brokers, up.stdout.strip(), socket_url)
        finally:
            brokers.clean()
            subprocess.run(["bash", str(PG_SCRIPT), "clean"], env=env, timeout=120, check=False)
            shutil.rmtree(run_dir, ignore_errors=True)


def test_a_loader_cut_off_from_kafka_during_a_rebalance(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    net, bootstrap = warehouse.net, warehouse.kafka.bootstrap
    prefix = wh.new_topics(partitions=6, bootstrap=bootstrap)
    produced = wh.produce(wh.simulated_records(prefix, 20_000), bootstrap=bootstrap)
    args = ("--group", "pair", "--batch-rows", "100")

    def start(host: str) -> subprocess.Popen[bytes]:
        return wh.start_loader(
            prefix, warehouse.url, tmp_path / f"{host}.log", *args, bootstrap=bootstrap,
            wrap=net.exec_prefix(host),
        )  # fmt: skip

    first = start("a")
    second: subprocess.Popen[bytes] | None = None
    try:
        wh.wait_for(lambda: wh.loaded_records(warehouse.socket_url) > 0, "the first batch")
        second = start("b")
        # the moment the group rebalances: the second loader asks to join
        wh.wait_for(
            lambda: (
                "assigned" in (tmp_path / "b.log").read_text(errors="replace")
                or wh.loaded_records(warehouse.socket_url) > 1000
            ),
            "the second loader to start joining",
        )
        net.partition(["a"], BROKERS)
        at_cut = wh.loaded_records(warehouse.socket_url)
        time.sleep(30)  # the partition's length
        during = wh.loaded_records(warehouse.socket_url)
        net.heal()
        healed_at = time.monotonic()
        wh.wait_for(
            lambda: wh.loaded_records(warehouse.socket_url) >= produced, "the load to end", 240
        )
        caught_up = time.monotonic() - healed_at
        assert first.poll() is None, "the cut-off loader exited"
        assert second.poll() is None
    finally:
        for loader in (first, second):
            if loader is not None:
                loader.terminate()
                loader.wait(60)
    assert during > at_cut, "the group did not go on without the loader cut off"
    assert wh.assert_exactly_once(prefix, warehouse.socket_url, bootstrap) == produced
    print(
        f"loader cut from Kafka 30 s in a rebalance: {during - at_cut} records loaded by the "
        f"other meanwhile; all {produced} loaded once, {caught_up:.1f}s after the heal"
    )
