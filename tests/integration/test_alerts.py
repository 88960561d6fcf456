"""Alerts against real receivers: an aiohttp server standing for Slack, an aiosmtpd server.

The figures are hand-made (``TenantNow``), as the live service will hand them over; the
service, its senders, its retries and its state file are the real ones, built from an
alerts file by ``build_alerts`` as the live command does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from pipeline.live.alerts.service import AlertService, build_alerts
from pipeline.runtime.metrics import METRICS
from tests.support.alerts import HookReceiver, MailReceiver, alerts_file, eventually, free_port
from tests.support.cli import COMMAND_LOGS, environment, run
from tests.support.tenant_now import figures


class Receivers:
    def __init__(self, folder: Path) -> None:
        self.hook = HookReceiver(free_port())
        self.mail = MailReceiver(free_port())
        self.file = alerts_file(
            folder, hook_port=self.hook.port, smtp_port=self.mail.port, repeat_minutes=30
        )
        self.services: list[AlertService] = []

    def service(self) -> AlertService:
        service = build_alerts(self.file, time_zone="America/Sao_Paulo", environ={})
        assert service is not None
        service.start()
        self.services.append(service)  # closed at teardown too, should a test fail first
        return service

    def states(self) -> tuple[list[str], list[str]]:
        """The first word of each notification each receiver got, in order."""
        hook = [text.split(" · ")[0] for text in self.hook.texts()]
        mail = [subject.split(" · ")[0] for subject in self.mail.subjects()]
        return hook, mail


@pytest.fixture
async def receivers(tmp_path: Path) -> AsyncIterator[Receivers]:
    running = Receivers(tmp_path)
    await running.hook.start()
    running.mail.start()
    yield running
    for service in running.services:
        await service.close()
    await running.hook.stop()
    running.mail.stop()


def _outcome(receiver: str, outcome: str) -> float:
    labels = {"receiver": receiver, "outcome": outcome}
    return METRICS.registry.get_sample_value("plug_alert_notifications_total", labels) or 0.0


def _retries(receiver: str) -> float:
    return _outcome(receiver, "retried")


async def test_a_disconnection_is_notified_within_5_s_and_resolved(receivers: Receivers) -> None:
    service = receivers.service()
    start = time.time()
    await service.on_now(figures(start, disconnected={"inst-7": start - 3}))
    took = await eventually(lambda: receivers.states() == (["FIRING"], ["FIRING"]), 5.0)
    assert took < 5.0
    text = receivers.hook.texts()[0]
    assert text.startswith("FIRING · acme · number-down\nWhatsApp instance inst-7 disconnected")
    message = receivers.mail.messages[0]
    assert message["From"] == "alerts@example.invalid"
    assert message["To"] == "supervisors@example.invalid"
    assert "WhatsApp instance inst-7 disconnected" in message.get_content()
    assert message["Message-ID"].endswith("@plug-pipeline.alerts>")
    assert message["Date"]

    await service.on_now(figures(start + 60, disconnected={"inst-7": None}))
    want = (["FIRING", "RESOLVED"], ["FIRING", "RESOLVED"])
    await eventually(lambda: receivers.states() == want, 5.0)
    await service.close()


async def test_receivers_down_get_it_once_they_are_back(receivers: Receivers) -> None:
    await receivers.hook.stop()
    receivers.mail.stop()
    hook_retries, mail_retries = _retries("hook"), _retries("mail")
    service = receivers.service()
    now = time.time()
    await service.on_now(figures(now, disconnected={"inst-7": now}))
    # both tried and failed more than once: the backoff is running
    await eventually(lambda: _retries("hook") >= hook_retries + 2, 10.0)
    await eventually(lambda: _retries("mail") >= mail_retries + 2, 10.0)
    assert receivers.states() == ([], [])
    await receivers.hook.start()
    receivers.mail = MailReceiver(receivers.mail.port)  # a controller starts once
    receivers.mail.start()
    await eventually(lambda: receivers.states() == (["FIRING"], ["FIRING"]), 5.0)
    await service.close()


async def test_no_duplicate_after_a_restart_and_a_resolution_kept(receivers: Receivers) -> None:
    first = receivers.service()
    now = time.time()
    gone = {"inst-7": now}
    await first.on_now(figures(now, disconnected=gone))
    await eventually(lambda: receivers.states() == (["FIRING"], ["FIRING"]), 5.0)
    await first.close()

    second = receivers.service()  # the same file, so the same state
    await second.on_now(figures(now + 5, disconnected=gone))  # the figures rebuilt
    await second.on_now(figures(now + 10, disconnected={"inst-7": None}))
    # each receiver's notifications arrive in order: a duplicate firing would come first
    want = (["FIRING", "RESOLVED"], ["FIRING", "RESOLVED"])
    await eventually(lambda: receivers.states() == want, 5.0)
    await second.close()


class _Process:
    """The alerting process in a child; killed with SIGKILL, no goodbye."""

    def __init__(self, file: Path, log: Path) -> None:
        self._file, self._log = file, log
        self._child: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        COMMAND_LOGS.append(self._log)
        with self._log.open("ab") as out:
            self._child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.support.alerting_process",
                str(self._file),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=out,
                env=environment(None),
            )

    async def judge(self, at: float, disconnected: dict[str, float | None]) -> None:
        assert self._child is not None
        assert self._child.stdin is not None
        assert self._child.stdout is not None
        line = json.dumps({"at": at, "disconnected": disconnected}) + "\n"
        self._child.stdin.write(line.encode())
        await self._child.stdin.drain()
        answer = await asyncio.wait_for(self._child.stdout.readline(), 30)
        assert answer == b"judged\n"

    async def kill(self) -> None:
        assert self._child is not None
        assert self._child.stdin is not None
        self._child.kill()
        await self._child.wait()
        self._child.stdin.close()  # the pipe's transport closed now, not when collected
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await self._child.stdin.wait_closed()


async def test_a_killed_process_restarted_sends_no_duplicate(
    receivers: Receivers, tmp_path: Path
) -> None:
    now = time.time()
    gone: dict[str, float | None] = {"inst-7": now}
    first = _Process(receivers.file, tmp_path / "first.log")
    await first.start()
    await first.judge(now, gone)
    await eventually(lambda: receivers.states() == (["FIRING"], ["FIRING"]), 5.0)
    # killed once both deliveries are on record: a kill between a receiver's answer and
    # that record sends the notification again, with the same id (at least once)
    state = receivers.file.parent / "alerts-state.json"
    await eventually(lambda: b'"outbox":[]' in state.read_bytes(), 5.0)
    await first.kill()

    second = _Process(receivers.file, tmp_path / "second.log")
    await second.start()
    await second.judge(now + 5, gone)  # the same figures, rebuilt after the restart
    await second.judge(now + 10, {"inst-7": None})
    await eventually(lambda: all(len(got) >= 2 for got in receivers.states()), 10.0)
    await second.kill()
    assert receivers.states() == (["FIRING", "RESOLVED"], ["FIRING", "RESOLVED"])


def test_alerts_test_tries_each_receiver(tmp_path: Path) -> None:
    mail = MailReceiver(free_port())
    mail.start()
    try:
        closed = free_port()  # nothing listens there: the webhook fails, may pass later
        path = alerts_file(tmp_path, hook_port=closed, smtp_port=mail.port, repeat_minutes=1)
        result = run("alerts", "test", str(path))
    finally:
        mail.stop()
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "receiver hook: failed (ClientConnectorError; may pass later)",
        "receiver mail: delivered",
    ]
    assert mail.subjects() == ["TEST · mail"]


async def test_a_503_is_retried_and_a_400_is_not(receivers: Receivers) -> None:
    service = receivers.service()
    now = time.time()
    receivers.hook.answer = 503
    await service.on_now(figures(now, disconnected={"a": now}))
    await eventually(lambda: receivers.hook.refused >= 2, 5.0)  # tried again after a 503
    receivers.hook.answer = 200
    await eventually(lambda: receivers.states()[0] == ["FIRING"], 5.0)

    receivers.hook.answer = 400  # a body the receiver will never take: not retried
    refused = receivers.hook.refused
    await service.on_now(figures(now + 1, disconnected={"a": now, "b": now}))
    await eventually(lambda: receivers.hook.refused == refused + 1, 5.0)
    receivers.hook.answer = 200
    await service.on_now(figures(now + 2, disconnected={"a": now, "b": None}))
    # the 400'd firing of "b" was dropped; its resolution is the next to arrive
    await eventually(lambda: receivers.states()[0] == ["FIRING", "RESOLVED"], 5.0)
    assert receivers.hook.refused == refused + 1
    await service.close()


def _mail_only(folder: Path, port: int, ca: Path) -> Path:
    path = folder / "alerts.toml"
    path.write_text(
        f"""\
[delivery]
initial_backoff_seconds = 0.05
max_backoff_seconds = 0.2

[[receivers]]
name = "mail"
kind = "email"
host = "127.0.0.1"
port = {port}
starttls = true
ca_file = "{ca}"
username = "alerts"
password_env = "ALERTS_SMTP_PASSWORD"
from = "alerts@example.invalid"
to = ["supervisors@example.invalid"]

[[rules]]
name = "number-down"
kind = "instance_disconnected"
""",
        encoding="utf-8",
    )
    return path


async def test_e_mail_over_starttls_with_a_login(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    mail = MailReceiver(free_port(), tls=server_context, login=("alerts", "s3cret"))
    mail.start()
    path = _mail_only(tmp_path, mail.port, tmp_path / "ca.pem")
    try:
        service = build_alerts(path, time_zone="UTC", environ={"ALERTS_SMTP_PASSWORD": "s3cret"})
        assert service is not None
        service.start()
        now = time.time()
        await service.on_now(figures(now, tenant="beta", disconnected={"inst-1": now}))
        await eventually(lambda: mail.subjects() == ["FIRING · beta · number-down"], 5.0)
        await service.close()
        assert mail.logins == ["alerts"]

        refused_before = _outcome("mail", "refused")
        wrong = build_alerts(path, time_zone="UTC", environ={"ALERTS_SMTP_PASSWORD": "nope"})
        assert wrong is not None
        wrong.start()
        await wrong.on_now(figures(now + 1, tenant="beta", disconnected={"inst-1": None}))
        # a login refused (535) is not retried: dropped and counted
        await eventually(lambda: _outcome("mail", "refused") == refused_before + 1, 5.0)
        await wrong.close()
        assert len(mail.messages) == 1
    finally:
        mail.stop()
