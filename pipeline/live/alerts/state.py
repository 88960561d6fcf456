"""The alerts' state: what is firing, what is waiting to be delivered; kept in a JSON file.

A restarted process that rebuilds the same figures must not notify again, and a
resolution that happened while it was down must still go out; so both the firing
alerts (with when each was last sent) and the undelivered notifications are kept.

Why a local file and not a compacted topic: the state is a few kilobytes, written only
when an alert changes or a notification is delivered, and read once at start; a file
written atomically (temporary file, fsync, rename, fsync of the folder) gives that with
no broker round trip on the path of a notification, and alerting must keep working
when Kafka is the thing that is down. The price: the file belongs to one process; run
one alerting process per file (a Kubernetes StatefulSet with a volume).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

VERSION = 1


class Firing(msgspec.Struct, frozen=True, kw_only=True):
    """One alert that holds: a rule, for a tenant, about a subject."""

    rule: str
    kind: str
    tenant: str
    subject: str  # an instance id, a department, or "all"
    since: float  # epoch seconds: when the condition started to hold
    last_sent: float  # epoch seconds (the figures' time) of the last firing or repeat
    summary: str  # what holds, as last judged: counts, durations, names of departments

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.tenant, self.subject)


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One message for one receiver, as it is queued, kept and sent."""

    id: str
    receiver: str
    state: str  # firing, repeat or resolved
    rule: str
    kind: str
    tenant: str
    subject: str
    since: float  # epoch seconds: when the condition started to hold
    at: float  # epoch seconds: the figures that made this notification
    queued: float  # epoch seconds (wall clock): when it was queued, for give_up_after
    title: str  # one line: the e-mail's subject
    text: str  # the whole message, first line the title


class Saved(msgspec.Struct, kw_only=True):
    version: int = VERSION
    firing: list[Firing] = msgspec.field(default_factory=list)
    outbox: list[Notification] = msgspec.field(default_factory=list)


_DECODER = msgspec.json.Decoder(Saved)
_ENCODER = msgspec.json.Encoder()


class StateError(Exception):
    """The state file exists but cannot be read back."""


def read(path: Path) -> Saved:
    """The saved state; an empty one when there is no file yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Saved()
    except OSError as exc:
        raise StateError(f"alerts state {path}: cannot read it: {exc.strerror}") from exc
    try:
        saved = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise StateError(f"alerts state {path}: not a state this version reads: {exc}") from exc
    if saved.version != VERSION:
        raise StateError(f"alerts state {path}: version {saved.version}, expected {VERSION}")
    return saved


def encode(saved: Saved) -> bytes:
    return _ENCODER.encode(saved)


def write(path: Path, data: bytes) -> None:
    """Replace the file whole: a crash leaves the old state or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    with contextlib.suppress(OSError):  # not every file system lets a folder be fsynced
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
