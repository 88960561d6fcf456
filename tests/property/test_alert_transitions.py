"""Properties of the alert evaluator over any sequence of figures, across restarts too."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.live.alerts.evaluate import Evaluator, Transition
from pipeline.live.alerts.rules import InstanceDisconnected
from tests.support.tenant_now import T0, figures

MODEST = settings(max_examples=200, deadline=None)
INSTANCES = ("a", "b", "c")
REPEAT_MIN = 2.0
# one step: seconds since the last, which instances are down, whether to restart first
STEPS = st.lists(
    st.tuples(
        st.sampled_from((0, 1, 30, 60, 119, 120, 121, 240, 400)),  # around the interval
        st.frozensets(st.sampled_from(INSTANCES)),
        st.booleans(),
    ),
    max_size=40,
)


@MODEST
@given(STEPS)
def test_each_alert_fires_repeats_at_its_interval_and_resolves_once(
    steps: list[tuple[int, frozenset[str], bool]],
) -> None:
    rule = InstanceDisconnected(name="down", repeat_minutes=REPEAT_MIN)
    evaluator = Evaluator([rule])
    at = T0
    down_since: dict[str, float] = {}
    seen: dict[str, list[Transition]] = {i: [] for i in INSTANCES}
    for gap, down, restart in steps:
        if restart:  # a new process with the saved state judges the same figures alike
            evaluator = Evaluator([rule], evaluator.firing)
        at += gap
        down_since = {i: down_since.get(i, at) for i in down}
        now = figures(at, disconnected={i: down_since.get(i) for i in INSTANCES})
        judged = evaluator.judge(now)
        for instance in down:  # due: the interval has passed since the last notification
            earlier = seen[instance]
            if earlier and earlier[-1].state != "resolved":
                due = at - earlier[-1].at >= REPEAT_MIN * 60
                repeated = [t.state for t in judged if t.alert.subject == instance]
                assert repeated == (["repeat"] if due else [])
        for transition in judged:
            seen[transition.alert.subject].append(transition)
        assert {a.subject for a in evaluator.firing} == set(down)
    for transitions in seen.values():
        states = [t.state for t in transitions]
        for before, after in itertools.pairwise(states):
            # a firing is followed by repeats or its resolution; a resolution by a firing
            assert (before == "resolved") == (after == "firing")
        if states:
            assert states[0] == "firing"
        sent = [t.at for t in transitions if t.state != "resolved"]
        # a repeat comes no sooner than the interval after the last notification
        for t in transitions:
            if t.state == "repeat":
                last = max(s for s in sent if s < t.at)
                assert t.at - last >= REPEAT_MIN * 60
