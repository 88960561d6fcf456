"""The rules judged on one tenant's figures: ``TenantNow`` in, transitions out; pure.

An alert is a rule, a tenant and a subject (an instance, a department, or "all"). It
*fires* the first time its condition holds, *repeats* every ``repeat_minutes`` while it
holds (never when 0), and is *resolved* once, the first time the figures show it no
longer holds. Time is the figures' ``as_of``, so a sequence of figures gives the same
transitions whenever it is judged, and tests need no clock.

No phone, name or message text reaches a summary: only instance ids, department names,
counts, percentages and durations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from pipeline.live.alerts.rules import (
    EVERY,
    DeliveryFailures,
    InstanceDisconnected,
    LongWait,
    Rule,
    ServiceLevel,
)
from pipeline.live.alerts.state import Firing
from pipeline.live.figures import DepartmentNow, TenantNow, Waiting

ALL = "all"  # the subject of a rule over the whole tenant
NO_DEPARTMENT = "(no department)"  # the subject for attendances Plug sent without one

Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Holding:
    """A rule's condition, holding now for one subject."""

    subject: str
    since: float
    summary: str


@dataclass(frozen=True, slots=True)
class Transition:
    state: Literal["firing", "repeat", "resolved"]
    alert: Firing  # for "resolved": the alert as it last stood
    at: float  # the figures' as_of
    receivers: tuple[str, ...]  # empty: every receiver


class Evaluator:
    """Holds what is firing; ``judge`` compares it with a tenant's new figures."""

    def __init__(self, rules: Iterable[Rule], firing: Iterable[Firing] = ()) -> None:
        self._rules = tuple(rules)
        self._firing: dict[Key, Firing] = {alert.key: alert for alert in firing}

    @property
    def firing(self) -> list[Firing]:
        return list(self._firing.values())

    def judge(self, now: TenantNow) -> list[Transition]:
        transitions: list[Transition] = []
        holding: set[Key] = set()
        for rule in self._rules:
            if rule.tenant not in (EVERY, now.tenant):
                continue
            for held in conditions(rule, now):
                key = (rule.name, now.tenant, held.subject)
                holding.add(key)
                transitions.extend(self._held(rule, key, held, now.as_of))
        for key, alert in list(self._firing.items()):
            if alert.tenant == now.tenant and key not in holding:
                del self._firing[key]
                transitions.append(Transition("resolved", alert, now.as_of, self._to(key[0])))
        return transitions

    def _held(self, rule: Rule, key: Key, held: Holding, at: float) -> Iterator[Transition]:
        before = self._firing.get(key)
        if before is None:
            alert = Firing(
                rule=rule.name,
                kind=_kind(rule),
                tenant=key[1],
                subject=held.subject,
                since=held.since,
                last_sent=at,
                summary=held.summary,
            )
            self._firing[key] = alert
            yield Transition("firing", alert, at, rule.receivers)
            return
        repeat_s = rule.repeat_minutes * 60
        if repeat_s > 0 and at - before.last_sent >= repeat_s:
            alert = Firing(
                rule=before.rule,
                kind=before.kind,
                tenant=before.tenant,
                subject=before.subject,
                since=before.since,
                last_sent=at,
                summary=held.summary,
            )
            self._firing[key] = alert
            yield Transition("repeat", alert, at, rule.receivers)

    def _to(self, rule_name: str) -> tuple[str, ...]:
        """A resolution goes where the firing went; a rule since removed: everywhere."""
        for rule in self._rules:
            if rule.name == rule_name:
                return rule.receivers
        return ()


def _kind(rule: Rule) -> str:
    kind = type(rule).__struct_config__.tag
    assert isinstance(kind, str)
    return kind


def conditions(rule: Rule, now: TenantNow) -> list[Holding]:
    """Every subject for which the rule holds in these figures."""
    if isinstance(rule, InstanceDisconnected):
        grace_s = rule.after_minutes * 60
        return [
            Holding(i.instance_id, i.disconnected_since, f"WhatsApp instance {i.instance_id} "
                    f"disconnected for {duration(now.as_of - i.disconnected_since)}")
            for i in now.instances
            if i.disconnected_since is not None and now.as_of - i.disconnected_since >= grace_s
        ]  # fmt: skip
    if isinstance(rule, LongWait):
        return _long_waits(rule, now)
    if isinstance(rule, ServiceLevel):
        return _service_levels(rule, now)
    assert isinstance(rule, DeliveryFailures)
    failures = now.delivery_failures_15m
    if failures <= rule.more_than:
        return []
    summary = f"{failures} delivery failures in the last 15 minutes (more than {rule.more_than})"
    return [Holding(ALL, now.as_of, summary)]


def _long_waits(rule: LongWait, now: TenantNow) -> list[Holding]:
    limit_s = rule.minutes * 60
    groups: dict[str, list[Waiting]] = {}
    for waiting in now.waiting:
        if rule.department is None:
            groups.setdefault(ALL, []).append(waiting)
        elif rule.department == EVERY:
            groups.setdefault(waiting.department or NO_DEPARTMENT, []).append(waiting)
        elif waiting.department == rule.department:
            groups.setdefault(rule.department, []).append(waiting)
    found = []
    for subject, group in groups.items():
        over = [w for w in group if now.as_of - w.since > limit_s]
        if not over:
            continue
        oldest = min(w.since for w in over)
        where = "" if subject == ALL else f" in {subject}"
        summary = (
            f"{_customers(len(over))} waiting over {_minutes(rule.minutes)} for a first "
            f"answer{where}; the longest for {duration(now.as_of - oldest)}"
        )
        found.append(Holding(subject, oldest + limit_s, summary))
    return found


def _service_levels(rule: ServiceLevel, now: TenantNow) -> list[Holding]:
    scopes: list[tuple[str, DepartmentNow]]
    if rule.department is None:
        scopes = [(ALL, now.total)]
    elif rule.department == EVERY:
        scopes = [(d.department or NO_DEPARTMENT, d) for d in now.departments]
    else:
        scopes = [(rule.department, d) for d in now.departments if d.department == rule.department]
    found = []
    for subject, figures in scopes:
        level = figures.service_level_today
        if level is None or figures.finished_today < rule.min_finished:
            continue
        if level * 100 >= rule.below_percent:
            continue
        where = "" if subject == ALL else f" in {subject}"
        summary = (
            f"service level today {level * 100:.1f}%{where}, under {rule.below_percent:g}%: "
            f"{figures.answered_within_sla_today} of {figures.finished_today} answered "
            "within the SLA"
        )
        found.append(Holding(subject, now.as_of, summary))
    return found


def _customers(n: int) -> str:
    return "1 customer" if n == 1 else f"{n} customers"


def _minutes(minutes: float) -> str:
    return duration(minutes * 60)


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 05 min``: how long, as a supervisor reads it."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
