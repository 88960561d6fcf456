"""``plug-pipeline spool status|drain`` on orphaned worker spools, against the real broker."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import uuid
from pathlib import Path

import orjson

from pipeline.ingest import ingest
from pipeline.spool import Spool
from pipeline.webhooks import Webhook, all_topics
from tests.support import cli, kafka

MAX = 64 * 1024 * 1024


def body(n: int) -> bytes:
    return orjson.dumps(
        {"type": "ReceivedCallback", "phone": f"55118{n % 3}", "messageId": f"orphan-{n}",
         "text": {"message": f"left behind {n}"}}
    )  # fmt: skip


async def leave_behind(directory: Path, prefix: str, first: int, count: int) -> list[str]:
    """A spool as a worker that is gone left it: records appended, never drained."""
    spool = await Spool.open(directory, MAX)
    ids = []
    for n in range(first, first + count):
        record = ingest(Webhook.RECEIVE_MESSAGE, "acme", body(n), 1_700_000_000_000 + n, prefix)
        await spool.append(record)
        ids.append(record.event_id)
    await spool.close()
    return ids


def spool_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return cli.run("spool", *args, env={"KAFKA_BOOTSTRAP_SERVERS": kafka.BOOTSTRAP})


def by_name(output: str) -> dict[str, dict[str, object]]:
    return {Path(str(r["directory"])).name: r for r in map(orjson.loads, output.splitlines())}


def test_orphaned_worker_spools_are_shown_and_drained(broker: str, tmp_path: Path) -> None:
    prefix = f"orphan{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix))
    root = tmp_path / "spool"
    ids = asyncio.run(leave_behind(root / "worker-1", prefix, 0, 30))
    ids += asyncio.run(leave_behind(root / "worker-2", prefix, 30, 12))
    busy = root / "worker-0"  # a running ingress holds this one
    asyncio.run(leave_behind(busy, prefix, 100, 1))
    held = os.open(busy / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        status = spool_cli("status", "--dir", str(root), "--json")
        drained = spool_cli("drain", "--dir", str(root), "--topic-prefix", prefix, "--json")
        fcntl.flock(held, fcntl.LOCK_UN)
        after = spool_cli("status", "--dir", str(root), "--json")
    finally:
        os.close(held)
    before = by_name(status.stdout)
    assert status.returncode == 0, status.stderr
    assert before["worker-0"]["in_use"] is True
    assert (before["worker-1"]["depth"], before["worker-2"]["depth"]) == (30, 12)
    # the busy spool is left to its owner, so drain says something is left
    assert drained.returncode == 1, drained.stderr
    reports = by_name(drained.stdout)
    assert (reports["worker-1"]["drained"], reports["worker-2"]["drained"]) == (30, 12)
    assert reports["worker-0"]["in_use"] is True
    final = {
        Path(r["directory"]).name: r["depth"] for r in map(orjson.loads, after.stdout.splitlines())
    }
    assert final == {"worker-0": 1, "worker-1": 0, "worker-2": 0}
    found = kafka.read_all([f"{prefix}.message.received"], want=ids)
    assert {r.event_id for r in found} >= set(ids)
