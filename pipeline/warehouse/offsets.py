"""The offsets the warehouse holds: read, and moved in the transaction of a batch's rows.

The move checks the offset the loader expected to find, so a stale loader (one that lost
the partition, or that retries a write which had in fact committed) raises
``StaleOffsets`` and the transaction writes nothing. Both targets use this module; it
knows neither of them.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.errors import StaleOffsets
from pipeline.warehouse.batch import TP
from pipeline.warehouse.sql import Session, q
from pipeline.warehouse.tables import OFFSETS_TABLE


def move_offsets(
    session: Session, group: str, offsets: Mapping[TP, int], expected: Mapping[TP, int | None]
) -> None:
    """Each partition's offset from what the loader expected to what it has now loaded.
    The partitions already in the table move in one statement (a batch spans dozens of
    partitions: one statement each was a round trip each on PostgreSQL)."""
    moved = []
    for (topic, partition), new in offsets.items():
        old = expected.get((topic, partition))
        if old is None:
            changed = session.changed(
                f"INSERT INTO {OFFSETS_TABLE} (group_name, topic, {q('partition')}, next_offset, "
                "updated_at) VALUES (?, ?, ?, ?, now()) ON CONFLICT DO NOTHING",
                (group, topic, partition, new),
            )
            if changed != 1:
                raise _stale(group, [(topic, partition, old)])
        else:
            moved.append((topic, partition, old, new))
    if not moved:
        return
    values = ", ".join(
        ["(CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS BIGINT), CAST(? AS BIGINT))"] * len(moved)
    )
    changed = session.changed(
        f"UPDATE {OFFSETS_TABLE} SET next_offset = v.new, updated_at = now() "
        f"FROM (VALUES {values}) AS v(topic, part, old, new) WHERE group_name = ? "
        f"AND {OFFSETS_TABLE}.topic = v.topic AND {OFFSETS_TABLE}.{q('partition')} = v.part "
        f"AND {OFFSETS_TABLE}.next_offset = v.old",
        (*(x for row in moved for x in row), group),
    )
    if changed != len(moved):  # the transaction is rolled back: nothing moved
        raise _stale(group, [(topic, partition, old) for topic, partition, old, _ in moved])


def _stale(group: str, where: list[tuple[str, int, int | None]]) -> StaleOffsets:
    said = ", ".join(f"{topic}[{partition}] at {old}" for topic, partition, old in where)
    return StaleOffsets(
        f"the warehouse no longer holds the offsets expected for group {group!r} "
        f"({'one of ' if len(where) > 1 else ''}{said}); another loader moved it on"
    )


OFFSETS_QUERY = (
    f"SELECT topic, {q('partition')}, next_offset FROM {OFFSETS_TABLE} WHERE group_name = ?"
)
