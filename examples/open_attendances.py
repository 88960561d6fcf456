"""Live count of open attendances per department, from the attendance topics.

An attendance is open from its ``attendance.started`` event until its
``attendance.finished`` event. The table is rebuilt from the oldest record, then kept
current; it is printed whenever it changes (at most once a second).

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 .venv/bin/python examples/open_attendances.py
    .venv/bin/python examples/open_attendances.py --until-caught-up   # print once, exit

Every value below is typed: ``item.event.data`` is an ``AttendanceStarted`` or an
``AttendanceFinished`` after the ``match``, so a typo is a mypy error, not a KeyError.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections import Counter

from pipeline.consume import Consumer, KafkaSettings
from pipeline.events.models import AttendanceFinished, AttendanceStarted
from pipeline.webhooks import EventType

Key = tuple[str, str]  # (tenant, attendance number)


class OpenAttendances:
    """Started and not finished. The two events are on two topics, read side by side, so
    a finish can arrive before its start: finished keys are remembered to ignore it."""

    def __init__(self) -> None:
        self.open: dict[Key, str] = {}  # -> department
        self.finished: set[Key] = set()

    def apply(self, tenant: str, data: AttendanceStarted | AttendanceFinished) -> bool:
        """Update with one event; True if the open set changed."""
        key = (tenant, str(data.attendance_number))
        match data:
            case AttendanceStarted():
                if key in self.finished or key in self.open:
                    return False
                self.open[key] = data.department or "(no department)"
                return True
            case AttendanceFinished():
                self.finished.add(key)
                return self.open.pop(key, None) is not None


def table(state: OpenAttendances) -> str:
    counts = Counter(state.open.values())
    rows = [f"{department:<30} {count:>6}" for department, count in counts.most_common()]
    return "\n".join(
        [f"{'department':<30} {'open':>6}", *rows, f"{'total':<30} {len(state.open):>6}"]
    )


async def main(until_caught_up: bool) -> None:
    state = OpenAttendances()
    consumer = Consumer(
        KafkaSettings.from_env(),  # KAFKA_* and PLUG_PIPELINE_TOPIC_PREFIX
        event_types=[EventType.ATTENDANCE_STARTED, EventType.ATTENDANCE_FINISHED],
        start="earliest",  # the open set is rebuilt from the whole history
        dedup=100_000,  # a redelivered webhook does not open an attendance twice
        until_caught_up=until_caught_up,
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, consumer.stop)
    printed_at, dirty = 0.0, False
    async with consumer:
        async for item in consumer:
            data = item.event.data
            if isinstance(data, AttendanceStarted | AttendanceFinished):
                dirty |= state.apply(item.event.tenant, data)
            if dirty and not until_caught_up and time.monotonic() - printed_at >= 1.0:
                print(table(state), end="\n\n", flush=True)
                printed_at, dirty = time.monotonic(), False
    print(table(state))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--until-caught-up", action="store_true", help="print once and exit")
    asyncio.run(main(parser.parse_args().until_caught_up))
