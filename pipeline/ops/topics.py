"""``plug-pipeline topics describe|apply``: the cluster's topics against the topic plan.

``describe`` shows, for every planned topic, what the cluster has and what the plan says.
``apply`` creates missing topics, raises partition counts and alters the planned settings
(retention, ``max.message.bytes``, ``min.insync.replicas``, cleanup policy), printing each
change. It refuses to lower partitions (Kafka cannot, and a recreated topic would lose its
records), and then changes nothing at all. A second ``apply`` finds nothing to do.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from typing import Any

import msgspec
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, for_code

from pipeline import config as configuration
from pipeline.config import Config
from pipeline.kafka_client import admin_settings
from pipeline.ops.plan import PLANNED_KEYS, TopicPlan, plan

EXIT_OK, EXIT_FAILED = 0, 1
_DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs config_source: set on the topic itself
FLAGS = (
    "bootstrap_servers",
    "topic_prefix",
    "topic_partitions",
    "max_body_bytes",
    "retention_days",
    "raw_retention_days",
)


class TopicState(msgspec.Struct, frozen=True, kw_only=True):
    """A topic as the cluster has it: effective values, and the ones set on the topic."""

    name: str
    partitions: int
    replication: int
    configs: dict[str, str]  # effective value of every setting
    overrides: dict[str, str]  # only those set on the topic (not broker defaults)


class Change(msgspec.Struct, frozen=True, kw_only=True):
    topic: str
    kind: str  # create | partitions | config | refuse | warn
    text: str


class TopicsFailed(Exception):
    """Kafka refused a request: the message names the topic and Kafka's error."""


class Cluster:
    """The admin requests the topic commands make, over one aiokafka admin client."""

    def __init__(self, config: Config) -> None:
        self._admin = AIOKafkaAdminClient(**admin_settings(config.kafka, config.ack_timeout_s))

    async def __aenter__(self) -> Cluster:
        await self._admin.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._admin.close()

    async def brokers(self) -> int:
        return len((await self._admin.describe_cluster())["brokers"])

    async def topics(self, names: list[str]) -> dict[str, TopicState]:
        """The state of those of ``names`` that exist."""
        # Metadata for a named topic that is missing would create it on a broker with
        # auto-create on: ask only about topics the full listing shows.
        existing = set(await self._admin.list_topics())
        present = [n for n in names if n in existing]
        if not present:
            return {}
        found = {
            t["topic"]: t
            for t in await self._admin.describe_topics(present)
            if t["error_code"] == 0 and t["partitions"]
        }
        if not found:
            return {}
        resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in found]
        states = {}
        for response in await self._admin.describe_configs(resources):
            for resource in response.to_object()["resources"]:
                _raise_for(resource["error_code"], resource["resource_name"], "describe")
                name = resource["resource_name"]
                entries = resource["config_entries"]
                partitions = found[name]["partitions"]
                states[name] = TopicState(
                    name=name,
                    partitions=len(partitions),
                    replication=len(partitions[0]["replicas"]),
                    configs={e["config_names"]: e["config_value"] for e in entries},
                    overrides={
                        e["config_names"]: e["config_value"]
                        for e in entries
                        if e["config_source"] == _DYNAMIC_TOPIC_CONFIG
                    },
                )
        return states

    async def create(self, topics: list[TopicPlan]) -> None:
        new = [
            NewTopic(t.name, t.partitions, t.replication, topic_configs=t.configs) for t in topics
        ]
        response = await self._admin.create_topics(new)
        for topic, code, message in response.topic_errors:
            _raise_for(code, topic, "create", message)

    async def add_partitions(self, counts: dict[str, int]) -> None:
        await self._admin.create_partitions({t: NewPartitions(n) for t, n in counts.items()})

    async def set_configs(self, configs: dict[str, dict[str, str]]) -> None:
        """Replace each topic's own settings (AlterConfigs is not incremental)."""
        resources = [ConfigResource(ConfigResourceType.TOPIC, t, c) for t, c in configs.items()]
        for response in await self._admin.alter_configs(resources):
            for code, message, _type, topic in response.resources:
                _raise_for(code, topic, "alter", message)


def _raise_for(code: int, topic: str, what: str, message: str | None = None) -> None:
    if code:
        error = for_code(code)
        raise TopicsFailed(f"{what} {topic}: {error.__name__} {message or ''}".rstrip())


def changes(wanted: list[TopicPlan], have: dict[str, TopicState]) -> Iterator[Change]:
    """What ``apply`` would do to turn ``have`` into ``wanted``; pure."""
    for t in wanted:
        state = have.get(t.name)
        if state is None:
            settings = ", ".join(f"{k}={v}" for k, v in t.configs.items())
            yield Change(
                topic=t.name,
                kind="create",
                text=f"{t.partitions} partitions, replication {t.replication}, {settings}",
            )
            continue
        if state.partitions > t.partitions:
            yield Change(
                topic=t.name,
                kind="refuse",
                text=f"has {state.partitions} partitions, the plan says {t.partitions}: "
                "Kafka cannot lower partitions (raise PLUG_PIPELINE_TOPIC_PARTITIONS instead)",
            )
        elif state.partitions < t.partitions:
            yield Change(
                topic=t.name,
                kind="partitions",
                text=f"partitions {state.partitions} -> {t.partitions} "
                "(keys move to new partitions: per-key order holds from here on)",
            )
        if state.replication != t.replication:
            yield Change(
                topic=t.name,
                kind="warn",
                text=f"replication {state.replication}, the plan says {t.replication}: "
                "change it with a partition reassignment (kafka-reassign-partitions.sh)",
            )
        for key, value in t.configs.items():
            if state.configs.get(key) != value:
                yield Change(
                    topic=t.name,
                    kind="config",
                    text=f"{key} {state.configs.get(key)} -> {value}",
                )


async def describe(config: Config) -> tuple[list[TopicPlan], dict[str, TopicState]]:
    async with Cluster(config) as cluster:
        wanted = plan(config, await cluster.brokers())
        return wanted, await cluster.topics([t.name for t in wanted])


async def apply(config: Config, dry_run: bool = False) -> list[Change]:
    """Compute the changes; make them unless one is refused (or ``dry_run``)."""
    async with Cluster(config) as cluster:
        wanted = plan(config, await cluster.brokers())
        have = await cluster.topics([t.name for t in wanted])
        todo = list(changes(wanted, have))
        if dry_run or any(c.kind == "refuse" for c in todo):
            return todo
        kinds = {(c.topic, c.kind) for c in todo}
        by_name = {t.name: t for t in wanted}
        create = [t for t in wanted if (t.name, "create") in kinds]
        if create:
            await cluster.create(create)
        grow = {t.name: t.partitions for t in wanted if (t.name, "partitions") in kinds}
        if grow:
            await cluster.add_partitions(grow)
        alter = {
            name: have[name].overrides | by_name[name].configs
            for name, kind in kinds
            if kind == "config"
        }
        if alter:
            await cluster.set_configs(alter)
        return todo


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("topics", help="the topics against the topic plan")
    actions = p.add_subparsers(dest="action", required=True)
    d = actions.add_parser("describe", help="every topic's settings beside the plan's")
    configuration.add_flags(d, *FLAGS)
    d.set_defaults(func=_describe)
    a = actions.add_parser("apply", help="create or alter topics to match the plan")
    configuration.add_flags(a, *FLAGS)
    a.add_argument("--dry-run", action="store_true", help="print the changes, make none")
    a.set_defaults(func=_apply)


def _load(args: argparse.Namespace) -> Config:
    return configuration.load(None, **configuration.flag_values(args, *FLAGS))


def _describe(args: argparse.Namespace) -> int:
    config = _load(args)
    try:
        wanted, have = asyncio.run(describe(config))
    except (KafkaError, TopicsFailed) as exc:
        print(f"plug-pipeline: Kafka at {config.bootstrap_servers}: {exc}")
        return EXIT_FAILED
    for line in describe_lines(wanted, have):
        print(line)
    return EXIT_OK


def describe_lines(wanted: list[TopicPlan], have: dict[str, TopicState]) -> Iterator[str]:
    """One line per topic: each value, and the plan's where the cluster differs."""
    for t in wanted:
        state = have.get(t.name)
        if state is None:
            planned = f"{t.partitions} partitions, replication {t.replication}"
            yield f"{t.name}: missing (plan: {planned})"
            continue
        fields: list[tuple[str, Any, Any]] = [
            ("partitions", state.partitions, t.partitions),
            ("replication", state.replication, t.replication),
            *((k, state.configs.get(k), t.configs[k]) for k in PLANNED_KEYS),
        ]
        shown = (f"{k}={v}" if str(v) == str(p) else f"{k}={v} (plan: {p})" for k, v, p in fields)
        yield f"{t.name}: {' '.join(shown)}"


def _apply(args: argparse.Namespace) -> int:
    config = _load(args)
    try:
        todo = asyncio.run(apply(config, dry_run=args.dry_run))
    except (KafkaError, TopicsFailed) as exc:
        print(f"plug-pipeline: Kafka at {config.bootstrap_servers}: {exc}")
        return EXIT_FAILED
    refused = any(c.kind == "refuse" for c in todo)
    for c in todo:
        print(f"{c.kind} {c.topic}: {c.text}")
    if refused:
        print("nothing changed: a change was refused")
        return EXIT_FAILED
    if not todo:
        print("no changes: every topic matches the plan")
    elif args.dry_run:
        print("dry run: nothing changed")
    return EXIT_OK
