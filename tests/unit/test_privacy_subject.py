"""Pseudonyms: HMAC-SHA256 under the tenant's key chain, normalised phones, junk refused."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from pipeline.errors import ConfigError
from pipeline.privacy.subject import (
    Pseudonyms,
    is_pseudonym,
    normalise_phone,
    rekey,
    requested_phone,
)

PHONE = "5511987654321"


def _hmac(key: str, value: str) -> str:
    """Computed here with the standard library, not with the module under test."""
    return "ps:" + hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def test_a_pseudonym_is_the_hmac_sha256_of_the_phone_under_the_tenant_key() -> None:
    pseudonyms = Pseudonyms({"acme": ("k1",)})
    assert pseudonyms.of("acme", PHONE) == _hmac("k1", PHONE)
    assert is_pseudonym(pseudonyms.of("acme", PHONE))


def test_pseudonyms_differ_per_tenant_and_per_key() -> None:
    pseudonyms = Pseudonyms({"acme": ("k1",), "globex": ("k2",), "initech": ("k1",)})
    acme, globex = pseudonyms.of("acme", PHONE), pseudonyms.of("globex", PHONE)
    assert acme != globex
    # One key for two tenants gives one pseudonym: the key, not the tenant's name, is the secret.
    assert pseudonyms.of("initech", PHONE) == acme
    assert Pseudonyms({"acme": ("other",)}).of("acme", PHONE) != acme
    assert pseudonyms.of("acme", "5511987654322") != acme


def test_a_chain_equals_the_rekey_of_the_value_under_the_old_key() -> None:
    old = Pseudonyms({"acme": ("k1",)}).of("acme", PHONE)
    chained = Pseudonyms({"acme": ("k1", "k2")}).of("acme", PHONE)
    assert chained == rekey(old, "k2") == _hmac("k2", _hmac("k1", PHONE))
    assert chained != old


def test_a_pseudonym_given_again_is_kept() -> None:
    pseudonyms = Pseudonyms({"acme": ("k1",)})
    once = pseudonyms.of("acme", PHONE)
    assert pseudonyms.of("acme", once) == once


def test_the_typed_and_the_sent_forms_of_a_phone_are_one_subject() -> None:
    assert normalise_phone("+55 (11) 98765-4321") == PHONE
    assert normalise_phone("55.11.98765.4321") == PHONE
    pseudonyms = Pseudonyms({"acme": ("k1",)})
    assert pseudonyms.of("acme", "+55 (11) 98765-4321") == pseudonyms.of("acme", PHONE)
    assert requested_phone("+55 (11) 98765-4321") == PHONE


@pytest.mark.parametrize("junk", ["", "abc", "1234567", "55 11 9876x4321", "5511;rm", "ps:ab"])
def test_requested_phone_refuses_what_is_not_a_number(junk: str) -> None:
    with pytest.raises(ConfigError, match="--phone"):
        requested_phone(junk)


def test_a_tenant_without_a_key_is_named_with_the_setting_and_no_secret_shows() -> None:
    pseudonyms = Pseudonyms({"acme": ("very-secret",)})
    with pytest.raises(ConfigError, match="PLUG_PIPELINE_PRIVACY_KEYS") as caught:
        pseudonyms.of("globex", PHONE)
    assert "globex" in str(caught.value)
    assert "very-secret" not in repr(pseudonyms) + str(caught.value)
    assert "acme" in pseudonyms
    assert "globex" not in pseudonyms


def test_the_fingerprint_names_the_chain_and_changes_with_a_rotation() -> None:
    one = Pseudonyms({"acme": ("k1",)}).fingerprint("acme")
    assert one == Pseudonyms({"acme": ("k1",)}).fingerprint("acme")
    assert one != Pseudonyms({"acme": ("k1", "k2")}).fingerprint("acme")
    assert "k1" not in one
