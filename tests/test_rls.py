"""Row-level security: a tenant transaction sees only its organization, even unfiltered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from pivotal_reporting.db import Database
from tests.factories import (
    create_audit_log,
    create_customer,
    create_export_job,
    create_invoice,
    create_organization,
    create_payment,
    create_quote,
    create_user,
)

TABLES = (
    "organizations",
    "users",
    "customers",
    "quotes",
    "invoices",
    "payments",
    "export_jobs",
    "audit_logs",
)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database.connect(database_url, pool_size=2)
    yield database
    asyncio.run(database.dispose())


def _unfiltered_org_ids(database: Database, organization_id: str, table: str) -> set[str]:
    column = "id" if table == "organizations" else "organization_id"

    async def run() -> set[str]:
        async with database.tenant_session(organization_id) as session:
            # Deliberately no WHERE clause: only row-level security stands in the way.
            rows = await session.execute(text(f"SELECT DISTINCT {column} FROM {table}"))
            return {row[0] for row in rows}

    return asyncio.run(run())


def _seed(db: Session, org_id: str | None = None) -> str:
    org = create_organization(db) if org_id is None else create_organization(db, id=org_id)
    user = create_user(db, org=org)
    create_export_job(db, org=org, user=user)
    create_audit_log(db, org=org)
    customer = create_customer(db, org=org)
    create_quote(db, org=org, customer=customer)
    create_payment(
        db, org=org, invoice=create_invoice(db, org=org, customer=customer), customer=customer
    )
    return org.id


@pytest.mark.parametrize("table", TABLES)
def test_unfiltered_query_sees_only_own_organization(
    db: Session, database: Database, table: str
) -> None:
    org_a, org_b = _seed(db), _seed(db)
    seen = _unfiltered_org_ids(database, org_a, table)
    assert seen == {org_a}
    assert org_b in _unfiltered_org_ids(database, org_b, table)


def test_connection_returned_to_pool_keeps_no_tenant(db: Session, database: Database) -> None:
    org_a = _seed(db)

    async def run() -> tuple[str, str, int]:
        async with database.tenant_session(org_a) as session:
            await session.execute(text("SELECT 1"))
        # Same pool, outside any tenant transaction: the settings must not have leaked.
        async with database.engine.connect() as conn:
            role = (await conn.execute(text("SELECT current_user"))).scalar_one()
            setting = (
                await conn.execute(text("SELECT current_setting('app.organization_id', true)"))
            ).scalar()
            await conn.execute(text("SET ROLE pivotal_tenant"))
            visible = (await conn.execute(text("SELECT count(*) FROM quotes"))).scalar_one()
            await conn.execute(text("RESET ROLE"))
            return role, setting or "", visible

    role, setting, visible = asyncio.run(run())
    assert role != "pivotal_tenant"
    assert setting == ""
    assert visible == 0  # the policy fails closed without an organization


def test_tenant_cannot_write_rows_of_another_organization(db: Session, database: Database) -> None:
    org_a, org_b = _seed(db), _seed(db)

    async def run() -> None:
        async with database.tenant_session(org_a) as session:
            await session.execute(
                text(
                    "INSERT INTO export_jobs (id, organization_id, user_id, report_type, format, file_name) "
                    "SELECT 'job_evil', :org_b, id, 'quote_cycle_time', 'csv', 'x.csv' FROM users LIMIT 1"
                ),
                {"org_b": org_b},
            )

    with pytest.raises(DBAPIError, match="row-level security"):
        asyncio.run(run())


def test_tenant_role_cannot_modify_business_tables(db: Session, database: Database) -> None:
    org_a = _seed(db)

    async def run() -> None:
        async with database.tenant_session(org_a) as session:
            await session.execute(text("UPDATE quotes SET total_amount = 0"))

    with pytest.raises(DBAPIError, match="permission denied"):
        asyncio.run(run())


def test_tenant_role_cannot_rewrite_the_audit_log(db: Session, database: Database) -> None:
    org_a = _seed(db)

    async def run() -> None:
        async with database.tenant_session(org_a) as session:
            await session.execute(text("DELETE FROM audit_logs"))

    with pytest.raises(DBAPIError, match="permission denied"):
        asyncio.run(run())


def test_a_snapshot_session_is_one_read_only_repeatable_read_transaction(
    db: Session, database: Database
) -> None:
    org = create_organization(db)

    async def run() -> tuple[str, str, str, str]:
        async with database.tenant_session(org.id, snapshot=True) as session:
            inside = (
                await session.execute(
                    text(
                        "SELECT current_setting('transaction_isolation'), "
                        "current_setting('transaction_read_only'), "
                        "current_setting('app.organization_id')"
                    )
                )
            ).one()
        async with database.tenant_session(org.id) as session:
            after = (
                await session.execute(text("SELECT current_setting('transaction_isolation')"))
            ).scalar_one()
        return inside[0], inside[1], inside[2], after

    isolation, read_only, organization, next_isolation = asyncio.run(run())
    assert (isolation, read_only, organization) == ("repeatable read", "on", org.id)
    assert next_isolation == "read committed"  # the pooled connection is reset


def test_one_message_transactions_are_scoped_and_leave_no_autocommit_connection(
    db: Session, database: Database
) -> None:
    """tenant_read / snapshot_read / send_transaction run on pooled connections switched to
    autocommit for one message: they see only their organization, and whatever happens,
    every connection goes back to the pool in transaction mode with no tenant left."""
    org_a, org_b = _seed(db), _seed(db)
    query = "SELECT DISTINCT organization_id FROM quotes"

    async def run() -> tuple[list[set[str]], list[bool], tuple[str, str]]:
        seen = [{r["organization_id"] for r in await database.tenant_read(org_a, query)}]
        snapshot, rows = await database.snapshot_read(org_b, query)
        seen.append({r["organization_id"] for r in rows})
        with pytest.raises(psycopg.DataError):  # fails mid-transaction: rolled back
            await database.tenant_read(org_a, "SELECT CAST({bad} AS jsonb)", bad='"\\u0000"')
        # Both pooled connections, checked out together: neither is in autocommit.
        async with database.engine.connect() as one, database.engine.connect() as two:
            modes = []
            for conn in (one, two):
                raw = await conn.get_raw_connection()
                modes.append(raw.driver_connection.autocommit)  # type: ignore[union-attr]
        async with database.tenant_session(org_a) as session:
            # Two statements of one tenant transaction: the scope holds for the second.
            await session.execute(text("SELECT 1"))
            scoped = (
                await session.execute(
                    text("SELECT current_user, current_setting('app.organization_id')")
                )
            ).one()
        assert snapshot.data_as_of is not None
        return seen, modes, (scoped[0], scoped[1])

    seen, modes, scoped = asyncio.run(run())
    assert seen == [{org_a}, {org_b}]
    assert modes == [False, False]
    assert scoped == ("pivotal_tenant", org_a)
