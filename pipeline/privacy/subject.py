"""A customer's phone, normalised, and its keyed pseudonym under the tenant's secret.

An unkeyed hash of a Brazilian mobile number is no pseudonym: there are about 10^9 of
them, and trying each takes seconds. HMAC-SHA256 under a secret per tenant is one only
the holder of the secret can link back, and a different one per tenant, so two centres'
warehouses cannot be joined on it.

Keys rotate as a chain: ``tenant=k1,tenant=k2`` (the tokens' format, oldest first) gives
``HMAC(k2, HMAC(k1, phone))``. A warehouse that holds pseudonyms under ``k1`` is moved to
the chain by applying ``HMAC(k2, .)`` to every stored pseudonym (``rekey``), so joins
over the history survive; and a leaked ``k1`` alone no longer links anything stored
after the rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

from pipeline.errors import ConfigError

# What a pseudonym looks like in a column: never mistaken for a phone number.
PREFIX = "ps:"
# 128 bits of the MAC: collisions between a tenant's customers are out of reach.
_HEX_CHARS = 32
_SEPARATORS = re.compile(r"[\s+()\-.]")
_DIGITS = re.compile(r"\d{8,}")


def normalise_phone(phone: str) -> str:
    """The form every store and every request compares: no spaces, ``+``, dots or dashes.

    Plug sends digits (``5511987654321``); a person types ``+55 (11) 98765-4321``. Group
    chat ids (``120363...-group``) lose their dash the same way on both sides.
    """
    return _SEPARATORS.sub("", phone)


def requested_phone(phone: str) -> str:
    """A phone as given to ``forget`` or ``subject``: normalised, and plausibly a number."""
    normal = normalise_phone(phone)
    if not _DIGITS.fullmatch(normal):
        raise ConfigError("--phone must be a phone number: 8 or more digits")
    return normal


def _mac(key: str, value: str) -> str:
    digest = hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:_HEX_CHARS]


def rekey(pseudonym: str, key: str) -> str:
    """A pseudonym under one more key of the chain (a rotation's step)."""
    return _mac(key, pseudonym)


def is_pseudonym(value: str) -> bool:
    return value.startswith(PREFIX) and len(value) == len(PREFIX) + _HEX_CHARS


class Pseudonyms:
    """Each tenant's key chain; ``of`` is the pseudonym of a phone within a tenant."""

    def __init__(self, keys: Mapping[str, Sequence[str]]) -> None:
        self._keys = {tenant: tuple(chain) for tenant, chain in keys.items() if chain}

    def __repr__(self) -> str:  # the secrets never reach a log line
        return f"Pseudonyms(tenants={sorted(self._keys)})"

    def __contains__(self, tenant: object) -> bool:
        return tenant in self._keys

    def tenants(self) -> list[str]:
        return sorted(self._keys)

    def chain(self, tenant: str) -> tuple[str, ...]:
        try:
            return self._keys[tenant]
        except KeyError:
            raise ConfigError(
                f"no pseudonym key for tenant {tenant!r} (PLUG_PIPELINE_PRIVACY_KEYS)"
            ) from None

    def of(self, tenant: str, phone: str) -> str:
        """The tenant's pseudonym of ``phone``; a pseudonym given again is returned as is."""
        if is_pseudonym(phone):
            return phone
        keys = self.chain(tenant)
        value = _mac(keys[0], normalise_phone(phone))
        for key in keys[1:]:
            value = _mac(key, value)
        return value

    def fingerprint(self, tenant: str) -> str:
        """Names a tenant's chain without revealing it: stored to notice a rotation."""
        return self.of(tenant, "0" * 8)
