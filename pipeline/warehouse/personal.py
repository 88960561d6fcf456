"""What the loader keeps of an event's personal data: the tenant's policy, erased customers.

Every event passes here between its decoding and its rows (``batch.py``), so the row
columns and the stored ``data`` JSON are made from the same data. Under ``keep``, with no
customer of the tenant erased, the event and its JSON text go through untouched (no
re-encoding: the load path costs what it did). Otherwise the data is re-encoded from the
Struct, which also drops fields this version does not know (they may be personal).

Erased customers (``plug_erasure``) are remembered here by pseudonym, never by phone: an
event whose customer's pseudonym is one of them is scrubbed with the request's token
when it was received before the request (a loader that is behind, a replay of the raw
archive), or at any time when the request asked for suppression. A customer who writes
after a request without suppression is a new contact, kept under the tenant's policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import msgspec
from msgspec import structs

from pipeline.config import Config, parse_policy
from pipeline.consume.decode import AnyEvent
from pipeline.errors import ConfigError
from pipeline.events.models import (
    AttendanceFinished,
    AttendanceStarted,
    EventData,
    Message,
    MessageSent,
    MessageStatus,
)
from pipeline.privacy.policy import Policies
from pipeline.privacy.scrub import scrub

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Erased:
    """One erasure request as the loader remembers it (a row of ``plug_erasure``)."""

    tenant: str
    subject: str
    token: str
    requested_at: int  # epoch ms
    suppress: bool


def customer_phones(data: EventData) -> Iterator[str]:
    """The phones an event names its customer by (a group message: its participant too)."""
    if isinstance(data, AttendanceFinished | AttendanceStarted):
        phones: tuple[str | None, ...] = (data.customer.phone,)
    elif isinstance(data, Message):
        phones = (data.phone, data.participant_phone)
    elif isinstance(data, MessageSent | MessageStatus):
        phones = (data.phone,)
    else:
        phones = ()
    return (p for p in phones if p)


def token_for(requests: Iterable[Erased], received_at: int) -> str | None:
    """The token an event received at ``received_at`` takes, of one customer's requests:
    the earliest request made after it was received; else the latest that suppresses."""
    ordered = sorted(requests, key=lambda e: e.requested_at)
    for erased in ordered:
        if received_at <= erased.requested_at:
            return erased.token
    suppressing = [e for e in ordered if e.suppress]
    return suppressing[-1].token if suppressing else None


def check_keys(config: Config) -> None:
    """Refuse a policy that pseudonymises with no key at all: every event would be stored
    under drop. A tenant without a key among others that have one is told at load time."""
    needs = sorted(t for t, p in parse_policy(config.privacy_policy).items() if p == "pseudonymise")
    if needs and not config.privacy_keys:
        named = "every tenant" if "*" in needs else ", ".join(needs)
        raise ConfigError(
            f"the privacy policy pseudonymises {named} but no pseudonym key is set: set "
            "PLUG_PIPELINE_PRIVACY_KEYS (or _FILE), or PLUG_PIPELINE_PRIVACY_POLICY=keep"
        )


class Personal:
    """Each tenant's policy and erased customers, applied to events before their rows."""

    def __init__(self, policies: Policies, on_keyless: Callable[[str], None] | None = None) -> None:
        self.policies = policies
        self._erased: dict[str, dict[str, list[Erased]]] = {}  # tenant -> subject -> requests
        self._keyless: set[str] = set()
        self._on_keyless = on_keyless

    @classmethod
    def of(cls, config: Config, on_keyless: Callable[[str], None] | None = None) -> Personal:
        return cls(Policies.of(config), on_keyless)

    def remember(self, erased: Erased) -> None:
        requests = self._erased.setdefault(erased.tenant, {}).setdefault(erased.subject, [])
        if erased not in requests:
            requests.append(erased)

    def reset(self, erased: Iterable[Erased]) -> None:
        """What ``plug_erasure`` holds now replaces what was remembered."""
        self._erased = {}
        for e in erased:
            self.remember(e)

    def erased(self) -> list[Erased]:
        return [e for subjects in self._erased.values() for es in subjects.values() for e in es]

    def pseudonym(self, tenant: str, phone: str) -> str | None:
        """``phone``'s pseudonym within ``tenant``; None when the tenant has no key."""
        pseudonyms = self.policies.pseudonyms
        return pseudonyms.of(tenant, phone) if tenant in pseudonyms else None

    def event(self, event: AnyEvent, data_json: str) -> tuple[AnyEvent, str]:
        """The event and its ``data`` JSON text as the warehouse may keep them."""
        tenant = event.tenant
        erased = self._erased.get(tenant)
        policy = self.policies.policy(tenant)
        if policy == "keep" and not erased:
            return event, data_json
        data: EventData = event.data  # type: ignore[assignment]  # erasures never get here
        token = self._token(tenant, erased, data, event.received_at) if erased else None
        if token is not None:
            # scrubbed with the token, no policy after: the token is no one's phone
            kept = scrub(data, lambda _phone: token)
        elif policy == "pseudonymise" and tenant not in self.policies.pseudonyms:
            self._keyless_tenant(tenant)
            kept = scrub(data, lambda _phone: None)
        else:
            kept = self.policies.apply(tenant, data)
        if kept is data:
            return event, data_json
        return structs.replace(event, data=kept), msgspec.json.encode(kept).decode()

    def _token(
        self, tenant: str, erased: dict[str, list[Erased]], data: EventData, received_at: int
    ) -> str | None:
        for phone in customer_phones(data):
            subject = self.pseudonym(tenant, phone)
            requests = erased.get(subject) if subject is not None else None
            if requests:
                return token_for(requests, received_at)
        return None

    def _keyless_tenant(self, tenant: str) -> None:
        """Counted every event, told once per tenant: its events are stored without phones
        until it has a key."""
        if self._on_keyless is not None:
            self._on_keyless(tenant)
        if tenant in self._keyless:
            return
        self._keyless.add(tenant)
        log.warning(
            "tenant %r has no pseudonym key (PLUG_PIPELINE_PRIVACY_KEYS): its events are "
            "stored under the drop policy, without phone numbers",
            tenant,
        )
