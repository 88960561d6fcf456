"""What the warehouse keeps of an event's personal fields, per tenant.

- ``keep``: everything, as Plug sent it (a centre that has its own legal basis and
  controls who reads the warehouse).
- ``pseudonymise`` (the default): phone numbers become the tenant's keyed pseudonym, so
  distinct customers and recontacts still count and a customer's rows still join; names,
  photos, texts, captions, media links and locations are dropped. What a KPI needs stays,
  and nothing in the warehouse names or describes a person without the tenant's key.
- ``drop``: phone numbers go too. Recontacts and distinct customers can no longer be
  counted.

Why pseudonymise is the default: the KPI views give the same figures as with ``keep``,
analysts never see a customer's number or words (LGPD art. 6 III, data minimisation;
art. 13 for studies), and erasure and access requests still find a customer's rows by
the pseudonym of the number they give.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.config import Config, parse_policy
from pipeline.events.models import EventData
from pipeline.privacy.scrub import scrub
from pipeline.privacy.subject import Pseudonyms

Apply = Callable[[str, EventData], EventData]


class Policies:
    """Each tenant's policy, applied to an event's data before it becomes rows."""

    def __init__(self, text: str, pseudonyms: Pseudonyms) -> None:
        self._policies = parse_policy(text)
        self._pseudonyms = pseudonyms

    @classmethod
    def of(cls, config: Config) -> Policies:
        return cls(config.privacy_policy, Pseudonyms(config.privacy_keys))

    @property
    def pseudonyms(self) -> Pseudonyms:
        return self._pseudonyms

    def policy(self, tenant: str) -> str:
        return self._policies.get(tenant, self._policies["*"])

    def needs_key(self, tenant: str) -> bool:
        return self.policy(tenant) == "pseudonymise"

    def apply(self, tenant: str, data: EventData) -> EventData:
        """``data`` as the warehouse may keep it for ``tenant``."""
        policy = self.policy(tenant)
        if policy == "keep":
            return data
        if policy == "drop":
            return scrub(data, lambda _phone: None)
        pseudonyms = self._pseudonyms
        return scrub(data, lambda phone: pseudonyms.of(tenant, phone))
