"""examples/open_attendances.py runs against the real broker and counts what is open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.support import kafka
from tests.support.ingress import Ingress
from tests.support.simulate import simulate

EXAMPLE = Path(__file__).parents[2] / "examples" / "open_attendances.py"


def expected_open(ingress: Ingress) -> Counter[str]:
    """The same count computed from the raw JSON read by another client."""
    started: dict[tuple[str, str], str] = {}
    finished: set[tuple[str, str]] = set()
    topics = [ingress.topic("attendance.started"), ingress.topic("attendance.finished")]
    for record in kafka.read_all(topics, timeout_s=5, until=10**9):
        doc = json.loads(record.value)
        key = (doc["tenant"], str(doc["data"]["attendance_number"]))
        if doc["event_type"] == "attendance.finished":
            finished.add(key)
        else:
            started.setdefault(key, doc["data"]["department"] or "(no department)")
    return Counter(dept for key, dept in started.items() if key not in finished)


def test_open_attendances_example_counts_what_is_open(ingress: Ingress, tmp_path: Path) -> None:
    simulate(ingress, tmp_path, count=300, seed=41)
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--until-caught-up"],
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka.BOOTSTRAP,
            "PLUG_PIPELINE_TOPIC_PREFIX": ingress.prefix,
            "PYTHONPATH": str(EXAMPLE.parents[1]),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.rsplit(maxsplit=1) for line in result.stdout.splitlines()[1:]]
    printed = {name.strip(): int(count) for name, count in rows}
    want = expected_open(ingress)
    assert printed.pop("total") == sum(want.values())
    assert printed == dict(want)
    assert sum(want.values()) > 0  # the run left some attendances open
