"""Each report's export row query, run as the exports engine runs it: COPY ... TO STDOUT."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy.orm import Session

from pivotal_reporting.reports import registry
from pivotal_reporting.reports.base import ExportQuery, ReportContext
from pivotal_reporting.reports.sql import formula_safe
from pivotal_reporting.rls import TENANT_ROLE
from tests.factories import (
    Tenant,
    create_customer,
    create_invoice,
    create_payment,
    create_project,
    create_quote,
    create_time_entry,
    create_user,
)

WINDOW = {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2025-01-01T00:00:00Z"}
HOSTILE = [
    '=HYPERLINK("http://x")',
    "+1+1",
    "-2",
    "@SUM(A1)",
    "\tTab",
    "\rCR",
    "\nLF",
    "  =1+1",
    "\uff1d1",
    "\uff0b1",
    "\uff0d1",
    "\uff20A1",
]


def _copy(url: str, org_id: str, query: ExportQuery) -> list[dict[str, str]]:
    """COPY the query as the tenant role of ``org_id``, client-side bound; rows by column."""
    buffer = io.BytesIO()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT set_config('role', %s, true), set_config('app.organization_id', %s, true)",
            (TENANT_ROLE, org_id),
        )
        with cur.copy(
            f"COPY ({query.sql}) TO STDOUT WITH (FORMAT csv, HEADER)", query.params
        ) as copy:
            for chunk in copy:
                buffer.write(chunk)
    reader = csv.reader(io.StringIO(buffer.getvalue().decode()))
    header = next(reader)
    assert tuple(header) == query.columns
    return [dict(zip(header, row, strict=True)) for row in reader]


def _query(report_type: str, tenant: Tenant, org_id: str | None = None) -> ExportQuery:
    report = registry.get_report(report_type)
    ctx = ReportContext(
        org_id or tenant.org.id, tenant.viewer.id, "UTC", "USD", datetime(2024, 6, 1, tzinfo=UTC)
    )
    return report.export_query(ctx, report.filters_model.model_validate(WINDOW))


def _seed(db: Session, tenant: Tenant, names: list[str]) -> None:
    at = datetime(2024, 3, 1, tzinfo=UTC)
    for name in names:
        customer = create_customer(db, org=tenant.org, name=name)
        project = create_project(db, org=tenant.org, customer=customer, name=name)
        user = create_user(db, org=tenant.org, display_name=name)
        create_quote(
            db,
            org=tenant.org,
            customer=customer,
            project=project,
            created_at=at,
            decided_at=at + timedelta(hours=36),
        )
        invoice = create_invoice(
            db, org=tenant.org, customer=customer, status="paid", issue_date=date(2024, 3, 1)
        )
        create_payment(db, org=tenant.org, customer=customer, invoice=invoice, paid_at=at)
        create_time_entry(
            db, org=tenant.org, user=user, project=project, work_date=date(2024, 3, 1)
        )


@pytest.mark.parametrize("report_type", [r.report_type for r in registry.all_reports()])
def test_export_rows_are_raw_and_scoped(
    database_url: str, tenant: Tenant, other_tenant: Tenant, db: Session, report_type: str
) -> None:
    _seed(db, tenant, [*HOSTILE, "Plain Name"])
    _seed(db, other_tenant, ["Other Org"])
    rows = _copy(database_url, tenant.org.id, _query(report_type, tenant))
    assert len(rows) == len(HOSTILE) + 1
    name_column = next(c for c in rows[0] if c.endswith("_name"))
    names = sorted(row[name_column] for row in rows)
    assert names == sorted([*HOSTILE, "Plain Name"])  # as stored: guards belong to CSV
    for row in rows:
        for column, value in row.items():
            if column in ("total_amount", "amount", "hours"):
                Decimal(value)  # numbers stay numbers
            if column.endswith("_at") and value:
                assert value.endswith("Z")
                assert "T" in value
    # Row-level security holds even if the explicit organization filter were wrong.
    assert (
        _copy(database_url, tenant.org.id, _query(report_type, tenant, other_tenant.org.id)) == []
    )


def test_formula_guard_cases(database_url: str) -> None:
    # The first characters around the guard's fast path (A to ~ pass at once): @ is
    # just below it, DEL and the non-ASCII ones just above.
    edges = ["A=1", "Zed", "~=1", "`x", "{x", "\x7f=1", "\u00e9=1"]
    values = [*HOSTILE, "plain", "", "a=b", "-", " x", "x =1", *edges, "@x", "\u3000=1", None]
    with psycopg.connect(database_url) as conn:
        guarded = [
            conn.execute(f"SELECT {formula_safe('%(v)s::text')}", {"v": value}).fetchone()[0]  # type: ignore[index]
            for value in values
        ]
    assert guarded == [
        *("'" + v for v in HOSTILE),
        *("plain", "", "a=b", "'-", " x", "x =1", *edges, "'@x", "'\u3000=1", None),
    ]


@pytest.mark.parametrize("report_type", [r.report_type for r in registry.all_reports()])
def test_the_cheap_count_counts_the_export_rows(
    database_url: str, tenant: Tenant, other_tenant: Tenant, db: Session, report_type: str
) -> None:
    _seed(db, tenant, ["Alpha", "Beta", "Gamma"])
    _seed(db, other_tenant, ["Other Org"])
    create_quote(db, org=tenant.org, status="draft")  # not decided: in no quote export
    create_invoice(db, org=tenant.org, status="draft", issue_date=date(2024, 3, 2))
    create_payment(db, org=tenant.org, status="failed", paid_at=datetime(2024, 3, 2, tzinfo=UTC))
    query = _query(report_type, tenant)
    assert query.count_sql is not None
    rows = _copy(database_url, tenant.org.id, query)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "SELECT set_config('role', %s, true), set_config('app.organization_id', %s, true)",
            (TENANT_ROLE, tenant.org.id),
        )
        counted = conn.execute(query.count_sql, query.params).fetchone()
    assert counted == (len(rows),)
    assert len(rows) == 3


def test_rounded_seconds_is_round_of_the_exact_quotient(database_url: str) -> None:
    """Integer rounding against PostgreSQL's ``round(numeric, k)`` of the exact quotient,
    at and around every half-way point: negative, microseconds, whole units."""
    from pivotal_reporting.reports.sql import rounded_seconds

    hour_halves = [Decimal(18) * k for k in range(-5, 6)]  # 0.005 h = 18 s
    day_halves = [Decimal("4.32") * k for k in range(-5, 6)]  # 0.00005 d = 4.32 s
    offsets = [Decimal(0), Decimal("0.000001"), Decimal("-0.000001")]
    values = [h + o for h in hour_halves + day_halves for o in offsets]
    values += [Decimal("3600"), Decimal("86400.5"), Decimal("1234567.891011"), Decimal(0)]
    sql = (
        f"SELECT {rounded_seconds('%(s)s::float8', unit=3600, places=2)}, "
        f"round(%(s)s::numeric / 3600, 2), "
        f"{rounded_seconds('%(s)s::float8', unit=86400, places=4)}, "
        f"round(%(s)s::numeric / 86400, 4)"
    )
    with psycopg.connect(database_url) as conn:
        for value in values:
            row = conn.execute(sql, {"s": value}).fetchone()
            assert row is not None
            assert (str(row[0]), str(row[2])) == (str(row[1]), str(row[3])), value
    assert conn.closed
