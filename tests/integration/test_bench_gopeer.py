"""The Go peer of ``make bench`` (bench/baselines/gopeer/): built once by bench/e2e/gopeer.py,
it answers 200 only for a record the broker holds, read back here by librdkafka."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from bench.e2e import gopeer
from pipeline.simulate.generator import Generator
from tests.support import kafka
from tests.support.ingress import free_port


def post(url: str, body: bytes) -> int:
    req = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_healthy(proc: subprocess.Popen[bytes], port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the Go peer exited at start-up"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)  # polling for the server to listen, bounded by the deadline
    pytest.fail("the Go peer did not answer /healthz in time")


def test_built_once_and_a_200_is_a_record_on_its_topic(broker: str) -> None:
    binary = gopeer.build()
    built_at = binary.stat().st_mtime_ns
    assert gopeer.build() == binary
    assert binary.stat().st_mtime_ns == built_at  # cached: not built again

    prefix = f"gopeer{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}.message.received"
    others = {"message-status": f"{prefix}.message.status"}
    others["finish-attendance"] = f"{prefix}.attendance.finished"
    kafka.create_topics([topic, *others.values()], partitions=1)
    port = free_port()
    env = dict(os.environ, GOMAXPROCS="1", GOPEER_TOKEN="t0ken", GOPEER_TOPIC_PREFIX=prefix)
    cmd = [str(binary), "-port", str(port), "-bootstrap", broker]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(proc, port)
        gen = Generator(seed=3)
        refused, body = gen.receive_message_body(size_hint=512), gen.receive_message_body(512)
        url = f"http://127.0.0.1:{port}/webhooks/receive-message"
        # Refused first, on one partition: a record of theirs would come before the 200's.
        assert post(f"{url}?token=wrong", refused) == 401
        assert post(f"{url}?token=t0ken", b"{not json") == 422
        assert post(f"{url}?token=t0ken", body) == 200
        records = kafka.read_all([topic], until=1)
        # The bench's other bodies, each on its own topic.
        status, finish = gen.message_status_body(), gen.finish_attendance_body(40)
        for path, sent_body in (("message-status", status), ("finish-attendance", finish)):
            assert post(f"http://127.0.0.1:{port}/webhooks/{path}?token=t0ken", sent_body) == 200
        read_back = kafka.read_all(list(others.values()), until=2)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode(errors="replace")[-500:]
    sent = json.loads(body)
    assert len(records) == 1
    assert records[0].key == sent["phone"].encode()
    assert json.loads(records[0].value)["messageId"] == sent["messageId"]
    by_topic = {r.topic: json.loads(r.value) for r in read_back}
    assert by_topic[others["message-status"]]["ids"] == json.loads(status)["ids"]
    finished = by_topic[others["finish-attendance"]]
    assert len(finished["chat"]) == len(json.loads(finish)["chat"])


def test_a_source_that_does_not_compile_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example/broken\n\ngo 1.22\n")
    (tmp_path / "main.go").write_text("package main\n\nfunc main() { undefinedName() }\n")
    with pytest.raises(gopeer.BuildError) as raised:
        gopeer.build(tmp_path, tmp_path / "cache")
    message = str(raised.value)
    assert "did not build" in message
    assert "undefinedName" in message
    assert "--targets ingress,ceiling,handwritten" in message
    assert not list((tmp_path / "cache").glob("gopeer-*"))
