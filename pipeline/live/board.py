"""The board: the live state, its clock, and who is told when a tenant's figures change.

Events go into ``apply``; a publishing loop makes a fresh ``TenantNow`` for every tenant
whose figures changed (at most every ``min_interval_s``, so that a burst of events makes
one snapshot, not thousands) and for every tenant once a second (waits grow, failures
leave the 15-minute window, midnight comes). Each reader has a ``Mailbox`` holding only
the latest figures per tenant: a reader that lags skips to the newest, and never holds
up the consumer or another reader. Listeners (alerts) are called from a supervised task
each; the wallboard's streams take from their own mailbox.

Nothing is published until the feed has caught up with the topics (``ready``): figures
half-way through a rebuild would show, and alert on, a past that is already over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from pipeline.consume.decode import AnyEvent
from pipeline.live.figures import Listener, TenantNow
from pipeline.live.state import LiveState
from pipeline.runtime.tasks import cancel, supervise

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Mailbox:
    """The latest figures per tenant not yet taken; ``tenant`` None takes every tenant."""

    def __init__(self, tenant: str | None = None) -> None:
        self.tenant = tenant
        self._pending: dict[str, TenantNow] = {}
        self._ready = asyncio.Event()
        self.skipped = 0  # figures replaced before they were taken: the reader lagged

    def put(self, now: TenantNow) -> None:
        if self.tenant is not None and now.tenant != self.tenant:
            return
        if now.tenant in self._pending:
            self.skipped += 1
        self._pending[now.tenant] = now
        self._ready.set()

    async def take(self) -> list[TenantNow]:
        """Wait for figures, then all of them (one per tenant, the newest)."""
        await self._ready.wait()
        self._ready.clear()
        taken = list(self._pending.values())
        self._pending.clear()
        return taken


class Board:
    def __init__(
        self,
        state: LiveState,
        listeners: Iterable[Listener] = (),
        *,
        tenants: Iterable[str] = (),
        clock: Clock = time.time,
        tick_s: float = 1.0,
        min_interval_s: float = 0.1,
    ) -> None:
        self.state = state
        self.clock = clock
        self.tenants = set(tenants)  # shown even before their first event
        self._listeners = list(listeners)
        self._tick_s = tick_s
        self._min_interval_s = min_interval_s
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._mailboxes: set[Mailbox] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()
        self.published = 0
        self.last_published: float | None = None  # clock() of the last publication

    # -- in ----------------------------------------------------------------------------

    def apply(self, event: AnyEvent) -> None:
        self.state.roll(self.clock())
        tenant = self.state.apply(event)
        if tenant is not None:
            self._dirty.add(tenant)
            self._wake.set()

    def now(self, tenant: str) -> TenantNow:
        """``tenant``'s figures this instant (what ``/api/now`` answers)."""
        now = self.clock()
        self.state.roll(now)
        return self.state.snapshot(tenant, now)

    # -- out ---------------------------------------------------------------------------

    def subscribe(self, tenant: str | None = None) -> Mailbox:
        box = Mailbox(tenant)
        self._mailboxes.add(box)
        return box

    def unsubscribe(self, box: Mailbox) -> None:
        self._mailboxes.discard(box)

    @property
    def subscribers(self) -> int:
        return len(self._mailboxes)

    async def start(self) -> None:
        self._tasks.append(supervise("live-publish", self._publish_loop))
        for i, listener in enumerate(self._listeners):
            box = self.subscribe()
            self._tasks.append(supervise(f"live-listener-{i}", _pump(box, listener)))

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel(task)
        self._tasks.clear()

    async def _publish_loop(self) -> None:
        await self.ready.wait()
        last_full = float("-inf")  # the first round after catching up shows every tenant
        while True:
            now = self.clock()
            day_changed = self.state.roll(now)
            if now - last_full >= self._tick_s or day_changed:
                last_full = now
                tenants = self.tenants | set(self.state.tenants)
            else:
                tenants = self._dirty
            self._dirty = set()
            for tenant in sorted(tenants):
                figures = self.state.snapshot(tenant, now)
                for box in list(self._mailboxes):
                    box.put(figures)
            self.published += 1
            self.last_published = now
            await asyncio.sleep(self._min_interval_s)  # a burst of events: one snapshot
            with contextlib.suppress(TimeoutError):  # a second without events: waits grow
                await asyncio.wait_for(self._wake.wait(), self._tick_s - self._min_interval_s)
            self._wake.clear()


def _pump(box: Mailbox, listener: Listener) -> Callable[[], Coroutine[Any, Any, None]]:
    async def run() -> None:
        while True:
            for figures in await box.take():
                await listener(figures)

    return run
