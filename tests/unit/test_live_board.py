"""The board: listeners get fresh figures after a change and every tick; a slow one skips
to the latest and never holds up the events or another listener."""

from __future__ import annotations

import asyncio

from pipeline.live.board import Board, Mailbox
from pipeline.live.figures import TenantNow
from pipeline.live.state import LiveState
from tests.support import kpi_fixtures as fx

DEADLINE_S = 5.0


class _Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _figures(tenant: str, as_of: float) -> TenantNow:
    return LiveState("UTC", 60).snapshot(tenant, as_of)


def test_a_mailbox_keeps_the_latest_figures_per_tenant() -> None:
    async def scenario() -> None:
        box = Mailbox()
        for t in (1.0, 2.0, 3.0):
            box.put(_figures("acme", t))
        box.put(_figures("globex", 1.0))
        taken = await asyncio.wait_for(box.take(), DEADLINE_S)
        assert sorted((f.tenant, f.as_of) for f in taken) == [("acme", 3.0), ("globex", 1.0)]
        assert box.skipped == 2
        only = Mailbox("globex")
        only.put(_figures("acme", 1.0))
        only.put(_figures("globex", 2.0))
        assert [f.tenant for f in await asyncio.wait_for(only.take(), DEADLINE_S)] == ["globex"]

    asyncio.run(scenario())


def test_listeners_follow_the_events_and_a_slow_one_skips() -> None:
    async def scenario() -> None:
        events = fx.events()
        clock = _Clock(fx.ms(fx.DAY1, "23:59:59") / 1000)
        fast: list[TenantNow] = []
        slow: list[TenantNow] = []
        release = asyncio.Event()

        async def quick(now: TenantNow) -> None:
            fast.append(now)

        async def stuck(now: TenantNow) -> None:
            slow.append(now)
            await release.wait()  # a receiver that does not answer

        board = Board(
            LiveState("America/Sao_Paulo", 60), [quick, stuck], clock=clock, tick_s=0.2,
            min_interval_s=0.01,
        )  # fmt: skip
        await board.start()
        try:
            board.ready.set()
            for event in events:
                board.apply(event)  # never waits on a listener
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DEADLINE_S
            while not any(f.tenant == "acme" and f.total.finished_today == 3 for f in fast):
                assert loop.time() < deadline, "the fast listener never saw the day's figures"
                await asyncio.sleep(0.01)
            # the clock moves, no event: each tick still brings figures as of the new time
            for _ in range(3):
                clock.t += 60
                deadline = loop.time() + DEADLINE_S
                while not any(f.as_of == clock.t for f in fast):
                    assert loop.time() < deadline, "no figures on the tick"
                    await asyncio.sleep(0.01)
            assert len(slow) == 1  # stuck on its first figures all along
            release.set()
            deadline = loop.time() + DEADLINE_S
            while not any(f.as_of == clock.t for f in slow):
                assert loop.time() < deadline, "the slow listener never caught up"
                await asyncio.sleep(0.01)
            # it skipped what it could not take in time (three ticks' figures), got the latest
            seen_slow = {f.as_of for f in slow}
            assert {clock.t - 120, clock.t - 60} <= {f.as_of for f in fast}
            assert not {clock.t - 120, clock.t - 60} & seen_slow
        finally:
            await board.stop()

    asyncio.run(scenario())


def test_nothing_is_published_before_the_feed_has_caught_up() -> None:
    async def scenario() -> None:
        heard: list[TenantNow] = []

        async def listener(now: TenantNow) -> None:
            heard.append(now)

        clock = _Clock(fx.ms(fx.DAY1, "23:59:59") / 1000)
        board = Board(LiveState("UTC", 60), [listener], tenants=["acme"], clock=clock, tick_s=0.05)
        await board.start()
        try:
            for event in fx.events():
                board.apply(event)
            await asyncio.sleep(0.3)  # several ticks: none may publish (asserting an absence)
            assert heard == []
            board.ready.set()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DEADLINE_S
            while {f.tenant for f in heard} != {"acme", "globex"}:
                assert loop.time() < deadline, "the caught-up board published nothing"
                await asyncio.sleep(0.01)
        finally:
            await board.stop()

    asyncio.run(scenario())
