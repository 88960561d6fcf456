"""A topic deleted and created again under a warehouse that has loaded it: the loader
stops with an error naming the partition and the way out, both when it starts and while
it runs, rather than skipping the new topic's records or waiting for offsets forever.
On the real broker."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest

from pipeline.record import Record
from pipeline.webhooks import Webhook
from tests.support import cli, kafka
from tests.support import loader as wh
from tests.support.payloads import FIXTURES

pytestmark = pytest.mark.timeout(300)

PARTITIONS = 3


def received(prefix: str, n: int, tag: str) -> list[Record]:
    """``n`` distinct message.received records (each tenant's copy has its own event id)."""
    body = (FIXTURES / "receive-message" / "text.json").read_bytes()
    return [wh.record_for(Webhook.RECEIVE_MESSAGE, body, prefix, f"{tag}{i}") for i in range(n)]


def recreate(topic: str) -> None:
    admin = kafka.admin()
    for future in admin.delete_topics([topic]).values():
        future.result(timeout=30)
    deadline = time.monotonic() + 60
    while True:  # the deletion completes asynchronously: creating may be refused a while
        try:
            kafka.create_topics([topic], partitions=PARTITIONS)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_recreated_topic_stops_the_loader_with_the_way_out(tmp_path: Path) -> None:
    prefix = wh.new_topics(partitions=PARTITIONS)
    topic = f"{prefix}.message.received"
    target = wh.duckdb_path(tmp_path)
    first = received(prefix, 60, "a")
    wh.produce(first)
    wh.load(prefix, target)
    assert wh.query(target, "SELECT count(*) FROM message_received") == [(60,)]

    recreate(topic)
    second = received(prefix, 6, "b")  # fewer records: every partition ends below its offset
    wh.produce(second)

    # running (no --until-caught-up): found on the partitions' assignment, the loader exits
    log = tmp_path / "loader.log"
    loader = wh.start_loader(prefix, target, log)
    assert loader.wait(timeout=120) == 1
    said = log.read_text()
    assert f"{topic}[" in said
    assert "deleted and created again" in said
    assert "DELETE FROM plug_offsets WHERE group_name = 'plug-pipeline-load'" in said

    # a batch run: found before it could take the new topic's ends as reached
    result = cli.run(
        *wh.loader_args(prefix, target, "--until-caught-up"),
        env={"KAFKA_BOOTSTRAP_SERVERS": kafka.BOOTSTRAP},
    )
    assert result.returncode == 1
    assert f"plug-pipeline load: {topic}[" in result.stderr
    assert "ends at offset" in result.stderr
    assert wh.query(target, "SELECT count(*) FROM message_received") == [(60,)]

    # the way out the error names: the new topic loads from its beginning, nothing lost
    with duckdb.connect(target) as con:
        con.execute(
            "DELETE FROM plug_offsets WHERE group_name = 'plug-pipeline-load' AND topic = ?",
            [topic],
        )
    wh.load(prefix, target)
    ids = {str(eid) for (eid,) in wh.query(target, "SELECT event_id FROM message_received")}
    assert ids == {r.event_id for r in first} | {r.event_id for r in second}
