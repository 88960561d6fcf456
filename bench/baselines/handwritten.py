"""The hand-written baseline: the webhook service a user would write without plug-pipeline.

FastAPI + pydantic v2 models of the bodies + one aiokafka ``send_and_wait`` per request
(acks=all, enable_idempotence=True, aiokafka's defaults otherwise), served by uvicorn
with one worker. Same durability promise as the ingress (200 only after the broker's
ack), none of its normalisation, dead-lettering or overload control.
``make bench`` (``bench/e2e/``) runs it.

    python bench/baselines/handwritten.py --port 18082 --bootstrap-servers 127.0.0.1:19092
"""

from __future__ import annotations

import argparse
import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, ConfigDict

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
TOKEN = os.environ.get("HANDWRITTEN_TOKEN", "bench-token")
TOPIC_PREFIX = os.environ.get("HANDWRITTEN_TOPIC_PREFIX", "handwritten")


class Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Text(Loose):
    message: str | None = None


class Image(Loose):
    imageUrl: str | None = None
    mimeType: str | None = None
    caption: str | None = None


class Audio(Loose):
    audioUrl: str | None = None
    mimeType: str | None = None
    seconds: int | None = None


class Document(Loose):
    documentUrl: str | None = None
    mimeType: str | None = None
    fileName: str | None = None


class ReceivedMessage(Loose):
    """Plug's ReceivedCallback (receive-message), and one entry of a transcript's chat."""

    type: str | None = None
    instanceId: str | None = None
    messageId: str | None = None
    phone: str | None = None
    fromMe: bool | None = None
    momment: int | None = None
    status: str | None = None
    chatName: str | None = None
    senderName: str | None = None
    senderPhoto: str | None = None
    photo: str | None = None
    isGroup: bool | None = None
    isNewsletter: bool | None = None
    isEdit: bool | None = None
    isStatusReply: bool | None = None
    waitingMessage: bool | None = None
    isAutomaticMessage: bool | None = None
    connectedPhone: str | None = None
    senderLid: str | None = None
    chatLid: str | None = None
    participantPhone: str | None = None
    broadcast: bool | None = None
    forwarded: bool | None = None
    fromApi: bool | None = None
    text: Text | None = None
    image: Image | None = None
    audio: Audio | None = None
    document: Document | None = None
    reaction: dict[str, Any] | None = None
    location: dict[str, Any] | None = None


class MessageStatus(Loose):
    status: str
    ids: list[str]
    phone: str | None = None
    type: str | None = None
    momment: int | None = None
    instanceId: str | None = None
    phoneDevice: int | None = None
    isGroup: bool | None = None


class Customer(Loose):
    name: str | None = None
    phone: str | None = None


class Attendance(Loose):
    attendanceNumber: int | str
    customer: Customer = Customer()
    departament: str | None = None
    status: str | None = None
    startTime: int | None = None
    endTime: int | None = None
    requestTime: int | None = None
    finishBy: str | None = None
    operator: str | None = None
    ratingObservation: str | None = None
    attendanceCategory: dict[str, Any] | None = None
    attendanceCategories: list[dict[str, Any]] | None = None


class FinishAttendance(Loose):
    attendance: Attendance
    chat: dict[str, ReceivedMessage] = {}


producer: AIOKafkaProducer | None = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global producer
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        yield
    finally:
        await producer.stop()


app = FastAPI(lifespan=lifespan)


def check(token: str) -> None:
    if not hmac.compare_digest(token.encode(), TOKEN.encode()):
        raise HTTPException(status_code=401, detail="bad token")


async def publish(topic: str, key: str | None, model: BaseModel) -> dict[str, str]:
    assert producer is not None
    value = model.model_dump_json().encode()
    await producer.send_and_wait(
        f"{TOPIC_PREFIX}.{topic}", value, key=key.encode() if key else None
    )
    return {"status": "published"}


@app.post("/webhooks/receive-message")
async def receive_message(body: ReceivedMessage, token: str = Query()) -> dict[str, str]:
    check(token)
    return await publish("message.received", body.phone, body)


@app.post("/webhooks/message-status")
async def message_status(body: MessageStatus, token: str = Query()) -> dict[str, str]:
    check(token)
    return await publish("message.status", body.phone, body)


@app.post("/webhooks/finish-attendance")
async def finish_attendance(body: FinishAttendance, token: str = Query()) -> dict[str, str]:
    check(token)
    return await publish("attendance.finished", body.attendance.customer.phone, body)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    global BOOTSTRAP
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18082)
    parser.add_argument("--bootstrap-servers", default=BOOTSTRAP)
    args = parser.parse_args()
    BOOTSTRAP = args.bootstrap_servers
    # What `pip install "fastapi[standard]"` gives: uvloop and httptools when installed.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        workers=1,
        access_log=False,
        log_level="warning",
        loop="auto",
        http="auto",
    )


if __name__ == "__main__":
    main()
