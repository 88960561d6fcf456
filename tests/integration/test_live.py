"""``plug-pipeline live`` on the real Kafka, fed by a real ingress, read over HTTP.

The KPI fixtures' first day is moved to today in a time zone where it is 22:00 now, so
the whole day is over and still today. Its figures are the hand-worked ``KPI_EXPECTED``;
then a simulated centre runs on top, the loader loads the same topics, and the
wallboard's "today" must equal ``kpi_daily``. The live process is restarted and must show
the same figures; a viewer token shows its own tenant and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from confluent_kafka import KafkaException

from pipeline import ingest
from pipeline.report.source import open_source
from pipeline.webhooks import Webhook, all_topics
from tests.support import cli, kafka
from tests.support import simulate as sim
from tests.support.ingress import Ingress, start_ingress, stop_ingress
from tests.support.live import (
    Live,
    evening_zone,
    fixture_day_today,
    post,
    start_live,
    stop_live,
    today_in,
)
from tests.support.loader import wait_for
from tests.support.payloads import FIXTURES, VIEWERS

approx = pytest.approx


class Centre:
    def __init__(self, tmp: Path, prefix: str, zone: str, ingress: Ingress, live: Live) -> None:
        self.tmp, self.prefix, self.zone, self.ingress, self.live = tmp, prefix, zone, ingress, live


@pytest.fixture(scope="module")
def centre(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centre]:
    tmp = tmp_path_factory.mktemp("live")
    prefix = f"lv{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix))
    zone = evening_zone()
    ingress = start_ingress(tmp, prefix, PLUG_PIPELINE_KPI_TIME_ZONE=zone)
    live = start_live(tmp, prefix, zone)
    running = Centre(tmp, prefix, zone, ingress, live)
    try:
        for tenant, webhook, body, _ in fixture_day_today(zone):
            post(ingress.webhook_url(webhook.value, tenant), body)
        yield running
    finally:
        stop_live(running.live)
        stop_ingress(ingress)


def _department(now: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [d for d in now["departments"] if d["department"] == name]
    assert isinstance(found, dict)
    return found


def _today(d: dict[str, Any]) -> tuple[Any, ...]:
    return (
        d["started_today"],
        d["finished_today"],
        d["average_wait_seconds_today"],
        d["average_handle_seconds_today"],
        d["sla_eligible_today"],
        d["answered_within_sla_today"],
    )


def test_the_fixture_day_is_the_hand_worked_one(centre: Centre) -> None:
    # KPI_EXPECTED (tests/integration/test_kpi_views.py) for the first day: started,
    # finished, average wait, average handle, SLA eligible, SLA met
    expected = {
        ("acme", "Suporte"): (2, 2, 75, 390, 2, 1),
        ("acme", "Vendas"): (1, 1, 60, 5340, 1, 1),
        ("globex", "Suporte"): (1, 1, 10, 290, 1, 1),
    }
    wait_for(lambda: _has(centre.live, "acme", "Vendas"), "acme's figures", 30)
    wait_for(lambda: _has(centre.live, "globex", "Suporte"), "globex's figures", 30)
    for (tenant, department), figures in expected.items():
        now = centre.live.now(tenant)
        assert now["day"] == today_in(centre.zone).isoformat()
        assert _today(_department(now, department)) == approx(figures), (tenant, department)
    acme = centre.live.now("acme")
    assert acme["total"]["service_level_today"] == approx(2 / 3)
    assert acme["total"]["open_attendances"] == 0
    assert acme["waiting"] == []
    down = {i["instance_id"]: i["disconnected_since"] for i in acme["instances"]}
    # I1 came back at 14:05 (a message received on it); I2 went down at 15:00 and stayed down
    assert down["I1"] is None
    assert down["I2"] is not None
    assert centre.live.now("globex")["instances"] == []


def _has(live: Live, tenant: str, department: str) -> bool:
    now = live.now(tenant)
    return any(d["department"] == department and d["finished_today"] for d in now["departments"])


def _kpi_today(centre: Centre) -> dict[tuple[str, str], tuple[Any, ...]]:
    target = str(centre.tmp / f"kpi-{uuid.uuid4().hex[:6]}.duckdb")
    result = cli.run(
        "load", "--to", target, "--topic-prefix", centre.prefix, "--until-caught-up",
        env={"KAFKA_BOOTSTRAP_SERVERS": kafka.BOOTSTRAP,
             "PLUG_PIPELINE_KPI_TIME_ZONE": centre.zone},
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with open_source(target) as source:
        rows = source.rows(
            "SELECT tenant, department, attendances_started, attendances_finished, avg_wait_s, "
            "avg_handle_s, sla_eligible, sla_met FROM kpi_daily WHERE day = %(day)s",
            {"day": today_in(centre.zone)},
        )
    return {
        (r["tenant"], r["department"]): (
            r["attendances_started"],
            r["attendances_finished"],
            r["avg_wait_s"],
            r["avg_handle_s"],
            r["sla_eligible"],
            r["sla_met"],
        )
        for r in rows
    }


def _live_today(live: Live) -> dict[tuple[str, str], tuple[Any, ...]]:
    found = {}
    for tenant in VIEWERS:
        for d in live.now(tenant)["departments"]:
            if d["started_today"] or d["finished_today"]:
                found[(tenant, d["department"])] = _today(d)
    return found


def _same(live: dict[Any, tuple[Any, ...]], kpi: dict[Any, tuple[Any, ...]]) -> bool:
    return live.keys() == kpi.keys() and all(live[k] == approx(kpi[k]) for k in kpi)


def test_the_end_of_a_simulated_day_is_kpi_daily(centre: Centre, tmp_path: Path) -> None:
    acked_file = tmp_path / "acked.txt"
    # no --start-ms: the simulated centre's clock is now, so its day is today
    sim.run(
        centre.ingress, "--rate", "500", "--count", "1500", "--seed", "31",
        "--acked-file", str(acked_file),
    )  # fmt: skip
    # every request answered 200 (two identical bodies share an event id: count lines)
    assert len(acked_file.read_text().splitlines()) == 1500
    kpi = _kpi_today(centre)
    assert sum(v[1] for v in kpi.values()) > 50  # enough attendances for the check to bite
    deadline = time.monotonic() + 30
    while not _same(_live_today(centre.live), kpi) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling until the wallboard has read what the loader read
    live = _live_today(centre.live)
    assert live.keys() == kpi.keys()
    for key, figures in kpi.items():
        assert live[key] == approx(figures), key


def _stable(now: dict[str, Any]) -> dict[str, Any]:
    """The figures without what moves with the clock alone."""
    now = json.loads(json.dumps(now))
    del now["as_of"]
    for d in [*now["departments"], now["total"]]:
        del d["longest_wait_seconds"]
    return now


def test_a_restart_shows_the_same_figures(centre: Centre) -> None:
    before = {t: _stable(centre.live.now(t)) for t in VIEWERS}
    assert before["acme"]["total"]["finished_today"] > 0
    stop_live(centre.live)
    started = time.monotonic()
    centre.live = start_live(centre.tmp, centre.prefix, centre.zone)
    caught_up = time.monotonic() - started
    after = {t: _stable(centre.live.now(t)) for t in VIEWERS}
    assert after == before
    status, body = centre.live.get("/healthz")
    assert status == 200
    health = json.loads(body)
    print(f"restart: caught up in {caught_up:.2f} s from start ({health['catch_up_s']:.2f} s feed)")
    # the lag gauges are set once a second, from the end offsets the fetches bring back
    lag = f'plug_live_lag_records{{topic="{centre.prefix}.attendance.finished"}} 0.0'
    wait_for(lambda: lag in centre.live.get("/metrics")[1].decode(), "the lag gauge", 15)
    assert "plug_live_caught_up 1.0" in centre.live.get("/metrics")[1].decode()


def test_a_viewer_sees_their_tenant_only(centre: Centre) -> None:
    live = centre.live
    acme, globex = VIEWERS["acme"], VIEWERS["globex"]
    assert live.now("acme")["tenant"] == "acme"
    assert live.now("globex")["tenant"] == "globex"
    assert live.first_event(acme)["tenant"] == "acme"
    assert live.first_event(globex)["tenant"] == "globex"
    # a tenant can be named nowhere but by the token: extra names are ignored or not found
    status, body = live.get("/api/now?tenant=globex", acme)
    assert status == 200
    assert json.loads(body)["tenant"] == "acme"
    for path in ("/api/now/globex", "/globex", "/api/stream/globex", "/api/tenants"):
        assert live.get(path, acme)[0] == 404
    # no token, an unknown one, or a webhook token: nothing but 401, on every route
    for path in ("/", "/api/now", "/api/stream"):
        for token in (None, "not-a-token", "acme-secret-token"):
            status, body = live.get(path, token)
            assert status == 401, (path, token)
            assert b"globex" not in body
            assert b"Suporte" not in body
    status, page = live.get("/", acme)
    assert status == 200
    assert b"Suporte" not in page  # the page carries no figures: the stream does
    assert live.get("/healthz")[0] == 200


def test_the_wallboard_over_tls(centre: Centre, tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    for i, pem in enumerate(leaf.cert_chain_pems):
        pem.write_to_path(str(cert), append=i > 0)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    secure = start_live(
        tmp_path, centre.prefix, centre.zone, client,
        PLUG_PIPELINE_TLS_CERT=str(cert), PLUG_PIPELINE_TLS_KEY=str(key),
    )  # fmt: skip
    try:
        assert secure.url.startswith("https://")
        assert _stable(secure.now("acme")) == _stable(centre.live.now("acme"))
        assert secure.get("/api/now", "not-a-token")[0] == 401
    finally:
        stop_live(secure)


def test_the_feed_waits_for_topics_not_created_yet(broker: str, tmp_path: Path) -> None:
    prefix = f"lw{uuid.uuid4().hex[:8]}"
    early = start_live(tmp_path, prefix, "UTC", caught_up=False)
    try:
        status, body = early.get("/healthz")
        assert (status, json.loads(body)["caught_up"]) == (200, False)
        assert early.get("/api/now", VIEWERS["acme"])[0] == 503  # no figures made up meanwhile
        # A broker that creates topics on a metadata request (Kafka's default, this one's)
        # has made them from the feed's first look already, with its default settings.
        with contextlib.suppress(KafkaException):
            kafka.create_topics(all_topics(prefix))
        # the feed's supervisor tries again, backing off from 1 s
        wait_for(lambda: json.loads(early.get("/healthz")[1])["caught_up"], "caught up", 40)
        assert early.now("acme")["departments"] == []
    finally:
        stop_live(early)


def test_a_repeated_or_undecodable_last_record_does_not_hold_the_catch_up(
    broker: str, tmp_path: Path
) -> None:
    """The catch-up counts offsets: a partition whose last record is a redelivery (the
    state counts it once) or cannot be decoded (skipped) is read to its end all the same."""
    prefix = f"lr{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix), partitions=1)
    body = (FIXTURES / "receive-message" / "text.json").read_bytes()
    record = ingest.ingest(Webhook.RECEIVE_MESSAGE, "acme", body, int(time.time() * 1000), prefix)
    headers = [(k, v) for k, v in record.headers]
    for _ in range(2):  # the event, then its redelivery: the topic's last record
        kafka.produce(record.topic, record.value, record.key, headers)
    status = f"{prefix}.message.status"
    kafka.produce(status, b"{not an envelope", b"acme:x", [("event-type", b"message.status")])
    live = start_live(tmp_path, prefix, "UTC")  # returns once caught up (or fails)
    try:
        assert json.loads(live.get("/healthz")[1])["caught_up"] is True
        assert live.get("/api/now", VIEWERS["acme"])[0] == 200
    finally:
        stop_live(live)
