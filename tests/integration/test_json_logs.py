"""The real ingress with JSON logs: every line an object with stable fields, no token."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from pathlib import Path

import orjson

from tests.conftest import TOKENS, fixture_bytes
from tests.integration.conftest import start_ingress, stop_ingress


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
