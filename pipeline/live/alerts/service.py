"""The alerts as one service: a listener of the live figures, an outbox per receiver.

What the live process does with it::

    alerts = build_alerts(config.alerts_file, time_zone=config.kpi_time_zone)
    if alerts is not None:
        listeners.append(alerts.on_now)   # a pipeline.live.figures.Listener
        alerts.start()                    # one supervised task per receiver
    ...
    await alerts.close()                  # tasks stopped, state written

``on_now`` judges the rules (``evaluate.py``), queues a notification per receiver for
each transition, and writes the state file before it returns, so that a crash after it
neither repeats a firing nor loses a resolution. Writing happens in a thread, one write
at a time, each of the state as it stands when the write begins.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.live.alerts import settings as alert_settings
from pipeline.live.alerts import state, telemetry
from pipeline.live.alerts.deliver import Sender, sender
from pipeline.live.alerts.evaluate import Evaluator
from pipeline.live.alerts.message import notifications
from pipeline.live.alerts.outbox import Outbox
from pipeline.live.alerts.settings import AlertSettings
from pipeline.live.figures import TenantNow
from pipeline.runtime.tasks import cancel, supervise

log = logging.getLogger(__name__)


class AlertService:
    def __init__(
        self,
        settings: AlertSettings,
        *,
        senders: Mapping[str, Sender] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Reads the state file; ``senders`` replaces the receivers' own (by name)."""
        self._settings = settings
        self._clock = clock
        try:
            saved = state.read(settings.state_file)
        except state.StateError as exc:
            raise ConfigError(f"{exc} (move it aside to start with no alert firing)") from exc
        self._evaluator = Evaluator(settings.rules, saved.firing)
        delivery = settings.file.delivery
        chosen = dict(senders or {})
        self._outboxes: dict[str, Outbox] = {}
        for receiver in settings.receivers:
            made = chosen.get(receiver.name) or sender(
                receiver, settings.secrets[receiver.name], delivery.timeout_seconds
            )
            self._outboxes[receiver.name] = Outbox(made, delivery, self.save, clock=clock)
        for note in saved.outbox:
            outbox = self._outboxes.get(note.receiver)
            if outbox is None:
                log.warning("alert for receiver %s, no longer configured: dropped", note.receiver)
                continue
            outbox.put(note)
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        telemetry.FIRING.set(len(saved.firing))

    @property
    def settings(self) -> AlertSettings:
        return self._settings

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks)

    def start(self) -> list[asyncio.Task[None]]:
        """One supervised delivery task per receiver (restarted if it ever fails)."""
        if not self._tasks:
            self._tasks = [
                supervise(f"alerts-{name}", outbox.run) for name, outbox in self._outboxes.items()
            ]
        return self.tasks

    async def on_now(self, now: TenantNow) -> None:
        """The listener: judge the tenant's figures, queue what changed, keep the state."""
        transitions = self._evaluator.judge(now)
        if not transitions:
            return
        queued = self._clock()
        for transition in transitions:
            telemetry.TRANSITIONS.labels(transition.state).inc()
            log.info(
                "alert %s: rule %s, tenant %s, subject %s",
                transition.state,
                transition.alert.rule,
                transition.alert.tenant,
                transition.alert.subject,
            )
            names = transition.receivers or tuple(self._outboxes)
            for note in notifications(transition, names, self._settings.time_zone, queued):
                self._outboxes[note.receiver].put(note)
        telemetry.FIRING.set(len(self._evaluator.firing))
        await self.save()

    async def save(self) -> None:
        """Write the state as it stands; a failure is logged and counted, not raised: the
        alerts go on from memory, and the next change tries the file again."""
        async with self._lock:
            data = state.encode(
                state.Saved(
                    firing=self._evaluator.firing,
                    outbox=[n for o in self._outboxes.values() for n in o.pending],
                )
            )
            try:
                await asyncio.to_thread(state.write, self._settings.state_file, data)
            except OSError as exc:
                telemetry.STATE_WRITE_FAILURES.inc()
                log.error(
                    "cannot write the alerts state %s: %s", self._settings.state_file, exc.strerror
                )

    async def close(self) -> None:
        """Let each receiver's attempt in flight end (within the delivery timeout), stop
        the tasks, close the senders, write the state. Once: a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        grace = self._settings.file.delivery.timeout_seconds + 1.0
        await asyncio.gather(*(o.settle(grace) for o in self._outboxes.values()))
        for task in self._tasks:
            await cancel(task)
        self._tasks = []
        for outbox in self._outboxes.values():
            await outbox.close()
        await self.save()


def build_alerts(
    path: str | Path | None,
    *,
    time_zone: str,
    environ: Mapping[str, str] | None = None,
) -> AlertService | None:
    """The service from the alerts file (None when there is none); ``ConfigError`` naming
    the file, line and key when it is wrong. ``time_zone``: the KPI time zone."""
    if path is None:
        return None
    return AlertService(alert_settings.load(path, environ=environ, time_zone=time_zone))
