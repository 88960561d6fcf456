"""A consumer process for the kill-and-restart test.

It handles an event by appending its id to a file (flushed, so a SIGKILL keeps it), and
can hang in the middle of handling one, as a process that dies mid-stream would. On
start it seeds its dedup window with the ids the file already holds, as a user seeds it
from their own store. At the end it prints its stats as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from pathlib import Path
from typing import TextIO

from pipeline import config as configuration
from pipeline.consume import Consumer, DedupWindow


async def consume(args: argparse.Namespace, seen: list[str], out: TextIO) -> None:
    config = configuration.load(None, topic_prefix=args.prefix)
    window = DedupWindow(args.window)
    window.remember(seen)
    async with Consumer(
        config.kafka,
        group_id=args.group,
        dedup=window,
        until_caught_up=True,
        commit_every=args.commit_every,
        commit_interval_s=600,  # commits come from commit_every alone: the test counts them
        kafka_settings={"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000},
    ) as consumer:
        count = 0
        async for item in consumer:
            out.write(item.event.event_id + "\n")
            out.flush()
            count += 1
            if count == args.hang_after:
                print("hanging", flush=True)
                await asyncio.Event().wait()  # handled, never acknowledged: killed here
    print(json.dumps(dataclasses.asdict(consumer.stats)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--handled", required=True)
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--commit-every", type=int, default=40)
    parser.add_argument("--hang-after", type=int, default=0)
    args = parser.parse_args()
    handled = Path(args.handled)
    seen = handled.read_text().split() if handled.exists() else []
    with handled.open("a") as out:
        asyncio.run(consume(args, seen, out))


if __name__ == "__main__":
    main()
