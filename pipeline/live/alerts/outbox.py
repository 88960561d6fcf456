"""One receiver's queue of notifications and the loop that delivers them, in order.

The head of the queue is tried until the receiver takes it: after a retriable failure
the loop waits ``initial_backoff_seconds``, doubling up to ``max_backoff_seconds``, each
wait drawn between half and all of that so that processes do not retry in step. A
refusal that retrying cannot change, or a notification older than
``give_up_after_hours``, is dropped, logged and counted. The queue is bounded: past
``queue_size`` the oldest is dropped (and counted), since the newest says most about now.

``on_change`` is awaited after every change a restart must see (a notification
delivered or dropped), so the owner can keep its state file current. ``settle`` lets an
attempt in flight end and be recorded before a stop: cancelled mid-request, a
notification the receiver already took would stay queued and be sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable

from pipeline.live.alerts import telemetry
from pipeline.live.alerts.deliver import DeliveryFailed, Sender
from pipeline.live.alerts.rules import Delivery
from pipeline.live.alerts.state import Notification

log = logging.getLogger(__name__)


class Outbox:
    def __init__(
        self,
        sender: Sender,
        delivery: Delivery,
        on_change: Callable[[], Awaitable[None]],
        *,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._sender = sender
        self._delivery = delivery
        self._on_change = on_change
        self._clock = clock
        self._jitter = jitter
        self._queue: deque[Notification] = deque()
        self._ready = asyncio.Event()
        self._quiet = asyncio.Event()  # set while no attempt is in flight or unrecorded
        self._quiet.set()
        self._settling = False
        self._gauge = telemetry.OUTBOX.labels(sender.name)

    @property
    def name(self) -> str:
        return self._sender.name

    @property
    def pending(self) -> list[Notification]:
        return list(self._queue)

    def put(self, note: Notification) -> None:
        while len(self._queue) >= self._delivery.queue_size:
            dropped = self._queue.popleft()
            telemetry.NOTIFICATIONS.labels(self.name, "overflow").inc()
            log.warning(
                "alert queue of receiver %s full: dropped the oldest (%s, rule %s, tenant %s)",
                self.name,
                dropped.state,
                dropped.rule,
                dropped.tenant,
            )
        self._queue.append(note)
        self._gauge.set(len(self._queue))
        self._ready.set()

    def backoff(self, attempt: int) -> float:
        """The wait after ``attempt`` failures in a row (1 = the first)."""
        d = self._delivery
        ceiling = min(d.max_backoff_seconds, d.initial_backoff_seconds * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * self._jitter())

    async def run(self) -> None:
        """Deliver, forever; cancel to stop (the queue stays for the state file)."""
        while not self._settling:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            note = self._queue[0]
            try:
                outcome = await self._deliver(note)
                if self._queue and self._queue[0] is note:
                    self._queue.popleft()
                self._gauge.set(len(self._queue))
                telemetry.NOTIFICATIONS.labels(self.name, outcome).inc()
                await self._on_change()
            finally:
                self._quiet.set()

    async def settle(self, timeout_s: float) -> bool:
        """Start no new attempt, and wait (at most ``timeout_s``) for the one in flight to
        end and be recorded; whether it did. Then cancel ``run``."""
        self._settling = True
        self._ready.set()  # an idle loop wakes up and ends
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), timeout_s)
        return self._quiet.is_set()

    async def _deliver(self, note: Notification) -> str:
        """Try until taken, refused or expired; the outcome's name."""
        attempt = 0
        give_up_s = self._delivery.give_up_after_hours * 3600
        while True:
            if self._clock() - note.queued > give_up_s:
                log.error(
                    "alert to %s undelivered for %.0f h: dropped (%s, rule %s, tenant %s)",
                    self.name,
                    self._delivery.give_up_after_hours,
                    note.state,
                    note.rule,
                    note.tenant,
                )
                return "expired"
            self._quiet.clear()
            try:
                await self._sender.send(note)
            except DeliveryFailed as exc:
                if not exc.retriable:
                    log.error(
                        "alert to %s refused (%s): dropped (%s, rule %s, tenant %s)",
                        self.name,
                        exc.reason,
                        note.state,
                        note.rule,
                        note.tenant,
                    )
                    return "refused"
                self._quiet.set()  # nothing taken: a stop may cut the backoff short
                attempt += 1
                delay = self.backoff(attempt)
                if exc.retry_after_s is not None:  # the receiver knows best, within bounds
                    delay = min(max(delay, exc.retry_after_s), self._delivery.max_backoff_seconds)
                telemetry.NOTIFICATIONS.labels(self.name, "retried").inc()
                log.warning(
                    "alert to %s failed (%s), attempt %d; next in %.1f s",
                    self.name,
                    exc.reason,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)  # the backoff itself, not a wait for a condition
                continue
            log.info(
                "alert sent to %s: %s, rule %s, tenant %s, subject %s",
                self.name,
                note.state,
                note.rule,
                note.tenant,
                note.subject,
            )
            return "sent"

    async def close(self) -> None:
        await self._sender.close()
