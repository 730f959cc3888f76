"""The schema is ready to be distributed by ``organization_id`` (Citus), read from the catalog.

On Citus, a distributed table's primary and unique keys must contain the distribution
column, and a foreign key between two distributed tables must join on it (co-location).
These tests read pg_constraint, pg_index and pg_attribute of the migrated database, so a
new table or key that breaks the rule fails here, not on the day of the move. There are
no exceptions: since migration 0013 every tenant table keyed by its own ``id`` has the
primary key ``(organization_id, id)`` (docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

ORG = "organization_id"

# Tables without organization_id and what each becomes on Citus.
NOT_TENANT_TABLES = {
    "organizations": "distributed by id, co-located with every tenant table (the tenant itself)",
    "permissions": "reference table: the global permission catalog, copied to every node",
    "alembic_version": "coordinator-local: the schema revision",
    "procrastinate_jobs": "coordinator-local: the job queue (locks, LISTEN/NOTIFY, triggers)",
    "procrastinate_events": "coordinator-local: the job queue's event log",
    "procrastinate_periodic_defers": "coordinator-local: the periodic task ledger",
    "procrastinate_workers": "coordinator-local: worker heartbeats",
}
REFERENCE_TABLES = {"permissions"}

_TENANT_TABLES = {
    "organizations": "distributed by id, co-located with every tenant table (the tenant itself)",
    "permissions": "reference table: the global permission catalog, copied to every node",
    "alembic_version": "coordinator-local: the schema revision",
    "procrastinate_jobs": "coordinator-local: the job queue (locks, LISTEN/NOTIFY, triggers)",
    "procrastinate_events": "coordinator-local: the job queue's event log",
    "procrastinate_periodic_defers": "coordinator-local: the periodic task ledger",
    "procrastinate_workers": "coordinator-local: worker heartbeats",
}
REFERENCE_TABLES = {"permissions"}

# Keys of tenant tables that do not include organization_id, and why they may stay so
# on one PostgreSQL. On Citus each becomes (organization_id, ...) first: see docs/scaling.md.
KNOWN_KEYS_WITHOUT_ORG = {
    # Ids are globally unique random text ids (models.base.new_id); each table also has
    # UNIQUE (organization_id, id), which the composite foreign keys reference. On Citus:
    # drop the id-only primary key and promote that unique key to the primary key.
    "pk_customers": "random text id; UNIQUE (organization_id, id) exists",
    "pk_invoices": "random text id; UNIQUE (organization_id, id) exists",
    "pk_payments": "random text id; UNIQUE (organization_id, id) exists",
    "pk_projects": "random text id; UNIQUE (organization_id, id) exists",
    "pk_quotes": "random text id; UNIQUE (organization_id, id) exists",
    "pk_roles": "random text id; UNIQUE (organization_id, id) exists",
    "pk_time_entries": "random text id; UNIQUE (organization_id, id) exists",
    "pk_users": "random text id; UNIQUE (organization_id, id) exists",
    # Nothing references these by foreign key; the ORM and the queue address a job by id.
    # On Citus: primary key (organization_id, id); lookups already carry the organization.
    "pk_export_jobs": "random job id, looked up with its organization (RLS, task args)",
    "pk_audit_logs": "identity id; the chain's key is UNIQUE (organization_id, seq)",
    "pk_rollup_changes": "identity id of an append-only change log, consumed per organization",
    # A browser session or sign-in link is found by its random id (carried in the cookie
    # or the link with the organization beside it) and checked against a hash.
    "pk_web_sessions": "random session id; the cookie also carries the organization",
    "pk_web_signin_links": "random link id; redeemed once, then deleted",
    "pk_export_templates": "random template id, looked up with its organization (RLS)",
}

_TENANT_TABLES = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
  AND EXISTS (SELECT 1 FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped)
ORDER BY 1
"""
_ALL_TABLES = """
SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')
"""
# Every key and every unique index (with or without a constraint), with its columns.
_UNIQUE_KEYS = """
SELECT t.relname AS table_name, i.relname AS key_name,
       coalesce(con.contype::text, 'unique index') AS kind,
       array(SELECT a.attname FROM unnest(x.indkey) AS k(attnum)
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum) AS columns
FROM pg_index x
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.contype IN ('p', 'u', 'x')
WHERE t.relnamespace = 'public'::regnamespace AND (x.indisunique OR con.contype = 'x')
  AND t.relname = ANY(%(tables)s)
"""
_FOREIGN_KEYS = """
SELECT con.conname, src.relname AS table_name, dst.relname AS referenced,
       array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.i) AS columns,
       array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.i) AS referenced_columns
FROM pg_constraint con
JOIN pg_class src ON src.oid = con.conrelid
JOIN pg_class dst ON dst.oid = con.confrelid
WHERE con.contype = 'f' AND src.relnamespace = 'public'::regnamespace
"""


@pytest.fixture(scope="module")
def catalog(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url) as conn:
        yield conn


def _tenant_tables(conn: psycopg.Connection[Any]) -> list[str]:
    return [row[0] for row in conn.execute(_TENANT_TABLES)]


def test_every_table_is_a_tenant_table_or_has_a_known_role(
    catalog: psycopg.Connection[Any],
) -> None:
    tenant = set(_tenant_tables(catalog))
    others = {row[0] for row in catalog.execute(_ALL_TABLES)} - tenant
    assert others == set(NOT_TENANT_TABLES), "classify the new table in docs/scaling.md too"
    assert len(tenant) >= 15


def test_every_key_of_a_tenant_table_includes_organization_id(
    catalog: psycopg.Connection[Any],
) -> None:
    keys = catalog.execute(_UNIQUE_KEYS, {"tables": _tenant_tables(catalog)}).fetchall()
    assert any(kind == "p" for _, _, kind, _ in keys)  # the query does see primary keys
    assert len(keys) >= 25  # a primary key per tenant table, and their unique keys
    without = {name: (table, kind, cols) for table, name, kind, cols in keys if ORG not in cols}
    assert without == {}, "a key of a tenant table must include organization_id"


def test_tables_keyed_by_their_own_id_have_the_key_organization_id_id(
    catalog: psycopg.Connection[Any],
) -> None:
    """Organization first (the distribution column), then the row's id; the former
    ``UNIQUE (organization_id, id)`` twins are gone (the primary key serves the foreign
    keys), and the audit chain keeps its own key ``(organization_id, seq)``."""
    with_id = {
        row[0]
        for row in catalog.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
            "WHERE c.relname = ANY(%s) AND a.attname = 'id' AND NOT a.attisdropped",
            (_tenant_tables(catalog),),
        )
    }
    assert len(with_id) == 14
    primary = dict(
        catalog.execute(
            """
            SELECT c.relname, array(
                SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, i)
                JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                ORDER BY k.i)
            FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
            WHERE con.contype = 'p' AND c.relname = ANY(%s)
            """,
            (sorted(with_id),),
        ).fetchall()
    )
    assert primary == {table: [ORG, "id"] for table in with_id}
    keys = catalog.execute(_UNIQUE_KEYS, {"tables": sorted(with_id)}).fetchall()
    on_org_id = sorted(
        (table, kind) for table, _, kind, cols in keys if sorted(cols) == sorted([ORG, "id"])
    )
    assert on_org_id == sorted((table, "p") for table in with_id)
    chain = {tuple(sorted(cols)) for table, _, _, cols in keys if table == "audit_logs"}
    assert tuple(sorted([ORG, "seq"])) in chain


def test_foreign_keys_between_tenant_tables_join_on_organization_id(
    catalog: psycopg.Connection[Any],
) -> None:
    tenant = set(_tenant_tables(catalog))
    checked = 0
    for name, table, referenced, columns, referenced_columns in catalog.execute(_FOREIGN_KEYS):
        if table not in tenant:
            continue
        pairs = dict(zip(columns, referenced_columns, strict=True))
        if referenced in tenant:
            # organization_id on both sides, matched to each other: co-located joins.
            assert pairs.get(ORG) == ORG, f"{name}: {table}{columns} -> {referenced}"
            checked += 1
        elif referenced == "organizations":
            assert pairs == {ORG: "id"}, name
        else:
            assert referenced in REFERENCE_TABLES, f"{name}: {table} -> {referenced}"
    assert checked >= 15  # the composite keys of users, projects, invoices, payments, ...


def test_every_tenant_table_forces_row_level_security(catalog: psycopg.Connection[Any]) -> None:
    rows = catalog.execute(
        "SELECT relname FROM pg_class WHERE relname = ANY(%s) "
        "AND NOT (relrowsecurity AND relforcerowsecurity)",
        (_tenant_tables(catalog),),
    ).fetchall()
    assert rows == []
