"""The KPI views over the warehouse tables, created after the table migrations on every start.

Each statement must be idempotent (``CREATE OR REPLACE VIEW``, or drop and create), since
the migration runner executes all of them each time a loader starts.
"""

from __future__ import annotations

from typing import Literal


def statements(dialect: Literal["duckdb", "postgresql"]) -> list[str]:
    """The view statements for one dialect, in the order they must run."""
    return []
