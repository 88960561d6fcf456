"""Counts every webhook answer by webhook and status: the status mix the dashboards show.

``Dispatch`` calls ``count_answer`` with the answer it returns, whichever layer chose it
(an error mapped by ``responses`` included), so it sees the status the client gets.
"""

from __future__ import annotations

from pipeline.runtime.loop_metrics import Tally
from pipeline.runtime.metrics import METRICS
from pipeline.webhooks import Webhook

_PREFIX = "/webhooks/"
_KNOWN = {w.value for w in Webhook}
# (path, status) -> its labelled counter: labels() checks and builds a key each call.
# Bounded: only webhook paths are counted, an unknown name under the one "unknown" label
# and so one entry per status, not per path.
_COUNTERS: dict[tuple[str, int], Tally] = {}


def webhook_label(path: str) -> str | None:
    """The webhook a path names; ``unknown`` for other webhook paths (bounded labels)."""
    if not path.startswith(_PREFIX):
        return None
    name = path[len(_PREFIX) :]
    return name if name in _KNOWN else "unknown"


def count_answer(path: str, status: int) -> None:
    """Count an answer to ``path`` if it is a webhook path."""
    counter = _COUNTERS.get((path, status))
    if counter is None:
        webhook = webhook_label(path)
        if webhook is None:
            return
        counter = METRICS.responses.labels(webhook, str(status))
        if webhook != "unknown":  # an unknown path is not a key worth keeping
            _COUNTERS[(path, status)] = counter
    counter.inc()
