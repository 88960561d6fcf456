"""Fixtures of the integration tests: the shared broker, one ingress, a broker of one's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.webhooks import all_topics
from tests.support import kafka
from tests.support.brokers import LocalKafka
from tests.support.ingress import Ingress, start_ingress, stop_ingress


@pytest.fixture(scope="session")
def broker() -> str:
    if not kafka.broker_reachable():
        pytest.fail(f"no Kafka at {kafka.BOOTSTRAP}: run `make kafka-up` (make test does)")
    return kafka.BOOTSTRAP


@pytest.fixture(scope="session")
def ingress(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    """One ingress for the session, on topics of its own so runs never mix."""
    prefix = f"it{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix))
    running = start_ingress(tmp_path_factory.mktemp("ingress"), prefix)
    yield running
    stop_ingress(running)


_LAST = "tests/integration/test_secrets_never_logged.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The secrets test reads every ingress log of the session: it runs last."""
    last = [i for i in items if i.nodeid.startswith(_LAST)]
    items[:] = [i for i in items if i not in last] + last


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A single-node broker of the test's own, to stop, kill and restart."""
    broker = LocalKafka(tmp_path / "kafka").up()
    try:
        yield broker
    finally:
        broker.clean()
