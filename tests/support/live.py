"""``plug-pipeline live`` as a subprocess, its viewer tokens, and a day of fixtures moved to
today in a time zone where today's fixture hours are already past."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from pipeline.webhooks import Webhook
from tests.support import cli, kafka
from tests.support import kpi_fixtures as fx
from tests.support.ingress import free_port
from tests.support.payloads import VIEWERS

# Plug's time fields in the fixture bodies (epoch ms; below 1e11, seconds)
_TIMES = {"momment", "startTime", "endTime", "requestTime"}


@dataclass
class Live:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    client_ssl: ssl.SSLContext | None = None  # trusts the test CA when served over HTTPS

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        sep = "&" if "?" in path else "?"
        url = self.url + path + (f"{sep}token={token}" if token else "")
        try:
            with urllib.request.urlopen(url, timeout=10, context=self.client_ssl) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def now(self, tenant: str) -> dict[str, Any]:
        status, body = self.get("/api/now", VIEWERS[tenant])
        assert status == 200, body
        found: dict[str, Any] = json.loads(body)
        return found

    def first_event(self, token: str) -> dict[str, Any]:
        """The first server-sent event of ``/api/stream``."""
        url = f"{self.url}/api/stream?token={token}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.headers["Content-Type"] == "text/event-stream"
            for line in resp:
                if line.startswith(b"data: "):
                    found: dict[str, Any] = json.loads(line[6:])
                    return found
        raise AssertionError("the stream ended without an event")


def start_live(
    tmp: Path,
    prefix: str,
    zone: str,
    client_ssl: ssl.SSLContext | None = None,
    caught_up: bool = True,
    **env: str,
) -> Live:
    """Start the wallboard on ``prefix``'s topics; returns once it has caught up (or, with
    ``caught_up=False``, once it answers)."""
    port = free_port()
    log = tmp / f"live-{port}.log"
    full_env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.BOOTSTRAP,
        "PLUG_PIPELINE_TOPIC_PREFIX": prefix,
        "PLUG_PIPELINE_VIEWER_TOKENS": ",".join(f"{t}={k}" for t, k in VIEWERS.items()),
        "PLUG_PIPELINE_KPI_TIME_ZONE": zone,
        **env,
    }
    process = cli.start("live", "--port", str(port), log=log, env=full_env)
    scheme = "https" if "PLUG_PIPELINE_TLS_CERT" in env else "http"
    live = Live(f"{scheme}://127.0.0.1:{port}", process, log, client_ssl)
    deadline = time.monotonic() + 120
    while True:
        try:
            status, body = live.get("/healthz")
        except OSError:
            status, body = 0, b""
        if status == 200 and (json.loads(body)["caught_up"] or not caught_up):
            return live
        if process.poll() is not None or time.monotonic() > deadline:
            stop_live(live)
            raise RuntimeError(f"live did not catch up:\n{log.read_text()}")
        time.sleep(0.05)  # polling for readiness: the loop exits on the condition itself


def stop_live(live: Live) -> None:
    cli.stop(live.process)


def evening_zone(now: dt.datetime | None = None) -> str:
    """An ``Etc/GMT`` zone whose local time now is between 22:00 and 23:00: the fixture's
    day (10:00 to 21:30) is then today, and over, with an hour before midnight."""
    hour = (now or dt.datetime.now(dt.UTC)).hour
    offset = (22 - hour) % 24
    if offset > 14:
        offset -= 24
    return f"Etc/GMT{-offset:+d}"  # POSIX signs: Etc/GMT-10 is UTC+10


def today_in(zone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(zone)).date()


def fixture_day_today(zone: str) -> list[tuple[str, Webhook, bytes, int]]:
    """The KPI fixtures' first day (``fx.DAY1``), every time moved so that the day is
    today in ``zone``: (tenant, webhook, body, the ms it was received at on the day)."""
    midnight = dt.datetime.combine(today_in(zone), dt.time(), ZoneInfo(zone))
    delta = int(midnight.timestamp() * 1000) - fx.ms(fx.DAY1, "00:00:00")
    day_two = fx.ms(fx.DAY2, "00:00:00")
    moved = []
    for tenant, webhook, body, received_at in fx.items():
        if received_at >= day_two:
            continue
        moved.append((tenant, webhook, orjson.dumps(_shifted(body, delta)), received_at + delta))
    return moved


def _shifted(value: Any, delta_ms: int) -> Any:
    if isinstance(value, dict):
        return {
            k: _moved(v, delta_ms) if k in _TIMES else _shifted(v, delta_ms)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_shifted(v, delta_ms) for v in value]
    return value


def _moved(value: Any, delta_ms: int) -> Any:
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    return value + delta_ms // 1000 if value < 100_000_000_000 else value + delta_ms


def post(url: str, body: bytes) -> float:
    """POST one webhook; the time its 200 came back."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
        return time.time()
