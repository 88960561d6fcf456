"""A webhook to an alert: whenDisconnecting into the ingress, through Kafka and the live
service's figures, to a real HTTP receiver within 5 s; resolved when the number is used."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.support.ingress import Ingress
from tests.support.live import post, start_live, stop_live
from tests.support.secrets import HOOK_PATH


class _Hook(BaseHTTPRequestHandler):
    texts: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).texts.append(json.loads(self.rfile.read(length))["text"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def hook() -> Iterator[tuple[int, list[str]]]:
    _Hook.texts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _Hook.texts
    server.shutdown()
    server.server_close()


def _until(condition: object, timeout_s: float) -> float:
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - start < timeout_s, f"not within {timeout_s} s"
        time.sleep(0.01)
    return time.monotonic() - start


def test_a_disconnection_webhook_alerts_and_resolves(
    ingress: Ingress, tmp_path: Path, hook: tuple[int, list[str]]
) -> None:
    port, texts = hook
    alerts = tmp_path / "alerts.toml"
    alerts.write_text(
        f'[[receivers]]\nname = "hook"\nkind = "webhook"\n'
        f'url = "http://127.0.0.1:{port}/{HOOK_PATH}"\n'
        '[[rules]]\nname = "number-down"\nkind = "instance_disconnected"\ntenant = "acme"\n',
        encoding="utf-8",
    )
    live = start_live(tmp_path, ingress.prefix, "UTC", PLUG_PIPELINE_ALERTS_FILE=str(alerts))
    try:
        instance = f"inst-{int(time.time() * 1000)}"
        now = int(time.time())
        down = {"momment": now, "error": "Device has been disconnected", "disconnected": True,
                "type": "DisconnectedCallback", "instanceId": instance}  # fmt: skip
        acked = post(ingress.webhook_url("when-disconnecting"), json.dumps(down).encode())
        took = _until(lambda: any(instance in t for t in texts), 10.0)
        print(f"\nwebhook 200 -> alert at the receiver: {time.time() - acked:.2f} s")
        assert took < 5.0
        assert texts[0].startswith("FIRING · acme · number-down")
        status = {"instanceId": instance, "status": "RECEIVED", "ids": ["1"],
                  "momment": (now + 5) * 1000, "phoneDevice": 0, "phone": "5544999999999",
                  "type": "MessageStatusCallback", "isGroup": False}  # fmt: skip
        post(ingress.webhook_url("message-status"), json.dumps(status).encode())
        _until(lambda: any(t.startswith("RESOLVED") for t in texts), 10.0)
    finally:
        stop_live(live)
