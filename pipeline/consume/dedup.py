"""A bounded window of recently seen ``event_id``s, for dropping redelivered events."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class DedupWindow:
    """Remembers the last ``size`` distinct event ids; memory stays bounded.

    The ingress gives a redelivered webhook the id it had the first time, and the spool
    may, rarely, publish an event twice: both land within a short stretch of a topic, so
    a window of recent ids catches them. A consumer restarted after a crash sees again
    what it handled but had not committed: seed a new window with the ids your own store
    last wrote (``remember``) to drop those too.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a dedup window holds at least one id")
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, event_id: str) -> bool:
        """True when ``event_id`` is in the window; either way it is now the newest."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return True
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return False

    def remember(self, event_ids: Iterable[str]) -> None:
        """Add ids already handled elsewhere (oldest first), e.g. before a restart."""
        for event_id in event_ids:
            self.seen(event_id)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids
