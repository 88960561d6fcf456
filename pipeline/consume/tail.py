"""``plug-pipeline tail``: print the events on our topics, as JSON lines or one-line summaries.

JSON lines (the envelope as the ingress wrote it, one per line) unless stdout is a
terminal, where each event gets a short readable line. A record that does not decode is
reported on stderr with its topic, partition and offset, and makes the exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import UTC, datetime
from typing import TextIO

import msgspec

from pipeline import config as configuration
from pipeline.config import Config
from pipeline.consume.consumed import ConsumedEvent, RawRecord
from pipeline.consume.consumer import Consumer
from pipeline.consume.decode import event_type_of_topic
from pipeline.errors import ConfigError, UndecodableRecord
from pipeline.events.models import (
    AttendanceFinished,
    AttendanceStarted,
    ErasureRequested,
    InstanceDisconnected,
    Message,
    MessageSent,
    MessageStatus,
)
from pipeline.webhooks import EventType

EXIT_OK, EXIT_UNDECODABLE = 0, 1
_SETTINGS = ("bootstrap_servers", "topic_prefix")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "tail",
        help="print events from the topics",
        description="Print events as JSON lines (or, on a terminal, one summary line each).",
    )
    p.add_argument(
        "--topic",
        action="append",
        metavar="T",
        help="a topic (plug.message.status) or event type (message.status); repeatable; "
        "default: every event topic",
    )
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    p.add_argument(
        "--until-caught-up",
        action="store_true",
        help="exit once the end offsets seen at start are printed (implies --from-beginning "
        "unless --group has offsets)",
    )
    p.add_argument("--tenant", help="only this tenant's events")
    p.add_argument("--group", help="consumer group (default: none, nothing committed)")
    p.add_argument(
        "--format",
        choices=("auto", "json", "summary"),
        default="auto",
        help="auto: summary on a terminal, JSON lines otherwise",
    )
    configuration.add_flags(p, *_SETTINGS)
    p.set_defaults(func=run)


def event_types(prefix: str, names: list[str] | None) -> list[EventType]:
    if not names:
        return list(EventType)
    by_value = {e.value: e for e in EventType} | {e.topic_suffix: e for e in EventType}
    found = []
    for name in names:
        event_type = event_type_of_topic(prefix, name) or by_value.get(name)
        if event_type is None:
            known = ", ".join(e.value for e in EventType)
            raise ConfigError(f"--topic {name!r} is not an event topic or type ({known})")
        found.append(event_type)
    return found


def run(args: argparse.Namespace) -> int:
    config = configuration.load(None, **configuration.flag_values(args, *_SETTINGS))
    if not args.verbose:  # its rebalance chatter would drown the events on a terminal
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
    summary = args.format == "summary" or (args.format == "auto" and sys.stdout.isatty())
    try:
        return asyncio.run(tail(config, args, sys.stdout, summary))
    except BrokenPipeError:  # piped into head: the reader has what it wanted
        sys.stderr.close()
        return EXIT_OK


async def tail(config: Config, args: argparse.Namespace, out: TextIO, summary: bool) -> int:
    undecodable = 0

    async def report(error: UndecodableRecord, _record: RawRecord) -> None:
        nonlocal undecodable
        undecodable += 1
        print(f"plug-pipeline tail: undecodable ({error.reason}): {error}", file=sys.stderr)

    consumer = Consumer(
        config.kafka,
        group_id=args.group,
        event_types=event_types(config.topic_prefix, args.topic),
        start="earliest" if args.from_beginning or args.until_caught_up else "latest",
        on_undecodable=report,
        until_caught_up=args.until_caught_up,
        client_id="plug-pipeline-tail",
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, consumer.stop)
    async with consumer:
        async for item in consumer:
            if args.tenant and item.event.tenant != args.tenant:
                continue
            out.write(summary_line(item) if summary else json_line(item))
            out.write("\n")
        out.flush()
    return EXIT_UNDECODABLE if undecodable else EXIT_OK


def json_line(item: ConsumedEvent) -> str:
    """The envelope as written; re-encoded only if it would not fit on one line."""
    text = item.record.value.decode("utf-8", "replace")
    return text if "\n" not in text else msgspec.json.encode(item.event).decode()


def summary_line(item: ConsumedEvent) -> str:
    event = item.event
    when = datetime.fromtimestamp(event.received_at / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    described = _describe(event.data).replace("\r", " ").replace("\n", " ")
    return f"{when}  {event.event_type:<23} {event.tenant:<10} {described}"


def _describe(data: object) -> str:
    match data:
        case AttendanceFinished():
            return (
                f"#{data.attendance_number} {data.customer.phone} dept={data.department} "
                f"by={data.finished_by} categories={len(data.categories)} "
                f"messages={len(data.messages)}"
            )
        case AttendanceStarted():
            return (
                f"#{data.attendance_number} {data.customer.phone} dept={data.department} "
                f"operator={data.operator} messages={len(data.messages)}"
            )
        case Message():
            direction = "out" if data.from_me else "in"
            kind = data.content.__struct_config__.tag
            text = getattr(data.content, "message", None) or getattr(data.content, "caption", "")
            return f"{data.phone} {direction} {kind} {text or ''}"[:160]
        case MessageSent():
            failed = f" error={data.error_code}: {data.error}" if data.error else ""
            return f"{data.phone} message={data.message_id}{failed}"
        case MessageStatus():
            return f"{data.phone} {data.status} x{len(data.message_ids)}"
        case InstanceDisconnected():
            return f"instance={data.instance_id} error={data.error}"
        case ErasureRequested():  # the subject names the customer; the phone is not shown
            suppress = " suppress" if data.suppress else ""
            return f"erase subject={data.subject} request={data.request_id}{suppress}"
    return repr(data)
