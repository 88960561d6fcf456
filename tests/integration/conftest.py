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
from tests.support.testnet import namespaces, root_links


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


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A single-node broker of the test's own, to stop, kill and restart."""
    broker = LocalKafka(tmp_path / "kafka").up()
    try:
        yield broker
    finally:
        broker.clean()


@pytest.fixture(scope="session", autouse=True)
def no_test_network_left() -> Iterator[None]:
    """No namespace or link of a test network outlives the session (each test's network
    is removed by its own fixture, failed or not; this says so if one was not)."""
    before = {*namespaces(), *root_links()}
    yield
    left = {*namespaces(), *root_links()} - before
    assert not left, f"test networks left behind: {sorted(left)} (make testnet-clean)"
