"""The shared-timer timeout: the same outcomes as asyncio.timeout, one timer per tick."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.sink.deadlines import Deadlines


def test_a_block_that_finishes_in_time_is_left_alone() -> None:
    async def main() -> int:
        deadlines = Deadlines(1.0)
        with deadlines.bound():
            await asyncio.sleep(0)
        assert deadlines.waiting == 0
        return 7

    assert asyncio.run(main()) == 7


def test_a_block_past_its_deadline_raises_timeout_error_never_early() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(0.2, tick_s=0.05)
        started = loop.time()
        with pytest.raises(TimeoutError), deadlines.bound():
            await asyncio.Event().wait()  # never set
        return loop.time() - started

    assert asyncio.run(main()) >= 0.2  # never early (late by up to a tick, by design)


def test_waits_of_one_tick_share_one_timer() -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(30.0, tick_s=10.0)
        armed = 0
        real_call_at = loop.call_at

        def counting_call_at(when: float, callback: object, *args: object) -> asyncio.TimerHandle:
            nonlocal armed
            armed += 1
            return real_call_at(when, callback, *args)  # type: ignore[arg-type]

        loop.call_at = counting_call_at  # type: ignore[method-assign,assignment]
        release = asyncio.Event()

        async def wait() -> None:
            with deadlines.bound():
                await release.wait()

        tasks = [asyncio.create_task(wait()) for _ in range(100)]
        await asyncio.sleep(0)
        waiting = deadlines.waiting
        release.set()
        await asyncio.gather(*tasks)
        return armed, waiting

    armed, waiting = asyncio.run(main())
    assert waiting == 100
    assert armed <= 2  # the 100 waits fall in one tick, two if they straddle a boundary


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def main() -> None:
        deadlines = Deadlines(30.0)

        async def wait() -> None:
            with deadlines.bound():
                await asyncio.Event().wait()

        task = asyncio.create_task(wait())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert deadlines.waiting == 0

    asyncio.run(main())


def test_an_outer_cancellation_during_a_timeout_is_not_swallowed() -> None:
    """Both at once: the task was cancelled from outside too, so it stays cancelled."""

    async def main() -> None:
        deadlines = Deadlines(0.1, tick_s=0.05)
        entered = asyncio.Event()

        async def wait() -> None:
            with deadlines.bound():
                entered.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(wait())
        await entered.wait()
        deadlines._expire(max(deadlines._slots))  # the deadline passes...
        task.cancel()  # ...and the task is cancelled from outside in the same turn
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_each_wait_bounds_its_own_task_in_turn_and_on_a_later_loop() -> None:
    deadlines = Deadlines(0.1, tick_s=0.05)

    async def waits() -> list[str]:
        async def one(name: str, forever: bool) -> str:
            try:
                with deadlines.bound():
                    await (asyncio.Event().wait() if forever else asyncio.sleep(0))
            except TimeoutError:
                return f"{name} timed out"
            return f"{name} done"

        # the task that times out is the one that waited, not the last to enter
        return list(await asyncio.gather(one("a", True), one("b", False)))

    # a second loop (the first closed) finds its own tasks, not the first loop's
    for _ in range(2):
        assert asyncio.run(waits()) == ["a timed out", "b done"]
        assert deadlines.waiting == 0


def test_outside_a_task_it_refuses() -> None:
    with pytest.raises(RuntimeError):
        Deadlines(1.0).bound().__enter__()


def test_timeout_and_tick_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Deadlines(0)
    with pytest.raises(ValueError, match="positive"):
        Deadlines(1.0, tick_s=0)
