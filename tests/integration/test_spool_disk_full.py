"""The spool's disk filling up for real (a small tmpfs) while Kafka is unreachable: 503
with Retry-After, never a 200 that is not durable; once space returns, 200 again without
a restart, and once Kafka is back every acknowledged webhook is in it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from pipeline.webhooks import all_topics
from tests.support import kafka
from tests.support.ingress import Ingress, free_port, start_ingress, stop_ingress
from tests.support.netproxy import Proxy
from tests.support.probe import readyz

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 1 MiB tmpfs of the test's own, unmounted afterwards whatever happens."""
    where = Path(tempfile.mkdtemp(prefix="plug-spool-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        shutil.rmtree(where, ignore_errors=True)


def post(ingress: Ingress, n: int) -> tuple[int, str | None]:
    """(status, event id) of a 200, (status, Retry-After) of a refusal."""
    body = orjson.dumps({
        "type": "ReceivedCallback", "phone": "5511", "messageId": f"disk-{n}",
        "text": {"message": "z" * 20_000},
    })  # fmt: skip
    request = urllib.request.Request(
        ingress.webhook_url("receive-message"),
        data=body,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, orjson.loads(resp.read())["event_id"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Retry-After")


def test_spool_disk_full_then_space_returns(broker: str, small_disk: Path, tmp_path: Path) -> None:
    prefix = f"disk{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix))
    port = free_port()  # Kafka is unreachable here until the proxy opens it
    ingress = start_ingress(
        tmp_path, prefix, bootstrap=f"127.0.0.1:{port}", ready=False,
        PLUG_PIPELINE_SPOOL_DIR=str(small_disk / "spool"), PLUG_PIPELINE_ACK_TIMEOUT_S="1",
    )  # fmt: skip
    acked: list[str] = []
    try:
        answers = [post(ingress, n) for n in range(60)]  # ~40 kB each: the disk fills
        acked += [eid for status, eid in answers if status == 200 and eid]
        refusals = [(s, retry) for s, retry in answers if s != 200]
        assert acked, answers
        assert refusals, "the disk never filled"
        assert all(s == 503 and retry for s, retry in refusals), refusals
        assert ingress.process.poll() is None
        # space returns: the same ingress takes webhooks again, no restart
        subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
        again = [post(ingress, 100 + n) for n in range(5)]
        assert [s for s, _ in again] == [200] * 5, again
        acked += [eid for _, eid in again if eid]
        host, broker_port = broker.split(",")[0].rsplit(":", 1)
        with Proxy((host, int(broker_port)), listen=("127.0.0.1", port)):
            found = kafka.read_all([f"{prefix}.message.received"], want=acked, timeout_s=90)
            figures = readyz(ingress)
    finally:
        stop_ingress(ingress)
    ids = {r.event_id for r in found}
    assert set(acked) <= ids, f"lost {len(set(acked) - ids)} acknowledged webhooks"
    print(
        f"disk full: {len(acked) - 5} spooled, {len(refusals)} x 503 with Retry-After;"
        f" after space returned 5 x 200; spool depth at the end {figures.get('spool_depth')}"
    )
