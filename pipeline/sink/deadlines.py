"""One timeout for many waits of the same length, with one loop timer per tick, not per wait.

``asyncio.timeout`` arms a loop timer on entry and cancels it on exit: on uvloop that is a
libuv timer started and stopped, 2-3 us, for every webhook the Kafka sink publishes (all
bounded by the same ack timeout). Here a wait joins the *slot* of its deadline rounded up to
the next tick; the first wait of a slot arms its one timer, and when it fires every task
still in the slot is cancelled and its ``with`` block raises ``TimeoutError``, as
``asyncio.timeout`` would. A wait may so run up to one tick past its timeout, never less.

Cancellation follows ``asyncio.timeout``'s rules: only a cancellation this module made turns
into ``TimeoutError`` (``Task.uncancel`` tells them apart); any other is left as it came.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType


class Deadlines:
    """``with deadlines.bound():`` runs its block under ``timeout_s`` (inside a task)."""

    def __init__(self, timeout_s: float, tick_s: float = 0.05) -> None:
        if timeout_s <= 0 or tick_s <= 0:
            raise ValueError("timeout and tick must be positive")
        self.timeout_s = timeout_s
        self._tick_s = tick_s
        self._slots: dict[int, dict[asyncio.Task[object], Bound]] = {}
        # The loop of the last wait: ``current_task()`` without it asks for the running
        # loop, which on Python 3.11 is a getpid() system call (~0.3 us) every time.
        self._loop: asyncio.AbstractEventLoop | None = None

    def bound(self) -> Bound:
        return Bound(self)

    def _join(self, task: asyncio.Task[object], bound: Bound) -> int:
        loop = task.get_loop()
        tick = math.ceil((loop.time() + self.timeout_s) / self._tick_s)
        slot = self._slots.get(tick)
        if slot is None:
            slot = self._slots[tick] = {}
            loop.call_at(tick * self._tick_s, self._expire, tick)
        slot[task] = bound
        return tick

    def _leave(self, tick: int, task: asyncio.Task[object]) -> None:
        slot = self._slots.get(tick)
        if slot is not None:
            slot.pop(task, None)

    def _expire(self, tick: int) -> None:
        for task, bound in self._slots.pop(tick, {}).items():
            bound.expired = True
            task.cancel()

    @property
    def waiting(self) -> int:
        """Waits under way (for tests and figures)."""
        return sum(len(slot) for slot in self._slots.values())


class Bound:
    __slots__ = ("_cancelling", "_deadlines", "_task", "_tick", "expired")

    def __init__(self, deadlines: Deadlines) -> None:
        self._deadlines = deadlines
        self.expired = False

    def __enter__(self) -> Bound:
        deadlines = self._deadlines
        loop = deadlines._loop
        # None when the loop is not running (a new one since): then the running loop's
        task = None if loop is None else asyncio.current_task(loop)
        if task is None:
            task = asyncio.current_task()
            if task is None:
                raise RuntimeError("Deadlines.bound() must be used inside a task")
            deadlines._loop = task.get_loop()
        self._task = task
        self._cancelling = task.cancelling()
        self._tick = deadlines._join(task, self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._deadlines._leave(self._tick, self._task)
        if not self.expired:
            return
        # The cancellation was ours: take it back. Only if no other is left is it a timeout.
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError(f"not done within {self._deadlines.timeout_s:g} s") from exc
