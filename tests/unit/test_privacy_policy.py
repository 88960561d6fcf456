"""Each tenant's policy: keep, pseudonymise or drop, ``*`` for the tenants no pair names."""

from __future__ import annotations

import pytest

from pipeline import config as configuration
from pipeline.errors import ConfigError
from pipeline.events.models import EventData, MessageSent
from pipeline.privacy.policy import Policies
from pipeline.privacy.subject import Pseudonyms

PHONE = "5511987654321"
KEYS = {"acme": ("k-acme",), "globex": ("k-globex",), "initech": ("k-initech",)}


def _sent() -> MessageSent:
    return MessageSent(
        message_id="m1",
        zaap_id="z1",
        phone=PHONE,
        instance_id="i1",
        moment=1,
        error=None,
        error_code=None,
    )


def _phone(data: EventData) -> str | None:
    assert isinstance(data, MessageSent)
    return data.phone


def test_each_tenant_gets_its_policy_and_the_rest_gets_the_star() -> None:
    policies = Policies("acme=keep, globex=drop, *=pseudonymise", Pseudonyms(KEYS))
    pseudonyms = Pseudonyms(KEYS)
    assert policies.policy("acme") == "keep"
    assert _phone(policies.apply("acme", _sent())) == PHONE
    assert policies.policy("globex") == "drop"
    assert policies.policy("initech") == "pseudonymise"
    assert _phone(policies.apply("initech", _sent())) == pseudonyms.of("initech", PHONE)
    assert policies.needs_key("initech")
    assert not policies.needs_key("acme")


def test_drop_takes_the_phone_out() -> None:
    policies = Policies("*=drop", Pseudonyms({}))
    # MessageSent.phone is required; dropped it is null, as the scrub writes it.
    assert _phone(policies.apply("anyone", _sent())) is None


def test_a_star_alone_or_a_bare_policy_applies_to_every_tenant() -> None:
    assert Policies("drop", Pseudonyms({})).policy("acme") == "drop"
    assert Policies("*=keep", Pseudonyms({})).policy("acme") == "keep"


def test_the_default_is_pseudonymise() -> None:
    config = configuration.load({})
    assert config.privacy_policy == "pseudonymise"
    policies = Policies.of(config)
    assert policies.policy("acme") == "pseudonymise"
    assert Policies("", Pseudonyms({})).policy("acme") == "pseudonymise"


def test_pseudonymise_without_the_tenant_key_refuses_instead_of_keeping_the_phone() -> None:
    policies = Policies("pseudonymise", Pseudonyms({"acme": ("k",)}))
    with pytest.raises(ConfigError, match="PLUG_PIPELINE_PRIVACY_KEYS"):
        policies.apply("globex", _sent())


@pytest.mark.parametrize("text", ["forget", "acme=keep,*=shred", "a:b=keep"])
def test_an_unknown_policy_or_tenant_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="PLUG_PIPELINE_PRIVACY_POLICY"):
        Policies(text, Pseudonyms({}))
