"""Configuration: environment variables (12-factor) with matching CLI flags.

``load`` reads the environment, lets CLI flags override it, and validates the
result into a frozen ``Config``. Any bad setting raises ``ConfigError`` with one
line saying what is wrong; the CLI turns that into exit code 2.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from pipeline.errors import ConfigError

DEFAULT_TENANT = "default"


class KafkaSecurity(msgspec.Struct, frozen=True, kw_only=True):
    """Passed through to aiokafka as is; PLAINTEXT unless set."""

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


class Config(msgspec.Struct, frozen=True, kw_only=True):
    bootstrap_servers: str = "127.0.0.1:9092"
    tokens: dict[str, str] = msgspec.field(default_factory=dict)  # tenant -> token
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
    raw_archive: bool = True
    create_topics: bool = True
    topic_partitions: int = 6
    spool_dir: str | None = "spool"
    spool_max_bytes: int = 1024**3
    tls_cert: str | None = None
    tls_key: str | None = None
    kafka_security: KafkaSecurity = msgspec.field(default_factory=KafkaSecurity)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.tokens)

    def tenant_for(self, token: str) -> str | None:
        """The tenant a token names, compared in constant time, or None."""
        found = None
        candidate = token.encode()
        for tenant, secret in self.tokens.items():
            # Every secret is compared, so timing does not tell which tenant matched.
            if hmac.compare_digest(candidate, secret.encode()):
                found = tenant
        return found


# environment variable -> (Config field, parser)
_ENV: dict[str, str] = {
    "KAFKA_BOOTSTRAP_SERVERS": "bootstrap_servers",
    "PLUG_PIPELINE_HOST": "host",
    "PLUG_PIPELINE_PORT": "port",
    "PLUG_PIPELINE_TOPIC_PREFIX": "topic_prefix",
    "PLUG_PIPELINE_MAX_BODY_BYTES": "max_body_bytes",
    "PLUG_PIPELINE_MAX_IN_FLIGHT": "max_in_flight",
    "PLUG_PIPELINE_MAX_IN_FLIGHT_BYTES": "max_in_flight_bytes",
    "PLUG_PIPELINE_ACK_TIMEOUT_S": "ack_timeout_s",
    "PLUG_PIPELINE_SHUTDOWN_GRACE_S": "shutdown_grace_s",
    "PLUG_PIPELINE_SHUTDOWN_TIMEOUT_S": "shutdown_timeout_s",
    "PLUG_PIPELINE_LINGER_MS": "linger_ms",
    "PLUG_PIPELINE_COMPRESSION": "compression",
    "PLUG_PIPELINE_RAW_ARCHIVE": "raw_archive",
    "PLUG_PIPELINE_CREATE_TOPICS": "create_topics",
    "PLUG_PIPELINE_TOPIC_PARTITIONS": "topic_partitions",
    "PLUG_PIPELINE_SPOOL_DIR": "spool_dir",
    "PLUG_PIPELINE_SPOOL_MAX_BYTES": "spool_max_bytes",
    "PLUG_PIPELINE_TLS_CERT": "tls_cert",
    "PLUG_PIPELINE_TLS_KEY": "tls_key",
}

_KAFKA_ENV: dict[str, str] = {
    "KAFKA_SECURITY_PROTOCOL": "security_protocol",
    "KAFKA_SASL_MECHANISM": "sasl_mechanism",
    "KAFKA_SASL_USERNAME": "sasl_username",
    "KAFKA_SASL_PASSWORD": "sasl_password",
    "KAFKA_SSL_CAFILE": "ssl_cafile",
    "KAFKA_SSL_CERTFILE": "ssl_certfile",
    "KAFKA_SSL_KEYFILE": "ssl_keyfile",
}

_TENANT = re.compile(r"[A-Za-z0-9._-]{1,64}")
_COMPRESSIONS = {"none", "gzip", "snappy", "lz4", "zstd"}


def parse_tokens(text: str, origin: str) -> dict[str, str]:
    """Parse ``tenant=token,tenant=token`` (commas or newlines between pairs)."""
    tokens: dict[str, str] = {}
    lines = (line.strip() for line in text.splitlines())
    pairs = [p.strip() for line in lines if not line.startswith("#") for p in line.split(",")]
    for pair in pairs:
        if not pair:
            continue
        tenant, sep, token = pair.partition("=")
        tenant, token = tenant.strip(), token.strip()
        if not sep or not tenant or not token:
            raise ConfigError(f"{origin}: expected tenant=token, got {tenant or pair!r}")
        if not _TENANT.fullmatch(tenant):
            # the tenant is part of record keys ("tenant:phone"): no separator inside it
            raise ConfigError(f"{origin}: tenant {tenant!r} may hold only letters, digits, . _ -")
        if tenant in tokens:
            raise ConfigError(f"{origin}: tenant {tenant!r} appears twice")
        if token in tokens.values():
            raise ConfigError(f"{origin}: two tenants share one token")
        tokens[tenant] = token
    return tokens


def read_secret_file(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from exc


def load_tokens(environ: Mapping[str, str], tokens_file: str | None = None) -> dict[str, str]:
    """Tenant tokens from ``PLUG_PIPELINE_TOKENS`` or a file (flag or ``..._TOKENS_FILE``)."""
    path = tokens_file or environ.get("PLUG_PIPELINE_TOKENS_FILE")
    if path:
        return parse_tokens(read_secret_file(path, "tokens file"), path)
    return parse_tokens(environ.get("PLUG_PIPELINE_TOKENS", ""), "PLUG_PIPELINE_TOKENS")


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Build the Config from the environment, then CLI flags (``None`` = not given)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, field in _ENV.items():
        if env.get(name, "") != "":
            values[field] = env[name]
    security = {f: env[n] for n, f in _KAFKA_ENV.items() if env.get(n, "") != ""}
    tokens_file = overrides.pop("tokens_file", None)
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["tokens"] = load_tokens(env, tokens_file)
    values["kafka_security"] = security
    if str(values.get("spool_dir", "")).lower() in {"none", "off"}:
        values["spool_dir"] = None
    if "compression" in values:
        compression = str(values["compression"]).lower()
        values["compression"] = None if compression == "none" else compression
    try:
        config = msgspec.convert(values, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid setting: {exc}") from exc
    _validate(config)
    return config


def _validate(config: Config) -> None:
    if not 0 < config.port < 65536:
        raise ConfigError(f"port {config.port} is not between 1 and 65535")
    if config.max_body_bytes < 1024:
        raise ConfigError("body limit must be at least 1024 bytes")
    if config.topic_partitions < 1:
        raise ConfigError("topics need at least one partition")
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
    if config.spool_max_bytes < 1024 * 1024:
        raise ConfigError("spool limit must be at least 1 MiB")
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("TLS needs both a certificate and a key")
    if not config.bootstrap_servers.strip():
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS is empty")
