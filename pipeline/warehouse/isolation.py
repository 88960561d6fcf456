"""Tenant isolation on PostgreSQL: every table under row-level security, and the roles
that read one tenant each (``plug-pipeline grant``).

Every table of the warehouse has row-level security enabled and forced, so its owner is
held to the policies too (without ``FORCE`` the owner bypasses them silently). Two
policies:

- ``plug_loader``, on every table, to the role that applied the migration (the loader's
  own role, which owns the tables): every row, read and written. The loader sees every
  tenant through a policy anyone can read in ``pg_policies`` rather than through
  ``BYPASSRLS``, which only a superuser can give and which would hide that it does.
- ``plug_tenant``, read-only, on the tables whose rows carry a ``tenant``: the rows of
  the tenant that ``plug_tenant_roles`` maps ``current_user`` to. A tenant's role sets
  nothing it could change: no setting (GUC) takes part, and ``SET ROLE`` reaches only
  roles it is a member of (``grant`` refuses a role that is a member of any).

The bookkeeping tables (offsets, migrations, load errors, the erasure audit, the
pseudonym key chains) have no ``plug_tenant`` policy and are never granted: a tenant's
role reads zero rows of them even if someone grants it the table. ``plug_tenant_roles``
itself shows a role its own row only; the ``plug_tenant`` policies read it as the
querying role. The KPI views are created ``WITH (security_invoker = true)``
(``views.py``), so they read their tables as the role querying them, under its policy;
they are dropped and created at every start of the loader, which grants them again to
every mapped role (``restore_grants``).
"""

from __future__ import annotations

from pipeline.warehouse import views
from pipeline.warehouse.chain import CHAIN_TABLE
from pipeline.warehouse.erase import AUDIT_TABLE
from pipeline.warehouse.sql import Session, q
from pipeline.warehouse.tables import LOADED_TABLES, MIGRATIONS_TABLE, OFFSETS_TABLE

ROLES_TABLE = "plug_tenant_roles"
LOADER_POLICY, TENANT_POLICY = "plug_loader", "plug_tenant"

# What a tenant's role may read: the tables whose rows carry a tenant, and the views.
TENANT_TABLES: tuple[str, ...] = tuple(t.name for t in LOADED_TABLES if "tenant" in t.column_names)
READABLE: tuple[str, ...] = (*TENANT_TABLES, *views.VIEW_NAMES)
# Under row-level security with the loader's policy alone.
PRIVATE_TABLES: tuple[str, ...] = (
    *(t.name for t in LOADED_TABLES if t.name not in TENANT_TABLES),
    OFFSETS_TABLE,
    MIGRATIONS_TABLE,
    AUDIT_TABLE,
    CHAIN_TABLE,
)

_OWN_TENANT = f"tenant IN (SELECT r.tenant FROM {ROLES_TABLE} r WHERE r.role_name = current_user)"


def _secured(table: str) -> list[str]:
    name = q(table)
    return [
        f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {LOADER_POLICY} ON {name}",
        f"CREATE POLICY {LOADER_POLICY} ON {name} TO CURRENT_USER USING (true) WITH CHECK (true)",
    ]


def _tenant_policy(table: str, condition: str) -> list[str]:
    name = q(table)
    return [
        f"DROP POLICY IF EXISTS {TENANT_POLICY} ON {name}",
        f"CREATE POLICY {TENANT_POLICY} ON {name} FOR SELECT USING ({condition})",
    ]


def migration() -> list[str]:
    """PostgreSQL: the role map, and every table under row-level security."""
    statements = [
        f"CREATE TABLE IF NOT EXISTS {ROLES_TABLE} (role_name text PRIMARY KEY, "
        "tenant text NOT NULL, granted_at timestamptz NOT NULL)",
    ]
    for table in (*TENANT_TABLES, *PRIVATE_TABLES, ROLES_TABLE):
        statements += _secured(table)
    for table in TENANT_TABLES:
        statements += _tenant_policy(table, _OWN_TENANT)
    statements += _tenant_policy(ROLES_TABLE, "role_name = current_user")
    return statements


def grants(role: str, schema: str) -> list[str]:
    """What a tenant's role is granted: the schema, and reading what it may read. Its
    grants on the schema's tables are revoked first, so that a grant is the whole of
    them, whatever was granted before."""
    readable = ", ".join(q(name) for name in (*READABLE, ROLES_TABLE))
    return [
        *revokes(role, schema),
        f"GRANT USAGE ON SCHEMA {q(schema)} TO {q(role)}",
        f"GRANT SELECT ON {readable} TO {q(role)}",
    ]


def revokes(role: str, schema: str) -> list[str]:
    """Every grant of the role on the schema and its tables and views."""
    return [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {q(schema)} FROM {q(role)}",
        f"REVOKE ALL ON SCHEMA {q(schema)} FROM {q(role)}",
    ]


def view_grants(role: str) -> str:
    return f"GRANT SELECT ON {', '.join(q(v) for v in views.VIEW_NAMES)} TO {q(role)}"


# The mapped roles that still exist: one dropped by hand must not stop the loader.
_MAPPED_ROLES = (
    f"SELECT role_name FROM {ROLES_TABLE} WHERE role_name IN (SELECT rolname FROM pg_roles) "
    "ORDER BY role_name"
)


def restore_grants(session: Session) -> list[str]:
    """The views were created again: grant them again to every mapped role (PostgreSQL
    drops a view's grants with it); the roles."""
    roles = [str(role) for (role,) in session.query(_MAPPED_ROLES)]
    for role in roles:
        session.execute(view_grants(role))
    return roles
