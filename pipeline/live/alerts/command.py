"""``plug-pipeline alerts check|test [FILE]``: check an alerts file; try its receivers.

``check`` reads the file as the live service would at start and prints each rule and
receiver in a line, or the one-line fault (exit 2). ``test`` sends one notification
saying it is a test to each receiver (or those named), once, no retry, and prints
what each answered: a way to see a webhook URL or an SMTP login work before an alert
depends on it. FILE defaults to ``PLUG_PIPELINE_ALERTS_FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from pipeline import config as configuration
from pipeline.errors import ConfigError
from pipeline.live.alerts import settings as alert_settings
from pipeline.live.alerts.deliver import DeliveryFailed, sender
from pipeline.live.alerts.rules import (
    EVERY,
    DeliveryFailures,
    EmailReceiver,
    InstanceDisconnected,
    LongWait,
    Rule,
    ServiceLevel,
)
from pipeline.live.alerts.settings import AlertSettings
from pipeline.live.alerts.state import Notification

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("alerts", help="check an alerts file, or try its receivers")
    actions = p.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="validate the file and print its rules")
    test = actions.add_parser("test", help="send a test notification to each receiver")
    for action in (check, test):
        action.add_argument("file", nargs="?", help="the alerts file (PLUG_PIPELINE_ALERTS_FILE)")
    test.add_argument("--receiver", action="append", help="only this receiver (repeat for several)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = configuration.load(None)
    path = args.file or config.alerts_file
    if not path:
        raise ConfigError("alerts: name the file, or set PLUG_PIPELINE_ALERTS_FILE")
    loaded = alert_settings.load(path, time_zone=config.kpi_time_zone)
    if args.action == "check":
        print("\n".join(describe(loaded)))
        return EXIT_OK
    return asyncio.run(_test(loaded, args.receiver))


def describe(loaded: AlertSettings) -> list[str]:
    """One line per rule and receiver; never a URL or a password."""
    lines = [f"{loaded.path}: ok; state in {loaded.state_file}; times in {loaded.time_zone.key}"]
    for rule in loaded.rules:
        to = ", ".join(rule.receivers) or "every receiver"
        repeat = f"every {rule.repeat_minutes:g} min" if rule.repeat_minutes else "never"
        lines.append(
            f"rule {rule.name}: {_what(rule)}; tenant {_tenant(rule)}; repeat {repeat}; to {to}"
        )
    for receiver in loaded.receivers:
        if isinstance(receiver, EmailReceiver):
            how = f"e-mail via {receiver.host}:{receiver.port} to {len(receiver.to)} address(es)"
        else:
            how = "webhook, " + ("its template" if receiver.template else '{"text": ...}')
        lines.append(f"receiver {receiver.name}: {how}")
    return lines


def _tenant(rule: Rule) -> str:
    return "every one" if rule.tenant == EVERY else rule.tenant


def _where(department: str | None) -> str:
    if department is None:
        return ""
    return " in each department" if department == EVERY else f" in {department}"


def _what(rule: Rule) -> str:
    if isinstance(rule, InstanceDisconnected):
        grace = f" for {rule.after_minutes:g} min" if rule.after_minutes else ""
        return f"a WhatsApp instance disconnected{grace}"
    if isinstance(rule, LongWait):
        return f"a customer waiting over {rule.minutes:g} min{_where(rule.department)}"
    if isinstance(rule, ServiceLevel):
        return (
            f"service level today under {rule.below_percent:g}%{_where(rule.department)} "
            f"once {rule.min_finished} finished"
        )
    assert isinstance(rule, DeliveryFailures)
    return f"more than {rule.more_than} delivery failures in 15 min"


async def _test(loaded: AlertSettings, only: list[str] | None) -> int:
    names = {r.name for r in loaded.receivers}
    for unknown in set(only or ()) - names:
        raise ConfigError(f"alerts test: no receiver is named {unknown!r}")
    code = EXIT_OK
    now = time.time()
    for receiver in loaded.receivers:
        if only and receiver.name not in only:
            continue
        title = f"TEST · {receiver.name}"
        note = Notification(
            id=uuid.uuid4().hex,
            receiver=receiver.name,
            state="test",
            rule="test",
            kind="test",
            tenant="-",
            subject="-",
            since=now,
            at=now,
            queued=now,
            title=title,
            text=f"{title}\nA test of this receiver by plug-pipeline alerts test.",
        )
        made = sender(receiver, loaded.secrets[receiver.name], loaded.file.delivery.timeout_seconds)
        try:
            await made.send(note)
            print(f"receiver {receiver.name}: delivered")
        except DeliveryFailed as exc:
            later = "may pass later" if exc.retriable else "will not pass as is"
            print(f"receiver {receiver.name}: failed ({exc.reason}; {later})")
            code = EXIT_FAILED
        finally:
            await made.close()
    return code
