"""Tenant isolation on PostgreSQL through the real loader: the KPI centre of ``kpi_fixtures``
published for two tenants (every body for both, with dead letters and raw bodies), loaded
by ``plug-pipeline load``, then read through the roles ``plug-pipeline grant`` makes.

Every table and view is found in the catalog, not from a list, so a new one is covered:
each is under forced row-level security, and through a tenant's role each one it may read
holds that tenant's rows and no other's; the others are the bookkeeping tables, which it
cannot read at all. DuckDB has no users: ``load --tenant`` writes a tenant's own file."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from pipeline import ingest
from pipeline.errors import Malformed
from pipeline.record import Record
from pipeline.report import queries
from pipeline.report.model import Filters, Report
from pipeline.report.source import open_source
from pipeline.warehouse.isolation import PRIVATE_TABLES, ROLES_TABLE
from pipeline.warehouse.tables import CHILD_TABLES, DEADLETTER, EVENT_TABLES, RAW_WEBHOOK
from tests.support import cli
from tests.support import kpi_fixtures as fx
from tests.support import loader as ld

TENANTS = ("acme", "globex")


@dataclasses.dataclass(frozen=True)
class Warehouse:
    admin: str  # the loader's URL: its own role, owner of the tables, no superuser
    superuser: str  # the same database as postgres
    loader: str  # the loader's role
    prefix: str
    roles: dict[str, str]  # tenant -> its role
    urls: dict[str, str]  # tenant -> a URL that logs in as its role


def records(prefix: str) -> list[Record]:
    """Every fixture body for both tenants, its raw body, and a dead letter of each."""
    found = []
    for tenant in TENANTS:
        for _, webhook, body, received_at in fx.items():
            raw = orjson.dumps(body)
            event = ingest.ingest(webhook, tenant, raw, received_at, prefix)
            found += [event, ingest.raw(webhook, tenant, raw, received_at, prefix, event)]
        webhook, bad = fx.items()[0][1], b"{not json"
        try:
            ingest.ingest(webhook, tenant, bad, fx.ms(fx.DAY1, "08:00:00"), prefix)
        except Malformed as exc:
            found.append(ingest.deadletter(webhook, tenant, bad, ld.RECEIVED_AT, prefix, exc))
    return found


def grant(admin: str, *args: str) -> Any:
    return cli.run("grant", "--to", admin, *args)


def execute(url: str, sql: str) -> None:
    """A statement that returns no rows, as the URL's role."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.encode())


def role_url(url: str, role: str, password: str = "") -> str:
    """``url`` (a superuser's) logging in as ``role``."""
    return url.replace("postgres@", f"{role}:{password}@" if password else f"{role}@", 1)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    tag = uuid.uuid4().hex[:8]
    loader = f"plug_it_{tag}_loader"
    roles = {tenant: f"plug_it_{tag}_{tenant}" for tenant in TENANTS}
    password_file = tmp_path_factory.mktemp("grant") / "password"
    password = uuid.uuid4().hex
    password_file.write_text(password + "\n")
    prefix = ld.new_topics()
    ld.produce(records(prefix))
    # the loader's own role, as a deployment has it: it owns the database (so the tables
    # it creates) and may create roles, for grant; no superuser, no BYPASSRLS
    execute(ld.PG_URL, f'CREATE ROLE "{loader}" LOGIN CREATEROLE')
    try:
        with ld.pg_database() as superuser:
            execute(
                superuser, f'ALTER DATABASE "{superuser.rsplit("/", 1)[1]}" OWNER TO "{loader}"'
            )
            admin = role_url(superuser, loader)
            ld.load(prefix, admin, "--include-raw")
            for tenant, role in roles.items():
                result = grant(
                    admin, "--tenant", tenant, "--role", role, "--password-file", str(password_file)
                )
                assert result.returncode == 0, result.stderr[-2000:]
                assert f"role {role} (created) reads tenant {tenant}" in result.stdout
            urls = {t: role_url(superuser, r, password) for t, r in roles.items()}
            yield Warehouse(admin, superuser, loader, prefix, roles, urls)
    finally:
        for role in (*roles.values(), loader):
            execute(ld.PG_URL, f'DROP ROLE IF EXISTS "{role}"')


def test_a_role_with_a_password_file_logs_in_by_a_scram_verifier(warehouse: Warehouse) -> None:
    for role in warehouse.roles.values():
        [(can_login, verifier)] = ld.query(
            warehouse.superuser,
            f"SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = '{role}'",
        )
        assert can_login is True
        assert str(verifier).startswith("SCRAM-SHA-256$4096:")


def relations(url: str) -> dict[str, str]:
    """Every table and view of the warehouse's schema: name -> 'r' (table) or 'v'."""
    rows = ld.query(
        url,
        "SELECT relname, relkind FROM pg_class WHERE relnamespace = "
        "current_schema()::regnamespace AND relkind IN ('r', 'v', 'm', 'p')",
    )
    return {str(name): str(kind) for name, kind in rows}


def columns(url: str, relation: str) -> list[str]:
    rows = ld.query(
        url,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        f"current_schema() AND table_name = '{relation}'",
    )
    return [str(c) for (c,) in rows]


def count(url: str, sql: str) -> int:
    return int(str(ld.query(url, sql)[0][0]))


def test_every_table_is_under_forced_row_level_security_and_every_view_the_invoker_s(
    warehouse: Warehouse,
) -> None:
    found = relations(warehouse.admin)
    assert "attendance_finished" in found
    assert "kpi_daily" in found
    assert "m" not in found.values()  # a materialized view cannot be the invoker's
    for name, kind in found.items():
        if kind == "r":
            [(enabled, forced)] = ld.query(
                warehouse.admin,
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                f"WHERE oid = '\"{name}\"'::regclass",
            )
            assert (enabled, forced) == (True, True), name
        else:
            [(options,)] = ld.query(
                warehouse.admin, f"SELECT reloptions FROM pg_class WHERE oid = '{name}'::regclass"
            )
            assert isinstance(options, list), name
            assert "security_invoker=true" in options, name


@pytest.mark.parametrize("tenant", TENANTS)
def test_a_tenant_s_role_reads_its_rows_and_none_of_the_other_s(
    warehouse: Warehouse, tenant: str
) -> None:
    role, url = warehouse.roles[tenant], warehouse.urls[tenant]
    other = next(t for t in TENANTS if t != tenant)
    readable = set()
    for name in relations(warehouse.admin):
        [(allowed,)] = ld.query(
            warehouse.admin, f"SELECT has_table_privilege('{role}', '\"{name}\"', 'SELECT')"
        )
        if not allowed:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ld.query(url, f'SELECT 1 FROM "{name}"')
            continue
        readable.add(name)
        if "tenant" not in columns(warehouse.admin, name):
            assert name == "kpi_settings", name  # the one relation that holds no rows of anyone
            continue
        mine = count(warehouse.admin, f"SELECT count(*) FROM \"{name}\" WHERE tenant = '{tenant}'")
        theirs = count(warehouse.admin, f"SELECT count(*) FROM \"{name}\" WHERE tenant = '{other}'")
        assert mine > 0, name  # else the lines below would prove nothing
        assert theirs > 0, name
        if name == ROLES_TABLE:  # a role sees its own row of the map
            mine = count(warehouse.admin, f"SELECT count(*) FROM {name} WHERE role_name = '{role}'")
        assert count(url, f'SELECT count(*) FROM "{name}"') == mine, name
        assert count(url, f"SELECT count(*) FROM \"{name}\" WHERE tenant <> '{tenant}'") == 0
    # the rest are the bookkeeping tables; a new table is one of the two on purpose
    assert set(relations(warehouse.admin)) - readable == set(PRIVATE_TABLES)


def test_a_tenant_s_role_cannot_raise_its_rights(warehouse: Warehouse) -> None:
    url, other_role = warehouse.urls["acme"], warehouse.roles["globex"]
    refused = [
        "SET ROLE postgres",
        f'SET ROLE "{other_role}"',
        "SET SESSION AUTHORIZATION postgres",
        "INSERT INTO attendance_finished (event_id, tenant) VALUES ('x', 'acme')",
        "UPDATE attendance_finished SET status = 'x'",
        "DELETE FROM attendance_finished",
        "TRUNCATE attendance_finished",
        f"UPDATE {ROLES_TABLE} SET tenant = 'globex'",
        f"INSERT INTO {ROLES_TABLE} VALUES (current_user, 'globex', now())",
        "CREATE TABLE mine (x int)",
        "ALTER TABLE attendance_finished DISABLE ROW LEVEL SECURITY",
        f'GRANT "{other_role}" TO current_user',
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in refused:
            with pytest.raises(psycopg.Error) as raised:
                conn.execute(statement.encode())
            assert not isinstance(raised.value, psycopg.OperationalError), statement
        # a setting of its own changes nothing: the policy reads none
        for setting in ("plug.tenant", "app.tenant", "plug_pipeline.tenant"):
            conn.execute(f"SET {setting} = 'globex'".encode())
        tenants = conn.execute(b"SELECT DISTINCT tenant FROM attendance_finished").fetchall()
        assert tenants == [("acme",)]
        # asking not to be filtered is an error, not every row
        conn.execute(b"SET row_security = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(b"SELECT count(*) FROM attendance_finished")


def test_the_report_runs_through_a_tenant_s_role_with_its_figures_only(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    out = tmp_path / "acme.html"
    result = cli.run("report", "--from", warehouse.urls["acme"], "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.stat().st_size > 100_000  # plotly.js inlined: a whole page

    def report(url: str, filters: Filters) -> Report:
        with open_source(url) as source:
            return queries.build(source, filters)

    through_role = report(warehouse.urls["acme"], Filters())
    assert through_role.tenants == ["acme"]
    of_acme = report(warehouse.admin, Filters(tenant="acme"))
    assert dataclasses.replace(through_role, filters=of_acme.filters) == of_acme
    everyone = report(warehouse.admin, Filters())
    assert everyone.headline != through_role.headline


def test_grant_again_moves_the_role_revoke_takes_it_all(warehouse: Warehouse) -> None:
    admin = warehouse.admin
    role = f"plug_it_{uuid.uuid4().hex[:8]}_moved"
    url = role_url(warehouse.superuser, role)
    try:
        for _ in range(2):  # idempotent
            result = grant(admin, "--tenant", "acme", "--role", role)
            assert result.returncode == 0, result.stderr[-2000:]
        [(can_login,)] = ld.query(
            admin, f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{role}'"
        )
        assert can_login is False  # no password file: NOLOGIN
        execute(warehouse.superuser, f'ALTER ROLE "{role}" LOGIN')  # to read as it below
        assert ld.query(url, "SELECT DISTINCT tenant FROM kpi_daily") == [("acme",)]
        result = grant(admin, "--tenant", "globex", "--role", role)
        assert "reads tenant globex (was acme)" in result.stdout
        assert ld.query(url, "SELECT DISTINCT tenant FROM kpi_daily") == [("globex",)]
        # the loader starts again: the views are made anew, and granted again
        ld.load(warehouse.prefix, admin, "--include-raw")
        assert ld.query(url, "SELECT DISTINCT tenant FROM attendance") == [("globex",)]
        result = grant(admin, "--revoke", "--role", role)
        assert result.returncode == 0, result.stderr[-2000:]
        for name in ("kpi_daily", "attendance_finished", ROLES_TABLE):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ld.query(url, f"SELECT 1 FROM {name}")
        assert ld.query(admin, f"SELECT 1 FROM {ROLES_TABLE} WHERE role_name = '{role}'") == []
    finally:
        execute(warehouse.superuser, f'DROP OWNED BY "{role}"')
        execute(ld.PG_URL, f'DROP ROLE IF EXISTS "{role}"')


def test_grant_refuses_a_role_that_could_read_more(warehouse: Warehouse) -> None:
    admin, tag = warehouse.admin, uuid.uuid4().hex[:8]
    member, bypass = f"plug_it_{tag}_member", f"plug_it_{tag}_bypass"
    execute(warehouse.superuser, f'CREATE ROLE "{member}" IN ROLE "{warehouse.roles["globex"]}"')
    execute(warehouse.superuser, f'CREATE ROLE "{bypass}" BYPASSRLS')
    try:
        for role, why in (
            ("postgres", "superuser"),
            (warehouse.loader, "owns the warehouse"),
            (bypass, "BYPASSRLS"),
            (member, f"member of {warehouse.roles['globex']}"),
        ):
            result = grant(admin, "--tenant", "acme", "--role", role)
            assert result.returncode == 2
            assert why in result.stderr
        result = cli.run("grant", "--to", "plug.duckdb", "--tenant", "acme", "--role", "r")
        assert result.returncode == 2
        assert "DuckDB has no users" in result.stderr
        assert ld.query(admin, f"SELECT count(*) FROM {ROLES_TABLE}") == [(2,)]
    finally:
        for role in (member, bypass):
            execute(ld.PG_URL, f'DROP ROLE IF EXISTS "{role}"')


def test_load_tenant_writes_one_tenant_s_duckdb_file_and_passes_the_others(
    tmp_path: Path,
) -> None:
    prefix = ld.new_topics()
    topic = f"{prefix}.message.received"
    broken = [  # undecodable: the key alone names the tenant
        Record(topic, f"{tenant}:5511".encode(), b"\xff not an envelope", [], tenant)
        for tenant in TENANTS
    ]
    total = ld.produce([*records(prefix), *broken])
    everyone, acme = str(tmp_path / "all.duckdb"), str(tmp_path / "acme.duckdb")
    ld.load(prefix, everyone, "--include-raw")
    result = ld.load(prefix, acme, "--include-raw", "--tenant", "acme")
    skipped = int(result.stderr.rsplit(", ", 1)[1].split()[0])
    assert skipped > 0
    assert result.stderr.rstrip().endswith("of other tenants skipped")
    for table in (*EVENT_TABLES, *CHILD_TABLES, DEADLETTER, RAW_WEBHOOK):
        assert ld.query(acme, f"SELECT DISTINCT tenant FROM {table.name}") == [("acme",)], table
        sql = f"SELECT count(*) FROM {table.name}"
        [(of_acme,)] = ld.query(everyone, f"{sql} WHERE tenant = 'acme'")
        assert ld.query(acme, sql) == [(of_acme,)], table
    assert ld.query(acme, "SELECT key FROM plug_load_errors") == [(b"acme:5511",)]
    # every record's offset advanced, skipped or not, under a group of the tenant's own
    assert ld.query(acme, "SELECT DISTINCT group_name FROM plug_offsets") == [
        ("plug-pipeline-load-tenant-acme",)
    ]
    assert ld.loaded_records(acme) == total
    # the report of the tenant's file is the tenant's report of everyone's
    with open_source(acme) as source:
        own = queries.build(source, Filters())
    with open_source(everyone) as source:
        of_everyone = queries.build(source, Filters(tenant="acme"))
    assert dataclasses.replace(own, filters=of_everyone.filters) == of_everyone
    again = ld.load(prefix, acme, "--include-raw", "--tenant", "acme")
    assert "loaded 0 records" in again.stderr
