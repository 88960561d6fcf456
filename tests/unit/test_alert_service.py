"""The service with fake senders: queued per receiver, state kept, no duplicate on restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.live.alerts import settings
from pipeline.live.alerts.service import AlertService, build_alerts
from tests.support.alerts import FakeSender, alerts_file, eventually
from tests.support.tenant_now import T0, figures

GONE = {"inst-1": T0}
BACK = {"inst-1": None}


def _service(
    tmp_path: Path, *, hook: FakeSender, mail: FakeSender, repeat: float = 10
) -> AlertService:
    path = alerts_file(tmp_path, hook_port=9, smtp_port=9, repeat_minutes=repeat)
    loaded = settings.load(path, environ={})
    return AlertService(loaded, senders={"hook": hook, "mail": mail}, clock=lambda: T0)


async def test_a_disconnection_reaches_every_receiver_once(tmp_path: Path) -> None:
    hook, mail = FakeSender("hook"), FakeSender("mail")
    service = _service(tmp_path, hook=hook, mail=mail)
    service.start()
    await service.on_now(figures(T0, disconnected=GONE))
    await service.on_now(figures(T0 + 1, disconnected=GONE))
    await eventually(lambda: len(hook.sent) == 1 and len(mail.sent) == 1)
    await service.on_now(figures(T0 + 2, disconnected=BACK))
    await eventually(lambda: len(hook.sent) == 2 and len(mail.sent) == 2)
    await service.close()
    assert [n.state for n in hook.sent] == ["firing", "resolved"]
    assert hook.closed
    assert mail.closed


async def test_no_duplicate_after_a_restart_with_the_same_state(tmp_path: Path) -> None:
    hook, mail = FakeSender("hook"), FakeSender("mail")
    first = _service(tmp_path, hook=hook, mail=mail)
    first.start()
    await first.on_now(figures(T0, disconnected=GONE))
    await eventually(lambda: len(hook.sent) == 1 and len(mail.sent) == 1)
    await first.close()

    again_hook, again_mail = FakeSender("hook"), FakeSender("mail")
    second = _service(tmp_path, hook=again_hook, mail=again_mail)
    second.start()
    await second.on_now(figures(T0 + 30, disconnected=GONE))  # the same figures, rebuilt
    await second.on_now(figures(T0 + 120, disconnected=BACK))
    await eventually(lambda: len(again_hook.sent) == 1 and len(again_mail.sent) == 1)
    await second.close()
    assert [n.state for n in again_hook.sent] == ["resolved"]


async def test_a_resolution_while_stopped_goes_out_after_the_restart(tmp_path: Path) -> None:
    first = _service(tmp_path, hook=FakeSender("hook"), mail=FakeSender("mail"))
    await first.on_now(figures(T0, disconnected=GONE))  # never started: nothing delivered
    await first.close()
    hook, mail = FakeSender("hook"), FakeSender("mail")
    second = _service(tmp_path, hook=hook, mail=mail)
    second.start()
    await second.on_now(figures(T0 + 600, disconnected=BACK))
    await eventually(lambda: len(hook.sent) == 2 and len(mail.sent) == 2)
    await second.close()
    # the firing that waited in the state file, then the resolution, in order
    assert [n.state for n in hook.sent] == ["firing", "resolved"]
    assert [n.state for n in mail.sent] == ["firing", "resolved"]


async def test_the_state_file_holds_what_fires_and_what_waits(tmp_path: Path) -> None:
    hook, mail = FakeSender("hook"), FakeSender("mail")
    hook.down = True
    service = _service(tmp_path, hook=hook, mail=mail)
    service.start()
    await service.on_now(figures(T0, disconnected=GONE))
    await eventually(lambda: len(mail.sent) == 1)
    await service.close()
    saved = (tmp_path / "alerts-state.json").read_text()
    assert '"rule":"number-down"' in saved
    assert '"receiver":"hook"' in saved
    assert '"receiver":"mail"' not in saved  # delivered, so no longer kept


async def test_a_repeat_counts_from_the_last_send_across_a_restart(tmp_path: Path) -> None:
    hook, mail = FakeSender("hook"), FakeSender("mail")
    first = _service(tmp_path, hook=hook, mail=mail, repeat=10)
    first.start()
    await first.on_now(figures(T0, disconnected=GONE))
    await first.close()
    hook2, mail2 = FakeSender("hook"), FakeSender("mail")
    second = _service(tmp_path, hook=hook2, mail=mail2, repeat=10)
    second.start()
    await second.on_now(figures(T0 + 599, disconnected=GONE))
    await second.on_now(figures(T0 + 600, disconnected=GONE))
    await eventually(lambda: len(hook2.sent) == 1)
    await second.close()
    assert [n.state for n in hook2.sent] == ["repeat"]


async def test_no_attendance_number_in_any_notification(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(
        '[[receivers]]\nname = "hook"\nkind = "webhook"\nurl = "http://127.0.0.1:9/"\n'
        '[[rules]]\nname = "wait"\nkind = "long_wait"\nminutes = 1\n',
        encoding="utf-8",
    )
    hook = FakeSender("hook")
    service = AlertService(settings.load(path, environ={}), senders={"hook": hook})
    service.start()
    await service.on_now(figures(T0 + 120, waiting=(("Vendas", T0),)))
    await eventually(lambda: len(hook.sent) == 1)
    await service.close()
    assert "A0" not in hook.sent[0].text  # the attendance the support names A0
    assert "1 customer waiting over 1 min" in hook.sent[0].text


def test_a_corrupt_state_file_stops_the_start(tmp_path: Path) -> None:
    path = alerts_file(tmp_path, hook_port=9, smtp_port=9, repeat_minutes=1)
    (tmp_path / "alerts-state.json").write_text("{not json")
    with pytest.raises(ConfigError, match="move it aside"):
        build_alerts(path, time_zone="UTC", environ={})


def test_no_file_no_alerts() -> None:
    assert build_alerts(None, time_zone="UTC") is None
