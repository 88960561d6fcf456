"""The loader's write queue without Kafka or a database: a fake warehouse that holds
offsets, checks the ones a write expects as the real targets do, and writes only when the
test opens its gate."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline.errors import StaleOffsets, WarehouseUnavailable
from pipeline.warehouse.batch import TP, Batch
from pipeline.warehouse.writes import Writes

A: TP = ("plug.message.received", 0)
B: TP = ("plug.message.received", 1)


def batch(offsets: Mapping[TP, int], records: int = 1) -> Batch:
    """A closed batch that leaves ``offsets`` (its rows do not matter here)."""
    made = Batch(offsets=dict(offsets), records=records)
    made.close()
    return made


class Warehouse:
    """Offsets stored, batches written in order; each write waits for its gate, then
    fails with what ``failures`` holds for it, or commits if its expected offsets are
    the stored ones (else ``StaleOffsets``, as the targets' offset move)."""

    def __init__(self, stored: Mapping[TP, int] | None = None) -> None:
        self.stored: dict[TP, int] = dict(stored or {})
        self.written: list[Batch] = []  # committed, in commit order
        self.attempts: list[Batch] = []
        self.gates: dict[int, threading.Event] = {}
        self.started: dict[int, threading.Event] = {}
        self.failures: dict[int, list[Exception]] = {}
        self._clock = 0.0

    def gate(self, b: Batch) -> threading.Event:
        return self.gates.setdefault(id(b), threading.Event())

    def began(self, b: Batch) -> threading.Event:
        """Set once the batch's write has started."""
        return self.started.setdefault(id(b), threading.Event())

    def write(self, b: Batch, expected: dict[TP, int | None]) -> float:
        self.attempts.append(b)
        self.began(b).set()
        assert self.gate(b).wait(30), "a write's gate was never opened"
        failures = self.failures.get(id(b))
        if failures:
            raise failures.pop(0)
        if any(self.stored.get(tp) != offset for tp, offset in expected.items()):
            raise StaleOffsets(f"expected {expected}, stored {self.stored}")
        self.stored.update(b.offsets)
        self.written.append(b)
        self._clock += 1
        return self._clock


class Committed:
    """What the queue reported as committed, with the warehouse's offsets at that time."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.batches: list[Batch] = []
        self.stored_then: list[dict[TP, int]] = []
        self.at: list[float] = []

    def __call__(self, b: Batch, committed_at: float) -> None:
        self.batches.append(b)
        self.stored_then.append(dict(self.warehouse.stored))
        self.at.append(committed_at)


@pytest.fixture
def warehouse() -> Warehouse:
    return Warehouse({A: 10})


@pytest.fixture
def committed(warehouse: Warehouse) -> Committed:
    return Committed(warehouse)


@pytest.fixture
async def writes(warehouse: Warehouse, committed: Committed) -> AsyncIterator[Writes]:
    executor = ThreadPoolExecutor(1, thread_name_prefix="warehouse")
    try:
        yield Writes(warehouse.write, executor, committed)
    finally:
        for gate in warehouse.gates.values():
            gate.set()  # no write left waiting
        executor.shutdown(wait=True)


async def test_batches_commit_in_order_each_expecting_what_the_one_before_leaves(
    writes: Writes, warehouse: Warehouse, committed: Committed
) -> None:
    first, second, third = batch({A: 12}), batch({A: 15, B: 3}), batch({B: 7})
    stored: dict[TP, int | None] = {A: 10}
    for b in (first, second, third):
        writes.add(b, stored)
    assert writes.expected(A, stored) == 15
    assert writes.expected(B, stored) == 7

    for b in (third, second, first):  # opened last to first: the order is the queue's
        warehouse.gate(b).set()
    await writes.settle(keep=0)

    assert warehouse.written == [first, second, third]
    assert committed.batches == [first, second, third]
    assert committed.at == [1.0, 2.0, 3.0]
    assert warehouse.stored == {A: 15, B: 7}
    assert len(writes) == 0


async def test_the_first_batch_of_a_partition_expects_no_row(
    writes: Writes, warehouse: Warehouse
) -> None:
    only = batch({B: 4})
    writes.add(only, {A: 10})
    warehouse.gate(only).set()
    await writes.settle(keep=0)
    assert warehouse.stored == {A: 10, B: 4}


async def test_offsets_are_handed_over_only_once_the_write_committed(
    writes: Writes, warehouse: Warehouse, committed: Committed
) -> None:
    first = batch({A: 12})
    writes.add(first, {A: 10})

    await writes.settle(keep=1)  # returns at once: one batch queued is allowed
    assert committed.batches == []
    assert len(writes) == 1

    warehouse.gate(first).set()
    await writes.settle(keep=0)
    assert committed.batches == [first]
    assert committed.stored_then == [{A: 12}]  # the warehouse held them already


async def test_a_full_queue_waits_for_the_head_to_commit(
    writes: Writes, warehouse: Warehouse, committed: Committed
) -> None:
    first, second = batch({A: 11}), batch({A: 12})
    writes.add(first, {A: 10})
    writes.add(second, {A: 10})
    waits: list[tuple[int, int]] = []

    def waiting() -> None:
        waits.append((len(writes), len(committed.batches)))
        warehouse.gate(first).set()  # the writer catches up only now

    await writes.settle(keep=2, waiting=waiting)
    assert waits == []  # two queued are within keep=2: no wait, nothing written
    assert warehouse.written == []

    await writes.settle(keep=1, waiting=waiting)
    assert waits == [(2, 0)]  # waited with both queued and nothing committed
    assert committed.batches == [first]
    assert len(writes) == 1
    # the next write starts as the head commits, with no settle to start it
    assert warehouse.began(second).wait(30)
    assert warehouse.written == [first]


async def test_a_failed_write_stays_at_the_head_and_holds_back_the_rest(
    writes: Writes, warehouse: Warehouse, committed: Committed
) -> None:
    first, second = batch({A: 11}), batch({A: 12})
    warehouse.failures[id(first)] = [WarehouseUnavailable("down")]
    writes.add(first, {A: 10})
    writes.add(second, {A: 10})
    warehouse.gate(first).set()
    warehouse.gate(second).set()

    with pytest.raises(WarehouseUnavailable, match="down"):
        await writes.settle(keep=1)  # waits for the head, which fails
    assert writes.failed()
    assert len(writes) == 2
    assert warehouse.attempts == [first]  # nothing after the failed head was tried
    assert committed.batches == []
    with pytest.raises(WarehouseUnavailable):  # a failed head is told whatever the keep
        await writes.settle(keep=2)

    writes.retry()
    await writes.settle(keep=0)
    assert not writes.failed()
    assert warehouse.attempts == [first, first, second]
    assert committed.batches == [first, second]
    assert warehouse.stored == {A: 12}


async def test_a_stale_offset_is_raised_and_the_queue_can_be_dropped(
    writes: Writes, warehouse: Warehouse, committed: Committed
) -> None:
    warehouse.stored[A] = 20  # another loader moved the partition on
    first, second = batch({A: 11}, records=3), batch({A: 12}, records=4)
    writes.add(first, {A: 10})
    writes.add(second, {A: 10})
    warehouse.gate(first).set()

    with pytest.raises(StaleOffsets):
        await writes.settle(keep=0)
    assert writes.records == 7  # what dropping the queue would drop
    writes.clear()
    assert len(writes) == 0
    assert not writes.failed()
    await writes.settle(keep=0)  # nothing left to wait for
    assert committed.batches == []
    assert warehouse.stored == {A: 20}


async def test_a_write_in_flight_when_cleared_is_not_reported(
    writes: Writes, warehouse: Warehouse, committed: Committed
) -> None:
    first = batch({A: 11})
    writes.add(first, {A: 10})
    writes.clear()
    after = batch({A: 12})
    warehouse.gate(first).set()
    warehouse.gate(after).set()

    writes.add(after, {A: 11})  # starts behind the cleared write on the one thread
    await writes.settle(keep=0)

    assert warehouse.written == [first, after]
    assert committed.batches == [after]  # the cleared batch committed, unreported
