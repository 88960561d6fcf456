"""``plug-pipeline spool status|drain``: look into, and empty, spools no ingress is draining.

A spool is left behind when ``--workers`` shrinks (``worker-N`` directories nobody opens
any more), or on the volume of a pod that is gone. ``status`` shows what each holds;
``drain`` publishes it to Kafka with the same guarantees as the ingress (order kept,
records Kafka refuses set aside) and exits 0 once every spool is empty.

Both take a directory and look at it and at its ``worker-*`` subdirectories. A spool in
use by a running ingress is never opened: ``status`` reports it from its files, ``drain``
leaves it to its owner.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import msgspec

from pipeline import config as configuration
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.route import deadletter_topic
from pipeline.spool import Spool, SpoolStats, segment
from pipeline.spool.recovery import CURSOR

EXIT_OK, EXIT_LEFT = 0, 1


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("spool", help="show or drain spools (orphaned workers, old pods)")
    actions = p.add_subparsers(dest="action", required=True)
    status = actions.add_parser("status", help="what each spool holds")
    drain = actions.add_parser("drain", help="publish what the spools hold to Kafka")
    for action in (status, drain):
        action.add_argument("--dir", help="spool directory (PLUG_PIPELINE_SPOOL_DIR)")
        action.add_argument("--json", action="store_true", help="one JSON object per spool")
    drain.add_argument(
        "--timeout-s", type=float, default=300.0, help="give up after this long (default 300)"
    )
    configuration.add_flags(drain, "bootstrap_servers", "topic_prefix")
    p.set_defaults(func=run)


class SpoolReport(msgspec.Struct):
    directory: str
    in_use: bool
    depth: int | None  # None: in use, so not opened
    bytes: int
    oldest_age_s: float | None = None
    segments: int = 0
    torn_records: int = 0
    corrupt_records: int = 0
    drained: int | None = None
    error: str | None = None

    def line(self) -> str:
        if self.in_use:
            return f"{self.directory}: in use by a running ingress, {self.bytes} bytes on disk"
        text = (
            f"{self.directory}: depth {self.depth}, {self.bytes} bytes, "
            f"oldest {self.oldest_age_s or 0:.0f} s, {self.segments} segments"
        )
        if self.torn_records or self.corrupt_records:
            text += f", torn {self.torn_records}, corrupt {self.corrupt_records}"
        if self.drained is not None:
            text += f", drained {self.drained}"
        if self.error:
            text += f" ({self.error})"
        return text


def spool_dirs(root: Path) -> list[Path]:
    """``root`` if it holds a spool, and each ``worker-*`` subdirectory that does."""
    return [d for d in [root, *sorted(root.glob("worker-*"))] if _is_spool(d)]


def _is_spool(directory: Path) -> bool:
    return directory.is_dir() and (
        (directory / CURSOR).exists() or bool(segment.segment_ids(directory))
    )


def run(args: argparse.Namespace) -> int:
    flags = {"bootstrap_servers": None, "topic_prefix": None}
    if args.action == "drain":
        flags = configuration.flag_values(args, "bootstrap_servers", "topic_prefix")
    config = configuration.load(None, spool_dir=args.dir, **flags)
    if config.spool_dir is None:
        raise ConfigError("no spool directory: pass --dir or set PLUG_PIPELINE_SPOOL_DIR")
    root = Path(config.spool_dir)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory")
    timeout_s = args.timeout_s if args.action == "drain" else 0.0
    reports = asyncio.run(_run(args.action, config, spool_dirs(root), timeout_s))
    for report in reports:
        print(msgspec.json.encode(report).decode() if args.json else report.line())
    if not reports:
        print(f"{root}: no spool here")
    left = any(r.in_use or (r.depth or 0) > 0 for r in reports)
    return EXIT_LEFT if args.action == "drain" and left else EXIT_OK


async def _run(
    action: str, config: Config, dirs: list[Path], timeout_s: float
) -> list[SpoolReport]:
    reports = []
    for directory in dirs:
        if action == "status":
            reports.append(await status(directory, config.spool_max_bytes))
        else:
            reports.append(await drain(directory, config, timeout_s))
    return reports


async def status(directory: Path, max_bytes: int) -> SpoolReport:
    from pipeline.sink.spooled import lock

    try:
        fd = lock(directory)
    except ConfigError:
        size = await asyncio.to_thread(_segment_bytes, directory)
        return SpoolReport(str(directory), in_use=True, depth=None, bytes=size)
    try:
        spool = await Spool.open(directory, max_bytes)
        try:
            stats = spool.stats()
        finally:
            await spool.close()
    finally:
        os.close(fd)
    return _report(directory, stats)


def _report(directory: Path, stats: SpoolStats, **more: object) -> SpoolReport:
    figures = {
        "depth": stats.depth,
        "bytes": stats.bytes,
        "oldest_age_s": stats.oldest_age_s,
        "segments": stats.segments,
        "torn_records": stats.torn_records,
        "corrupt_records": stats.corrupt_records,
    }
    return msgspec.convert(
        {"directory": str(directory), "in_use": False, **figures, **more}, SpoolReport
    )


def _segment_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*" + segment.SUFFIX))


async def drain(directory: Path, config: Config, timeout_s: float) -> SpoolReport:
    """Drain one spool with the ingress's own sink: Kafka, dead letters, quarantine."""
    from pipeline.sink.kafka import KafkaSink
    from pipeline.sink.spooled import SpooledSink

    sink = SpooledSink(
        KafkaSink(config),
        str(directory),
        config.spool_max_bytes,
        deadletter_topic=deadletter_topic(config.topic_prefix),
        shutdown_drain_s=0,
    )
    try:
        await sink.start()
    except ConfigError:  # locked: a running ingress owns it and drains it itself
        return await status(directory, config.spool_max_bytes)
    try:
        spool = sink.spool
        assert spool is not None
        before = spool.depth
        left = await sink.drain_now(timeout_s)
        stats = spool.stats()
        error = spool.last_drain_error
    finally:
        await sink.stop()
    return _report(
        directory,
        stats,
        drained=before - left,
        error=None if not left or error is None else repr(error)[:200],
    )
