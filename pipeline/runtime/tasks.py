"""Small asyncio helpers shared by the long-lived components."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from pipeline.runtime.metrics import METRICS

log = logging.getLogger(__name__)


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has unwound."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def supervise(
    name: str,
    work: Callable[[], Coroutine[Any, Any, None]],
    *,
    restart_delay_s: float = 1.0,
    max_delay_s: float = 30.0,
) -> asyncio.Task[None]:
    """Run ``work()`` as a background task that is restarted whenever it raises.

    A background loop that dies silently is a stopped pipeline: every failure is logged
    with its traceback, counted in ``plug_background_restarts_total{task}``, and followed
    by a new run after a delay that doubles up to ``max_delay_s``. A run that returns
    normally ends the task; cancelling the task stops it.
    """

    async def supervisor() -> None:
        delay = restart_delay_s
        while True:
            try:
                await work()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s failed; restarting in %.1f s", name, delay)
                METRICS.background_restarts.labels(name).inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay_s)

    return asyncio.create_task(supervisor(), name=name)
