"""The soak's verdict and table, from made-up outcomes."""

from __future__ import annotations

from collections import Counter

from tests.support.soak import Fault, Outcome


def outcome(**changes: object) -> Outcome:
    base: dict[str, object] = {
        "seed": 42, "minutes": 5.0,
        "faults": [Fault("cut ingress|brokers", 10, 20, 3.5), Fault("kill-9 loader", 40, 5, 1.0)],
        "acked": 1000, "lost_kafka": 0, "duplicates_kafka": 3, "out_of_order": 0,
        "lost_warehouse": 0, "doubled_warehouse": 0,
        "answers": Counter({"200 published": 900, "200 spooled": 100, "503 spool_full": 2}),
    }  # fmt: skip
    base.update(changes)
    return Outcome(**base)  # type: ignore[arg-type]


def test_a_clean_soak_passes_and_says_what_happened() -> None:
    good = outcome()
    assert good.ok
    table = good.table()
    assert "seed 42" in table
    assert "cut ingress|brokers" in table
    assert "5xx answered                   2" in table
    assert "recovery: median 3.5 s, max 3.5 s" in table
    assert table.endswith("verdict: PASS (seed 42)")


def test_a_loss_a_double_a_death_or_no_recovery_fails() -> None:
    assert not outcome(lost_kafka=1).ok
    assert not outcome(lost_warehouse=1).ok
    assert not outcome(doubled_warehouse=1).ok
    assert not outcome(out_of_order=1).ok
    assert not outcome(died=["loader"]).ok
    assert not outcome(leaks=["ingress.log: a token"]).ok
    stuck = outcome(faults=[Fault("crash pg", 10, 20, None)])
    assert not stuck.ok
    assert "not recovered" in stuck.table()
