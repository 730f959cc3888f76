"""The demo-data loader against the real database: deterministic, complete, replaceable.

The session database is shared with other tests, which create organizations with random
ids: these tests only ever touch (and delete) the demo organizations' ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.orm import Session

from pivotal_reporting.auth.principal import EXPORT_REPORTS, VIEW_AUDIT_LOGS, VIEW_REPORTS
from pivotal_reporting.demo import (
    DEMO_ORG_ID,
    DEMO_USER_ID,
    DemoSummary,
    ensure_demo_data,
    load_demo_data,
    loader,
)
from pivotal_reporting.demo.catalog import all_demo_org_ids, demo_orgs
from pivotal_reporting.models import Organization, User
from pivotal_reporting.models.business import (
    INVOICE_STATUSES,
    PAYMENT_METHODS,
    PAYMENT_STATUSES,
    QUOTE_STATUSES,
    TIME_ENTRY_STATUSES,
)
from tests.factories import create_audit_log, create_export_job, create_organization

ORGS, SCALE, SEED = 2, 200, 7
SECOND_ORG_ID = "org_nordlicht"
# Each table's rows in a stable order, for checksums.
TABLE_ORDER = {
    "organizations": "id",
    "users": "id",
    "roles": "id",
    "role_permissions": "role_id, permission_id",
    "user_roles": "user_id, role_id",
    "customers": "id",
    "projects": "id",
    "quotes": "id",
    "invoices": "id",
    "payments": "id",
    "time_entries": "id",
}


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An owner connection that sees every tenant (the maintenance policy)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("SELECT set_config('app.maintenance', 'on', false)")
        yield connection


@pytest.fixture
def demo(database_url: str) -> DemoSummary:
    return load_demo_data(database_url, orgs=ORGS, scale=SCALE, seed=SEED)


def checksums(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, str]]:
    """(rows, md5 of every row in order) per table, over the demo organizations."""
    result = {}
    for table, order in TABLE_ORDER.items():
        key = "id" if table == "organizations" else "organization_id"
        row = conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY {order}), ''))"
            f" FROM {table} AS t WHERE {key} = ANY(%s)",
            (all_demo_org_ids(),),
        ).fetchone()
        assert row is not None
        result[table] = (row[0], row[1])
    return result


def values(conn: psycopg.Connection[Any], sql: str, org: str = DEMO_ORG_ID) -> set[Any]:
    return {row[0] for row in conn.execute(sql, {"org": org})}


def test_counts_match_the_requested_scale(demo: DemoSummary) -> None:
    first, second = demo.organizations
    assert (first.organization_id, second.organization_id) == (DEMO_ORG_ID, SECOND_ORG_ID)
    for table in ("quotes", "invoices", "payments", "time_entries"):
        assert first.count(table) == SCALE
        assert second.count(table) == 100  # later orgs: a tenth, at least 100
    plan = demo_orgs(ORGS, SCALE)
    for org, counts in zip(plan, demo.organizations, strict=True):
        assert counts.count("customers") == org.customers >= 5
        assert counts.count("projects") >= counts.count("customers")
        assert counts.count("users") == 3 + org.staff
    text = str(demo)
    for expected in (DEMO_ORG_ID, "Acme Consulting", "time_entries", f"{SCALE:,}"):
        assert expected in text


def test_same_arguments_give_identical_rows_and_reload_replaces(
    demo: DemoSummary, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    before = checksums(conn)
    again = load_demo_data(database_url, orgs=ORGS, scale=SCALE, seed=SEED)
    assert checksums(conn) == before  # same ids and values, no duplicates
    assert again == demo
    assert before["quotes"][0] == SCALE + 100


# Per report: rows the summaries read, and the rollup facets that count each once.
_ROLLED_UP_ROWS = (
    ("quote_cycle_time", "('bins')", "quotes WHERE decided_at IS NOT NULL"),
    (
        "invoice_settlement_time",
        "('paid', 'unpaid')",
        "invoices WHERE status NOT IN ('draft', 'void')",
    ),
    ("payments_received", "('totals')", "payments WHERE status = 'completed'"),
    ("time_approvals", "('hours')", "time_entries WHERE true"),
)


def assert_rollups_cover_every_row(conn: psycopg.Connection[Any], org: str) -> None:
    """Fresh monthly rollups, no change left, and their counts equal the rows'."""
    for report, facets, rows in _ROLLED_UP_ROWS:
        rolled_up = values(
            conn,
            "SELECT coalesce(sum(n), 0) FROM report_rollups WHERE organization_id = %(org)s "
            f"AND report_type = '{report}' AND grain = 'month' AND facet IN {facets}",
            org,
        )
        counted = values(conn, f"SELECT count(*) FROM {rows} AND organization_id = %(org)s", org)
        assert rolled_up == counted, report
        assert counted != {0}, report
    assert values(
        conn, "SELECT count(*) FROM rollup_changes WHERE organization_id = %(org)s", org
    ) == {0}


def test_rollups_are_built_on_the_single_transaction_path(
    demo: DemoSummary, conn: psycopg.Connection[Any]
) -> None:
    assert_rollups_cover_every_row(conn, DEMO_ORG_ID)


def test_two_connection_load_gives_the_same_rows(
    demo: DemoSummary,
    database_url: str,
    conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    db: Session,
) -> None:
    superuser = conn.execute("SELECT current_setting('is_superuser') = 'on'").fetchone()
    if not (superuser and superuser[0]):
        pytest.skip("the two-connection load needs a superuser")
    before = checksums(conn)
    # Rows the loader did not write go too (it deletes table by table on this path).
    org, user = (
        db.get(Organization, DEMO_ORG_ID),
        db.get(User, {"organization_id": DEMO_ORG_ID, "id": DEMO_USER_ID}),
    )
    assert org is not None
    assert user is not None
    create_export_job(db, org=org, user=user)
    create_audit_log(db, org=org)
    monkeypatch.setattr(loader, "PARALLEL_MIN_ROWS", 1)
    load_demo_data(database_url, orgs=ORGS, scale=SCALE, seed=SEED)
    assert checksums(conn) == before
    # Loaded with triggers off: the loader rebuilt the rollups from the rows.
    assert_rollups_cover_every_row(conn, DEMO_ORG_ID)
    for table in ("export_jobs", "audit_logs"):
        sql = f"SELECT 1 FROM {table} WHERE organization_id = %(org)s"
        assert values(conn, sql) == set()


def test_another_seed_gives_other_rows_and_fewer_orgs_remove_the_rest(
    demo: DemoSummary, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    before = checksums(conn)
    load_demo_data(database_url, orgs=1, scale=SCALE, seed=SEED + 1)
    after = checksums(conn)
    assert after["organizations"][0] == 1
    assert after["quotes"] == (SCALE, after["quotes"][1])
    assert after["quotes"][1] != before["quotes"][1]


def test_other_organizations_are_left_alone(database_url: str, db: Session) -> None:
    other = create_organization(db)
    load_demo_data(database_url, orgs=1, scale=50, seed=SEED)
    db.expire_all()
    assert db.get(type(other), other.id) is not None


@pytest.mark.parametrize("org", [DEMO_ORG_ID, SECOND_ORG_ID])
def test_every_status_and_method_is_present(
    demo: DemoSummary, conn: psycopg.Connection[Any], org: str
) -> None:
    by_org = "FROM {} WHERE organization_id = %(org)s"
    assert values(conn, f"SELECT status {by_org.format('quotes')}", org) == set(QUOTE_STATUSES)
    assert values(conn, f"SELECT status {by_org.format('invoices')}", org) == set(INVOICE_STATUSES)
    assert values(conn, f"SELECT method {by_org.format('payments')}", org) == set(PAYMENT_METHODS)
    assert values(conn, f"SELECT status {by_org.format('payments')}", org) == set(PAYMENT_STATUSES)
    assert values(conn, f"SELECT status {by_org.format('time_entries')}", org) == set(
        TIME_ENTRY_STATUSES
    )
    assert values(conn, f"SELECT billable {by_org.format('time_entries')}", org) == {True, False}


def test_organizations_and_currencies(demo: DemoSummary, conn: psycopg.Connection[Any]) -> None:
    orgs = conn.execute(
        "SELECT id, name, timezone, base_currency FROM organizations WHERE id = ANY(%s) ORDER BY id",
        ([DEMO_ORG_ID, SECOND_ORG_ID],),
    ).fetchall()
    assert orgs == [
        (DEMO_ORG_ID, "Acme Consulting", "America/New_York", "USD"),
        (SECOND_ORG_ID, "Nordlicht Beratung GmbH", "Europe/Berlin", "EUR"),
    ]
    for table in ("quotes", "invoices", "payments"):
        sql = f"SELECT currency FROM {table} WHERE organization_id = %(org)s"
        assert values(conn, sql) == {"USD", "EUR"}


def test_users_hold_the_documented_permissions(
    demo: DemoSummary, conn: psycopg.Connection[Any]
) -> None:
    rows = conn.execute(
        """
        SELECT u.id, coalesce(array_agg(DISTINCT p.name) FILTER (WHERE p.name IS NOT NULL), '{}')
        FROM users u
        LEFT JOIN user_roles ur ON ur.organization_id = u.organization_id AND ur.user_id = u.id
        LEFT JOIN role_permissions rp
            ON rp.organization_id = ur.organization_id AND rp.role_id = ur.role_id
        LEFT JOIN permissions p ON p.id = rp.permission_id
        WHERE u.organization_id = %s GROUP BY u.id
        """,
        (DEMO_ORG_ID,),
    ).fetchall()
    permissions = {user: set(names) for user, names in rows}
    assert permissions["usr_acme_viewer"] == {VIEW_REPORTS}
    assert permissions["usr_acme_exporter"] == {VIEW_REPORTS, EXPORT_REPORTS}
    assert permissions[DEMO_USER_ID] == {VIEW_REPORTS, EXPORT_REPORTS, VIEW_AUDIT_LOGS}
    staff = {user for user in permissions if "_staff_" in user}
    assert len(staff) >= 6
    assert all(permissions[user] <= {VIEW_REPORTS} for user in staff)


def test_rows_are_consistent(demo: DemoSummary, conn: psycopg.Connection[Any]) -> None:
    def scalar(sql: str) -> Any:
        row = conn.execute(sql, {"ids": all_demo_org_ids()}).fetchone()
        assert row is not None
        return row[0]

    where = "WHERE organization_id = ANY(%(ids)s)"
    anchor = "timestamptz '2026-11-01 00:00:00+00'"
    # Nothing happens after the anchor, so the data never depends on the day it is loaded.
    assert scalar(f"SELECT max(greatest(created_at, sent_at, decided_at)) FROM quotes {where}") <= (
        scalar(f"SELECT {anchor}")
    )
    for column in ("paid_at",):
        assert scalar(f"SELECT count(*) FROM invoices {where} AND {column} > {anchor}") == 0
        assert scalar(f"SELECT count(*) FROM payments {where} AND {column} > {anchor}") == 0
    # Decisions within 45 days; approvals by another user of the same organization.
    assert scalar(
        f"SELECT max(decided_at - created_at) < interval '45 days 1 second' FROM quotes {where}"
    )
    assert scalar(f"SELECT count(*) FROM time_entries {where} AND approved_by = user_id") == 0
    assert (
        scalar(
            f"SELECT count(*) FROM time_entries {where} AND (status = 'approved') <> (approved_by IS NOT NULL)"
        )
        == 0
    )
    assert scalar(f"SELECT min(hours) >= 0.25 AND max(hours) <= 10 FROM time_entries {where}")
    assert scalar(f"SELECT count(*) FROM time_entries {where} AND description IS NULL") == 0
    assert scalar(f"SELECT count(*) FROM payments {where} AND reference IS NULL") == 0
    # An invoice billing a quote bills an accepted one, for its customer and amount.
    assert (
        scalar(
            """SELECT count(*) FROM invoices i JOIN quotes q
            ON q.organization_id = i.organization_id AND q.id = i.quote_id
            WHERE i.organization_id = ANY(%(ids)s) AND (q.status <> 'accepted'
              OR q.customer_id <> i.customer_id OR q.total_amount <> i.total_amount)"""
        )
        == 0
    )
    assert (
        scalar(
            f"SELECT count(*) FROM invoices {where} AND status IN ('issued', 'part_paid')"
            " AND due_date < date '2026-10-31'"
        )
        > 0
    )  # some open invoices are overdue


def test_ensure_demo_data_is_a_no_op_when_the_demo_org_exists(
    demo: DemoSummary, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    before = checksums(conn)
    ensure_demo_data(database_url)  # the default (seed 42, scale 5000) would differ
    assert checksums(conn) == before


def test_ensure_demo_data_loads_the_default_when_missing(
    database_url: str, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("DELETE FROM organizations WHERE id = ANY(%s)", (all_demo_org_ids(),))
    ensure_demo_data(database_url)
    counts = checksums(conn)
    assert counts["organizations"][0] == loader.DEFAULT_ORGS
    assert counts["quotes"][0] == loader.DEFAULT_SCALE + 2 * loader.DEFAULT_SCALE // 10


def test_arguments_are_validated(database_url: str) -> None:
    with pytest.raises(ValueError, match="orgs"):
        load_demo_data(database_url, orgs=0, scale=SCALE, seed=SEED)
    with pytest.raises(ValueError, match="scale"):
        load_demo_data(database_url, orgs=1, scale=0, seed=SEED)
