"""The medians ``make bench`` reports over its rounds (bench/e2e/rows.py)."""

from __future__ import annotations

from bench.e2e.rows import Row, by_round, median_row, median_rows, round_order
from tests.support.bench_rows import row, step


def test_median_of_each_figure_and_every_round_kept() -> None:
    rounds = [row(1, 8000, 120, 11.0), row(2, 10000, 90, 7.0), row(3, 9000, 100, 30.0)]
    m = median_row(rounds)
    assert (m.max_rps, m.cpu_us_per_req) == (9000, 100)
    half = m.at(0.5)
    assert half is not None
    assert half["p99_ms"] == 11.0
    assert m.per_round["max_rps"] == [8000, 10000, 9000]
    assert m.per_round["cpu_us_per_req"] == [120, 90, 100]
    assert m.per_round["p99@0.5"] == [11.0, 7.0, 30.0]
    assert m.round == 3


def test_counts_add_up_and_rss_is_the_highest() -> None:
    a, b = row(1, 1, 1, 1.0, rss_peak_mb=56, acked=10), row(2, 1, 1, 1.0, rss_peak_mb=72, acked=5)
    a.open_loop[1] = step(0.5, 1.0, non_2xx=2, codes={"200": 98, "503": 2}, errors={"reset": 1})
    a.wrk = {"non_2xx": 1, "socket_errors": {"timeout": 3}}
    b.wrk = {"non_2xx": 0, "socket_errors": {"timeout": 1, "read": 2}}
    m = median_row([a, b])
    assert m.rss_peak_mb == 72
    assert m.acked == 15
    assert m.wrk == {"non_2xx": 1, "socket_errors": {"timeout": 4, "read": 2}}
    half = m.at(0.5)
    assert half is not None
    assert half["codes"] == {"200": 198, "503": 2}
    assert half["errors"] == {"reset": 1}
    assert half["non_2xx"] == 2
    assert half["ok_2xx"] == 200


def test_client_kept_up_only_if_it_did_in_every_round() -> None:
    a, b = row(1, 1, 1, 1.0), row(2, 1, 1, 1.0)
    b.open_loop[1] = step(0.5, 1.0, client_ok=False, client_note="schedule lag p99 9 ms")
    half = median_row([a, b]).at(0.5)
    assert half is not None
    assert half["client_ok"] is False
    assert half["client_note"] == "round 2: schedule lag p99 9 ms"


def test_a_client_note_names_its_own_round_when_a_round_was_skipped() -> None:
    skipped = Row("ingress", "plug-pipeline", "receive", 0, round=1, skipped="no answer")
    late = row(2, 1, 1, 1.0)
    late.open_loop[1] = step(0.5, 1.0, client_ok=False, client_note="schedule lag p99 9 ms")
    half = median_row([skipped, late, row(3, 1, 1, 1.0)]).at(0.5)
    assert half is not None
    assert half["rounds"] == 2
    assert half["client_note"] == "round 2: schedule lag p99 9 ms"


def test_flags_keep_their_round_and_a_skipped_round_is_left_out() -> None:
    a = row(1, 8000, 100, 5.0)
    b = Row("ingress", "plug-pipeline", "receive", 0, round=2, skipped="no answer")
    b.flags.append("no answer")
    m = median_row([a, b])
    assert m.max_rps == 8000
    assert not m.skipped
    assert m.flags == ["round 2: no answer"]
    assert m.per_round["max_rps"] == [8000, None]
    assert m.per_round["p99@0.5"] == [5.0, None]


def test_a_row_skipped_in_every_round_stays_skipped() -> None:
    a = Row("ingress-workers", "", "receive", 0, round=1, skipped="no workers")
    m = median_row([a, Row("ingress-workers", "", "receive", 0, round=2, skipped="no workers")])
    assert m.skipped == "no workers"
    assert m.max_rps == 0


def test_unknown_cpu_readings_are_left_out_of_the_median() -> None:
    m = median_row([row(1, 1, None, 1.0), row(2, 1, 80, 1.0), row(3, 1, 100, 1.0)])
    assert m.cpu_us_per_req == 90


def test_rows_grouped_per_target_and_body_in_first_measured_order() -> None:
    rows = []
    for n in (1, 2):
        for target in round_order(["ingress", "ceiling"], n):
            for body in ("receive", "status"):
                r = row(n, 100 * n, 10, 1.0)
                r.target, r.body = target, body
                rows.append(r)
    got = median_rows(rows)
    assert [(r.target, r.body) for r in got] == [
        ("ingress", "receive"),
        ("ingress", "status"),
        ("ceiling", "receive"),
        ("ceiling", "status"),
    ]
    assert all(r.max_rps == 150 and r.per_round["max_rps"] == [100, 200] for r in got)


def test_round_order_alternates() -> None:
    names = ["ingress", "ingress-workers", "ceiling", "handwritten"]
    assert round_order(names, 1) == names
    assert round_order(names, 2) == list(reversed(names))
    assert round_order(names, 3) == names


def test_by_round_marks_the_rounds_that_missed() -> None:
    assert by_round([0.47, None, 0.449], ".2f", missed=lambda v: v < 0.45) == (
        "0.47 · - · 0.45 (miss)"
    )
    assert by_round([9.96, 10.04], ".1f", missed=lambda v: v > 10) == "10.0 · 10.0 (miss)"
    assert by_round([1.0, 2.0], ".0f") == "1 · 2"
