"""What people read: the text of each transition, the webhook's JSON, a template's."""

from __future__ import annotations

import json
import zoneinfo

from pipeline.live.alerts.deliver import body
from pipeline.live.alerts.evaluate import Transition
from pipeline.live.alerts.message import local_time, notifications
from pipeline.live.alerts.state import Firing
from tests.support.tenant_now import T0

ZONE = zoneinfo.ZoneInfo("America/Sao_Paulo")
ALERT = Firing(
    rule="number-down",
    kind="instance_disconnected",
    tenant="acme",
    subject="inst-7",
    since=T0,
    last_sent=T0,
    summary="WhatsApp instance inst-7 disconnected for 2 min",
)


def test_firing_text_and_one_notification_per_receiver() -> None:
    notes = notifications(Transition("firing", ALERT, T0 + 120, ()), ["a", "b"], ZONE, 5.0)
    assert [n.receiver for n in notes] == ["a", "b"]
    assert len({n.id for n in notes}) == 2
    assert notes[0].title == "FIRING · acme · number-down"
    assert notes[0].text == (
        "FIRING · acme · number-down\n"
        "WhatsApp instance inst-7 disconnected for 2 min (since 09:00 America/Sao_Paulo)"
    )
    assert (notes[0].queued, notes[0].at, notes[0].since) == (5.0, T0 + 120, T0)


def test_repeat_and_resolved_texts() -> None:
    repeat = notifications(Transition("repeat", ALERT, T0 + 900, ()), ["a"], ZONE, 0)[0]
    resolved = notifications(Transition("resolved", ALERT, T0 + 750, ()), ["a"], ZONE, 0)[0]
    assert repeat.title == "STILL FIRING · acme · number-down"
    assert resolved.text == (
        "RESOLVED · acme · number-down\n"
        "No longer holds, after 12 min (since 09:00 America/Sao_Paulo). "
        "It was: WhatsApp instance inst-7 disconnected for 2 min"
    )


def test_a_start_on_another_day_shows_the_day() -> None:
    assert local_time(T0 - 86400, T0, ZONE) == "2026-12-06 09:00 America/Sao_Paulo"
    assert local_time(T0, T0, ZONE) == "09:00 America/Sao_Paulo"


def test_the_default_body_is_text_alone() -> None:
    note = notifications(Transition("firing", ALERT, T0, ()), ["a"], ZONE, 0)[0]
    assert json.loads(body(note, None)) == {"text": note.text}


def test_a_template_fills_each_placeholder_as_a_json_string() -> None:
    odd = Firing(
        rule="r",
        kind="long_wait",
        tenant="acme",
        subject='Vendas "VIP" $x',
        since=T0,
        last_sent=T0,
        summary="s",
    )
    note = notifications(Transition("firing", odd, T0 + 60, ()), ["a"], ZONE, 0)[0]
    template = '{"msg": $text, "who": $subject, "when": $since, "cost": "$$5", "s": $state}'
    assert json.loads(body(note, template)) == {
        "msg": note.text,
        "who": 'Vendas "VIP" $x',
        "when": "2026-12-07T12:00:00+00:00",
        "cost": "$5",
        "s": "firing",
    }
