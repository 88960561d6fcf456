"""The real ingress with JSON logs: every line an object with stable fields, no token."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import orjson

from tests.support import cli
from tests.support.ingress import Ingress, free_port, start_ingress, stop_ingress
from tests.support.payloads import TOKENS, fixture_bytes


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_ingress_json_log_lines_parse_and_carry_no_token(broker: str, tmp_path: Path) -> None:
    prefix = f"log{uuid.uuid4().hex[:8]}"
    # Topics are created at start (a log line), and a body that fails decoding is
    # dead-lettered (another), both under the JSON format.
    ingress = start_ingress(tmp_path, prefix, PLUG_PIPELINE_LOG_FORMAT="json")
    try:
        text = fixture_bytes("receive-message/text.json")
        assert post(ingress.webhook_url("receive-message"), text) == 200
        assert post(ingress.webhook_url("receive-message", "globex"), b'{"not": "a message"') == 400
        wrong = f"{ingress.url}/webhooks/receive-message?token=wrong-{TOKENS['acme']}"
        assert post(wrong, text) == 401
        bearer = {"Authorization": f"Bearer {TOKENS['globex']}"}
        assert post(f"{ingress.url}/webhooks/message-status", text, bearer) in {200, 400}
    finally:
        stop_ingress(ingress)

    lines = [line for line in ingress.log.read_text().splitlines() if line.strip()]
    entries = [orjson.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    messages = " | ".join(e["message"] for e in entries)
    assert "listening on" in messages
    assert "dead-lettered" in messages
    assert "stopped" in messages
    for token in TOKENS.values():
        assert token not in ingress.log.read_text()


def test_spawned_workers_log_json_too(broker: str, tmp_path: Path) -> None:
    """Workers are spawned processes: they set up the format again, from their config."""
    port = free_port()
    log = tmp_path / "workers.log"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker,
        "PLUG_PIPELINE_TOKENS": ",".join(f"{t}={k}" for t, k in TOKENS.items()),
        "PLUG_PIPELINE_HOST": "127.0.0.1",
        "PLUG_PIPELINE_PORT": str(port),
        "PLUG_PIPELINE_TOPIC_PREFIX": f"log{uuid.uuid4().hex[:8]}",
        "PLUG_PIPELINE_SPOOL_DIR": str(tmp_path / "spool"),
    }
    process = cli.start("--log-format", "json", "serve", "--workers", "2", log=log, env=env)
    ingress = Ingress(f"http://127.0.0.1:{port}", env["PLUG_PIPELINE_TOPIC_PREFIX"], process, log)
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("listening on") < 2:  # each worker says so once
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)  # polling the log for the condition itself, bounded above
    finally:
        stop_ingress(ingress)
    entries = [orjson.loads(line) for line in log.read_text().splitlines() if line.strip()]
    listening = [e for e in entries if e["message"].startswith("listening on")]
    assert len(listening) == 2
    assert all(e["logger"] == "pipeline.serve" for e in listening)
