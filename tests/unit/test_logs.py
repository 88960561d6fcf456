"""Log lines: JSON objects with stable fields, and never a token, in either format."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from pipeline import cli
from pipeline.errors import ConfigError
from pipeline.runtime import logs

TOKEN = "acme-secret-token"


def emit(log_format: str) -> list[str]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    logs.setup(log_format, stream=stream)
    try:
        log = logging.getLogger("pipeline.test")
        log.info("posting to https://ingress.example/webhooks/receive-message?token=%s", TOKEN)
        log.warning("Authorization: Bearer %s refused", TOKEN)
        try:
            raise RuntimeError(f"401, url='https://x.example/hook?a=1&token={TOKEN}&b=2'")
        except RuntimeError:
            log.exception("call failed")
    finally:
        root.handlers[:] = saved  # pytest's own capture handlers
        root.setLevel(level)
    return stream.getvalue().splitlines()


def test_json_lines_parse_with_stable_fields_and_no_token() -> None:
    lines = emit("json")
    entries = [orjson.loads(line) for line in lines]  # one object per line
    assert len(entries) == 3
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys()
        assert entry["logger"] == "pipeline.test"
    assert entries[0]["level"] == "INFO"
    assert entries[0]["message"].endswith("receive-message?token=***")
    assert entries[0]["time"].endswith("+00:00")
    assert "RuntimeError" in entries[2]["exception"]
    assert "&b=2" in entries[2]["exception"]  # only the token's value is cut
    assert all(TOKEN not in line for line in lines)


def test_text_lines_carry_no_token_either() -> None:
    lines = emit("text")
    assert any("token=***" in line for line in lines)
    assert any("Bearer ***" in line for line in lines)
    assert all(TOKEN not in line for line in lines)


def test_log_format_comes_from_the_flag_then_the_environment() -> None:
    env = {"PLUG_PIPELINE_LOG_FORMAT": "JSON"}
    assert logs.chosen_format(env) == "json"
    assert logs.chosen_format(env, "text") == "text"
    assert logs.chosen_format({}) == "text"
    with pytest.raises(ConfigError):
        logs.chosen_format({"PLUG_PIPELINE_LOG_FORMAT": "xml"})


def test_an_unknown_log_format_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUG_PIPELINE_LOG_FORMAT", "yaml")
    assert cli.main(["settings"]) == cli.EXIT_CONFIG


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-format", "json", "doctor"],
        ["doctor", "--log-format", "json"],
        ["topics", "describe", "--log-format", "json"],
    ],
)
def test_the_log_format_flag_goes_before_or_after_the_command(argv: list[str]) -> None:
    assert cli.build_parser().parse_args(argv).log_format == "json"


def test_aiokafka_debug_lines_stay_out_even_when_verbose() -> None:
    # They quote records' keys and values, and those hold customers' phones and texts.
    stream = io.StringIO()
    root = logging.getLogger()
    kafka_log = logging.getLogger("aiokafka")
    saved, level, kafka_level = root.handlers[:], root.level, kafka_log.level
    logs.setup("text", verbose=True, stream=stream)
    try:
        logging.getLogger("aiokafka.producer").debug("record value b'5511987654321'")
        logging.getLogger("aiokafka.producer").info("connected")
        logging.getLogger("pipeline.test").debug("our own detail")
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
        kafka_log.setLevel(kafka_level)
    text = stream.getvalue()
    assert "5511987654321" not in text
    assert "connected" in text
    assert "our own detail" in text
