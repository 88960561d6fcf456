"""The rules judged on hand-made figures: fire once, repeat at the interval, resolve once."""

from __future__ import annotations

from pipeline.live.alerts.evaluate import Evaluator, Transition, duration
from pipeline.live.alerts.rules import (
    DeliveryFailures,
    InstanceDisconnected,
    LongWait,
    Rule,
    ServiceLevel,
)
from tests.support.tenant_now import T0, figures, level

DOWN = InstanceDisconnected(name="down", tenant="acme", repeat_minutes=5)


def _states(transitions: list[Transition]) -> list[tuple[str, str, str]]:
    return [(t.state, t.alert.rule, t.alert.subject) for t in transitions]


def _run(rules: list[Rule], *sequence: object) -> list[list[tuple[str, str, str]]]:
    evaluator = Evaluator(rules)
    return [_states(evaluator.judge(now)) for now in sequence]  # type: ignore[arg-type]


def test_an_instance_fires_once_repeats_and_resolves_once() -> None:
    gone = {"inst-1": T0}
    seen = _run(
        [DOWN],
        figures(T0, disconnected={"inst-1": None}),
        figures(T0 + 1, disconnected=gone),
        figures(T0 + 2, disconnected=gone),
        figures(T0 + 1 + 299, disconnected=gone),  # not yet 5 minutes since it fired
        figures(T0 + 1 + 300, disconnected=gone),
        figures(T0 + 302, disconnected=gone),
        figures(T0 + 1 + 600, disconnected=gone),
        figures(T0 + 700, disconnected={"inst-1": None}),
        figures(T0 + 701, disconnected={"inst-1": None}),
    )
    fired, repeated, resolved = (
        [("firing", "down", "inst-1")],
        [("repeat", "down", "inst-1")],
        [("resolved", "down", "inst-1")],
    )
    assert seen == [[], fired, [], [], repeated, [], repeated, resolved, []]


def test_no_repeat_when_the_interval_is_zero() -> None:
    rule = InstanceDisconnected(name="down", repeat_minutes=0)
    gone = {"inst-1": T0}
    seen = _run([rule], *(figures(T0 + s, disconnected=gone) for s in (0, 3600, 7200)))
    assert seen == [[("firing", "down", "inst-1")], [], []]


def test_each_instance_is_its_own_alert() -> None:
    evaluator = Evaluator([DOWN])
    first = evaluator.judge(figures(T0, disconnected={"a": T0, "b": None}))
    both = evaluator.judge(figures(T0 + 1, disconnected={"a": T0, "b": T0 + 1}))
    back = evaluator.judge(figures(T0 + 2, disconnected={"a": None, "b": T0 + 1}))
    assert _states(first) == [("firing", "down", "a")]
    assert _states(both) == [("firing", "down", "b")]
    assert _states(back) == [("resolved", "down", "a")]
    assert first[0].alert.since == T0
    assert first[0].alert.summary == "WhatsApp instance a disconnected for 0 s"


def test_a_rule_for_one_tenant_ignores_another() -> None:
    gone = {"inst-1": T0}
    seen = _run([DOWN], figures(T0, tenant="other", disconnected=gone))
    assert seen == [[]]


def test_a_rule_for_every_tenant_keeps_them_apart() -> None:
    rule = InstanceDisconnected(name="down")
    evaluator = Evaluator([rule])
    gone = {"inst-1": T0}
    a = evaluator.judge(figures(T0, tenant="a", disconnected=gone))
    b = evaluator.judge(figures(T0, tenant="b", disconnected=gone))
    a_back = evaluator.judge(figures(T0 + 5, tenant="a"))
    b_still = evaluator.judge(figures(T0 + 5, tenant="b", disconnected=gone))
    assert [t.alert.tenant for t in a + b] == ["a", "b"]
    assert [(t.state, t.alert.tenant) for t in a_back] == [("resolved", "a")]
    assert b_still == []


def test_a_long_wait_past_the_minutes_in_a_department() -> None:
    rule = LongWait(name="wait", minutes=10, department="Vendas")
    waits = (("Vendas", T0), ("Suporte", T0 - 3600))  # Suporte's is none of this rule's
    evaluator = Evaluator([rule])
    under = evaluator.judge(figures(T0 + 600, waiting=waits))
    over = evaluator.judge(figures(T0 + 601, waiting=waits))
    answered = evaluator.judge(figures(T0 + 700, waiting=waits[1:]))
    assert under == []
    assert _states(over) == [("firing", "wait", "Vendas")]
    assert over[0].alert.since == T0 + 600
    assert over[0].alert.summary == (
        "1 customer waiting over 10 min for a first answer in Vendas; the longest for 10 min"
    )
    assert _states(answered) == [("resolved", "wait", "Vendas")]


def test_a_long_wait_per_department_and_over_the_tenant() -> None:
    each = LongWait(name="each", minutes=5, department="*")
    whole = LongWait(name="whole", minutes=5)
    waits = (("Vendas", T0), ("Vendas", T0 + 10), (None, T0), ("Suporte", T0 + 200))
    seen = Evaluator([each, whole]).judge(figures(T0 + 400, waiting=waits))
    assert _states(seen) == [
        ("firing", "each", "Vendas"),
        ("firing", "each", "(no department)"),
        ("firing", "whole", "all"),
    ]
    assert seen[0].alert.summary.startswith("2 customers waiting over 5 min")
    assert seen[2].alert.summary.startswith("3 customers waiting over 5 min")


def test_service_level_waits_for_enough_finished() -> None:
    rule = ServiceLevel(name="sla", below_percent=80, min_finished=5)
    evaluator = Evaluator([rule])
    early = evaluator.judge(figures(T0, total=level(None, 0, 1)))  # 0 of 1 at 00:05
    low = evaluator.judge(figures(T0 + 1, total=level(None, 3, 5)))
    still = evaluator.judge(figures(T0 + 2, total=level(None, 4, 6)))
    good = evaluator.judge(figures(T0 + 3, total=level(None, 8, 10)))
    assert early == []
    assert _states(low) == [("firing", "sla", "all")]
    assert low[0].alert.summary == (
        "service level today 60.0%, under 80%: 3 of 5 answered within the SLA"
    )
    assert still == []
    assert _states(good) == [("resolved", "sla", "all")]


def test_service_level_exactly_at_the_threshold_holds_no_alert() -> None:
    rule = ServiceLevel(name="sla", below_percent=80, min_finished=5)
    assert _run([rule], figures(T0, total=level(None, 4, 5))) == [[]]


def test_service_level_of_one_department_and_of_each() -> None:
    one = ServiceLevel(name="one", below_percent=90, min_finished=1, department="Suporte")
    each = ServiceLevel(name="each", below_percent=90, min_finished=1, department="*")
    departments = (level("Vendas", 5, 5), level("Suporte", 1, 2), level(None, 0, 1))
    seen = Evaluator([one, each]).judge(figures(T0, departments=departments))
    assert _states(seen) == [
        ("firing", "one", "Suporte"),
        ("firing", "each", "Suporte"),
        ("firing", "each", "(no department)"),
    ]


def test_midnight_resolves_a_low_service_level() -> None:
    rule = ServiceLevel(name="sla", below_percent=80, min_finished=5)
    seen = _run(
        [rule], figures(T0, total=level(None, 1, 5)), figures(T0 + 60, total=level(None, 0, 0))
    )
    assert seen == [[("firing", "sla", "all")], [("resolved", "sla", "all")]]


def test_delivery_failures_more_than() -> None:
    rule = DeliveryFailures(name="fail", more_than=10)
    seen = _run([rule], figures(T0, failures=10), figures(T0 + 1, failures=11), figures(T0 + 2))
    assert seen == [[], [("firing", "fail", "all")], [("resolved", "fail", "all")]]


def test_a_restart_with_the_saved_state_does_not_fire_again() -> None:
    gone = {"inst-1": T0}
    before = Evaluator([DOWN])
    assert _states(before.judge(figures(T0, disconnected=gone))) == [("firing", "down", "inst-1")]
    after = Evaluator([DOWN], before.firing)
    assert after.judge(figures(T0 + 10, disconnected=gone)) == []
    assert _states(after.judge(figures(T0 + 300, disconnected=gone)))[0][0] == "repeat"


def test_a_resolution_while_stopped_is_sent_after_the_restart() -> None:
    before = Evaluator([DOWN])
    before.judge(figures(T0, disconnected={"inst-1": T0}))
    after = Evaluator([DOWN], before.firing)
    resolved = after.judge(figures(T0 + 900, disconnected={"inst-1": None}))
    assert _states(resolved) == [("resolved", "down", "inst-1")]
    assert resolved[0].alert.since == T0


def test_a_rule_removed_from_the_file_resolves_everywhere() -> None:
    before = Evaluator([DOWN])
    before.judge(figures(T0, disconnected={"inst-1": T0}))
    after = Evaluator([DeliveryFailures(name="fail", more_than=1)], before.firing)
    resolved = after.judge(figures(T0 + 1, disconnected={"inst-1": T0}))
    assert [(t.state, t.alert.rule, t.receivers) for t in resolved] == [("resolved", "down", ())]


def test_a_resolution_goes_to_the_rule_s_receivers() -> None:
    rule = InstanceDisconnected(name="down", receivers=("mail",))
    evaluator = Evaluator([rule])
    fired = evaluator.judge(figures(T0, disconnected={"i": T0}))
    resolved = evaluator.judge(figures(T0 + 1, disconnected={"i": None}))
    assert [t.receivers for t in fired + resolved] == [("mail",), ("mail",)]


def test_durations_read_as_a_supervisor_reads_them() -> None:
    assert [duration(s) for s in (-1, 0, 59.4, 60, 3599, 3600, 7500)] == [
        "0 s",
        "0 s",
        "59 s",
        "1 min",
        "59 min",
        "1 h 00 min",
        "2 h 05 min",
    ]


def test_a_grace_before_a_disconnection_pages() -> None:
    rule = InstanceDisconnected(name="down", after_minutes=1)
    seen = _run(
        [rule],
        figures(T0 + 59, disconnected={"a": T0}),
        figures(T0 + 70, disconnected={"a": None}),  # back within the minute: nothing
        figures(T0 + 100, disconnected={"a": T0 + 100}),
        figures(T0 + 160, disconnected={"a": T0 + 100}),
    )
    assert seen == [[], [], [], [("firing", "down", "a")]]
