"""Starts that cannot go ahead: ``serve`` on a port that is taken ends at once in one
line, having opened nothing; ``load`` with Kafka unreachable waits, says so, closes each
failed consumer, and loads once Kafka answers."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from tests.support import cli
from tests.support import loader as wh
from tests.support.ingress import free_port
from tests.support.netproxy import Proxy
from tests.support.payloads import TOKENS

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_taken_port_says_so_in_one_line_before_touching_kafka(workers: str) -> None:
    with socket.socket() as taken, socket.socket() as fake_kafka:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # a "broker" that only counts: nobody may connect to it
        fake_kafka.bind(("127.0.0.1", 0))
        fake_kafka.listen()
        fake_kafka.setblocking(False)
        tokens = ",".join(f"{t}={k}" for t, k in TOKENS.items())
        result = cli.run(
            "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", workers,
            env={
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{fake_kafka.getsockname()[1]}",
                "PLUG_PIPELINE_TOKENS": tokens,
            },
            timeout=60,
        )  # fmt: skip
        assert result.returncode == 1
        assert result.stderr == (
            f"plug-pipeline serve: cannot listen on 127.0.0.1:{port}: Address already in use\n"
        )
        with pytest.raises(BlockingIOError):
            fake_kafka.accept()  # no connection was made


def test_load_waits_for_kafka_then_loads(broker: str, tmp_path: Path) -> None:
    prefix = wh.new_topics(partitions=2)
    produced = wh.produce(wh.simulated_records(prefix, 300))
    port = free_port()  # nothing listens here yet: the loader's Kafka is unreachable
    log = tmp_path / "loader.log"
    target = wh.duckdb_path(tmp_path)
    loader = wh.start_loader(
        prefix, target, log, "--until-caught-up", bootstrap=f"127.0.0.1:{port}"
    )
    try:
        wh.wait_for(
            lambda: log.read_text().count(f"Kafka not reachable at 127.0.0.1:{port}") >= 2,
            "the loader to say it waits",
            60,
        )
        assert loader.poll() is None, log.read_text()
        # Kafka answers on that address now (the metadata then names the broker itself)
        host, broker_port = broker.split(",")[0].rsplit(":", 1)
        with Proxy((host, int(broker_port)), listen=("127.0.0.1", port)):
            assert loader.wait(timeout=120) == 0, log.read_text()[-3000:]
    finally:
        loader.kill()
        loader.wait()
    text = log.read_text()
    assert "connected to Kafka" in text
    assert "Unclosed" not in text
    assert "Traceback" not in text
    assert wh.assert_exactly_once(prefix, target) == produced


def test_load_stopped_while_kafka_is_unreachable_exits_cleanly(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "loader.log"
    loader = wh.start_loader(
        "nowhere", wh.duckdb_path(tmp_path), log, bootstrap=f"127.0.0.1:{port}"
    )
    try:
        wh.wait_for(
            lambda: "Kafka not reachable" in log.read_text(), "the loader to say it waits", 60
        )
        started = time.monotonic()
        loader.send_signal(signal.SIGTERM)
        assert loader.wait(timeout=30) == 0
        assert time.monotonic() - started < 10
    finally:
        loader.kill()
        loader.wait()
    text = log.read_text()
    assert "Unclosed" not in text
    assert "Traceback" not in text
