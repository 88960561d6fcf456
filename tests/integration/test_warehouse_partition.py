"""The loader cut off from PostgreSQL by the network, mid-load: packets vanish, nothing is
refused. It must say so within seconds, naming the server, show it in a metric, write
again within seconds of the heal, and leave every event in the warehouse exactly once.

PostgreSQL runs in a namespace of a test network (tests/support/testnet.py); the loader
runs beside the test, reaching it over the network and the shared broker over loopback.
The cut is an iptables rule in the server's namespace alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.runtime.metrics import samples
from tests.support import loader as wh
from tests.support.ingress import free_port
from tests.support.testnet import ROOT_HOST, TestNet

pytestmark = pytest.mark.timeout(300)

PG_SCRIPT = Path(__file__).parents[2] / "deploy" / "postgres-local" / "pg-local.sh"
PG_PORT = 5432  # the server's namespace has its ports to itself
CUT_S = 30  # past the seconds TCP's own retransmission timers would take to notice
TELL_S = 10  # the warning, after the cut
RESUME_S = 10  # rows again, after the heal


@pytest.fixture
def net_postgres() -> Iterator[tuple[TestNet, str, str]]:
    """A PostgreSQL on its own host of a test network: the net, the URL over the network,
    and a URL over its unix socket (the test's way to read it whatever the network does)."""
    run_dir = Path(tempfile.mkdtemp(prefix="plug-pg-net-"))
    with TestNet(["pg"]) as net:
        env = {
            **os.environ,
            "PG_RUN": str(run_dir / "pg"),
            "PG_LISTEN": net.address("pg"),
            "PG_ALLOW": str(net.subnet),
        }
        try:
            up = subprocess.run(
                [*net.exec_prefix("pg"), "bash", str(PG_SCRIPT), "up", str(PG_PORT)],
                env=env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert up.returncode == 0, up.stderr
            socket_url = f"postgresql://postgres@/plug?host={run_dir / 'pg'}&port={PG_PORT}"
            yield net, up.stdout.strip(), socket_url
        finally:
            subprocess.run(["bash", str(PG_SCRIPT), "clean"], env=env, timeout=120, check=False)
            shutil.rmtree(run_dir, ignore_errors=True)


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return samples(answer.read().decode()).get(name, -1.0)


def wait_until(condition: object, what: str, timeout_s: float) -> float:
    """Poll ``condition`` until true; the seconds it took."""
    start = time.monotonic()
    wh.wait_for(condition, what, timeout_s)  # type: ignore[arg-type]
    return time.monotonic() - start


def test_loader_cut_off_from_postgresql_tells_and_resumes_within_seconds(
    broker: str, net_postgres: tuple[TestNet, str, str], tmp_path: Path
) -> None:
    net, url, socket_url = net_postgres
    assert url.startswith(f"postgresql://postgres@{net.address('pg')}:")
    prefix = wh.new_topics(partitions=3)
    produced = wh.produce(wh.simulated_records(prefix, 20_000))
    log = tmp_path / "loader.log"
    port = free_port()
    # small batches, each committed before the next is read: the load is long enough
    # to be caught in the middle
    loader = wh.start_loader(
        prefix, url, log, "--until-caught-up", "--batch-rows", "100",
        "--metrics-port", str(port), "--metrics-host", "127.0.0.1",
    )  # fmt: skip
    try:
        wh.wait_for(lambda: wh.loaded_records(socket_url) > 0, "the first batch")
        wh.wait_for(lambda: metric(port, "plug_loader_warehouse_up") == 1, "the metrics")
        net.partition(["pg"], [ROOT_HOST])
        cut_at = time.monotonic()
        told = wait_until(
            lambda: f"warehouse unavailable: {url}" in log.read_text(), "the warning", 60
        )
        assert told < TELL_S, f"told {told:.1f}s after the cut"
        assert metric(port, "plug_loader_warehouse_up") == 0
        assert loader.poll() is None, "the load ended before the cut"
        time.sleep(max(0.0, CUT_S - (time.monotonic() - cut_at)))  # the fault's length
        stalled = wh.loaded_records(socket_url)
        assert stalled < produced
        net.heal()
        resumed = wait_until(
            lambda: wh.loaded_records(socket_url) > stalled, "rows after the heal", 60
        )
        assert resumed < RESUME_S, f"rows again {resumed:.1f}s after the heal"
        assert "warehouse reachable again" in log.read_text()
        assert metric(port, "plug_loader_warehouse_up") == 1
        # the server ended the session the cut orphaned (its keepalives), locks and all:
        # the loader's only session is the one it made after the heal
        sessions = wh.query(
            socket_url,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'plug-pipeline load'",
        )
        assert sessions == [(1,)]
        assert loader.wait(timeout=240) == 0, log.read_text()[-3000:]
    finally:
        loader.kill()
        loader.wait()
    print(f"told after {told:.1f}s of the cut; rows again {resumed:.1f}s after the heal")
    assert wh.assert_exactly_once(prefix, socket_url) == produced
    # no password is ever in the log, and no traceback
    text = log.read_text()
    assert "Traceback" not in text
    assert not re.search(r"postgresql://[^@\s]*:[^*@\s]+@", text)
