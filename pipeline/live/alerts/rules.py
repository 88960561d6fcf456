"""The alerts file's shapes: rules, receivers and delivery, as msgspec Structs.

Each rule and receiver is a tagged Struct (``kind`` picks the shape) that refuses
unknown fields, so a typo in the file is an error naming the key, not a rule that
silently never fires. ``settings.py`` reads the file into these and checks what the
shapes alone cannot (names unique, receivers known, a template that makes JSON).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
Minutes = Annotated[float, msgspec.Meta(ge=0)]
# Every tenant, or every department one by one (one alert each).
EVERY = "*"


class _Rule(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    name: Name
    tenant: str = EVERY  # a tenant, or "*" for every tenant
    # 0 = notify once while it holds; otherwise again every this many minutes
    repeat_minutes: Minutes = 30.0
    receivers: tuple[str, ...] = ()  # none named = every receiver


class InstanceDisconnected(_Rule, frozen=True, tag="instance_disconnected"):
    """A WhatsApp number (instance) disconnected; back when it sends or receives again."""

    # 0: at once; more: only once disconnected this long (a number that drops and comes
    # back within a minute pages nobody)
    after_minutes: Minutes = 0.0


class LongWait(_Rule, frozen=True, tag="long_wait"):
    """A customer waiting for a first answer longer than ``minutes``."""

    minutes: Annotated[float, msgspec.Meta(gt=0)]
    department: str | None = None  # None: the whole tenant; "*": each department


class ServiceLevel(_Rule, frozen=True, tag="service_level"):
    """Service level today under ``below_percent``, once ``min_finished`` are finished."""

    below_percent: Annotated[float, msgspec.Meta(gt=0, le=100)]
    # so that 0 of 1 at 00:05 does not page anyone
    min_finished: Annotated[int, msgspec.Meta(ge=1)] = 20
    department: str | None = None


class DeliveryFailures(_Rule, frozen=True, tag="delivery_failures"):
    """More than ``more_than`` messages failed to deliver in the last 15 minutes."""

    more_than: Annotated[int, msgspec.Meta(ge=0)]


Rule = InstanceDisconnected | LongWait | ServiceLevel | DeliveryFailures


class _Receiver(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    name: Name


class WebhookReceiver(_Receiver, frozen=True, tag="webhook"):
    """An incoming webhook (Slack, Teams, Google Chat...): a JSON POST.

    The URL is a secret (whoever holds a Slack webhook URL can post): give it in the
    file or name an environment variable that holds it; it is never logged.
    """

    url: str | None = None
    url_env: str | None = None
    # JSON with $text, $state, $rule, $kind, $tenant, $subject, $since, $at, $id, each
    # replaced by a JSON string; None: {"text": $text}, which all three accept
    template: str | None = None


class EmailReceiver(_Receiver, frozen=True, tag="email"):
    """E-mail over SMTP: implicit TLS (``tls``), or STARTTLS, and a login, when set."""

    host: str
    sender: str = msgspec.field(name="from")
    to: Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 25
    tls: bool = False
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None  # the variable holding the password, never the password
    ca_file: str | None = None  # CA bundle to trust instead of the system's (a private CA)


Receiver = WebhookReceiver | EmailReceiver


class Delivery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How notifications are retried while a receiver is down."""

    initial_backoff_seconds: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    # a receiver back from an outage waits at most this long for what it missed
    max_backoff_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # per receiver; past it the oldest waiting notification is dropped (and counted)
    queue_size: Annotated[int, msgspec.Meta(ge=1)] = 1000
    # a notification still undelivered after this long is dropped (and counted)
    give_up_after_hours: Annotated[float, msgspec.Meta(gt=0)] = 24.0


class AlertsFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole file."""

    state_file: str = "alerts-state.json"
    time_zone: str | None = None  # of the times in notifications; None: the KPI time zone
    delivery: Delivery = msgspec.field(default_factory=Delivery)
    receivers: Annotated[tuple[Receiver, ...], msgspec.Meta(min_length=1)]
    rules: Annotated[tuple[Rule, ...], msgspec.Meta(min_length=1)]
