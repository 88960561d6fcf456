"""``plug-pipeline grant --tenant T --role R``: a read-only PostgreSQL role that sees one
tenant.

The role is created when missing (``NOLOGIN``; ``LOGIN`` with the password of
``--password-file``, sent to the server as a SCRAM verifier made here, so the password
itself reaches no server log), granted ``USAGE`` on the warehouse's schema and
``SELECT`` on the tables whose rows carry a tenant and on the KPI views, and mapped to
the tenant in ``plug_tenant_roles``: the row-level security of every table
(``isolation.py``) then shows it that tenant's rows only. Its earlier grants on the
schema's tables are revoked first, so running it again is harmless and a grant to
another tenant moves the role there. ``--revoke`` takes every grant and the mapping
away; the role itself stays (``DROP ROLE`` is the operator's, it may own other things).

Refused: a role that could read more than the policy lets it (a superuser, one with
``BYPASSRLS`` or ``CREATEROLE``, a member of any role, the tables' owner), and a warehouse
the loader has not migrated to row-level security yet. Run it as the loader's role (the
tables' owner, with ``CREATEROLE``) or as a superuser.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline import config as configuration
from pipeline.errors import ConfigError
from pipeline.extras import require
from pipeline.warehouse import isolation
from pipeline.warehouse.sql import q


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "grant",
        help="PostgreSQL: a read-only role that sees one tenant's rows (row-level security)",
        description="Create or update a PostgreSQL role that reads the warehouse's tables "
        "and KPI views, and sees only the rows of one tenant.",
    )
    p.add_argument("--role", required=True, help="the role to create or update")
    p.add_argument("--tenant", help="the tenant whose rows the role sees")
    p.add_argument(
        "--password-file",
        type=Path,
        help="a file whose first line is the role's password: the role may log in "
        "(default: NOLOGIN for a new role, an existing role's login left as it is)",
    )
    p.add_argument("--revoke", action="store_true", help="take the role's grants and tenant away")
    p.add_argument(
        "--to",
        dest="warehouse",
        metavar="URL",
        help="the warehouse's postgresql:// URL (default: PLUG_PIPELINE_WAREHOUSE)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require("grant", "warehouse")
    url = args.warehouse or configuration.load(None).warehouse
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "grant needs a postgresql:// warehouse: DuckDB has no users (give a tenant "
            "a file of its own with `load --tenant`)"
        )
    if args.revoke == bool(args.tenant):
        raise ConfigError("give either --tenant or --revoke")
    if args.revoke and args.password_file:
        raise ConfigError("--password-file goes with a grant, not --revoke")
    password = _password(args.password_file) if args.password_file else None
    print(apply(url, args.role, args.tenant, password))
    return 0


def _password(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the password file {str(path)!r}: {exc.strerror}") from exc
    if not lines or not lines[0]:
        raise ConfigError(f"the password file {str(path)!r} has no password on its first line")
    return lines[0]


_ROLE = (
    "SELECT rolsuper, rolbypassrls, rolcreaterole, "
    "ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid "
    "WHERE m.member = r.oid ORDER BY 1) FROM pg_roles r WHERE rolname = %s"
)
_OWNERS = (
    "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class "
    "WHERE relnamespace = current_schema()::regnamespace AND relname = ANY(%s)"
)


def apply(url: str, role: str, tenant: str | None, password: str | None = None) -> str:
    """Grant (``tenant``) or revoke (None) in one transaction; what was done, in a line."""
    import psycopg
    from psycopg import sql

    try:
        conn = psycopg.connect(url, connect_timeout=5)
    except psycopg.Error as exc:
        # The message can quote the URL's password: say only what kind of failure it was.
        raise ConfigError(f"cannot connect to PostgreSQL: {type(exc).__name__}") from exc
    try:
        with conn.transaction():
            cur = conn.cursor()
            found = cur.execute(
                "SELECT current_schema(), current_user, to_regclass(%s) IS NOT NULL",
                (isolation.ROLES_TABLE,),
            ).fetchone()
            assert found is not None
            schema, user, migrated = found
            if not migrated:
                raise ConfigError(
                    f"no {isolation.ROLES_TABLE} in the warehouse: run `plug-pipeline load` "
                    "once, which migrates it to row-level security"
                )
            before = cur.execute(
                f"SELECT tenant FROM {isolation.ROLES_TABLE} WHERE role_name = %s", (role,)
            ).fetchone()
            was = f" (was {before[0]})" if before and before[0] != tenant else ""
            exists = cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if tenant is None:
                for statement in isolation.revokes(role, str(schema)) if exists else []:
                    cur.execute(statement.encode())
                cur.execute(f"DELETE FROM {isolation.ROLES_TABLE} WHERE role_name = %s", (role,))
                return f"role {role} reads no tenant{was}: its grants are revoked"
            _check(cur, role, str(user), list(isolation.TENANT_TABLES))
            if password is not None:
                verifier = conn.pgconn.encrypt_password(
                    password.encode(), role.encode(), b"scram-sha-256"
                )
                verb = "ALTER" if exists else "CREATE"
                cur.execute(
                    sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(verifier.decode())
                    )
                )
            elif not exists:
                cur.execute(f"CREATE ROLE {q(role)} NOLOGIN".encode())
            for statement in isolation.grants(role, str(schema)):
                cur.execute(statement.encode())
            cur.execute(
                f"INSERT INTO {isolation.ROLES_TABLE} (role_name, tenant, granted_at) "
                "VALUES (%s, %s, now()) ON CONFLICT (role_name) DO UPDATE "
                "SET tenant = excluded.tenant, granted_at = excluded.granted_at",
                (role, tenant),
            )
            made = "created" if not exists else "updated"
            return f"role {role} ({made}) reads tenant {tenant}{was}"
    except psycopg.Error as exc:
        raise ConfigError(f"PostgreSQL refused the grant: {exc}".strip()) from exc
    finally:
        conn.close()


def _check(cur: Any, role: str, user: str, tables: list[str]) -> None:
    """Refuse a role that row-level security would not hold to one tenant."""
    owners = {str(o) for (o,) in cur.execute(_OWNERS, (tables,)).fetchall()}
    if role == user or role in owners:
        raise ConfigError(f"role {role} owns the warehouse or runs this grant: not a reader")
    found = cur.execute(_ROLE, (role,)).fetchone()
    if found is None:
        return
    superuser, bypass, createrole, member_of = found
    if superuser or bypass or createrole:
        raise ConfigError(
            f"role {role} is a superuser or has BYPASSRLS or CREATEROLE: it could read every tenant"
        )
    if member_of:
        raise ConfigError(
            f"role {role} is a member of {', '.join(member_of)}: it could SET ROLE to it"
        )
