"""POST to the running ingress, read back from Kafka with librdkafka."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
import orjson
import pytest

from pipeline import ingest
from pipeline.webhooks import EventType, Webhook, all_topics
from tests.support import kafka
from tests.support.ingress import Ingress, start_ingress, stop_ingress
from tests.support.payloads import FIXTURES, corpus_files, fixture_bytes

JSON = {"Content-Type": "application/json"}

DELIVERY_ERROR = (
    b'{"phone": "554499999999", "zaapId": "Z1", "messageId": "M1", "type": "DeliveryCallback",'
    b' "instanceId": "instance.id", "error": "Phone number does not exist"}'
)

# One body per webhook -> (event type, key identity)
SEVEN: list[tuple[Webhook, bytes, EventType, str]] = [
    (
        Webhook.FINISH_ATTENDANCE,
        fixture_bytes("seed/finish-attendance-example-2.json"),
        EventType.ATTENDANCE_FINISHED,
        "554499999999",
    ),
    (
        Webhook.START_ATTENDANCE,
        fixture_bytes("seed/start-attendance.json"),
        EventType.ATTENDANCE_STARTED,
        "554499999999",
    ),
    (
        Webhook.RECEIVE_MESSAGE,
        fixture_bytes("receive-message/text.json"),
        EventType.MESSAGE_RECEIVED,
        "5544999999999",
    ),
    (
        Webhook.SENDING_MESSAGE,
        fixture_bytes("sending-message/delivery.json"),
        EventType.MESSAGE_SENT,
        "554499999999",
    ),
    (
        Webhook.MESSAGE_DELIVERY_ERROR,
        DELIVERY_ERROR,
        EventType.MESSAGE_DELIVERY_FAILED,
        "554499999999",
    ),
    (
        Webhook.MESSAGE_STATUS,
        fixture_bytes("message-status/read-self.json"),
        EventType.MESSAGE_STATUS,
        "5544999999999",
    ),
    (
        Webhook.WHEN_DISCONNECTING,
        fixture_bytes("when-disconnecting/disconnected.json"),
        EventType.INSTANCE_DISCONNECTED,
        "instance.id",
    ),
]


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes
) -> tuple[int, dict[str, object]]:
    async with session.post(url, data=body, headers=JSON) as resp:
        return resp.status, orjson.loads(await resp.read())


def by_event_id(records: list[kafka.Record]) -> dict[str, list[kafka.Record]]:
    found: dict[str, list[kafka.Record]] = {}
    for r in records:
        found.setdefault(r.event_id, []).append(r)
    return found


async def test_all_seven_webhooks_reach_their_topics(ingress: Ingress) -> None:
    acked: dict[str, tuple[Webhook, EventType, str]] = {}
    async with aiohttp.ClientSession() as session:
        for hook, body, event_type, identity in SEVEN:
            status, answer = await post(session, ingress.webhook_url(hook.value), body)
            assert status == 200, answer
            assert answer["status"] == "published"
            acked[str(answer["event_id"])] = (hook, event_type, identity)
    topics = [ingress.topic(e.topic_suffix) for e in EventType]
    found = by_event_id(kafka.read_all(topics, want=acked))
    for event_id, (hook, event_type, identity) in acked.items():
        [record] = found[event_id]
        assert record.topic == ingress.topic(event_type.topic_suffix)
        assert record.key == f"acme:{identity}".encode()
        assert record.headers["event-type"] == event_type.value.encode()
        assert record.headers["tenant"] == b"acme"
        assert record.headers["schema-version"] == b"1"
        assert record.headers["content-type"] == b"application/json"
        assert record.headers["webhook"] == hook.value.encode()
        envelope = orjson.loads(record.value)
        assert envelope["event_id"] == event_id
        assert envelope["event_type"] == event_type.value
        assert envelope["schema_version"] == 1
        assert envelope["tenant"] == "acme"
        assert envelope["received_at"] > 1_700_000_000_000
        assert isinstance(envelope["data"], dict)


async def test_seed_examples_byte_for_byte(ingress: Ingress) -> None:
    cases = {
        "finish-attendance-example-1.json": Webhook.FINISH_ATTENDANCE,
        "finish-attendance-example-2.json": Webhook.FINISH_ATTENDANCE,
        "start-attendance.json": Webhook.START_ATTENDANCE,
    }
    ids: dict[str, str] = {}
    async with aiohttp.ClientSession() as session:
        for name, hook in cases.items():
            # globex: the same bodies were sent as acme elsewhere; ids differ per tenant
            status, answer = await post(
                session, ingress.webhook_url(hook.value, "globex"), fixture_bytes(f"seed/{name}")
            )
            assert status == 200, answer
            ids[name] = str(answer["event_id"])
    topics = [ingress.topic("attendance.finished"), ingress.topic("attendance.started")]
    found = by_event_id(kafka.read_all(topics, want=ids.values()))
    data = {name: orjson.loads(found[eid][0].value)["data"] for name, eid in ids.items()}

    one = data["finish-attendance-example-1.json"]
    assert [m["content"]["message"] for m in one["messages"]] == [
        "mensagem enviada",
        "só um momento",
    ]  # the chat repeats its key: both messages kept, ordered by moment
    assert one["categories"] == [
        {
            "category_id": "id da categoria",
            "category_name": "nome da categoria",
            "color": "#DDDD",
            "item_id": None,
            "item_name": None,
        }
    ]
    assert one["operator_report"] == "Relato do operador"
    assert one["department"] == "Nome do departamento"
    assert one["finished_by"] == "Nome do operador"
    assert one["end_time"] == 1651065481865

    two = data["finish-attendance-example-2.json"]
    assert [c["category_name"] for c in two["categories"]] == ["Padrão", "nome_categoria"]
    assert len(two["messages"]) == 2

    started = data["start-attendance.json"]
    assert started["operator"] == "Nome do operador"
    assert started["status"] == "PROGRESS"
    assert started["moment"] == 1651065472000
    assert len(started["messages"]) == 2
    assert started["messages"][1]["is_automatic"] is True


async def test_every_corpus_payload_is_accepted_and_published(ingress: Ingress) -> None:
    files = corpus_files()
    assert files  # derived from the folder: an empty one must not pass
    acked: dict[str, Path] = {}
    async with aiohttp.ClientSession() as session:
        for path in files:
            status, answer = await post(
                session, ingress.webhook_url(path.parent.name, "globex"), path.read_bytes()
            )
            assert status == 200, (path, answer)
            acked[str(answer["event_id"])] = path
    topics = [ingress.topic(e.topic_suffix) for e in EventType]
    found = by_event_id(kafka.read_all(topics, want=acked))
    missing = [str(p) for eid, p in acked.items() if eid not in found]
    assert missing == []


async def test_conversation_shares_a_key_and_tenants_do_not(ingress: Ingress) -> None:
    received = fixture_bytes("receive-message/image.json")
    status_body = fixture_bytes("message-status/read.json")  # same chat phone
    async with aiohttp.ClientSession() as session:
        _, a = await post(session, ingress.webhook_url("receive-message", "acme"), received)
        _, b = await post(session, ingress.webhook_url("message-status", "acme"), status_body)
        _, c = await post(session, ingress.webhook_url("receive-message", "globex"), received)
    topics = [ingress.topic("message.received"), ingress.topic("message.status")]
    ids = [str(x["event_id"]) for x in (a, b, c)]
    found = by_event_id(kafka.read_all(topics, want=ids))
    key_a = found[str(a["event_id"])][0].key
    key_b = found[str(b["event_id"])][0].key
    key_c = found[str(c["event_id"])][0].key
    assert key_a == key_b == b"acme:5544999999999"
    assert key_c == b"globex:5544999999999"


async def test_redelivered_webhook_keeps_its_event_id(ingress: Ingress) -> None:
    body = fixture_bytes("receive-message/audio-ptt.json")
    async with aiohttp.ClientSession() as session:
        _, first = await post(session, ingress.webhook_url("receive-message"), body)
        _, second = await post(session, ingress.webhook_url("receive-message"), body)
    assert first["event_id"] == second["event_id"]
    found = by_event_id(
        kafka.read_all([ingress.topic("message.received")], until=10**9, timeout_s=5)
    )
    # both deliveries are in Kafka, recognisable downstream by their shared id
    assert len(found[str(first["event_id"])]) >= 2


async def test_bad_body_is_400_and_its_raw_bytes_are_dead_lettered(ingress: Ingress) -> None:
    body = b'{"status": "READ", "ids": "not-a-list", \xff}'
    async with (
        aiohttp.ClientSession() as session,
        session.post(ingress.webhook_url("message-status"), data=body, headers=JSON) as resp,
    ):
        assert resp.status == 400
        error = orjson.loads(await resp.read())
    assert error["error"] == "invalid_json"
    eid = ingest.event_id("acme", Webhook.MESSAGE_STATUS, body)
    records = kafka.read_all([ingress.topic("deadletter")], want=[eid])
    [dead] = [r for r in records if r.value == body]
    assert dead.key == b"acme:message-status"
    assert dead.headers["webhook"] == b"message-status"
    assert dead.headers["tenant"] == b"acme"
    assert dead.headers["error-reason"] == b"invalid_json"
    assert dead.headers["error-message"]
    assert int(dead.headers["received-at"]) > 1_700_000_000_000


async def test_unauthorised_publishes_nothing(ingress: Ingress) -> None:
    marker = uuid.uuid4().hex
    bodies = [
        orjson.dumps({"type": "ReceivedCallback", "phone": "5511", "text": {"message": m}})
        for m in (marker, marker + "-authorised")
    ]
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{ingress.url}/webhooks/receive-message?token=nope", data=bodies[0], headers=JSON
        ) as resp:
            assert resp.status == 401
        status, answer = await post(session, ingress.webhook_url("receive-message"), bodies[1])
        assert status == 200
    records = kafka.read_all([ingress.topic("message.received")], want=[str(answer["event_id"])])
    texts = [orjson.loads(r.value)["data"]["content"].get("message") for r in records]
    assert marker + "-authorised" in texts
    assert marker not in texts


async def test_long_transcript_is_published(ingress: Ingress) -> None:
    messages = {
        f"M{i:04d}": {
            "messageId": f"M{i:04d}",
            "momment": 1651065478000 + i,
            "phone": "554433332222",
            "fromMe": i % 2 == 0,
            "text": {"message": f"message number {i}"},
        }
        for i in range(400)
    }
    body = orjson.dumps(
        {
            "attendance": {
                "attendanceNumber": 7,
                "customer": {"name": "Ana", "phone": "554433332222"},
                "status": "FINISH",
            },
            "chat": messages,
        }
    )
    async with aiohttp.ClientSession() as session:
        status, answer = await post(session, ingress.webhook_url("finish-attendance"), body)
    assert status == 200
    found = by_event_id(
        kafka.read_all([ingress.topic("attendance.finished")], want=[str(answer["event_id"])])
    )
    data = orjson.loads(found[str(answer["event_id"])][0].value)["data"]
    assert [m["message_id"] for m in data["messages"]] == sorted(messages)


async def test_kafka_unreachable_without_spool_gives_503_quickly_and_not_ready(
    broker: str, tmp_path: Path
) -> None:
    # a port where nothing listens: the ingress starts, but cannot make anything durable
    dead = start_ingress(
        tmp_path,
        "unreachable",
        bootstrap="127.0.0.1:1",
        ready=False,
        PLUG_PIPELINE_ACK_TIMEOUT_S="1",
        PLUG_PIPELINE_SPOOL_DIR="none",
    )
    try:
        assert dead.status("/readyz") == 503
        async with aiohttp.ClientSession() as session:
            started = asyncio.get_running_loop().time()
            async with session.post(
                dead.webhook_url("receive-message"),
                data=fixture_bytes("receive-message/text.json"),
                headers=JSON,
            ) as resp:
                assert resp.status == 503
                assert int(resp.headers["Retry-After"]) > 0
            # bounded: an answer, not a hang (the client's own limit is far above this)
            assert asyncio.get_running_loop().time() - started < 10
    finally:
        stop_ingress(dead)


async def test_kafka_unreachable_with_spool_answers_spooled_and_not_ready(
    broker: str, tmp_path: Path
) -> None:
    dead = start_ingress(
        tmp_path, "unreachable", bootstrap="127.0.0.1:1", ready=False,
        PLUG_PIPELINE_ACK_TIMEOUT_S="1",
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            status, answer = await post(
                session,
                dead.webhook_url("receive-message"),
                fixture_bytes("receive-message/text.json"),
            )
            assert (status, answer["status"]) == (200, "spooled")
            async with session.get(dead.url + "/readyz") as resp:
                assert resp.status == 503
                figures = orjson.loads(await resp.read())
        assert figures["spool_depth"] == 2  # the event and its raw body
        assert figures["spool_writable"] is True
    finally:
        stop_ingress(dead)


@pytest.mark.parametrize("webhook", [w.value for w in Webhook])
def test_fixture_folders_match_webhooks(webhook: str) -> None:
    if webhook != "message-delivery-error":  # the docs publish no example of it
        assert list((FIXTURES / webhook).glob("*.json"))


def test_missing_topics_are_created_at_start(broker: str, tmp_path: Path) -> None:
    prefix = f"new{uuid.uuid4().hex[:8]}"
    ingress = start_ingress(tmp_path, prefix, PLUG_PIPELINE_TOPIC_PARTITIONS="4")
    try:
        metadata = kafka.admin().list_topics(timeout=10)
    finally:
        stop_ingress(ingress)
    made = {t: len(m.partitions) for t, m in metadata.topics.items() if t.startswith(prefix)}
    assert made == dict.fromkeys(all_topics(prefix), 4)
