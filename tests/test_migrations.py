"""Migrations: up/down/up on an empty database, no drift, and catalog checks."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pivotal_reporting import schema
from pivotal_reporting.db import with_database
from tests.factories import create_customer, create_invoice, create_organization, create_quote

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
