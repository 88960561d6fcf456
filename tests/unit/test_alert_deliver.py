"""What a sender makes of a receiver's answer, and the id a resend keeps."""

from __future__ import annotations

import json
import zoneinfo

from pipeline.live.alerts.deliver import _seconds, body
from pipeline.live.alerts.evaluate import Transition
from pipeline.live.alerts.message import notifications
from pipeline.live.alerts.state import Firing
from tests.support.tenant_now import T0

ALERT = Firing(
    rule="r", kind="delivery_failures", tenant="acme", subject="all", since=T0, last_sent=T0,
    summary="12 delivery failures in the last 15 minutes (more than 10)",
)  # fmt: skip


def test_retry_after_in_seconds_only_within_reason() -> None:
    assert [_seconds(v) for v in (None, "2", "0.5", "-1", "86400", "soon")] == [
        None,
        2.0,
        0.5,
        None,
        None,
        None,
    ]


def test_a_template_may_carry_the_notification_id() -> None:
    zone = zoneinfo.ZoneInfo("UTC")
    note = notifications(Transition("firing", ALERT, T0, ()), ["a"], zone, 0)[0]
    made = json.loads(body(note, '{"id": $id, "text": $text}'))
    assert made == {"id": note.id, "text": note.text}
