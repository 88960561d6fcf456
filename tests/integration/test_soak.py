"""The whole chain's soak (tests/support/soak.py), short enough for ``make test``.

``make soak SOAK_MINUTES=N`` runs it for as long as one likes; here it runs
``PLUG_PIPELINE_SOAK_MINUTES`` (default 2: the suite's time is bounded) on a fixed seed,
so that every run of the suite injects the same schedule of faults and a failure here
replays with ``make soak SOAK_MINUTES=2 SOAK_SEED=<the seed>``.
"""

from __future__ import annotations

import os

import pytest

from tests.support.soak import soak

SEED = 20261207


@pytest.mark.timeout(1200)  # the soak's minutes, then up to a few to heal, drain and count
def test_every_acknowledged_webhook_once_in_the_warehouse_whatever_fails() -> None:
    minutes = float(os.environ.get("PLUG_PIPELINE_SOAK_MINUTES", "2"))
    seed = int(os.environ.get("PLUG_PIPELINE_SOAK_SEED", str(SEED)))
    outcome = soak(minutes, seed)
    print(outcome.table())
    assert len(outcome.faults) >= 4  # a schedule, not a quiet run
    assert outcome.acked > 1000
    assert outcome.ok, outcome.table()
