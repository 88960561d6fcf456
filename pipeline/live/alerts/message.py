"""A transition -> one notification per receiver, with the text people read.

``FIRING · acme · number-down`` then what holds and since when, in the alerts' time
zone. The summary comes from the evaluator and carries no personal data; nothing else
is added here but rule and tenant names and times.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Iterable

from pipeline.live.alerts.evaluate import Transition, duration
from pipeline.live.alerts.state import Notification

_HEADS = {"firing": "FIRING", "repeat": "STILL FIRING", "resolved": "RESOLVED"}


def notifications(
    transition: Transition, receivers: Iterable[str], zone: zoneinfo.ZoneInfo, queued: float
) -> list[Notification]:
    """The same message for each receiver, each with its own id (each is acknowledged
    apart)."""
    alert = transition.alert
    title = f"{_HEADS[transition.state]} · {alert.tenant} · {alert.rule}"
    since = local_time(alert.since, transition.at, zone)
    if transition.state == "resolved":
        body = (
            f"No longer holds, after {duration(transition.at - alert.since)} "
            f"(since {since}). It was: {alert.summary}"
        )
    else:
        body = f"{alert.summary} (since {since})"
    return [
        Notification(
            id=uuid.uuid4().hex,
            receiver=receiver,
            state=transition.state,
            rule=alert.rule,
            kind=alert.kind,
            tenant=alert.tenant,
            subject=alert.subject,
            since=alert.since,
            at=transition.at,
            queued=queued,
            title=title,
            text=f"{title}\n{body}",
        )
        for receiver in receivers
    ]


def local_time(at: float, now: float, zone: zoneinfo.ZoneInfo) -> str:
    """``14:03 America/Sao_Paulo``, with the day in front when it is not today's."""
    when = dt.datetime.fromtimestamp(at, zone)
    today = dt.datetime.fromtimestamp(now, zone).date()
    shown = when.strftime("%H:%M") if when.date() == today else when.strftime("%Y-%m-%d %H:%M")
    return f"{shown} {zone.key}"


def iso(at: float) -> str:
    """An instant as ISO 8601 in UTC, for templates and machines."""
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")
