"""Configuration: environment variables, CLI flags over them, and one clear error per fault."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from pipeline.config import SETTINGS, Config, load, parse_tokens, settings_markdown
from pipeline.errors import ConfigError, PipelineError


def test_defaults() -> None:
    config = load({})

    assert config.bootstrap_servers == "127.0.0.1:9092"
    assert config.host == "0.0.0.0"
    assert config.port == 8080
    assert config.topic_prefix == "plug"
    assert config.max_body_bytes == 4 * 1024 * 1024
    assert config.max_in_flight >= 1
    assert config.ack_timeout_s > 0
    assert config.compression == "lz4"
    assert config.tokens == {}
    assert config.auth_enabled is False
    assert config.tls_cert is None
    assert config.tls_key is None
    assert config.kafka_security.security_protocol == "PLAINTEXT"


def test_environment_overrides() -> None:
    config = load(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092,kafka-2:9092",
            "PLUG_PIPELINE_HOST": "127.0.0.1",
            "PLUG_PIPELINE_PORT": "9000",
            "PLUG_PIPELINE_TOPIC_PREFIX": "acme.plug",
            "PLUG_PIPELINE_MAX_BODY_BYTES": "1048576",
            "PLUG_PIPELINE_MAX_IN_FLIGHT": "16",
            "PLUG_PIPELINE_ACK_TIMEOUT_S": "2.5",
            "PLUG_PIPELINE_COMPRESSION": "zstd",
            "PLUG_PIPELINE_TLS_CERT": "/certs/cert.pem",
            "PLUG_PIPELINE_TLS_KEY": "/certs/key.pem",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "user",
        }
    )

    assert config.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert config.host == "127.0.0.1"
    assert config.port == 9000
    assert config.topic_prefix == "acme.plug"
    assert config.max_body_bytes == 1048576
    assert config.max_in_flight == 16
    assert config.ack_timeout_s == 2.5
    assert config.compression == "zstd"
    assert (config.tls_cert, config.tls_key) == ("/certs/cert.pem", "/certs/key.pem")
    assert config.kafka_security.security_protocol == "SASL_SSL"
    assert config.kafka_security.sasl_mechanism == "SCRAM-SHA-512"
    assert config.kafka_security.sasl_username == "user"


def test_empty_environment_values_mean_unset() -> None:
    config = load({"PLUG_PIPELINE_PORT": "", "KAFKA_BOOTSTRAP_SERVERS": ""})

    assert config.port == 8080
    assert config.bootstrap_servers == "127.0.0.1:9092"


@pytest.mark.parametrize("value", ["none", "NONE", "None"])
def test_compression_none_disables_it(value: str) -> None:
    assert load({"PLUG_PIPELINE_COMPRESSION": value}).compression is None


def test_flags_override_the_environment() -> None:
    env = {
        "PLUG_PIPELINE_PORT": "9000",
        "PLUG_PIPELINE_HOST": "127.0.0.1",
        "PLUG_PIPELINE_TOPIC_PREFIX": "env",
    }

    config = load(env, port=9100, topic_prefix="flag", host=None)

    assert config.port == 9100
    assert config.topic_prefix == "flag"
    assert config.host == "127.0.0.1"  # a flag left at None does not override


def test_load_reads_os_environ_when_none_is_given() -> None:
    with mock.patch.dict("os.environ", {"PLUG_PIPELINE_PORT": "9200"}, clear=True):
        assert load().port == 9200


def test_config_is_frozen() -> None:
    config = load({})

    with pytest.raises(AttributeError):
        config.port = 1  # type: ignore[misc]


# -- tokens ----------------------------------------------------------------------------


def test_tokens_from_the_environment() -> None:
    config = load({"PLUG_PIPELINE_TOKENS": "acme=s3cret,globex=t0ken"})

    assert config.tokens == {"acme": ("s3cret",), "globex": ("t0ken",)}
    assert config.auth_enabled is True


def test_tokens_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# one tenant=token a line\nacme=s3cret\n\nglobex = t0ken\n", encoding="utf-8")

    config = load({"PLUG_PIPELINE_TOKENS_FILE": str(path)})

    assert config.tokens == {"acme": ("s3cret",), "globex": ("t0ken",)}
    assert config.tokens_file == str(path)  # re-read on SIGHUP


def test_tokens_file_comment_may_contain_a_comma(tmp_path: Path) -> None:
    """A comment is a whole line; its commas do not start new pairs."""
    path = tmp_path / "tokens"
    path.write_text("# rotated monthly, see the runbook\nacme=s3cret\n", encoding="utf-8")

    assert load({"PLUG_PIPELINE_TOKENS_FILE": str(path)}).tokens == {"acme": ("s3cret",)}


def test_tokens_file_wins_over_the_inline_variable(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("fromfile=abc\n", encoding="utf-8")

    config = load({"PLUG_PIPELINE_TOKENS_FILE": str(path), "PLUG_PIPELINE_TOKENS": "inline=xyz"})

    assert config.tokens == {"fromfile": ("abc",)}


def test_tokens_file_flag_overrides_the_environment(tmp_path: Path) -> None:
    env_file, flag_file = tmp_path / "env", tmp_path / "flag"
    env_file.write_text("env=aaa", encoding="utf-8")
    flag_file.write_text("flag=bbb", encoding="utf-8")

    config = load({"PLUG_PIPELINE_TOKENS_FILE": str(env_file)}, tokens_file=str(flag_file))

    assert config.tokens == {"flag": ("bbb",)}


def test_missing_tokens_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"

    with pytest.raises(ConfigError, match="tokens file") as caught:
        load({"PLUG_PIPELINE_TOKENS_FILE": str(missing)})

    assert str(missing) in str(caught.value)


def test_token_may_contain_equals_signs() -> None:
    assert parse_tokens("acme=abc==", "T") == {"acme": ("abc==",)}


# -- bad settings ----------------------------------------------------------------------


def one_line(error: ConfigError) -> str:
    message = str(error)
    assert message
    assert "\n" not in message
    return message


@pytest.mark.parametrize("port", ["abc", "80.5", "0", "-1", "65536", "70000"])
def test_bad_port(port: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({"PLUG_PIPELINE_PORT": port})

    assert "port" in one_line(caught.value)


def test_bad_port_flag() -> None:
    with pytest.raises(ConfigError, match="port"):
        load({}, port=0)


@pytest.mark.parametrize("value", ["brotli", "lz5", "gzip9"])
def test_bad_compression(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({"PLUG_PIPELINE_COMPRESSION": value})

    message = one_line(caught.value)
    assert "compression" in message
    assert value in message
    assert "lz4" in message  # names what is allowed


def test_a_tenant_may_have_several_tokens_newest_last() -> None:
    """Rotation without downtime: add the new token, re-register with Plug, drop the old."""
    config = load({"PLUG_PIPELINE_TOKENS": "acme=old-one,globex=g,acme=new-one"})

    assert config.tokens == {"acme": ("old-one", "new-one"), "globex": ("g",)}
    assert "old-one" not in repr(config)
    assert "new-one" not in repr(config)


def test_the_same_token_twice() -> None:
    with pytest.raises(ConfigError) as caught:
        load({"PLUG_PIPELINE_TOKENS": "acme=s3cret,acme=s3cret"})

    message = one_line(caught.value)
    assert "acme" in message
    assert "twice" in message
    assert "s3cret" not in message  # secrets are never echoed


def test_two_tenants_sharing_a_token() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_tokens("acme=same,globex=same", "PLUG_PIPELINE_TOKENS")

    assert "same" not in one_line(caught.value).replace("share", "")


@pytest.mark.parametrize("text", ["acme", "=s3cret", "acme=", "acme=s3cret,globex", " = "])
def test_malformed_pair(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_tokens(text, "PLUG_PIPELINE_TOKENS")

    message = one_line(caught.value)
    assert "PLUG_PIPELINE_TOKENS" in message
    assert "tenant=token" in message


def test_malformed_pair_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("acme\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="tenant=token") as caught:
        load({"PLUG_PIPELINE_TOKENS_FILE": str(path)})

    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"PLUG_PIPELINE_MAX_BODY_BYTES": "10"}, "body limit"),
        ({"PLUG_PIPELINE_MAX_IN_FLIGHT": "0"}, "in-flight"),
        ({"PLUG_PIPELINE_ACK_TIMEOUT_S": "0"}, "ack timeout"),
        ({"PLUG_PIPELINE_TLS_CERT": "/cert.pem"}, "TLS"),
        ({"PLUG_PIPELINE_TLS_KEY": "/key.pem"}, "TLS"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "   "}, "KAFKA_BOOTSTRAP_SERVERS"),
        ({"PLUG_PIPELINE_MAX_IN_FLIGHT": "many"}, "max_in_flight"),
    ],
)
def test_other_bad_settings(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(env)

    assert words in one_line(caught.value)


def test_config_error_is_a_pipeline_error() -> None:
    assert issubclass(ConfigError, PipelineError)


@pytest.mark.parametrize("tenant", ["a:b", "two words", "é"])
def test_tenant_names_that_could_blur_record_keys_are_refused(tenant: str) -> None:
    with pytest.raises(ConfigError, match="may hold only"):
        parse_tokens(f"{tenant}=secret", "PLUG_PIPELINE_TOKENS")


# -- the settings table ------------------------------------------------------------------


def test_an_unknown_own_variable_is_refused() -> None:
    with pytest.raises(ConfigError, match="PLUG_PIPELINE_SPOOLDIR"):
        load({"PLUG_PIPELINE_SPOOLDIR": "/var/spool"})


def test_other_variables_are_not_ours_to_refuse() -> None:
    assert load({"KAFKA_HEAP_OPTS": "-Xmx1g", "PLUG_PIPELINE_TEST_X": "1"}).port == 8080


def test_every_setting_fills_a_config_field() -> None:
    config = Config()
    for s in SETTINGS:
        head, _, name = s.field.rpartition(".")
        owner = getattr(config, head) if head else config
        assert name in type(owner).__struct_fields__ or name == "tokens_file", s


def test_secrets_are_masked_in_repr() -> None:
    config = load(
        {"PLUG_PIPELINE_TOKENS": "acme=s3cret-token", "KAFKA_SASL_PASSWORD": "pa55word-x"}
    )

    shown = repr(config)
    assert "s3cret-token" not in shown
    assert "pa55word-x" not in shown
    assert "acme" in shown  # which tenants exist is not a secret


def test_docs_list_every_setting() -> None:
    docs = Path(__file__).parents[2] / "docs" / "configuration.md"

    assert docs.read_text(encoding="utf-8") == settings_markdown(), (
        "docs/configuration.md is stale: plug-pipeline settings > docs/configuration.md"
    )


def test_a_warehouse_password_is_masked_in_repr() -> None:
    config = load({"PLUG_PIPELINE_WAREHOUSE": "postgresql://loader:pg-s3cret@db:5432/plug"})

    assert config.warehouse.endswith("pg-s3cret@db:5432/plug")  # the value itself is intact
    assert "pg-s3cret" not in repr(config)
    assert "postgresql://loader:***@db:5432/plug" in repr(config)
