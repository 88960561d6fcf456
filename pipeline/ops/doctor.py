"""``plug-pipeline doctor``: is this configuration ready to run, here, against this Kafka?

One line per check, ``ok`` / ``warn`` / ``fail`` with the reason; the exit code is 1 when
any check fails. Checks: the configuration, Kafka reachable and the idempotent producer
authorised, every planned topic present with settings that fit the body limit, the spool
directory writable with room for its bound, the TLS certificate's days left, the alerts
file when one is set, and the warehouse when one is named.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from pipeline import config as configuration
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.extras import MissingExtra, missing
from pipeline.kafka_client import producer_settings
from pipeline.live.alerts import settings as alert_settings
from pipeline.live.alerts import state
from pipeline.ops.plan import MAX_MESSAGE, MIN_ISR, TopicPlan, plan
from pipeline.ops.topics import Cluster, TopicsFailed, TopicState

Status = Literal["ok", "warn", "fail"]
EXIT_OK, EXIT_FAILED = 0, 1
CERT_WARN_DAYS = 14
FLAGS = (
    "bootstrap_servers",
    "tokens_file",
    "topic_prefix",
    "topic_partitions",
    "max_body_bytes",
    "spool_dir",
    "tls_cert",
    "tls_key",
    "warehouse",
    "alerts_file",
)


class Check(msgspec.Struct, frozen=True):
    status: Status
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4} {self.name:<13} {self.detail}"


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def check_config(config: Config) -> Check:
    tenants = len(config.tokens)
    if not tenants:
        return Check("warn", "configuration", "no tenant tokens: every request is accepted")
    limit = _mib(config.max_body_bytes)
    return Check("ok", "configuration", f"{tenants} tenant(s), body limit {limit}")


async def check_kafka(config: Config, timeout_s: float) -> AsyncIterator[Check]:
    """Reachable, the idempotent producer authorised, then the topics against the plan."""
    described: list[TopicPlan] | Exception
    try:
        async with asyncio.timeout(timeout_s), Cluster(config) as cluster:
            brokers = await cluster.brokers()
            wanted = plan(config, brokers)
            try:
                have = await cluster.topics([t.name for t in wanted])
                described = wanted
            except (KafkaError, TopicsFailed) as exc:
                described = exc  # reachable, but describing topics was refused
    except (KafkaError, TimeoutError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        yield Check("fail", "kafka", f"Kafka at {config.bootstrap_servers} unreachable: {reason}")
        return
    yield Check("ok", "kafka", f"{brokers} broker(s) at {config.bootstrap_servers}")
    yield await _check_producer(config, timeout_s)
    if isinstance(described, Exception):
        reason = str(described) or type(described).__name__
        yield Check("fail", "topics", f"cannot describe the topics (DescribeConfigs): {reason}")
        return
    for check in check_topics(config, described, have):
        yield check


async def _check_producer(config: Config, timeout_s: float) -> Check:
    # An idempotent producer asks for a producer id as it starts: the write permission
    # a 200 depends on (IdempotentWrite), checked without writing a record.
    producer = AIOKafkaProducer(**producer_settings(config))
    try:
        async with asyncio.timeout(timeout_s):
            await producer.start()
    except (KafkaError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        return Check("fail", "kafka-auth", f"Kafka refused an idempotent producer: {reason}")
    finally:
        await producer.stop()
    return Check("ok", "kafka-auth", "idempotent producer authorised (acks=all)")


def check_topics(
    config: Config, wanted: list[TopicPlan], have: dict[str, TopicState]
) -> Iterator[Check]:
    problems = 0
    for t in wanted:
        state = have.get(t.name)
        if state is None:
            problems += 1
            if config.create_topics:
                yield Check("warn", "topic", f"{t.name} missing: the ingress creates it at start")
            else:
                yield Check("fail", "topic", f"{t.name} missing and topic creation is off")
            continue
        limit = int(t.configs[MAX_MESSAGE])
        actual = int(state.configs.get(MAX_MESSAGE, "0"))
        if actual < limit:
            problems += 1
            yield Check(
                "fail",
                "topic",
                f"{t.name} max.message.bytes {actual} < {limit}: a body near the "
                f"{_mib(config.max_body_bytes)} limit would be refused after a 200 "
                "(plug-pipeline topics apply)",
            )
        min_isr = int(state.configs.get(MIN_ISR, "1"))
        if state.replication > 1 and min_isr >= state.replication:
            problems += 1
            yield Check(
                "warn",
                "topic",
                f"{t.name} min.insync.replicas {min_isr} with replication "
                f"{state.replication}: one broker down stops every write",
            )
        elif state.replication < t.replication:
            problems += 1
            yield Check(
                "warn",
                "topic",
                f"{t.name} replication {state.replication}, the cluster allows {t.replication}",
            )
    if not problems:
        yield Check("ok", "topics", f"{len(wanted)} present, each fits a body at the limit")


def check_spool(config: Config) -> Check:
    if config.spool_dir is None:
        return Check("warn", "spool", "off: while Kafka is down every webhook is answered 503")
    directory = Path(config.spool_dir).resolve()
    probe = directory / f".doctor-{uuid.uuid4().hex}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"probe")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as exc:
        return Check("fail", "spool", f"{directory} not writable: {exc.strerror or exc}")
    free = shutil.disk_usage(directory).free
    if free < config.spool_max_bytes:
        return Check(
            "warn",
            "spool",
            f"{directory} writable, {_mib(free)} free < its bound {_mib(config.spool_max_bytes)}",
        )
    return Check("ok", "spool", f"{directory} writable, {_mib(free)} free")


def check_tls(config: Config, now: float | None = None) -> Check:
    if not (config.tls_cert and config.tls_key):
        return Check("ok", "tls", "not served here: terminate HTTPS at a proxy (Plug calls HTTPS)")
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(config.tls_cert, config.tls_key)
        # The stdlib's only certificate parser; the context above proved the file loads.
        decoded = ssl._ssl._test_decode_cert(config.tls_cert)  # type: ignore[attr-defined]
    except (OSError, ssl.SSLError) as exc:
        return Check("fail", "tls", f"cannot load {config.tls_cert}: {exc}")
    not_after = ssl.cert_time_to_seconds(decoded["notAfter"])
    days = (not_after - (time.time() if now is None else now)) / 86400
    until = datetime.fromtimestamp(not_after, UTC).date().isoformat()
    if days < 0:
        return Check("fail", "tls", f"certificate expired on {until}")
    if days < CERT_WARN_DAYS:
        return Check("warn", "tls", f"certificate expires in {int(days)} days ({until})")
    return Check("ok", "tls", f"certificate valid for {int(days)} more days ({until})")


def _shown(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def check_warehouse(target: str, timeout_s: float) -> Check:
    """PostgreSQL: log in and ask its version; a DuckDB file: its folder is writable."""
    if missing("warehouse"):
        return Check("fail", "warehouse", str(MissingExtra("load", "warehouse")))
    if urlsplit(target).scheme in {"postgresql", "postgres"}:
        import psycopg  # only the loader's machines need it loaded

        try:
            with psycopg.connect(
                target,
                connect_timeout=max(1, int(timeout_s)),
                application_name="plug-pipeline doctor",
            ) as conn:
                row = conn.execute("SHOW server_version").fetchone()
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return Check("fail", "warehouse", f"PostgreSQL at {_shown(target)}: {reason}")
        version = row[0] if row else "?"
        return Check("ok", "warehouse", f"PostgreSQL {version} at {_shown(target)}: logged in")
    path = Path(target.removeprefix("duckdb:"))
    folder = path.parent.resolve()
    if not os.access(folder, os.W_OK):
        return Check("fail", "warehouse", f"DuckDB folder {folder} not writable")
    return Check("ok", "warehouse", f"DuckDB file {path} in a writable folder")


def check_alerts(config: Config) -> Check | None:
    """The alerts file as the live service reads it, and its state file's folder."""
    if not config.alerts_file:
        return None
    try:
        loaded = alert_settings.load(config.alerts_file, time_zone=config.kpi_time_zone)
        state.read(loaded.state_file)
    except (ConfigError, state.StateError) as exc:
        return Check("fail", "alerts", str(exc))
    folder = loaded.state_file.parent
    if not os.access(folder if folder.exists() else folder.parent, os.W_OK):
        return Check("fail", "alerts", f"state folder {folder} not writable")
    return Check(
        "ok",
        "alerts",
        f"{len(loaded.rules)} rule(s), {len(loaded.receivers)} receiver(s); "
        "`alerts test` tries the receivers",
    )


async def run_checks(
    config: Config, warehouse: str | None, timeout_s: float
) -> AsyncIterator[Check]:
    yield check_config(config)
    async for check in check_kafka(config, timeout_s):
        yield check
    yield check_spool(config)
    yield check_tls(config)
    alerts = check_alerts(config)
    if alerts is not None:
        yield alerts
    if warehouse:
        yield check_warehouse(warehouse, timeout_s)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("doctor", help="check configuration, Kafka, topics, spool, TLS")
    configuration.add_flags(p, *FLAGS)
    p.add_argument("--timeout", type=float, default=10.0, help="bound on each network check (s)")
    p.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    try:
        config = configuration.load(None, **configuration.flag_values(args, *FLAGS))
    except ConfigError as exc:
        print(Check("fail", "configuration", str(exc)).line())
        return EXIT_FAILED

    # The loader's target is checked when one is named, by flag or environment.
    named = args.warehouse or os.environ.get(configuration.setting("warehouse").env)
    warehouse = config.warehouse if named else None

    async def checks() -> list[Check]:
        found = []
        async for check in run_checks(config, warehouse, args.timeout):
            print(check.line(), flush=True)
            found.append(check)
        return found

    results = asyncio.run(checks())
    return EXIT_FAILED if any(c.status == "fail" for c in results) else EXIT_OK
