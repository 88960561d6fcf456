"""The spool against real files: order, group commit, bounds, recovery from torn and bad frames."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import NotDurable
from pipeline.record import Record
from pipeline.spool import Spool, SpoolFull, SpoolUnavailable, segment

MAX = 64 * 1024 * 1024


def record(i: int, size: int = 32) -> Record:
    return Record(
        topic="plug.events.message-received",
        key=f"acme:55119{i % 7:08d}".encode(),
        value=b"x" * size + str(i).encode(),
        headers=[("event-id", f"e{i}".encode()), ("tenant", b"acme")],
        event_id=f"e{i}",
    )


class Broker:
    """Collects what is published; takes ``down_from`` records, then refuses every call.

    A call is all or nothing here; ``test_a_failed_window_...`` covers a partial one.
    """

    def __init__(self, down_from: int | None = None) -> None:
        self.published: list[Record] = []
        self.taken = 0
        self.down_from = down_from

    async def publish(self, records: Sequence[Record]) -> None:
        if self.down_from is not None and self.taken + len(records) > self.down_from:
            raise NotDurable("broker down")
        self.taken += len(records)
        self.published.extend(records)


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


async def fill(spool: Spool, records: list[Record]) -> None:
    for rec in records:
        await spool.append(rec)


async def test_append_then_drain_returns_records_in_order_and_empties(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, MAX)
    records = [record(i) for i in range(50)]
    await fill(spool, records)
    assert spool.depth == 50

    broker = Broker()
    assert await spool.drain(broker.publish) == 50

    assert broker.published == records
    assert spool.depth == 0
    assert await spool.drain(broker.publish) == 0
    await spool.close()


async def test_concurrent_appends_share_fsyncs(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, MAX)
    before = spool.fsyncs
    records = [record(i, size=1000) for i in range(500)]

    await asyncio.gather(*(spool.append(r) for r in records))

    assert spool.depth == 500
    assert spool.fsyncs - before < 50  # one per write batch, not one per append
    broker = Broker()
    await spool.drain(broker.publish)
    assert broker.published == records  # concurrent appends keep the order they were made in
    await spool.close()


@pytest.mark.parametrize("window", [1, 8])
async def test_failed_publish_keeps_that_record_and_the_rest(tmp_path: Path, window: int) -> None:
    spool = await Spool.open(tmp_path, MAX)
    records = [record(i) for i in range(30)]
    await fill(spool, records)

    broker = Broker(down_from=13)
    taken = 13 // window * window  # whole windows only: the one that failed stays
    assert await spool.drain(broker.publish, window=window) == taken
    assert isinstance(spool.last_drain_error, NotDurable)
    assert spool.depth == 30 - taken

    broker.down_from = None
    assert await spool.drain(broker.publish, window=window) == 30 - taken
    assert broker.published == records
    assert spool.last_drain_error is None
    await spool.close()


async def test_a_failed_window_is_sent_again_whole_and_nothing_overtakes(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, MAX)
    records = [record(i) for i in range(8)]
    await fill(spool, records)
    failed_once = False
    published: list[Record] = []

    async def publish(batch: Sequence[Record]) -> None:
        nonlocal failed_once
        for rec in batch:  # as a producer call may: the first records taken, then a failure
            if rec.event_id == "e2" and not failed_once:
                failed_once = True
                raise NotDurable("one partition timed out")
            published.append(rec)

    assert await spool.drain(publish, window=4) == 0
    assert await spool.drain(publish, window=4) == 8

    # At least once: e0 and e1 went out in the failed window and again with it; in the order
    # of first appearance nothing is lost and nothing overtook a record before it.
    assert [r.event_id for r in published] == ["e0", "e1"] + [f"e{i}" for i in range(8)]
    await spool.close()


async def test_restart_drains_what_was_left(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, MAX)
    records = [record(i) for i in range(20)]
    await fill(spool, records)
    broker = Broker()
    assert await spool.drain(broker.publish, limit=5) == 5
    await spool.close()

    reopened = await Spool.open(tmp_path, MAX)
    assert reopened.depth == 15
    assert await reopened.drain(broker.publish) == 15
    assert broker.published == records
    await reopened.close()

    again = await Spool.open(tmp_path, MAX)
    assert again.depth == 0
    await again.close()


@pytest.mark.parametrize("damage", ["cut", "flip-last-byte", "zero-fill"])
async def test_torn_tail_is_cut_back_and_appends_continue(tmp_path: Path, damage: str) -> None:
    spool = await Spool.open(tmp_path, MAX)
    records = [record(i) for i in range(10)]
    await fill(spool, records)
    await spool.close()
    [path] = segment_files(tmp_path)
    data = path.read_bytes()
    if damage == "cut":
        path.write_bytes(data[:-3])
    elif damage == "flip-last-byte":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    else:
        path.write_bytes(data + bytes(4096))

    reopened = await Spool.open(tmp_path, MAX)
    assert reopened.torn_records == 1
    assert reopened.corrupt_records == 0
    kept = records if damage == "zero-fill" else records[:9]
    assert reopened.depth == len(kept)
    late = record(99)
    await reopened.append(late)
    broker = Broker()
    await reopened.drain(broker.publish)
    assert broker.published == [*kept, late]
    await reopened.close()


@pytest.mark.parametrize("where", ["payload", "length"])
async def test_corrupt_middle_record_is_skipped_and_counted(tmp_path: Path, where: str) -> None:
    spool = await Spool.open(tmp_path, MAX)
    records = [record(i) for i in range(10)]
    await fill(spool, records)
    await spool.close()
    [path] = segment_files(tmp_path)
    data = bytearray(path.read_bytes())
    frame_size = len(data) // 10  # every record here encodes to the same size
    at = 4 * frame_size + (segment.HEADER.size + 20 if where == "payload" else 1)
    data[at] ^= 0x5A
    path.write_bytes(bytes(data))

    reopened = await Spool.open(tmp_path, MAX)
    assert reopened.corrupt_records == 1
    assert reopened.torn_records == 0
    assert reopened.depth == 9
    broker = Broker()
    assert await reopened.drain(broker.publish) == 9
    assert broker.published == records[:4] + records[5:]
    assert reopened.corrupt_records == 1  # seen again by the drain, not counted twice
    await reopened.close()


async def test_size_bound_raises_spool_full_and_writes_nothing(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, 1200)  # room for two of these records, not three
    await spool.append(record(0, size=400))
    await spool.append(record(1, size=400))
    size_before, bytes_before = segment_files(tmp_path)[0].stat().st_size, spool.bytes

    with pytest.raises(SpoolFull) as caught:
        await spool.append(record(2, size=400))

    assert caught.value.reason == "spool_full"
    assert caught.value.status == 503
    assert spool.depth == 2
    assert spool.bytes == bytes_before == size_before == segment_files(tmp_path)[0].stat().st_size
    assert spool.rejected_full == 1
    assert spool.writable  # a smaller record still fits
    await spool.close()


async def test_the_bound_counts_appends_still_being_written(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, 4000)
    outcomes = await asyncio.gather(
        *(spool.append(record(i, size=400)) for i in range(20)), return_exceptions=True
    )
    stored = [o for o in outcomes if o is None]
    refused = [o for o in outcomes if isinstance(o, SpoolFull)]
    assert len(stored) + len(refused) == 20
    assert refused
    assert spool.bytes <= 4000
    assert spool.depth == len(stored)
    await spool.close()


async def test_draining_frees_room_in_the_bound(tmp_path: Path) -> None:
    probe = await Spool.open(tmp_path / "probe", MAX)
    await probe.append(record(0, size=400))
    await probe.close()
    spool = await Spool.open(tmp_path / "spool", 2 * probe.bytes)
    await spool.append(record(0, size=400))
    assert spool.writable
    await spool.append(record(1, size=400))
    assert not spool.writable
    with pytest.raises(SpoolFull):
        await spool.append(record(3, size=400))
    await spool.drain(Broker().publish)
    assert spool.writable
    await spool.append(record(3, size=400))
    assert spool.depth == 1
    await spool.close()


async def test_segments_roll_and_drained_ones_are_deleted(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, MAX, segment_bytes=600)
    records = [record(i, size=100) for i in range(20)]
    await fill(spool, records)
    files = segment_files(tmp_path)
    assert len(files) >= 4
    assert all(f.stat().st_size <= 600 for f in files)
    assert spool.bytes == sum(f.stat().st_size for f in files)

    broker = Broker()
    await spool.drain(broker.publish, limit=10)
    remaining = segment_files(tmp_path)
    assert files[0] not in remaining
    assert remaining[-1] == files[-1]

    await spool.drain(broker.publish)
    assert broker.published == records
    assert segment_files(tmp_path) == [files[-1]]

    # A fully drained tail rolls on the next append, so the next drain deletes it.
    await spool.append(record(20))
    await spool.drain(broker.publish)
    assert files[-1] not in segment_files(tmp_path)
    assert len(segment_files(tmp_path)) == 1
    await spool.close()


async def test_segments_left_behind_the_cursor_are_deleted_on_open(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, MAX, segment_bytes=300)
    records = [record(i, size=100) for i in range(6)]
    await fill(spool, records)
    await spool.close()
    first, second, *_ = segment_files(tmp_path)
    # As if a crash came between moving the cursor on and unlinking the drained segment.
    segment.write_cursor(tmp_path / "cursor", int(second.stem), 0)

    reopened = await Spool.open(tmp_path, MAX, segment_bytes=300)
    assert not first.exists()
    broker = Broker()
    await reopened.drain(broker.publish)
    assert 0 < reopened.drained < len(records)
    assert broker.published == records[len(records) - reopened.drained :]
    await reopened.close()


async def test_depth_bytes_and_oldest_age(tmp_path: Path) -> None:
    now = [1000.0]
    spool = await Spool.open(tmp_path, MAX, clock=lambda: now[0])
    assert (spool.depth, spool.bytes, spool.oldest_age_s) == (0, 0, 0.0)

    await spool.append(record(0))
    now[0] = 1005.0
    await spool.append(record(1))
    now[0] = 1010.0
    assert spool.depth == 2
    assert spool.bytes == segment_files(tmp_path)[0].stat().st_size > 0
    assert spool.oldest_age_s == pytest.approx(10.0)

    await spool.drain(Broker().publish, limit=1)
    assert spool.depth == 1
    assert spool.oldest_age_s == pytest.approx(5.0)
    await spool.close()

    reopened = await Spool.open(tmp_path, MAX, clock=lambda: now[0])
    assert reopened.oldest_age_s == pytest.approx(5.0)
    stats = reopened.stats()
    assert (stats.depth, stats.bytes, stats.writable) == (1, reopened.bytes, True)
    await reopened.drain(Broker().publish)
    assert (reopened.depth, reopened.oldest_age_s) == (0, 0.0)
    await reopened.close()


async def test_wait_for_records_returns_once_something_is_durable(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, MAX)
    waiter = asyncio.create_task(spool.wait_for_records())
    await asyncio.sleep(0)  # one scheduling turn for the waiter, not a timed wait
    assert not waiter.done()
    await spool.append(record(0))
    await asyncio.wait_for(waiter, 5)
    await spool.close()


async def test_close_is_idempotent_and_finishes_pending_appends(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, MAX)
    # gather starts the appends first, so all ten are pending when the closes begin.
    await asyncio.gather(
        *(spool.append(record(i)) for i in range(10)), spool.close(), spool.close()
    )
    await spool.close()
    assert not spool.writable

    with pytest.raises(SpoolUnavailable):
        await spool.append(record(10))
    reopened = await Spool.open(tmp_path, MAX)
    assert reopened.depth == 10
    await reopened.close()


async def test_a_failed_write_is_refused_and_cut_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = await Spool.open(tmp_path, MAX)
    await spool.append(record(0))
    size = spool.bytes
    real_fdatasync = os.fdatasync
    calls = 0

    def fdatasync_fails_once(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError(5, "Input/output error")
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync_fails_once)
    with pytest.raises(SpoolUnavailable) as caught:
        await spool.append(record(1))
    assert isinstance(caught.value.__cause__, OSError)
    assert segment_files(tmp_path)[0].stat().st_size == size == spool.bytes

    await spool.append(record(2))
    broker = Broker()
    await spool.drain(broker.publish)
    assert broker.published == [record(0), record(2)]
    await spool.close()


async def test_a_record_too_large_to_frame_is_refused(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, 1 << 30)
    with pytest.raises(ValueError, match="payload"):
        await spool.append(record(0, size=1 << 24))
    assert spool.depth == 0
    await spool.close()


def test_scan_skips_zero_runs_and_finds_the_next_frame() -> None:
    frames = [segment.frame(bytes([i]) * (100 + i)) for i in range(3)]
    buf = frames[0] + bytes(5000) + frames[1] + b"\x01\x02\x03" + frames[2]
    found = segment.scan(buf, complete=True)
    assert len(found.frames) == 3
    assert len(found.corrupt) == 2
    assert not found.torn


# -- property: no operation sequence loses or reorders a record ------------------------------

operation = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 6), st.integers(0, 300)),
    st.tuples(st.just("drain"), st.one_of(st.none(), st.integers(0, 8)), st.sampled_from([1, 3])),
    st.tuples(st.just("reopen"), st.just(0), st.just(0)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    operations=st.lists(operation, max_size=25),
    segment_bytes=st.integers(200, 3000),
)
def test_no_sequence_of_operations_loses_or_reorders(
    operations: list[tuple[str, int | None, int]], segment_bytes: int
) -> None:
    async def run(directory: Path) -> None:
        spool = await Spool.open(directory, MAX, segment_bytes=segment_bytes)
        appended: list[Record] = []
        broker = Broker()
        for kind, arg, extra in operations:
            if kind == "append":
                assert arg is not None
                new = [record(len(appended) + i, size=extra) for i in range(arg)]
                await asyncio.gather(*(spool.append(r) for r in new))
                appended += new
            elif kind == "drain":
                broker.taken, broker.down_from = 0, arg
                await spool.drain(broker.publish, window=extra)
            else:
                await spool.close()
                spool = await Spool.open(directory, MAX, segment_bytes=segment_bytes)
            assert broker.published == appended[: len(broker.published)]
            assert spool.depth == len(appended) - len(broker.published)
        broker.down_from = None
        await spool.drain(broker.publish)
        assert broker.published == appended
        assert spool.torn_records == spool.corrupt_records == 0
        await spool.close()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(Path(directory)))
        assert len(os.listdir(directory)) <= 3  # cursor and at most two segments
