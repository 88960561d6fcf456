"""The token table: several tokens per tenant, one keyed-hash lookup, never a token shown."""

from __future__ import annotations

from unittest import mock

import pytest

from pipeline.config import load
from pipeline.http.tokens import TokenTable

TOKENS = "acme=s3cret,globex=t0ken,initech=ab,acme=s3cret-next"


def table() -> TokenTable:
    return TokenTable(load({"PLUG_PIPELINE_TOKENS": TOKENS}).tokens)


@pytest.mark.parametrize(
    ("token", "tenant"),
    [("s3cret", "acme"), ("s3cret-next", "acme"), ("t0ken", "globex"), ("ab", "initech")],
)
def test_every_token_names_its_tenant(token: str, tenant: str) -> None:
    assert table().tenant_for(token) == tenant


@pytest.mark.parametrize(
    "token", ["", "s3cre", "s3cret ", "S3CRET", "acme", "a", "abc", "é", "\udcff", "s3cret\x00"]
)
def test_an_unknown_token_is_none(token: str) -> None:
    assert table().tenant_for(token) is None


def test_without_tokens_nothing_matches() -> None:
    assert len(TokenTable({})) == 0
    assert TokenTable({}).tenant_for("anything") is None


def test_one_keyed_hash_per_lookup_whatever_the_number_of_tenants() -> None:
    """The lookup hashes the candidate once; it never compares against each tenant's token."""
    many = TokenTable({f"t{i}": (f"token-{i}",) for i in range(1000)})

    with mock.patch.object(many, "_digest", wraps=many._digest) as digest:
        assert many.tenant_for("token-999") == "t999"
        assert many.tenant_for("nope") is None

    assert digest.call_count == 2


def test_each_table_has_its_own_random_key() -> None:
    """Digests differ between tables (and processes): nothing precomputed carries over."""
    a, b = table(), table()
    assert a._digest("s3cret") != b._digest("s3cret")
    assert a.tenant_for("s3cret") == b.tenant_for("s3cret") == "acme"


def test_repr_names_tenants_and_counts_only() -> None:
    shown = repr(table())
    assert "acme" in shown
    assert "2" in shown  # acme's two tokens
    for secret in ("s3cret", "t0ken", "s3cret-next"):
        assert secret not in shown
    assert table().tenants == {"acme": 2, "globex": 1, "initech": 1}


def test_a_plain_string_is_one_token() -> None:
    assert TokenTable({"acme": "whole-token"}).tenant_for("whole-token") == "acme"
    assert TokenTable({"acme": "whole-token"}).tenant_for("w") is None
