"""Row-level security by tenant on PostgreSQL: which tables get which policy, the grants."""

from __future__ import annotations

import re

from pipeline.warehouse import isolation, migrations, views
from pipeline.warehouse.chain import CHAIN_TABLE
from pipeline.warehouse.erase import AUDIT_TABLE
from pipeline.warehouse.tables import LOADED_TABLES, MIGRATIONS_TABLE, OFFSETS_TABLE

_CREATED = re.compile(r"CREATE TABLE IF NOT EXISTS \"?(\w+)\"?")


def _created_tables() -> set[str]:
    """Every table the PostgreSQL migrations create, read from their statements."""
    found = {MIGRATIONS_TABLE}  # made by the runner before the first migration
    for migration in migrations.MIGRATIONS:
        for statement in migration.statements("postgresql"):
            match = _CREATED.match(statement)
            if match:
                found.add(match.group(1))
    return found


def _secured() -> dict[str, set[str]]:
    """Table -> the policies the row-level security migration gives it."""
    policies: dict[str, set[str]] = {}
    forced = set()
    for statement in isolation.migration():
        if m := re.match(r'ALTER TABLE "(\w+)" FORCE ROW LEVEL SECURITY', statement):
            forced.add(m.group(1))
        if m := re.match(r'CREATE POLICY (\w+) ON "(\w+)"', statement):
            policies.setdefault(m.group(2), set()).add(m.group(1))
    assert forced == set(policies)
    return policies


def test_every_table_the_migrations_create_is_under_row_level_security() -> None:
    assert set(_secured()) == _created_tables()


def test_tenants_read_the_tables_with_a_tenant_and_no_bookkeeping() -> None:
    policies = _secured()
    with_tenant = {t.name for t in LOADED_TABLES if "tenant" in t.column_names}
    assert {t for t, p in policies.items() if isolation.TENANT_POLICY in p} == with_tenant | {
        isolation.ROLES_TABLE
    }
    assert all(isolation.LOADER_POLICY in p for p in policies.values())
    for private in (OFFSETS_TABLE, MIGRATIONS_TABLE, AUDIT_TABLE, CHAIN_TABLE, "plug_load_errors"):
        assert policies[private] == {isolation.LOADER_POLICY}
        assert private not in isolation.READABLE


def test_the_tenant_policy_reads_only_the_role_map_and_no_setting() -> None:
    tenant_policies = [
        s for s in isolation.migration() if s.startswith("CREATE POLICY plug_tenant")
    ]
    assert tenant_policies
    for statement in tenant_policies:
        assert "FOR SELECT" in statement
        assert "current_user" in statement
        assert "current_setting" not in statement
        assert "session_user" not in statement


def test_a_grant_is_the_whole_of_the_role_s_rights_and_only_reads() -> None:
    statements = isolation.grants('odd "role"', "public")
    assert statements[:2] == isolation.revokes('odd "role"', "public")
    assert all('"odd ""role"""' in s for s in statements)
    grant = statements[-1]
    assert grant.startswith("GRANT SELECT ON ")
    for name in (*isolation.TENANT_TABLES, *views.VIEW_NAMES, isolation.ROLES_TABLE):
        assert f'"{name}"' in grant
    assert "plug_offsets" not in grant
    assert AUDIT_TABLE not in grant


def test_duckdb_has_no_row_level_security() -> None:
    assert [m.statements("duckdb") for m in migrations.MIGRATIONS if m.version == 7] == [[]]
