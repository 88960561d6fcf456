"""The alerts file: a full example reads back, and each fault is named by file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.live.alerts import settings
from pipeline.live.alerts.rules import (
    DeliveryFailures,
    EmailReceiver,
    InstanceDisconnected,
    LongWait,
    ServiceLevel,
    WebhookReceiver,
)

GOOD = """\
state_file = "state/alerts.json"
time_zone = "America/Sao_Paulo"

[delivery]
initial_backoff_seconds = 0.5
max_backoff_seconds = 60

[[receivers]]
name = "slack"
kind = "webhook"
url_env = "ALERTS_SLACK_URL"

[[receivers]]
name = "teams"
kind = "webhook"
url = "https://example.invalid/hook"
template = '{"text": $text, "title": $rule}'

[[receivers]]
name = "mail"
kind = "email"
host = "127.0.0.1"
port = 2525
from = "alerts@example.invalid"
to = ["supervisors@example.invalid"]
starttls = true
username = "alerts"
password_env = "ALERTS_SMTP_PASSWORD"

[[rules]]
name = "number-down"
kind = "instance_disconnected"
tenant = "acme"
repeat_minutes = 15

[[rules]]
name = "long-wait"
kind = "long_wait"
department = "*"
minutes = 10
receivers = ["slack"]

[[rules]]
name = "sla"
kind = "service_level"
tenant = "acme"
below_percent = 80
min_finished = 20

[[rules]]
name = "failures"
kind = "delivery_failures"
more_than = 10
"""
ENV = {"ALERTS_SLACK_URL": "https://example.invalid/slack", "ALERTS_SMTP_PASSWORD": "pw"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _fault(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        settings.load(_write(tmp_path, text), environ=ENV if env is None else env)
    return str(caught.value)


def test_a_full_file_reads_back(tmp_path: Path) -> None:
    loaded = settings.load(_write(tmp_path, GOOD), environ=ENV)
    assert [type(r) for r in loaded.rules] == [
        InstanceDisconnected,
        LongWait,
        ServiceLevel,
        DeliveryFailures,
    ]
    assert [type(r) for r in loaded.receivers] == [WebhookReceiver, WebhookReceiver, EmailReceiver]
    mail = loaded.receivers[2]
    assert isinstance(mail, EmailReceiver)
    assert (mail.sender, mail.port, mail.starttls) == ("alerts@example.invalid", 2525, True)
    assert loaded.secrets["slack"].url == "https://example.invalid/slack"
    assert loaded.secrets["mail"].password == "pw"
    assert "pw" not in repr(loaded.secrets["mail"])
    assert loaded.state_file == tmp_path / "state" / "alerts.json"
    assert str(loaded.time_zone) == "America/Sao_Paulo"
    assert loaded.rules[0].tenant == "acme"
    assert loaded.rules[3].tenant == "*"
    assert loaded.rules[1].receivers == ("slack",)
    assert loaded.file.delivery.max_backoff_seconds == 60


def test_the_documented_example_is_valid(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text("utf-8")
    example = page.split("```toml\n", 1)[1].split("```", 1)[0]
    env = {"ALERTS_SLACK_URL": "https://example.invalid/s", "ALERTS_SMTP_PASSWORD": "x"}
    loaded = settings.load(_write_text(tmp_path / "alerts.toml", example), environ=env)
    assert len(loaded.rules) >= 4


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml: cannot read it"):
        settings.load(tmp_path / "nowhere.toml", environ={})


def test_bad_toml_gives_its_line(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace('name = "sla"', 'name = "sla'))
    assert "alerts.toml: not valid TOML" in message
    assert "line 44" in message


def test_a_wrong_type_names_line_and_key(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace("minutes = 10", 'minutes = "ten"'))
    assert "alerts.toml:40: rules[1].minutes: Expected `float`, got `str`" in message


def test_a_value_out_of_range(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace("below_percent = 80", "below_percent = 180"))
    assert "alerts.toml:47: rules[2].below_percent: Expected `float` <= 100" in message


def test_an_unknown_key_is_a_typo_not_ignored(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace("min_finished = 20", "min_finishd = 20"))
    assert "alerts.toml:43: rules[2]: Object contains unknown field `min_finishd`" in message


def test_a_department_on_a_tenant_wide_rule(tmp_path: Path) -> None:
    text = GOOD.replace("more_than = 10", 'more_than = 10\ndepartment = "Vendas"')
    assert "rules[3]: Object contains unknown field `department`" in _fault(tmp_path, text)


def test_an_unknown_kind(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace('"delivery_failures"', '"delivery_failure"'))
    assert "alerts.toml:52: rules[3].kind: Invalid value 'delivery_failure'" in message


def test_a_required_field_missing(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace("minutes = 10\n", ""))
    assert "rules[1]: Object missing required field `minutes`" in message


def test_no_rules(tmp_path: Path) -> None:
    text = GOOD.split("[[rules]]")[0]
    assert "alerts.toml: the file: Object missing required field `rules`" in _fault(tmp_path, text)


def test_two_rules_of_one_name(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace('name = "sla"', 'name = "long-wait"'))
    assert "alerts.toml:44: rules[2].name: a second rule named 'long-wait'" in message


def test_two_receivers_of_one_name(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace('name = "teams"', 'name = "slack"'))
    assert "alerts.toml:14: receivers[1].name: a second receiver named 'slack'" in message


def test_a_rule_naming_an_unknown_receiver(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace('receivers = ["slack"]', 'receivers = ["slak"]'))
    assert "alerts.toml:41: rules[1].receivers: no receiver is named 'slak'" in message


def test_a_secret_variable_not_set(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD, env={"ALERTS_SMTP_PASSWORD": "pw"})
    assert "alerts.toml:8: receivers[0]: the environment variable ALERTS_SLACK_URL" in message


def test_a_bad_url_is_not_shown(tmp_path: Path) -> None:
    env = ENV | {"ALERTS_SLACK_URL": "hooks.example.invalid/T0/secret-part"}
    message = _fault(tmp_path, GOOD, env=env)
    assert "receivers[0].url: not an http:// or https:// URL" in message
    assert "secret-part" not in message


def test_both_url_and_url_env(tmp_path: Path) -> None:
    text = GOOD.replace('url_env = "ALERTS_SLACK_URL"', 'url_env = "A"\nurl = "https://x.invalid"')
    assert "receivers[0]: give exactly one of url and url_env" in _fault(tmp_path, text)


def test_a_template_with_an_unknown_placeholder(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace("$rule}", "$rules}"))
    assert "alerts.toml:17: receivers[1].template: no placeholder $rules" in message


def test_a_template_that_is_not_json(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace('"title": $rule}', '"title" $rule}'))
    assert "receivers[1].template: does not make JSON once filled in" in message


def test_tls_and_starttls_together(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace("starttls = true", "starttls = true\ntls = true"))
    assert "receivers[2].starttls: tls (implicit TLS) and starttls exclude each other" in message


def test_a_login_without_password(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace('password_env = "ALERTS_SMTP_PASSWORD"\n', ""))
    assert "receivers[2].username: a login needs both username and password_env" in message


def test_an_unknown_time_zone(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace("America/Sao_Paulo", "America/Sao_Paolo"))
    assert "alerts.toml:2: time_zone: 'America/Sao_Paolo' is not a known time zone" in message


def test_backoff_bounds_in_order(tmp_path: Path) -> None:
    text = GOOD.replace("max_backoff_seconds = 60", "max_backoff_seconds = 0.1")
    message = _fault(tmp_path, text)
    assert "alerts.toml:6: delivery.max_backoff_seconds: smaller than initial" in message


def test_a_bad_name(tmp_path: Path) -> None:
    message = _fault(tmp_path, GOOD.replace('name = "sla"', 'name = "s l a"'))
    assert "alerts.toml:44: rules[2].name: Expected `str` matching regex" in message


def test_a_ca_file_needs_tls_and_must_exist(tmp_path: Path) -> None:
    no_tls = GOOD.replace("starttls = true", 'ca_file = "ca.pem"')
    assert "receivers[2].ca_file: set, but neither tls nor starttls is on" in _fault(
        tmp_path, no_tls
    )
    missing = GOOD.replace("starttls = true", 'starttls = true\nca_file = "/nowhere/ca.pem"')
    assert "receivers[2].ca_file: no such file: /nowhere/ca.pem" in _fault(tmp_path, missing)
