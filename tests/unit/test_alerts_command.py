"""``plug-pipeline alerts check``: the rules in a line each, or the fault and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import cli
from pipeline.runtime import logs
from tests.support.alerts import alerts_file
from tests.support.secrets import HOOK_PATH


@pytest.fixture(autouse=True)
def _logging_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """``cli.main`` would route every log to this test's captured stderr, closed after it."""
    monkeypatch.setattr(logs, "setup", lambda *args, **kwargs: None)


def test_check_prints_each_rule_and_receiver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = alerts_file(tmp_path, hook_port=9, smtp_port=2525, repeat_minutes=15)
    assert cli.main(["alerts", "check", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{path}: ok; state in {tmp_path / 'alerts-state.json'}; times in America/Sao_Paulo",
        "rule number-down: a WhatsApp instance disconnected; tenant acme; repeat every "
        "15 min; to every receiver",
        'receiver hook: webhook, {"text": ...}',
        "receiver mail: e-mail via 127.0.0.1:2525 to 1 address(es)",
    ]
    assert HOOK_PATH not in "\n".join(lines)  # a webhook URL is a secret


def test_check_names_the_fault(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = alerts_file(tmp_path, hook_port=9, smtp_port=2525, repeat_minutes=-1)
    assert cli.main(["alerts", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"alerts file {path}:26: rules[0].repeat_minutes: Expected `float` >= 0.0" in err


def test_check_takes_the_file_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = alerts_file(tmp_path, hook_port=9, smtp_port=2525, repeat_minutes=1)
    monkeypatch.setenv("PLUG_PIPELINE_ALERTS_FILE", str(path))
    assert cli.main(["alerts", "check"]) == 0
    assert "rule number-down" in capsys.readouterr().out


def test_check_without_a_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLUG_PIPELINE_ALERTS_FILE", raising=False)
    assert cli.main(["alerts", "check"]) == 2
    assert "name the file, or set PLUG_PIPELINE_ALERTS_FILE" in capsys.readouterr().err
