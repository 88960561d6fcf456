"""The live state: events in, ``TenantNow`` out; pure (no I/O, no clock of its own).

Every figure of "today" is ``kpi_daily``'s (pipeline/warehouse/views.py,
docs/analytics.md), computed as events arrive instead of in SQL:

- an attendance counts once, as its **latest** finish (by ``received_at``, then event id)
  says, on the local day of ``ended_at`` (``end_time``, else ``received_at``) under the
  finish's department; its start time falls back to its **first** start's;
- wait = start - request, handle = end - start, first response = the first operator
  message (not automatic) at or after the customer's first one, in the finish's
  transcript; the service level is met / eligible (eligible: the customer wrote);
- started attendances count on the day of their first start, under its department.

Figures of "now" come from events as they arrive, whatever their order across topics
(a restart reads each topic in turn): an attendance is **open** from its start until its
finish; its customer is **waiting** from their first message in the start's transcript
until an operator message (not automatic) at or after it, seen in that transcript, on
``message.sent`` or as an outbound ``message.received`` on the same chat; an instance is
**disconnected** from its latest disconnect until a later message in or out, or status,
on it (a delivery failure is no sign of life: it often *is* the disconnect).

What is kept is bounded by a window: events received since noon of the day before today
(local), the same as a restart reads again from the topics, so a restart shows what the
running process showed. Open attendances and disconnects older than that are dropped.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from pipeline.consume.decode import AnyEvent
from pipeline.events.models import (
    AttendanceFinished,
    AttendanceStarted,
    InstanceDisconnected,
    Message,
    MessageSent,
    MessageStatus,
)
from pipeline.live.figures import DepartmentNow, InstanceNow, TenantNow, Waiting
from pipeline.live.tally import Finished, Started, Tally

# How far before today's midnight the state reaches back: attendances still open from
# last evening, instances still down since then.
LOOKBACK = dt.timedelta(hours=12)
FAILURE_WINDOW_MS = 15 * 60 * 1000
_OUTBOUND_KEPT = 32  # per chat: enough to find the first answer after a customer's message


@dataclass(frozen=True, slots=True)
class _Transcript:
    first_customer: int | None  # ms
    first_response: int | None  # ms: an operator's, not automatic, at or after the above
    automatic: frozenset[str]  # message ids of automatic replies


def _transcript(messages: Iterable[Message]) -> _Transcript:
    customer = [m.moment for m in messages if m.from_me is False and m.moment is not None]
    first = min(customer) if customer else None
    automatic: set[str] = set()
    answers: list[int] = []
    for m in messages:
        if not m.from_me:
            continue
        if m.is_automatic:
            if m.message_id:
                automatic.add(m.message_id)
        elif first is not None and m.moment is not None and m.moment >= first:
            answers.append(m.moment)
    return _Transcript(first, min(answers) if answers else None, frozenset(automatic))


@dataclass(frozen=True, slots=True)
class _Start:
    event_id: str
    received_at: int
    order: int  # start_time, else moment, else received_at: which start was first
    start_time: int | None
    department: str | None
    operator: str | None
    phone: str | None
    transcript: _Transcript


@dataclass(frozen=True, slots=True)
class _Finish:
    event_id: str
    received_at: int
    department: str | None
    request_time: int | None
    start_time: int | None
    end_time: int | None
    transcript: _Transcript


@dataclass(slots=True)
class _Instance:
    disconnected_at: int | None = None
    error: str | None = None
    active_at: int | None = None  # latest sign of life
    received_at: int = 0  # latest event about it: what the window keeps


@dataclass(slots=True)
class _Tenant:
    starts: dict[str, _Start] = field(default_factory=dict)
    finishes: dict[str, _Finish] = field(default_factory=dict)
    open: set[str] = field(default_factory=set)  # started, not finished: what a snapshot walks
    counted: dict[str, Finished] = field(default_factory=dict)
    counted_start: dict[str, Started] = field(default_factory=dict)
    tallies: dict[tuple[dt.date, str | None], Tally] = field(default_factory=dict)
    # chat -> (moment, message id) of its latest outbound messages by moment (whatever
    # order they came in), and when the chat was last touched
    outbound: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    outbound_at: dict[str, int] = field(default_factory=dict)
    instances: dict[str, _Instance] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # message (or event) id -> ms

    def tally(self, day: dt.date, department: str | None) -> Tally:
        key = (day, department)
        found = self.tallies.get(key)
        if found is None:
            found = self.tallies[key] = Tally()
        return found


def _ms(moment: int | None, received_at: int) -> int:
    return moment if moment is not None else received_at


class LiveState:
    """Every tenant's live figures; ``apply`` events, ``roll`` the clock, ``snapshot``."""

    def __init__(self, time_zone: str, sla_seconds: float) -> None:
        self.zone = ZoneInfo(time_zone)
        self.sla_ms = sla_seconds * 1000
        self._tenants: dict[str, _Tenant] = {}
        self._today: dt.date | None = None
        self._window_ms = 0
        self._pruned_s = float("-inf")  # when failures were last dropped (once a second)

    # -- the clock ---------------------------------------------------------------------

    def day_of(self, ms: int | float) -> dt.date:
        return dt.datetime.fromtimestamp(ms / 1000, self.zone).date()

    def window_start_ms(self, now: float) -> int:
        """Epoch ms from which events count: noon of the day before today, local."""
        today = dt.datetime.fromtimestamp(now, self.zone).date()
        midnight = dt.datetime.combine(today, dt.time(), self.zone)
        return int((midnight - LOOKBACK).timestamp() * 1000)

    def roll(self, now: float) -> bool:
        """Move to ``now`` (epoch seconds): at a new day, forget what left the window.
        Also drops delivery failures older than 15 minutes. True when the day changed."""
        today = dt.datetime.fromtimestamp(now, self.zone).date()
        if abs(now - self._pruned_s) >= 1.0:  # roll runs for every event: prune per second
            self._pruned_s = now
            horizon = int(now * 1000) - FAILURE_WINDOW_MS
            for t in self._tenants.values():
                if t.failures and min(t.failures.values()) < horizon:
                    t.failures = {k: v for k, v in t.failures.items() if v >= horizon}
        if today == self._today:
            return False
        self._today = today
        self._window_ms = self.window_start_ms(now)
        for t in self._tenants.values():
            self._prune(t, self._window_ms, today)
        return True

    @staticmethod
    def _prune(t: _Tenant, window_ms: int, today: dt.date) -> None:
        for number in [n for n, s in t.starts.items() if s.received_at < window_ms]:
            del t.starts[number]
            t.counted_start.pop(number, None)
            t.open.discard(number)
        for number in [n for n, f in t.finishes.items() if f.received_at < window_ms]:
            del t.finishes[number]
            t.counted.pop(number, None)
        t.tallies = {k: v for k, v in t.tallies.items() if k[0] >= today}
        for chat in [c for c, at in t.outbound_at.items() if at < window_ms]:
            del t.outbound_at[chat]
            t.outbound.pop(chat, None)
        t.instances = {i: s for i, s in t.instances.items() if s.received_at >= window_ms}

    # -- events in ---------------------------------------------------------------------

    @property
    def tenants(self) -> list[str]:
        return sorted(self._tenants)

    def apply(self, event: AnyEvent) -> str | None:
        """Take one event; the tenant whose figures it may change, or None."""
        if event.received_at < self._window_ms:
            return None  # before the window: a restart would not read it either
        data = event.data
        tenant = event.tenant
        if isinstance(data, AttendanceFinished):
            self._finished(self._tenant(tenant), event.event_id, event.received_at, data)
        elif isinstance(data, AttendanceStarted):
            self._started(self._tenant(tenant), event.event_id, event.received_at, data)
        elif isinstance(data, Message):
            self._message(self._tenant(tenant), event.received_at, data)
        elif isinstance(data, MessageSent):
            self._sent(self._tenant(tenant), event.event_id, event.received_at, data)
        elif isinstance(data, MessageStatus):
            self._alive(self._tenant(tenant), data.instance_id, data.moment, event.received_at)
        elif isinstance(data, InstanceDisconnected):
            self._disconnected(self._tenant(tenant), event.received_at, data)
        else:
            return None  # an erasure request: nothing the wallboard shows
        return tenant

    def _tenant(self, tenant: str) -> _Tenant:
        found = self._tenants.get(tenant)
        if found is None:
            found = self._tenants[tenant] = _Tenant()
        return found

    def _started(self, t: _Tenant, event_id: str, received_at: int, d: AttendanceStarted) -> None:
        number = str(d.attendance_number)
        start = _Start(
            event_id,
            received_at,
            d.start_time if d.start_time is not None else _ms(d.moment, received_at),
            d.start_time,
            d.department,
            d.operator,
            d.customer.phone,
            _transcript(d.messages),
        )
        known = t.starts.get(number)
        if known is not None and (known.order, known.event_id) <= (start.order, start.event_id):
            return  # not the first start: kpi_daily's operator and day are the first's
        t.starts[number] = start
        if number not in t.finishes:
            t.open.add(number)
        old = t.counted_start.pop(number, None)
        if old is not None:
            t.tally(old.day, old.department).started -= 1
        new = Started(self.day_of(start.order), start.department)
        t.tally(new.day, new.department).started += 1
        t.counted_start[number] = new
        self._count(t, number)  # the finish may take its start time from this start

    def _finished(self, t: _Tenant, event_id: str, received_at: int, d: AttendanceFinished) -> None:
        number = str(d.attendance_number)
        known = t.finishes.get(number)
        if known is not None and (known.received_at, known.event_id) >= (received_at, event_id):
            return  # an earlier finish: the latest one is the attendance
        t.finishes[number] = _Finish(
            event_id,
            received_at,
            d.department,
            d.request_time,
            d.start_time,
            d.end_time,
            _transcript(d.messages),
        )
        t.open.discard(number)
        self._count(t, number)

    def _count(self, t: _Tenant, number: str) -> None:
        """(Re)count a finished attendance from its latest finish and first start."""
        f = t.finishes.get(number)
        if f is None:
            return
        s = t.starts.get(number)
        start_time = f.start_time if f.start_time is not None else (s.start_time if s else None)
        ended_at = f.end_time if f.end_time is not None else f.received_at
        wait = handle = None
        if start_time is not None and f.request_time is not None:
            wait = start_time - f.request_time
        if start_time is not None and f.end_time is not None:
            handle = f.end_time - start_time
        first, answer = f.transcript.first_customer, f.transcript.first_response
        new = Finished(
            self.day_of(ended_at),
            f.department,
            wait,
            handle,
            answer - first if answer is not None and first is not None else None,
            first is not None,
        )
        old = t.counted.get(number)
        if old == new:
            return
        if old is not None:
            t.tally(old.day, old.department).add_finished(old, self.sla_ms, -1)
        t.tally(new.day, new.department).add_finished(new, self.sla_ms)
        t.counted[number] = new

    def _message(self, t: _Tenant, received_at: int, m: Message) -> None:
        self._alive(t, m.instance_id, m.moment, received_at)
        if m.from_me and not m.is_automatic and m.phone:
            self._outbound(t, m.phone, _ms(m.moment, received_at), m.message_id, received_at)

    def _sent(self, t: _Tenant, event_id: str, received_at: int, d: MessageSent) -> None:
        at = _ms(d.moment, received_at)
        if d.error is not None:  # message.delivery_failed
            t.failures[d.message_id or event_id] = at
            return
        self._alive(t, d.instance_id, d.moment, received_at)
        self._outbound(t, d.phone, at, d.message_id, received_at)

    @staticmethod
    def _outbound(t: _Tenant, chat: str, at: int, message_id: str | None, received: int) -> None:
        sent = t.outbound.get(chat)
        if sent is None:
            sent = t.outbound[chat] = []
        entry = (at, message_id or "")
        if entry not in sent:  # the same message again (a retry) adds nothing
            bisect.insort(sent, entry)
            if len(sent) > _OUTBOUND_KEPT:
                del sent[0]
        t.outbound_at[chat] = max(received, t.outbound_at.get(chat, 0))

    @staticmethod
    def _alive(t: _Tenant, instance_id: str | None, moment: int | None, received: int) -> None:
        if not instance_id:
            return
        at = _ms(moment, received)
        state = t.instances.get(instance_id)
        if state is None:
            state = t.instances[instance_id] = _Instance()
        if state.active_at is None or at > state.active_at:
            state.active_at = at
        state.received_at = max(state.received_at, received)

    def _disconnected(self, t: _Tenant, received_at: int, d: InstanceDisconnected) -> None:
        if not d.instance_id:
            return  # cannot be matched to an instance (instance_downtime leaves it open too)
        if not d.disconnected:
            self._alive(t, d.instance_id, d.moment, received_at)
            return
        at = _ms(d.moment, received_at)
        state = t.instances.get(d.instance_id)
        if state is None:
            state = t.instances[d.instance_id] = _Instance()
        if state.disconnected_at is None or at > state.disconnected_at:
            state.disconnected_at, state.error = at, d.error
        state.received_at = max(state.received_at, received_at)

    # -- figures out -------------------------------------------------------------------

    def _waiting_since(self, t: _Tenant, s: _Start) -> int | None:
        """When the customer of an open attendance began waiting, or None if answered."""
        since, answered = s.transcript.first_customer, s.transcript.first_response
        if since is None or answered is not None:
            return None
        for at, message_id in t.outbound.get(s.phone or "", ()):
            if at >= since and message_id not in s.transcript.automatic:
                return None
        return since

    def snapshot(self, tenant: str, now: float) -> TenantNow:
        """``tenant``'s figures at ``now`` (epoch seconds)."""
        t = self._tenants.get(tenant) or _Tenant()
        today = dt.datetime.fromtimestamp(now, self.zone).date()
        tallies: dict[str | None, Tally] = {
            d: v for (day, d), v in t.tallies.items() if day == today
        }
        open_by: dict[str | None, list[_Start]] = {}
        waiting: list[Waiting] = []
        for number in sorted(t.open):
            s = t.starts[number]
            open_by.setdefault(s.department, []).append(s)
            since = self._waiting_since(t, s)
            if since is not None:
                waiting.append(Waiting(number, s.department, since / 1000))
        waiting.sort(key=lambda w: (w.since, w.attendance))
        departments = sorted(
            {d for d, v in tallies.items() if not v.is_empty()} | set(open_by),
            key=lambda d: (d is None, d or ""),
        )
        rows = tuple(
            _department(
                d,
                tallies.get(d, Tally()),
                open_by.get(d, []),
                [w for w in waiting if w.department == d],
                now,
            )
            for d in departments
        )
        total = Tally()
        for d in departments:
            total.add(tallies.get(d, Tally()))
        every_open = [s for opened in open_by.values() for s in opened]
        horizon = now * 1000 - FAILURE_WINDOW_MS
        instances = tuple(
            InstanceNow(
                i,
                s.disconnected_at / 1000 if _down(s) else None,  # type: ignore[operator]
                s.error if _down(s) else None,
            )
            for i, s in sorted(t.instances.items())
        )
        return TenantNow(
            tenant=tenant,
            as_of=now,
            day=today,
            departments=rows,
            total=_department(None, total, every_open, waiting, now),
            waiting=tuple(waiting),
            instances=instances,
            delivery_failures_15m=sum(1 for at in t.failures.values() if at >= horizon),
        )


def _down(s: _Instance) -> bool:
    # At the same instant, activity counts as after the disconnect (instance_downtime's rule).
    return s.disconnected_at is not None and (
        s.active_at is None or s.active_at < s.disconnected_at
    )


def _department(
    department: str | None, tally: Tally, opened: list[_Start], mine: list[Waiting], now: float
) -> DepartmentNow:
    """One department's figures (or every department's: ``mine`` is then every wait)."""
    operators: dict[str, int] = {}
    for s in opened:
        if s.operator:
            operators[s.operator] = operators.get(s.operator, 0) + 1
    return DepartmentNow(
        department=department,
        open_attendances=len(opened),
        waiting=len(mine),
        longest_wait_seconds=max(0.0, now - mine[0].since) if mine else None,
        finished_today=tally.finished,
        answered_within_sla_today=tally.sla_met,
        service_level_today=tally.service_level,
        average_wait_seconds_today=tally.average_wait_s,
        average_handle_seconds_today=tally.average_handle_s,
        open_per_operator=dict(sorted(operators.items())),
        sla_eligible_today=tally.sla_eligible,
        started_today=tally.started,
    )
