"""The spool's own refusals: both are ``NotDurable`` (503), so a webhook is never lost."""

from __future__ import annotations

from pipeline.errors import NotDurable


class SpoolFull(NotDurable):
    """Appending the record would take the spool past ``max_bytes``."""

    reason = "spool_full"


class SpoolUnavailable(NotDurable):
    """The spool is closed, or its disk refused a write."""

    reason = "spool_unavailable"
