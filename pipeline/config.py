"""Configuration: environment variables (12-factor) with matching CLI flags.

``load`` reads the environment, lets CLI flags override it, and validates the
result into a frozen ``Config``. Any bad setting raises ``ConfigError`` with one
line saying what is wrong; the CLI turns that into exit code 2.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from pipeline.errors import ConfigError

DEFAULT_TENANT = "default"
_S = TypeVar("_S", bound=msgspec.Struct)


class KafkaSecurity(msgspec.Struct, frozen=True, kw_only=True):
    """Passed through to aiokafka as is; PLAINTEXT unless set."""

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def __repr__(self) -> str:
        return _masked(self, {"sasl_password"})


class KafkaSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What a Kafka client of our topics needs: the brokers, how to reach them, the prefix.

    The consumer library and the settings builders of ``pipeline.kafka_client`` take this,
    not the ingress's ``Config``: a reader of the topics configures no ingress. The
    ``Config`` composes it as ``config.kafka``.
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "plug"
    security: KafkaSecurity = msgspec.field(default_factory=KafkaSecurity)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSettings:
        """From ``KAFKA_*`` and ``PLUG_PIPELINE_TOPIC_PREFIX``, read and checked as ``load``
        reads them; the ingress's other settings are neither needed nor validated."""
        env = os.environ if environ is None else environ
        _refuse_unknown(env)
        values, security = _from_environ(env, _KAFKA_FIELDS)
        kafka = _converted(values | {"security": security}, cls)
        _validate_kafka(kafka)
        return kafka


class Config(msgspec.Struct, frozen=True, kw_only=True):
    bootstrap_servers: str = "127.0.0.1:9092"
    # tenant -> its tokens, oldest first; several while a token is being rotated
    tokens: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    tokens_file: str | None = None  # where the tokens came from: re-read on SIGHUP
    host: str = "0.0.0.0"
    port: int = 8080
    topic_prefix: str = "plug"
    max_body_bytes: int = 4 * 1024 * 1024
    max_in_flight: int = 2048
    max_in_flight_bytes: int = 256 * 1024 * 1024
    ack_timeout_s: float = 5.0
    shutdown_grace_s: float = 0.0
    shutdown_timeout_s: float = 15.0
    linger_ms: int = 0  # batches still form while a request is in flight; see bench/RESULTS.md
    compression: str | None = "lz4"
    compression_level: int | None = None  # None: lz4 at 1, the others at aiokafka's own
    raw_archive: bool = True
    create_topics: bool = True
    topic_partitions: int = 6
    retention_days: int = 7
    raw_retention_days: int = 30
    spool_dir: str | None = "spool"
    spool_max_bytes: int = 1024**3
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_handshake_timeout_s: float = 10.0
    # What one connection may cost before it is answered or closed (pipeline/http/guard.py).
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 75.0
    max_connections: int = 4096
    max_request_line_bytes: int = 8190
    max_header_bytes: int = 32 * 1024
    max_headers: int = 64
    max_query_bytes: int = 2048
    rate_limit_per_s: float = 0.0  # per tenant; 0 = off (Plug does not retry a 429)
    rate_limit_burst: int = 0  # 0 = one second's worth of the rate
    log_format: str = "text"
    kafka_security: KafkaSecurity = msgspec.field(default_factory=KafkaSecurity)
    # The KPI views' days and SLA (pipeline/warehouse/views.py, docs/analytics.md).
    kpi_time_zone: str = "America/Sao_Paulo"
    kpi_sla_seconds: float = 60.0
    warehouse: str = "plug.duckdb"  # a DuckDB file, or a postgresql:// URL
    # Customers' personal data (pipeline/privacy, docs/privacy.md): each tenant's pseudonym
    # key chain, oldest first, and what the warehouse keeps of personal fields per tenant.
    privacy_keys: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    privacy_keys_file: str | None = None
    privacy_policy: str = "pseudonymise"
    # Rules and receivers of the alerts for supervisors (docs/alerts.md); None: no alerts.
    alerts_file: str | None = None

    def __repr__(self) -> str:
        return _masked(self, {"tokens", "privacy_keys"})

    @property
    def auth_enabled(self) -> bool:
        return bool(self.tokens)

    @property
    def kafka(self) -> KafkaSettings:
        """The Kafka part of this configuration: what the clients of the topics take."""
        return KafkaSettings(
            bootstrap_servers=self.bootstrap_servers,
            topic_prefix=self.topic_prefix,
            security=self.kafka_security,
        )


_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def _masked(struct: msgspec.Struct, secrets: set[str]) -> str:
    """A repr that shows which secrets are set, never their values."""
    parts = []
    for name in struct.__struct_fields__:
        value = getattr(struct, name)
        if name in secrets and value:
            value = dict.fromkeys(value, "***") if isinstance(value, dict) else "***"
        elif isinstance(value, str):
            value = _URL_PASSWORD.sub(r"\1***@", value)  # postgresql://user:secret@host
        parts.append(f"{name}={value!r}")
    return f"{type(struct).__name__}({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: the environment variable, the Config field it fills, and its help.

    ``field`` names a Config field, or ``kafka_security.<field>``. Flags are derived:
    ``--`` + the field with dashes (``--max-body-bytes``), offered by the commands that
    take them (``add_flags``). ``secret`` values are masked wherever a Config is shown.
    """

    env: str
    field: str
    help: str
    secret: bool = False

    @property
    def flag(self) -> str | None:
        """Secrets have none: a command line shows in the process list."""
        if self.secret:
            return None
        return "--" + self.field.rpartition(".")[2].replace("_", "-")


# The one table of settings: environment variables, CLI flags and docs/configuration.md
# (``plug-pipeline settings``) all derive from it.
SETTINGS: tuple[Setting, ...] = (
    Setting("KAFKA_BOOTSTRAP_SERVERS", "bootstrap_servers", "Kafka brokers, host:port[,...]"),
    Setting("PLUG_PIPELINE_TOKENS", "tokens", "tenant=token pairs, comma separated", True),
    Setting("PLUG_PIPELINE_TOKENS_FILE", "tokens_file", "file of tenant=token lines"),
    Setting("PLUG_PIPELINE_HOST", "host", "address the ingress listens on"),
    Setting("PLUG_PIPELINE_PORT", "port", "port the ingress listens on"),
    Setting("PLUG_PIPELINE_TOPIC_PREFIX", "topic_prefix", "prefix of every topic name"),
    Setting("PLUG_PIPELINE_MAX_BODY_BYTES", "max_body_bytes", "largest webhook body accepted"),
    Setting("PLUG_PIPELINE_MAX_IN_FLIGHT", "max_in_flight", "webhooks handled at once"),
    Setting("PLUG_PIPELINE_MAX_IN_FLIGHT_BYTES", "max_in_flight_bytes", "body bytes held at once"),
    Setting("PLUG_PIPELINE_ACK_TIMEOUT_S", "ack_timeout_s", "wait for Kafka's ack before spooling"),
    Setting(
        "PLUG_PIPELINE_SHUTDOWN_GRACE_S",
        "shutdown_grace_s",
        "seconds /readyz fails before the listener closes",
    ),
    Setting(
        "PLUG_PIPELINE_SHUTDOWN_TIMEOUT_S", "shutdown_timeout_s", "bound on the whole shutdown"
    ),
    Setting("PLUG_PIPELINE_LINGER_MS", "linger_ms", "producer linger (batching delay)"),
    Setting("PLUG_PIPELINE_COMPRESSION", "compression", "none, gzip, snappy, lz4 or zstd"),
    Setting(
        "PLUG_PIPELINE_COMPRESSION_LEVEL",
        "compression_level",
        "level for lz4 (0-16, default 1), zstd (1-22, default 3) or gzip (1-9, default 9)",
    ),
    Setting("PLUG_PIPELINE_RAW_ARCHIVE", "raw_archive", "keep every body on the raw topic"),
    Setting("PLUG_PIPELINE_CREATE_TOPICS", "create_topics", "create missing topics at start"),
    Setting("PLUG_PIPELINE_TOPIC_PARTITIONS", "topic_partitions", "partitions of topics we create"),
    Setting("PLUG_PIPELINE_RETENTION_DAYS", "retention_days", "days event topics keep records"),
    Setting(
        "PLUG_PIPELINE_RAW_RETENTION_DAYS",
        "raw_retention_days",
        "days the raw archive and dead letters keep records (for replay)",
    ),
    Setting("PLUG_PIPELINE_SPOOL_DIR", "spool_dir", "spool directory, or none to turn it off"),
    Setting("PLUG_PIPELINE_SPOOL_MAX_BYTES", "spool_max_bytes", "bound on the spool's size"),
    Setting("PLUG_PIPELINE_TLS_CERT", "tls_cert", "TLS certificate chain (PEM) to serve HTTPS"),
    Setting("PLUG_PIPELINE_TLS_KEY", "tls_key", "TLS private key (PEM)"),
    Setting("PLUG_PIPELINE_LOG_FORMAT", "log_format", "text, or json: one object per line"),
    Setting(
        "PLUG_PIPELINE_TLS_HANDSHAKE_TIMEOUT_S",
        "tls_handshake_timeout_s",
        "bound on a TLS handshake",
    ),
    Setting(
        "PLUG_PIPELINE_HEADER_TIMEOUT_S",
        "header_timeout_s",
        "bound from connect (or first byte) to a request's complete headers; then 408",
    ),
    Setting(
        "PLUG_PIPELINE_BODY_TIMEOUT_S",
        "body_timeout_s",
        "bound from complete headers to the complete body; then 408",
    ),
    Setting(
        "PLUG_PIPELINE_KEEPALIVE_TIMEOUT_S",
        "keepalive_timeout_s",
        "idle keep-alive connections are closed after this",
    ),
    Setting(
        "PLUG_PIPELINE_MAX_CONNECTIONS",
        "max_connections",
        "open connections per process; past it the oldest waiting one is shed",
    ),
    Setting(
        "PLUG_PIPELINE_MAX_REQUEST_LINE_BYTES",
        "max_request_line_bytes",
        "longest request line (and header line)",
    ),
    Setting("PLUG_PIPELINE_MAX_HEADER_BYTES", "max_header_bytes", "largest header block; then 431"),
    Setting("PLUG_PIPELINE_MAX_HEADERS", "max_headers", "most header fields in a request"),
    Setting("PLUG_PIPELINE_MAX_QUERY_BYTES", "max_query_bytes", "longest query string; then 414"),
    Setting(
        "PLUG_PIPELINE_RATE_LIMIT_PER_S",
        "rate_limit_per_s",
        "webhooks per second per tenant, then 429 (0 = off: Plug does not retry)",
    ),
    Setting(
        "PLUG_PIPELINE_RATE_LIMIT_BURST",
        "rate_limit_burst",
        "token-bucket size per tenant (0 = one second of the rate)",
    ),
    Setting(
        "PLUG_PIPELINE_WAREHOUSE",
        "warehouse",
        "where `load` writes: a DuckDB file or a postgresql:// URL",
    ),
    Setting(
        "KAFKA_SECURITY_PROTOCOL",
        "kafka_security.security_protocol",
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    ),
    Setting("KAFKA_SASL_MECHANISM", "kafka_security.sasl_mechanism", "PLAIN, SCRAM-SHA-256/512"),
    Setting("KAFKA_SASL_USERNAME", "kafka_security.sasl_username", "SASL user name"),
    Setting("KAFKA_SASL_PASSWORD", "kafka_security.sasl_password", "SASL password", True),
    Setting("KAFKA_SSL_CAFILE", "kafka_security.ssl_cafile", "CA bundle for the brokers"),
    Setting("KAFKA_SSL_CERTFILE", "kafka_security.ssl_certfile", "client certificate"),
    Setting("KAFKA_SSL_KEYFILE", "kafka_security.ssl_keyfile", "client key"),
    Setting("PLUG_PIPELINE_KPI_TIME_ZONE", "kpi_time_zone", "time zone of the KPI views' days"),
    Setting("PLUG_PIPELINE_KPI_SLA_SECONDS", "kpi_sla_seconds", "first-response SLA threshold"),
    Setting(
        "PLUG_PIPELINE_PRIVACY_KEYS",
        "privacy_keys",
        "tenant=secret pairs keying customers' pseudonyms; a tenant's later ones rotate it",
        True,
    ),
    Setting("PLUG_PIPELINE_PRIVACY_KEYS_FILE", "privacy_keys_file", "file of tenant=secret lines"),
    Setting(
        "PLUG_PIPELINE_PRIVACY_POLICY",
        "privacy_policy",
        "what the warehouse keeps of personal fields: keep, pseudonymise or drop, or "
        "tenant=policy pairs with * for the rest",
    ),
    Setting(
        "PLUG_PIPELINE_ALERTS_FILE",
        "alerts_file",
        "TOML file of alert rules and receivers (docs/alerts.md); unset: no alerts",
    ),
)
_BY_FIELD = {s.field: s for s in SETTINGS}
# Names under these prefixes are ours: an unknown one is a typo, refused rather than ignored.
_OWN_PREFIXES = ("PLUG_PIPELINE_",)
# Variables for the test suite's own use, not settings of the program.
_NOT_SETTINGS = ("PLUG_PIPELINE_TEST_",)


def setting(field: str) -> Setting:
    return _BY_FIELD[field]


def add_flags(parser: argparse.ArgumentParser, *fields: str) -> None:
    """Add the flags of these settings to a command; each defaults to None (= not given)."""
    for field in fields:
        s = _BY_FIELD[field]
        if s.flag is None:
            raise ValueError(f"{field} is a secret: it has no flag")
        parser.add_argument(s.flag, dest=field.rpartition(".")[2], help=f"{s.help} ({s.env})")


def flag_values(args: argparse.Namespace, *fields: str) -> dict[str, Any]:
    """The values of the flags ``add_flags`` added, for ``load(**...)``."""
    return {f.rpartition(".")[2]: getattr(args, f.rpartition(".")[2]) for f in fields}


def settings_markdown() -> str:
    """The settings table as Markdown: docs/configuration.md is this, checked by a test."""
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable; the commands that take one also accept",
        "the flag. Flags win over the environment; an empty variable counts as unset; an",
        "unknown `PLUG_PIPELINE_*` variable is refused, as is any invalid value (exit code 2).",
        "Secrets are masked wherever a configuration is printed. Generated by",
        "`plug-pipeline settings`.",
        "",
        "| variable | flag | default | what |",
        "|---|---|---|---|",
    ]
    defaults = Config()
    for s in SETTINGS:
        owner: Any = defaults
        head, _, name = s.field.rpartition(".")
        if head:
            owner = getattr(defaults, head)
        default = getattr(owner, name, None)
        shown = "" if default in (None, {}) else f"`{default}`"
        flag = f"`{s.flag}`" if s.flag else "(secret: no flag)"
        lines.append(f"| `{s.env}` | {flag} | {shown} | {s.help} |")
    return "\n".join(lines) + "\n"


_TENANT = re.compile(r"[A-Za-z0-9._-]{1,64}")
_COMPRESSIONS = {"none", "gzip", "snappy", "lz4", "zstd"}
# The levels each codec takes; lz4 at 1 is ours (aiokafka's own is 9: bench/RESULTS.md).
COMPRESSION_LEVELS = {"lz4": range(17), "gzip": range(1, 10), "zstd": range(1, 23)}
DEFAULT_COMPRESSION_LEVELS = {"lz4": 1}


def parse_tokens(text: str, origin: str) -> dict[str, tuple[str, ...]]:
    """Parse ``tenant=token,tenant=token`` (commas or newlines between pairs).

    A tenant may appear several times: each pair adds a token (rotation without downtime:
    add the new token, re-register with Plug, remove the old one). The last one listed is
    the newest, the one ``register-webhooks`` hands to Plug.
    """
    tokens: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    lines = (line.strip() for line in text.splitlines())
    pairs = [p.strip() for line in lines if not line.startswith("#") for p in line.split(",")]
    for pair in pairs:
        if not pair:
            continue
        tenant, sep, token = pair.partition("=")
        tenant, token = tenant.strip(), token.strip()
        if not sep or not tenant or not token:
            # without '=' the entry may be a bare token: name its place, never its text
            shown = f"tenant {tenant!r} without a token" if sep and tenant else "an entry"
            raise ConfigError(f"{origin}: expected tenant=token, got {shown} without one")
        if not _TENANT.fullmatch(tenant):
            # the tenant is part of record keys ("tenant:phone"): no separator inside it
            raise ConfigError(f"{origin}: tenant {tenant!r} may hold only letters, digits, . _ -")
        if token in seen:
            raise ConfigError(f"{origin}: a token appears twice (tenant {tenant!r})")
        seen.add(token)
        tokens[tenant] = (*tokens.get(tenant, ()), token)
    return tokens


def read_secret_file(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from exc


def tokens_path(environ: Mapping[str, str], tokens_file: str | None = None) -> str | None:
    return tokens_file or environ.get("PLUG_PIPELINE_TOKENS_FILE") or None


def load_tokens(
    environ: Mapping[str, str], tokens_file: str | None = None
) -> dict[str, tuple[str, ...]]:
    """Tenant tokens from ``PLUG_PIPELINE_TOKENS`` or a file (flag or ``..._TOKENS_FILE``)."""
    path = tokens_path(environ, tokens_file)
    if path:
        return parse_tokens(read_secret_file(path, "tokens file"), path)
    return parse_tokens(environ.get("PLUG_PIPELINE_TOKENS", ""), "PLUG_PIPELINE_TOKENS")


def load_privacy_keys(
    environ: Mapping[str, str], keys_file: str | None = None
) -> dict[str, tuple[str, ...]]:
    """Pseudonym keys from ``PLUG_PIPELINE_PRIVACY_KEYS`` or a file, in the tokens' format."""
    if keys_file:
        return parse_tokens(read_secret_file(keys_file, "privacy keys file"), keys_file)
    text = environ.get("PLUG_PIPELINE_PRIVACY_KEYS", "")
    return parse_tokens(text, "PLUG_PIPELINE_PRIVACY_KEYS")


POLICIES = ("keep", "pseudonymise", "drop")


def parse_policy(text: str) -> dict[str, str]:
    """``pseudonymise``, or ``acme=keep,*=drop``: each tenant's policy, ``*`` for the rest.

    A tenant no pair names gets ``*``'s policy, and ``pseudonymise`` when there is none.
    """
    policies: dict[str, str] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        tenant, sep, policy = pair.rpartition("=")
        tenant, policy = (tenant.strip() if sep else "*"), policy.strip().lower()
        if policy not in POLICIES:
            raise ConfigError(
                f"PLUG_PIPELINE_PRIVACY_POLICY: {policy!r} is not one of {', '.join(POLICIES)}"
            )
        if tenant != "*" and not _TENANT.fullmatch(tenant):
            raise ConfigError(f"PLUG_PIPELINE_PRIVACY_POLICY: {tenant!r} is not a tenant")
        policies[tenant] = policy
    policies.setdefault("*", "pseudonymise")
    return policies


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Build the Config from the environment, then CLI flags (``None`` = not given)."""
    env = os.environ if environ is None else environ
    _refuse_unknown(env)
    secrets = {"tokens", "tokens_file", "privacy_keys", "privacy_keys_file"}
    values, security = _from_environ(env, {s.field for s in SETTINGS} - secrets)
    tokens_file = overrides.pop("tokens_file", None)
    keys_file = overrides.pop("privacy_keys_file", None) or env.get(
        "PLUG_PIPELINE_PRIVACY_KEYS_FILE"
    )
    security.update({k: overrides.pop(k) for k in _SECURITY_FIELDS & overrides.keys()})
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["tokens"] = load_tokens(env, tokens_file)
    values["tokens_file"] = tokens_path(env, tokens_file)
    values["privacy_keys"] = load_privacy_keys(env, keys_file)
    values["privacy_keys_file"] = keys_file or None
    values["kafka_security"] = {k: v for k, v in security.items() if v is not None}
    if str(values.get("spool_dir", "")).lower() in {"none", "off"}:
        values["spool_dir"] = None
    if "compression" in values:
        compression = str(values["compression"]).lower()
        values["compression"] = None if compression == "none" else compression
    config = _converted(values, Config)
    _validate(config)
    return config


_SECURITY_FIELDS = {s.field.partition(".")[2] for s in SETTINGS if "." in s.field}
# The settings KafkaSettings holds: the ingress's others are no business of a topic reader.
_KAFKA_FIELDS = {"bootstrap_servers", "topic_prefix"} | {
    s.field for s in SETTINGS if s.field.startswith("kafka_security.")
}


def _from_environ(
    env: Mapping[str, str], fields: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The set variables of these fields, as text: (top-level values, security values)."""
    values: dict[str, Any] = {}
    security: dict[str, Any] = {}
    for s in SETTINGS:
        if s.field not in fields or env.get(s.env, "") == "":
            continue
        head, _, name = s.field.rpartition(".")
        (security if head else values)[name] = env[s.env]
    return values, security


def _converted(values: dict[str, Any], kind: type[_S]) -> _S:
    try:
        return msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid setting: {exc}") from exc


def _refuse_unknown(env: Mapping[str, str]) -> None:
    known = {s.env for s in SETTINGS}
    for name in env:
        if (
            name.startswith(_OWN_PREFIXES)
            and not name.startswith(_NOT_SETTINGS)
            and name not in known
        ):
            raise ConfigError(f"unknown setting {name}; see docs/configuration.md")


def _validate(config: Config) -> None:  # noqa: C901  (one flat check per setting)
    if not 0 < config.port < 65536:
        raise ConfigError(f"port {config.port} is not between 1 and 65535")
    if config.max_body_bytes < 1024:
        raise ConfigError("body limit must be at least 1024 bytes")
    if config.topic_partitions < 1:
        raise ConfigError("topics need at least one partition")
    if config.retention_days < 1 or config.raw_retention_days < 1:
        raise ConfigError("topic retention must be at least one day")
    if config.max_in_flight_bytes < config.max_body_bytes:
        raise ConfigError("the in-flight byte limit must hold at least one body at the limit")
    if config.max_in_flight < 1:
        raise ConfigError("in-flight limit must be at least 1")
    if config.ack_timeout_s <= 0:
        raise ConfigError("ack timeout must be positive")
    if config.shutdown_grace_s < 0 or config.shutdown_timeout_s <= 0:
        raise ConfigError("shutdown grace must be >= 0 and shutdown timeout positive")
    if config.compression is not None and config.compression not in _COMPRESSIONS:
        raise ConfigError(
            f"compression {config.compression!r} is not one of {sorted(_COMPRESSIONS)}"
        )
    if config.compression_level is not None:
        allowed = COMPRESSION_LEVELS.get(config.compression or "none")
        if allowed is None:
            raise ConfigError(f"compression {config.compression} takes no level")
        if config.compression_level not in allowed:
            raise ConfigError(
                f"{config.compression} compression levels are {allowed.start}-{allowed.stop - 1}"
            )
    if config.log_format not in {"text", "json"}:
        raise ConfigError(f"log format {config.log_format!r} is not text or json")
    if config.spool_max_bytes < 1024 * 1024:
        raise ConfigError("spool limit must be at least 1 MiB")
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("TLS needs both a certificate and a key")
    try:
        zoneinfo.ZoneInfo(config.kpi_time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {config.kpi_time_zone!r}") from exc
    parse_policy(config.privacy_policy)
    if not (math.isfinite(config.kpi_sla_seconds) and config.kpi_sla_seconds > 0):
        raise ConfigError("the SLA threshold must be a positive number of seconds")
    _validate_edge(config)
    _validate_kafka(config.kafka)


def _validate_kafka(kafka: KafkaSettings) -> None:
    if not kafka.bootstrap_servers.strip():
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS is empty")


def _validate_edge(config: Config) -> None:
    """The limits of pipeline/http/guard.py: positive, and the header bound inside the idle one."""
    timeouts = (
        config.header_timeout_s,
        config.body_timeout_s,
        config.keepalive_timeout_s,
        config.tls_handshake_timeout_s,
    )
    if min(timeouts) <= 0:
        raise ConfigError("header, body, keep-alive and TLS handshake timeouts must be positive")
    if config.max_connections < 1:
        raise ConfigError("max connections must be at least 1")
    if config.max_request_line_bytes < 256 or config.max_header_bytes < 1024:
        raise ConfigError("request line limit must be >= 256 bytes, header block >= 1024")
    if config.max_headers < 8 or config.max_query_bytes < 64:
        raise ConfigError("at least 8 header fields and a 64-byte query string must be allowed")
    if config.rate_limit_per_s < 0 or config.rate_limit_burst < 0:
        raise ConfigError("rate limit and burst must be >= 0 (0 = off / one second's worth)")
