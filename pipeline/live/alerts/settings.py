"""The alerts file read and checked at start: every fault names the file, line and key.

``load(path)`` returns ``AlertSettings`` or raises ``ConfigError`` with one line such as
``alerts.toml:14: rules[1].minutes: Expected `float` > 0.0, got 0``. TOML's own syntax
errors carry tomllib's line and column. A secret given by name (``url_env``,
``password_env``) is read here, so a missing variable stops the start, not the first
notification hours later.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from pipeline.errors import ConfigError
from pipeline.live.alerts.rules import (
    AlertsFile,
    EmailReceiver,
    Receiver,
    Rule,
    WebhookReceiver,
)
from pipeline.live.alerts.template import TemplateError, render

# msgspec ends its messages with "- at `$.rules[1].minutes`"
_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<key>[^`]*)`)?$", re.S)
_INDEXED = re.compile(r"^(?P<table>\w+)\[(?P<index>\d+)\](?:\.(?P<field>\w+))?")


@dataclass(frozen=True, slots=True)
class Secrets:
    """What a receiver needs that the file only names: never shown."""

    url: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return "Secrets(***)"


@dataclass(frozen=True, slots=True)
class AlertSettings:
    path: Path
    file: AlertsFile
    state_file: Path  # relative names are taken from the alerts file's folder
    time_zone: zoneinfo.ZoneInfo
    secrets: Mapping[str, Secrets]  # by receiver name

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.file.rules

    @property
    def receivers(self) -> tuple[Receiver, ...]:
        return self.file.receivers


class _Fault(Exception):
    def __init__(self, key: str, what: str) -> None:
        super().__init__(what)
        self.key, self.what = key, what


def load(
    path: str | Path, *, environ: Mapping[str, str] | None = None, time_zone: str = "UTC"
) -> AlertSettings:
    """Read and check the alerts file; ``time_zone`` is used when the file names none."""
    env = os.environ if environ is None else environ
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"alerts file {path}: cannot read it: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"alerts file {path}: not valid TOML: {exc}") from exc
    try:
        file = msgspec.convert(data, AlertsFile)
    except msgspec.ValidationError as exc:
        match = _AT.match(str(exc))
        assert match is not None  # the pattern matches any text
        raise _error(path, text, (match["key"] or "").lstrip("."), match["what"]) from exc
    try:
        return _checked(path, file, env, time_zone)
    except _Fault as fault:
        raise _error(path, text, fault.key, fault.what) from None


def _checked(
    path: Path, file: AlertsFile, env: Mapping[str, str], default_zone: str
) -> AlertSettings:
    names: set[str] = set()
    secrets: dict[str, Secrets] = {}
    for i, receiver in enumerate(file.receivers):
        if receiver.name in names:
            raise _Fault(f"receivers[{i}].name", f"a second receiver named {receiver.name!r}")
        names.add(receiver.name)
        secrets[receiver.name] = _secrets(i, receiver, env)
    rule_names: set[str] = set()
    for i, rule in enumerate(file.rules):
        if rule.name in rule_names:
            raise _Fault(f"rules[{i}].name", f"a second rule named {rule.name!r}")
        rule_names.add(rule.name)
        for unknown in (r for r in rule.receivers if r not in names):
            raise _Fault(f"rules[{i}].receivers", f"no receiver is named {unknown!r}")
        if not rule.tenant:
            raise _Fault(f"rules[{i}].tenant", "empty: name a tenant, or '*' for every tenant")
    zone_name = file.time_zone or default_zone
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _Fault("time_zone", f"{zone_name!r} is not a known time zone") from None
    state = Path(file.state_file)
    if not file.state_file:
        raise _Fault("state_file", "empty: name the file that keeps the alerts' state")
    if not state.is_absolute():
        state = path.parent / state
    if file.delivery.max_backoff_seconds < file.delivery.initial_backoff_seconds:
        raise _Fault("delivery.max_backoff_seconds", "smaller than initial_backoff_seconds")
    return AlertSettings(path, file, state, zone, secrets)


def _secrets(i: int, receiver: Receiver, env: Mapping[str, str]) -> Secrets:
    key = f"receivers[{i}]"
    if isinstance(receiver, WebhookReceiver):
        if (receiver.url is None) == (receiver.url_env is None):
            raise _Fault(key, "give exactly one of url and url_env")
        url = receiver.url if receiver.url is not None else _env(env, receiver.url_env, key)
        if not re.match(r"^https?://[^/\s]+", url):
            # the URL itself is a secret: say what is wrong, never show it
            raise _Fault(f"{key}.url", "not an http:// or https:// URL")
        if receiver.template is not None:
            _check_template(f"{key}.template", receiver.template)
        return Secrets(url=url)
    assert isinstance(receiver, EmailReceiver)
    if receiver.tls and receiver.starttls:
        raise _Fault(f"{key}.starttls", "tls (implicit TLS) and starttls exclude each other")
    if (receiver.username is None) != (receiver.password_env is None):
        raise _Fault(f"{key}.username", "a login needs both username and password_env")
    if receiver.ca_file is not None:
        if not (receiver.tls or receiver.starttls):
            raise _Fault(f"{key}.ca_file", "set, but neither tls nor starttls is on")
        if not os.path.isfile(receiver.ca_file):
            raise _Fault(f"{key}.ca_file", f"no such file: {receiver.ca_file}")
    password = _env(env, receiver.password_env, key) if receiver.password_env else None
    return Secrets(password=password)


def _env(env: Mapping[str, str], name: str | None, key: str) -> str:
    value = env.get(name or "")
    if not value:
        raise _Fault(key, f"the environment variable {name} is not set")
    return value


def _check_template(key: str, template: str) -> None:
    sample = dict.fromkeys(
        ("text", "state", "rule", "kind", "tenant", "subject", "since", "at", "id"), "x"
    )
    try:
        body: Any = json.loads(render(template, sample))
    except TemplateError as exc:
        raise _Fault(key, str(exc)) from None
    except ValueError as exc:
        raise _Fault(key, f"does not make JSON once filled in: {exc}") from None
    if not isinstance(body, dict):
        raise _Fault(key, "must make a JSON object")


def _error(path: Path, text: str, key: str, what: str) -> ConfigError:
    line = _line_of(text, key)
    where = f"{path}:{line}" if line else str(path)
    return ConfigError(f"alerts file {where}: {key or 'the file'}: {what}")


def _line_of(text: str, key: str) -> int | None:
    """The line of ``rules[1].minutes`` (or of ``[[rules]]`` number 2) in the file.

    Only the usual layout is followed (``[[rules]]`` tables, ``key = value`` lines, and
    top-level keys or ``[table]``s); anything else gets no line, the key still says where.
    """
    lines = text.splitlines()
    indexed = _INDEXED.match(key)
    if indexed:
        header = re.compile(rf"^\s*\[\[\s*{indexed['table']}\s*\]\]")
        starts = [n for n, line in enumerate(lines) if header.match(line)]
        index = int(indexed["index"])
        if index >= len(starts):
            return None
        return _field_line(lines, starts[index], indexed["field"])
    table, _, field = key.partition(".")
    if not field:  # a top-level key
        return _field_line(lines, -1, table) if table else None
    header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
    for n, line in enumerate(lines):
        if header.match(line):
            return _field_line(lines, n, field)
    return None


def _field_line(lines: list[str], start: int, field: str | None) -> int | None:
    """The line of ``field = ...`` in the table whose header is at ``start`` (-1: the top),
    else the header's own line."""
    if field:
        assignment = re.compile(rf"^\s*\"?{re.escape(field)}\"?\s*=")
        for n in range(start + 1, len(lines)):
            if lines[n].lstrip().startswith("["):
                break
            if assignment.match(lines[n]):
                return n + 1
    return start + 1 if start >= 0 else None
