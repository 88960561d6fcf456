"""A broker that denies the ingress's writes (an ACL) while it answers metadata: every
webhook is still kept (spooled, 200), `/healthz` says at once that the ingress cannot
heal and why, and when the ACL goes the spool drains and the ingress is healthy again.
Provoked for real: a broker of the test's own with Kafka's authorizer."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin._acl import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
)
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

from pipeline.webhooks import all_topics
from tests.support import kafka
from tests.support.brokers import LocalKafka
from tests.support.ingress import Ingress, start_ingress, stop_ingress
from tests.support.probe import post, readyz

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    broker = LocalKafka(tmp_path / "kafka")
    broker.authorizer = True
    broker.up()
    try:
        yield broker
    finally:
        broker.clean()


def healthz(ingress: Ingress) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(ingress.url + "/healthz", timeout=5) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def body(n: int) -> bytes:
    return orjson.dumps({
        "type": "ReceivedCallback", "phone": "5511", "messageId": f"acl-{n}",
        "momment": 1_735_700_000_000 + n, "text": {"message": f"acl test {n}"},
    })  # fmt: skip


def test_writes_denied_by_an_acl_are_kept_and_said_then_recovered(
    acl_broker: LocalKafka, tmp_path: Path
) -> None:
    prefix = f"acl{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix), bootstrap=acl_broker.bootstrap)
    ingress = start_ingress(tmp_path, prefix, bootstrap=acl_broker.bootstrap)
    admin = kafka.admin(acl_broker.bootstrap)
    deny = AclBinding(
        ResourceType.TOPIC, prefix, ResourcePatternType.PREFIXED, "User:ANONYMOUS", "*",
        AclOperation.WRITE, AclPermissionType.DENY,
    )  # fmt: skip
    acked: list[str] = []
    answers: list[str] = []
    n = 0

    def send() -> None:
        nonlocal n
        status, answer = post(ingress, "receive-message", body(n))
        n += 1
        answers.append(f"{status} {answer.get('status', answer.get('error'))}")
        if status == 200:
            acked.append(str(answer["event_id"]))

    try:
        for _ in range(5):
            send()
        assert answers == ["200 published"] * 5
        for future in admin.create_acls([deny]).values():
            future.result(30)
        denied_at = time.monotonic()
        while healthz(ingress)[0] == 200:  # polling: the ACL reaches the broker, then a write
            assert time.monotonic() - denied_at < 60, answers
            send()
        said = time.monotonic() - denied_at
        status, figures = healthz(ingress)
        assert status == 503
        assert "denies this client's writes" in str(figures), figures
        for _ in range(5):
            send()  # still kept while denied
        assert answers[-5:] == ["200 spooled"] * 5
        filters = AclBindingFilter(
            ResourceType.TOPIC, prefix, ResourcePatternType.PREFIXED, "User:ANONYMOUS", "*",
            AclOperation.WRITE, AclPermissionType.DENY,
        )  # fmt: skip
        for future in admin.delete_acls([filters]).values():
            future.result(30)
        lifted_at = time.monotonic()
        while healthz(ingress)[0] != 200 or readyz(ingress).get("spool_depth") != 0:
            assert time.monotonic() - lifted_at < 120, readyz(ingress)
            time.sleep(0.2)  # polling the drain
        recovered = time.monotonic() - lifted_at
        found = kafka.read_all(
            [f"{prefix}.message.received"], want=acked, timeout_s=60,
            bootstrap=acl_broker.bootstrap,
        )  # fmt: skip
    finally:
        stop_ingress(ingress)
    assert set(answers) <= {"200 published", "200 spooled"}, answers
    assert set(acked) <= {r.event_id for r in found}
    print(
        f"ACL denial: /healthz 503 {said:.1f}s after the ACL, {answers.count('200 spooled')} "
        f"spooled; healthy and drained {recovered:.1f}s after it was lifted"
    )
