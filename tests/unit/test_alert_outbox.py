"""One receiver's queue: order kept, retried with growing waits, bounded, never stuck."""

from __future__ import annotations

import asyncio

from pipeline.live.alerts.outbox import Outbox
from pipeline.live.alerts.rules import Delivery
from pipeline.live.alerts.state import Notification
from pipeline.runtime.tasks import cancel
from tests.support.alerts import FakeSender, eventually

FAST = Delivery(initial_backoff_seconds=0.01, max_backoff_seconds=0.02)


def _note(n: int, queued: float = 0.0) -> Notification:
    return Notification(
        id=f"n{n}",
        receiver="fake",
        state="firing",
        rule="down",
        kind="instance_disconnected",
        tenant="acme",
        subject=f"inst-{n}",
        since=0.0,
        at=0.0,
        queued=queued,
        title="t",
        text="t",
    )


class _Changes:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> None:
        self.count += 1


async def test_delivered_in_order_and_each_change_reported() -> None:
    sender, changes = FakeSender("fake"), _Changes()
    outbox = Outbox(sender, FAST, changes, clock=lambda: 0.0)
    task = asyncio.create_task(outbox.run())
    for n in range(3):
        outbox.put(_note(n))
    await eventually(lambda: len(sender.sent) == 3)
    await cancel(task)
    assert [n.id for n in sender.sent] == ["n0", "n1", "n2"]
    assert outbox.pending == []
    await eventually(lambda: changes.count == 3)


async def test_a_receiver_down_gets_it_when_back_in_order() -> None:
    sender, changes = FakeSender("fake"), _Changes()
    sender.down = True
    outbox = Outbox(sender, FAST, changes, clock=lambda: 0.0)
    task = asyncio.create_task(outbox.run())
    outbox.put(_note(0))
    outbox.put(_note(1))
    await eventually(lambda: sender.attempts >= 4)
    assert sender.sent == []
    assert [n.id for n in outbox.pending] == ["n0", "n1"]  # kept for the state file
    sender.down = False
    await eventually(lambda: len(sender.sent) == 2)
    await cancel(task)
    assert [n.id for n in sender.sent] == ["n0", "n1"]


async def test_a_refusal_is_dropped_and_the_next_goes() -> None:
    sender = FakeSender("fake")
    sender.refuse = True
    outbox = Outbox(sender, FAST, _Changes(), clock=lambda: 0.0)
    task = asyncio.create_task(outbox.run())
    outbox.put(_note(0))
    await eventually(lambda: outbox.pending == [])
    assert sender.attempts == 1
    sender.refuse = False
    outbox.put(_note(1))
    await eventually(lambda: len(sender.sent) == 1)
    await cancel(task)
    assert sender.sent[0].id == "n1"


async def test_an_old_notification_is_given_up() -> None:
    sender = FakeSender("fake")
    sender.down = True
    now = [0.0]
    delivery = Delivery(
        initial_backoff_seconds=0.01, max_backoff_seconds=0.01, give_up_after_hours=1
    )
    outbox = Outbox(sender, delivery, _Changes(), clock=lambda: now[0])
    task = asyncio.create_task(outbox.run())
    outbox.put(_note(0, queued=0.0))
    await eventually(lambda: sender.attempts >= 2)
    now[0] = 3601.0
    await eventually(lambda: outbox.pending == [])
    await cancel(task)
    assert sender.sent == []


def test_the_queue_is_bounded_dropping_the_oldest() -> None:
    outbox = Outbox(FakeSender("fake"), Delivery(queue_size=2), _Changes())
    for n in range(4):
        outbox.put(_note(n))
    assert [n.id for n in outbox.pending] == ["n2", "n3"]


def test_backoff_doubles_to_its_bound_with_jitter() -> None:
    delivery = Delivery(initial_backoff_seconds=1, max_backoff_seconds=10)
    top = Outbox(FakeSender("f"), delivery, _Changes(), jitter=lambda: 1.0)
    bottom = Outbox(FakeSender("f"), delivery, _Changes(), jitter=lambda: 0.0)
    assert [top.backoff(a) for a in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert [bottom.backoff(a) for a in range(1, 7)] == [0.5, 1, 2, 4, 5, 5]


class _SlowAnswer(FakeSender):
    """A receiver that has taken the notification and answers only when released."""

    def __init__(self) -> None:
        super().__init__("fake")
        self.release = asyncio.Event()

    async def send(self, note: Notification) -> None:
        self.sent.append(note)
        await self.release.wait()


async def test_a_stop_waits_for_the_answer_in_flight_and_records_it() -> None:
    sender, changes = _SlowAnswer(), _Changes()
    outbox = Outbox(sender, FAST, changes, clock=lambda: 0.0)
    task = asyncio.create_task(outbox.run())
    outbox.put(_note(0))
    outbox.put(_note(1))
    await eventually(lambda: len(sender.sent) == 1)
    settling = asyncio.create_task(outbox.settle(5.0))
    await asyncio.sleep(0)
    assert not settling.done()  # the answer is still due
    sender.release.set()
    assert await settling
    await cancel(task)
    # the first is recorded as delivered, so a restart will not send it again; the
    # second was never started
    assert [n.id for n in outbox.pending] == ["n1"]
    assert [n.id for n in sender.sent] == ["n0"]
    assert changes.count == 1


async def test_a_stop_does_not_wait_out_a_backoff_or_a_hung_receiver() -> None:
    down = FakeSender("fake")
    down.down = True
    slow = Delivery(initial_backoff_seconds=30.0, max_backoff_seconds=30.0)
    outbox = Outbox(down, slow, _Changes(), clock=lambda: 0.0)
    task = asyncio.create_task(outbox.run())
    outbox.put(_note(0))
    await eventually(lambda: down.attempts == 1)
    assert await asyncio.wait_for(outbox.settle(5.0), 1.0)  # in the 30 s backoff: at once
    await cancel(task)
    assert [n.id for n in outbox.pending] == ["n0"]

    hung = _SlowAnswer()
    outbox = Outbox(hung, FAST, _Changes(), clock=lambda: 0.0)
    task = asyncio.create_task(outbox.run())
    outbox.put(_note(0))
    await eventually(lambda: len(hung.sent) == 1)
    assert not await outbox.settle(0.05)  # bounded: the answer never came
    await cancel(task)
    assert [n.id for n in outbox.pending] == ["n0"]  # kept: it may not have been taken
