"""Key chains recorded in a warehouse, and the rotations ``rekey`` accepts (DuckDB)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.privacy.subject import Pseudonyms, rekey
from pipeline.warehouse import chain
from pipeline.warehouse.duckdb import DuckDBTarget
from pipeline.warehouse.sql import Session
from pipeline.warehouse.target import Target, open_target


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    opened = open_target(str(tmp_path / "w.duckdb"))
    assert isinstance(opened, DuckDBTarget)
    opened.migrate()
    yield opened
    opened.close()


def check(target: Target, keys: dict[str, tuple[str, ...]]) -> list[str]:
    def work(session: Session) -> list[str]:
        return chain.check(session, Pseudonyms(keys))

    return target.transact(work)


def apply(target: Target, keys: dict[str, tuple[str, ...]], tenant: str) -> dict[str, int]:
    def work(session: Session) -> dict[str, int]:
        return chain.apply(session, tenant, Pseudonyms(keys))

    return target.transact(work)


def test_a_chain_is_recorded_once_then_checked(target: Target) -> None:
    assert check(target, {"acme": ("k1",)}) == ["acme"]
    assert check(target, {"acme": ("k1",)}) == []
    with pytest.raises(ConfigError, match="rekey --tenant acme") as raised:
        check(target, {"acme": ("k1", "k2")})
    assert "k2" not in str(raised.value)


def test_rekey_moves_the_recorded_chain_and_then_has_nothing_to_do(target: Target) -> None:
    check(target, {"acme": ("k1",), "globex": ("g1",)})
    assert apply(target, {"acme": ("k1", "k2")}, "acme") == {}  # no rows to move
    assert check(target, {"acme": ("k1", "k2"), "globex": ("g1",)}) == []
    assert apply(target, {"acme": ("k1", "k2")}, "acme") == {}


@pytest.mark.parametrize(
    "given", [("k9", "k2"), ("k2",), ("k1",)], ids=["replaced", "removed", "unchanged-but-short"]
)
def test_a_chain_that_does_not_extend_the_recorded_one_is_refused(
    target: Target, given: tuple[str, ...]
) -> None:
    check(target, {"acme": ("k1", "k2")})
    with pytest.raises(ConfigError, match="adds a key at the end"):
        apply(target, {"acme": given}, "acme")


def test_no_recorded_chain_is_nothing_to_rekey(target: Target) -> None:
    with pytest.raises(ConfigError, match="no key chain"):
        apply(target, {"acme": ("k1", "k2")}, "acme")


def test_mapped_moves_pseudonyms_only_wherever_they_are() -> None:
    ps = Pseudonyms({"acme": ("k1",)}).of("acme", "5511900000001")

    def moved(value: str) -> str:
        return rekey(value, "k2")

    data = {"phone": ps, "a": [ps, "ps:short", 5, None], "b": {"c": ps, "d": "5511"}}
    out = chain._mapped(data, moved)
    assert out == {
        "phone": moved(ps),
        "a": [moved(ps), "ps:short", 5, None],
        "b": {"c": moved(ps), "d": "5511"},
    }
