"""The defaults of ``lake maintain`` (``maintain.py``), importable without pyiceberg: the
command's flags show them at start."""

from __future__ import annotations

import datetime as dt

# Compact a partition (a day of a tenant) once it holds this many small files.
MIN_FILES = 4
# Snapshots older than this are expired: time travel reaches back as far, and an erased
# customer's original rows stay in the files of older snapshots until then.
KEEP = dt.timedelta(hours=24)
# Unreferenced files younger than this are left: a write may be about to commit them.
ORPHAN_AGE = dt.timedelta(hours=1)
