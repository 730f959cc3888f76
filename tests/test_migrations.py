"""Migrations: up/down/up on an empty database, no drift, and catalog checks."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pivotal_reporting import schema
from pivotal_reporting.db import sqlalchemy_url, with_database
from pivotal_reporting.models import Base
from tests.factories import (
    create_audit_log,
    create_customer,
    create_export_job,
    create_invoice,
    create_organization,
    create_payment,
    create_project,
    create_quote,
    create_time_entry,
    create_user,
)

SPEC_EXPORT_INDEXES = {
    "export_jobs_organization_id_idx",
    "export_jobs_user_id_idx",
    "export_jobs_status_idx",
    "export_jobs_user_status_idx",
    "export_jobs_org_status_idx",
}


@pytest.fixture
def scratch_url(admin_url: str) -> Iterator[str]:
    name = f"pivotal_scratch_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _public_tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def test_upgrade_downgrade_upgrade_leaves_no_drift(scratch_url: str) -> None:
    schema.upgrade(scratch_url)
    assert {"quotes", "export_jobs", "audit_logs", "procrastinate_jobs"} <= _public_tables(
        scratch_url
    )
    schema.downgrade(scratch_url, "base")
    assert _public_tables(scratch_url) == {"alembic_version"}
    schema.upgrade(scratch_url)
    assert schema.pending_drift(scratch_url) == []


def test_session_database_is_at_head_without_drift(database_url: str, owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        assert schema.current_revision(conn) == schema.head_revision()
    assert schema.pending_drift(database_url) == []


# Migration 0013: the tables keyed by (id) that get (organization_id, id), and those of
# them whose UNIQUE (organization_id, id) twin the new primary key replaces.
_TWINNED = {"customers", "projects", "quotes", "invoices", "payments", "time_entries"}
_TWINNED |= {"users", "roles"}
_REKEYED = _TWINNED | {"export_jobs", "export_templates", "web_sessions", "web_signin_links"}
_REKEYED |= {"audit_logs", "rollup_changes"}
_KEYS = """
SELECT con.conrelid::regclass::text, con.contype::text, con.conname,
       pg_get_constraintdef(con.oid)
FROM pg_constraint con
WHERE con.connamespace = 'public'::regnamespace AND con.contype IN ('p', 'u', 'f')
"""
_PRIMARY_KEYS = """
SELECT con.conrelid::regclass::text, array(
    SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, i)
    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.i)
FROM pg_constraint con
WHERE con.connamespace = 'public'::regnamespace AND con.contype = 'p'
"""


def _keys(url: str) -> set[tuple[str, str, str, str]]:
    with psycopg.connect(url) as conn:
        return {tuple(row) for row in conn.execute(_KEYS)}  # type: ignore[misc]


def test_primary_keys_of_the_models_match_the_database(database_url: str) -> None:
    """Alembic's drift check does not compare primary keys: this does, column order too."""
    with psycopg.connect(database_url) as conn:
        migrated = {table: cols for table, cols in conn.execute(_PRIMARY_KEYS)}
    models = {
        table.name: [column.name for column in table.primary_key.columns]
        for table in Base.metadata.sorted_tables
        if table.primary_key.columns
    }
    assert models == {table: migrated[table] for table in models}
    assert models["payments"] == ["organization_id", "id"]


def test_migration_0013_rekeys_tables_with_rows_and_downgrades(
    scratch_url: str, database_url: str
) -> None:
    """Upgrade a 0012 database holding rows of every re-keyed table, and back."""
    schema.upgrade(scratch_url, "0012")
    before = _keys(scratch_url)
    engine = create_engine(sqlalchemy_url(scratch_url))
    with Session(engine, expire_on_commit=False) as db:
        org, other = create_organization(db), create_organization(db)
        user, other_user = create_user(db, org=org), create_user(db, org=other)
        customer = create_customer(db, org=org)
        project = create_project(db, org=org, customer=customer)
        quote = create_quote(db, org=org, customer=customer, project=project)
        invoice = create_invoice(db, org=org, customer=customer, quote_id=quote.id)
        create_payment(db, org=org, invoice=invoice)
        create_time_entry(db, org=org, user=user, project=project)
        create_export_job(db, org=org, user=user)
        create_audit_log(db, org=org)
    engine.dispose()
    tables = ["users", "customers", "projects", "quotes", "invoices", "payments"]
    tables += ["time_entries", "export_jobs", "audit_logs", "rollup_changes"]
    count = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables)
    with psycopg.connect(scratch_url) as conn:
        rows = dict(conn.execute(count).fetchall())

    schema.upgrade(scratch_url)
    after = _keys(scratch_url)
    foreign = {key for key in before if key[1] == "f"}
    assert {key for key in after if key[1] == "f"} == foreign  # same names, same definitions
    gone = before - after
    assert {(t, kind) for t, kind, _, _ in gone} == {(t, "p") for t in _REKEYED} | {
        (t, "u") for t in _TWINNED
    }
    assert {(t, kind, d) for t, kind, _, d in after - before} == {
        (t, "p", "PRIMARY KEY (organization_id, id)") for t in _REKEYED
    }
    with psycopg.connect(scratch_url) as conn:
        assert dict(conn.execute(count).fetchall()) == rows
        assert rows["rollup_changes"] > 0  # the log's triggers wrote rows that were re-keyed
        with pytest.raises(psycopg.errors.ForeignKeyViolation):  # still tenant-scoped
            conn.execute(
                "UPDATE time_entries SET user_id = %s WHERE organization_id = %s",
                (other_user.id, org.id),
            )

    schema.downgrade(scratch_url, "0012")
    assert _keys(scratch_url) == before


def test_every_tenant_table_forces_rls_with_a_policy(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                  AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                               AND a.attname = 'organization_id' AND NOT a.attisdropped)
                       OR c.relname = 'organizations')
                """
            )
        ).all()
    assert len(rows) >= 14
    unprotected = [
        r.relname for r in rows if not (r.relrowsecurity and r.relforcerowsecurity and r.policies)
    ]
    assert unprotected == []


def test_every_foreign_key_has_a_supporting_index(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        missing = conn.execute(
            text(
                """
                SELECT con.conrelid::regclass::text AS tbl, con.conname
                FROM pg_constraint con
                JOIN pg_namespace n ON n.oid = con.connamespace
                WHERE con.contype = 'f' AND n.nspname = 'public'
                  AND con.conrelid::regclass::text NOT LIKE 'procrastinate%'
                  AND NOT EXISTS (
                    SELECT 1 FROM pg_index i
                    WHERE i.indrelid = con.conrelid
                      AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1]::int2[] @> con.conkey
                      AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1]::int2[] <@ con.conkey
                  )
                """
            )
        ).all()
    assert [f"{row.tbl}.{row.conname}" for row in missing] == []


def test_export_jobs_has_the_spec_indexes(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        names = set(
            conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE tablename = 'export_jobs'")
            ).scalars()
        )
    assert names >= SPEC_EXPORT_INDEXES


def test_money_columns_are_numeric_with_currency(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT table_name, column_name, data_type, numeric_precision, numeric_scale
                FROM information_schema.columns
                WHERE table_schema = 'public'
                  AND column_name IN ('total_amount', 'amount', 'amount_paid', 'balance_due')
                  -- rollup sums are exact NUMERIC without a cap: a sum outgrows (15, 2)
                  AND table_name <> 'report_rollups'
                """
            )
        ).all()
        currency_tables = set(
            conn.execute(
                text(
                    "SELECT table_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND column_name = 'currency'"
                )
            ).scalars()
        )
    assert rows, "no money columns found"
    assert {(r.data_type, r.numeric_precision, r.numeric_scale) for r in rows} == {
        ("numeric", 15, 2)
    }
    assert {r.table_name for r in rows} <= currency_tables


def _insert_quote(db: Session, **overrides: object) -> None:
    org = create_organization(db)
    create_quote(db, org=org, **overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {"status": "approved"},
        {"currency": "usd"},
        {"total_amount": Decimal("-1.00")},
        {"status": "accepted", "decided_at": None},
        {"status": "draft", "decided_at": datetime(2024, 2, 1, tzinfo=UTC)},
    ],
    ids=[
        "unknown-status",
        "lowercase-currency",
        "negative-amount",
        "decided-without-date",
        "draft-with-date",
    ],
)
def test_check_constraints_reject_invalid_quotes(db: Session, overrides: dict[str, object]) -> None:
    with pytest.raises(IntegrityError, match="violates check constraint"):
        _insert_quote(db, **overrides)
    db.rollback()


def test_invoice_balance_must_match_total_minus_paid(db: Session) -> None:
    org = create_organization(db)
    with pytest.raises(IntegrityError, match="balance_due_consistent"):
        create_invoice(
            db, org=org, total_amount="100.00", amount_paid="10.00", balance_due=Decimal("100.00")
        )
    db.rollback()


def test_rows_cannot_reference_another_tenants_rows(db: Session) -> None:
    org_a, org_b = create_organization(db), create_organization(db)
    customer_b = create_customer(db, org=org_b)
    with pytest.raises(IntegrityError, match="foreign key"):
        create_quote(db, org=org_a, customer=customer_b)
    db.rollback()
