"""A small contact centre with known times, as Plug webhooks, for the KPI view tests.

Times are local to America/Sao_Paulo (UTC-3 all year since 2019). The figures each
view must give are worked out by hand in the comments and in ``tests/integration/
test_kpi_views.py``; nothing here computes them.

Tenant ``acme``, customers C1..C4, 2025-03-10 and 2025-03-11:

    #101 C1 Suporte  Ana→Ana     req 12:00:00 start 12:02:00 end 12:10:00
         chat: C 12:00:00, auto 12:00:05, Ana 12:02:30, C 12:03:00, Ana 12:04:00
         wait 120, handle 480, first response 150 (12:02:30 - 12:00:00), 2 in/2 out/1 auto
         categories: legacy "Suporte"; C1 asks again at 20:00 (#103): recontact
    #102 C2 Suporte  Bruno→Ana   req 12:04:00 start 12:04:30 end 12:09:30  (transferred)
         chat: C 12:04:00, Ana 12:04:40 -> wait 30, handle 300, first response 40
         finished twice: the later finish (item "Troca") replaces the first ("Dúvida")
    #103 C1 Vendas   Ana→Ana     req 20:00:00 start 20:01:00 end 21:30:00
         ends 00:30 UTC on the 11th but 21:30 local on the 10th: counts on the 10th
         chat: C 20:00:00, Ana 20:00:50 -> wait 60, handle 5340, first response 50
    #104 C3 Suporte  Bruno→Bruno req 09:00 start 09:05 end 09:20 on the 11th
         chat: C 09:00:00 only -> wait 300, handle 900, unanswered (SLA missed)
    #105 C4 Suporte  Bruno→Bruno req 09:58 start 10:00 on the 11th, no end time:
         its day is its received_at (10:30 on the 11th); wait 120, first response 140
    #106 C2 Vendas   started 11:00 on the 11th, not finished

Tenant ``globex``: #101 on the 10th (the same number as acme's): req 10:00:00 start
10:00:10 end 10:05:00, first response 10 s.

Outbound messages (acme, instance I1) on the 10th: M1 sent 12:02:30, RECEIVED +2 s,
READ +10 s; M2 sent 12:03:00, READ +20 s (no RECEIVED); M3 failed 12:04:00 "Phone number
does not exist"; M4 sent 12:05:00, no status.

Instances: I1 disconnects at 14:00:00 on the 10th (Plug sends seconds) and receives a
message at 14:05:00 (down 300 s); I2 disconnects at 15:00:00 and is not heard from
again; one disconnect at 16:00:00 carries no instance id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from pipeline import ingest
from pipeline.consume.decode import AnyEvent, decode_event, event_type_of_header
from pipeline.record import Record
from pipeline.warehouse.target import open_target
from pipeline.warehouse.views import ViewSettings
from pipeline.webhooks import Webhook
from tests.support.warehouse import write_records

ZONE = dt.timezone(dt.timedelta(hours=-3))  # America/Sao_Paulo in March 2025
DAY1 = dt.date(2025, 3, 10)
DAY2 = dt.date(2025, 3, 11)


def ms(day: dt.date, clock: str) -> int:
    """Epoch ms of a local wall-clock time (``HH:MM:SS``) on ``day``."""
    h, m, s = (int(x) for x in clock.split(":"))
    return int(dt.datetime(day.year, day.month, day.day, h, m, s, tzinfo=ZONE).timestamp() * 1000)


def _msg(
    mid: str, phone: str, at: int, *, from_me: bool, automatic: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messageId": mid,
        "phone": phone,
        "fromMe": from_me,
        "momment": at,
        "status": "RECEIVED" if not from_me else "SENT",
        "text": {"message": f"text of {mid}"},
    }
    if from_me:
        body["isAutomaticMessage"] = automatic
    else:
        body.update({"type": "ReceivedCallback", "instanceId": "I1", "senderName": "customer"})
    return body


def _chat(phone: str, entries: list[tuple[str, str, int]]) -> dict[str, Any]:
    """``(id, who, at)`` with who in customer / operator / auto -> Plug's chat map."""
    return {
        mid: _msg(mid, phone, at, from_me=who != "customer", automatic=who == "auto")
        for mid, who, at in entries
    }


def _attendance(
    number: int,
    phone: str,
    department: str,
    *,
    request: int | None = None,
    start: int | None = None,
    end: int | None = None,
    operator: str | None = None,
    finished_by: str | None = None,
    started: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    att: dict[str, Any] = {
        "attendanceNumber": number,
        "customer": {"name": f"customer {phone[-1]}", "phone": phone},
        "departament": department,
        "startTime": start,
    }
    if started:
        att.update({"operator": operator, "momment": start, "status": "PROGRESS"})
    else:
        att.update(
            {
                "requestTime": request,
                "endTime": end,
                "finishBy": finished_by,
                "status": "FINISH",
                "operatorReport ": "",
                "ratingObservation": "",
            }
        )
    att.update(extra or {})
    return att


C1, C2, C3, C4 = "5511900000001", "5511900000002", "5511900000003", "5511900000004"
Item = tuple[str, Webhook, dict[str, Any], int]  # tenant, webhook, body, received_at


def _pair(
    tenant: str,
    number: int,
    phone: str,
    department: str,
    day: dt.date,
    times: tuple[str, str, str | None],
    operators: tuple[str, str],
    chat: list[tuple[str, str, str]],
    extra: dict[str, Any] | None = None,
    received: str | None = None,
) -> list[Item]:
    """A start and a finish webhook of one attendance; ``times`` = request, start, end."""
    request, start, end = (ms(day, t) if t else None for t in times)
    assert request is not None
    assert start is not None
    entries = [(mid, who, ms(day, at)) for mid, who, at in chat]
    begun = [e for e in entries if e[2] <= start]
    start_body = {
        "attendance": _attendance(
            number, phone, department, start=start, operator=operators[0], started=True
        ),
        "chat": _chat(phone, begun),
    }
    finish_body = {
        "attendance": _attendance(
            number,
            phone,
            department,
            request=request,
            start=start,
            end=end,
            finished_by=operators[1],
            extra=extra,
        ),
        "chat": _chat(phone, entries),
    }
    finished_at = ms(day, received) if received else (end or start) + 1000
    return [
        (tenant, Webhook.START_ATTENDANCE, start_body, start + 500),
        (tenant, Webhook.FINISH_ATTENDANCE, finish_body, finished_at),
    ]


def _attendances() -> list[Item]:
    items: list[Item] = []
    items += _pair(
        "acme", 101, C1, "Suporte", DAY1, ("12:00:00", "12:02:00", "12:10:00"), ("Ana", "Ana"),
        [("a1", "customer", "12:00:00"), ("a2", "auto", "12:00:05"),
         ("a3", "operator", "12:02:30"), ("a4", "customer", "12:03:00"),
         ("a5", "operator", "12:04:00")],
        extra={"attendanceCategory": {"id": "cat-sup", "name": "Suporte", "color": "#2ECC71"}},
    )  # fmt: skip
    first, second = (
        {"attendanceCategories": [{"categoryId": "motivo", "categoryName": "Motivo",
                                   "color": "#9B59B6", "itemId": item, "itemName": name}]}
        for item, name in (("duvida", "Dúvida"), ("troca", "Troca"))
    )  # fmt: skip
    pair = _pair(
        "acme", 102, C2, "Suporte", DAY1, ("12:04:00", "12:04:30", "12:09:30"), ("Bruno", "Ana"),
        [("b1", "customer", "12:04:00"), ("b2", "operator", "12:04:40")], extra=first,
    )  # fmt: skip
    items += pair
    # The same attendance finished again a minute later (a corrected category): it wins.
    again = {**pair[1][2], "attendance": {**pair[1][2]["attendance"], **second}}
    items.append(("acme", Webhook.FINISH_ATTENDANCE, again, pair[1][3] + 60_000))
    items += _pair(
        "acme", 103, C1, "Vendas", DAY1, ("20:00:00", "20:01:00", "21:30:00"), ("Ana", "Ana"),
        [("c1", "customer", "20:00:00"), ("c2", "operator", "20:00:50")],
    )  # fmt: skip
    items += _pair(
        "acme", 104, C3, "Suporte", DAY2, ("09:00:00", "09:05:00", "09:20:00"),
        ("Bruno", "Bruno"), [("d1", "customer", "09:00:00")],
    )  # fmt: skip
    items += _pair(
        "acme", 105, C4, "Suporte", DAY2, ("09:58:00", "10:00:00", None), ("Bruno", "Bruno"),
        [("e1", "customer", "09:58:00"), ("e2", "operator", "10:00:20")], received="10:30:00",
    )  # fmt: skip
    start_only = _attendance(
        106, C2, "Vendas", start=ms(DAY2, "11:00:00"), operator="Carla", started=True
    )
    items.append(
        ("acme", Webhook.START_ATTENDANCE, {"attendance": start_only, "chat": {}},
         ms(DAY2, "11:00:01"))
    )  # fmt: skip
    items += _pair(
        "globex", 101, "5521900000009", "Suporte", DAY1, ("10:00:00", "10:00:10", "10:05:00"),
        ("Zé", "Zé"), [("g1", "customer", "10:00:00"), ("g2", "operator", "10:00:10")],
    )  # fmt: skip
    return items


def _delivery() -> list[Item]:
    def sent(mid: str, at: int, error: str | None = None) -> Item:
        body: dict[str, Any] = {
            "phone": C1,
            "zaapId": f"z-{mid}",
            "messageId": mid,
            "type": "DeliveryCallback",
            "instanceId": "I1",
            "momment": at,
        }
        if error:
            body["error"] = error
            return ("acme", Webhook.MESSAGE_DELIVERY_ERROR, body, at + 100)
        return ("acme", Webhook.SENDING_MESSAGE, body, at + 100)

    def status(mid: str, value: str, at: int) -> Item:
        body = {"status": value, "ids": [mid], "phone": C1, "instanceId": "I1", "momment": at,
                "type": "MessageStatusCallback"}  # fmt: skip
        return ("acme", Webhook.MESSAGE_STATUS, body, at + 100)

    t1, t2, t3, t4 = (ms(DAY1, t) for t in ("12:02:30", "12:03:00", "12:04:00", "12:05:00"))
    return [
        sent("M1", t1),
        status("M1", "RECEIVED", t1 + 2000),
        status("M1", "READ", t1 + 10_000),
        sent("M2", t2),
        status("M2", "READ", t2 + 20_000),
        sent("M3", t3, error="Phone number does not exist"),
        sent("M4", t4),
    ]


def _instances() -> list[Item]:
    def down(instance: str | None, clock: str) -> Item:
        body: dict[str, Any] = {
            "momment": ms(DAY1, clock) // 1000,  # seconds, as Plug sends it
            "error": "Device has been disconnected",
            "disconnected": True,
            "type": "DisconnectedCallback",
        }
        if instance:
            body["instanceId"] = instance
        return ("acme", Webhook.WHEN_DISCONNECTING, body, ms(DAY1, clock) + 100)

    back = _msg("r1", C3, ms(DAY1, "14:05:00"), from_me=False)
    return [
        down("I1", "14:00:00"),
        ("acme", Webhook.RECEIVE_MESSAGE, back, ms(DAY1, "14:05:00") + 100),
        down("I2", "15:00:00"),
        down(None, "16:00:00"),
    ]


def items() -> list[Item]:
    return _attendances() + _delivery() + _instances()


def records() -> list[Record]:
    """Every fixture webhook as the ingress would publish it."""
    return [
        ingest.ingest(webhook, tenant, orjson.dumps(body), received_at, "plug")
        for tenant, webhook, body, received_at in items()
    ]


def events() -> list[AnyEvent]:
    """Every fixture webhook as a consumer of the topics reads it, in the order received."""
    found = []
    for record in records():
        event_type = event_type_of_header(dict(record.headers)["event-type"])
        assert event_type is not None
        found.append(decode_event(event_type, record.value))
    return sorted(found, key=lambda e: e.received_at)


def load(
    where: str, these: list[Record] | None = None, settings: ViewSettings | None = None
) -> None:
    """Migrate ``where`` and write ``these`` (the centre's records by default) through the
    warehouse's own batch writer; no Kafka involved."""
    target = open_target(where, settings)
    try:
        target.migrate()
        write_records(target, records() if these is None else these)
    finally:
        target.close()
