"""Names from per-export maps (exports/name_lookups.py) write the same bytes as the joins.

Each report's CSV and JSON writer runs twice on the same rows, as the tenant role: once
with the full row query (the joins, the per-row guard), once with the lean query and the
maps; the files must be identical. The names and ids are chosen to take every path:
formula-like, quoted, with commas and line breaks, empty, non-ASCII, and a quote
without a project (a LEFT JOIN name).
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from sqlalchemy.orm import Session

from pivotal_reporting.exports import writers
from pivotal_reporting.exports.name_lookups import _csv_splice, pg_csv_cell
from pivotal_reporting.reports import registry
from pivotal_reporting.reports.base import ExportQuery, ReportContext
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

NAMES = [
    '=HYPERLINK("http://x")',
    "-2",
    "\uff1d1",
    "\u3000=1",
    'Acme, "Quoted" Ltd',
    "line\nbreak",
    "cr\rhere",
    "",
    "é 報告",
    "Plain",
]
# Ids from a source system: no CHECK on their form.
IDS = ["=id", 'q"uote', "com,ma", "\uff0did", "plain"]


def _seed(db: Session, tenant: Tenant) -> None:
    at = datetime(2024, 3, 1, tzinfo=UTC)
    for i, name in enumerate(NAMES):
        tag = IDS[i % len(IDS)] + str(i)
        customer = create_customer(db, org=tenant.org, id=f"{tag}c", name=name)
        project = create_project(db, org=tenant.org, customer=customer, id=f"{tag}p", name=name)
        user = create_user(db, org=tenant.org, id=f"{tag}u", display_name=name)
        create_quote(
            db,
            org=tenant.org,
            customer=customer,
            project=project if i % 3 else None,  # a LEFT JOIN name: no project
            created_at=at,
            decided_at=at + timedelta(hours=36 + i),
        )
        invoice = create_invoice(
            db, org=tenant.org, customer=customer, status="paid", issue_date=date(2024, 3, 1)
        )
        create_payment(
            db, org=tenant.org, customer=customer, invoice=invoice if i % 2 else None, paid_at=at
        )
        create_time_entry(
            db, org=tenant.org, user=user, project=project, work_date=date(2024, 3, 1 + i)
        )


class _Sink(io.BytesIO):
    pass


async def _progress(rows: int) -> bool:
    return True


async def _write(url: str, org_id: str, fmt: str, query: ExportQuery) -> bytes:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute(
            "SELECT set_config('role', %s, true), set_config('app.organization_id', %s, true), "
            "set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true)",
            (TENANT_ROLE, org_id),
        )
        sink = _Sink()
        writer = writers.write_csv if fmt == "csv" else writers.write_json
        await writer(conn, query, sink, _progress)  # type: ignore[arg-type]
        return sink.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("report_type", [r.report_type for r in registry.all_reports()])
def test_names_from_maps_write_the_joined_bytes(
    database_url: str, tenant: Tenant, other_tenant: Tenant, db: Session, report_type: str, fmt: str
) -> None:
    _seed(db, tenant)
    _seed(db, other_tenant)  # same names elsewhere: never in this organization's maps
    report = registry.get_report(report_type)
    ctx = ReportContext(
        tenant.org.id, tenant.viewer.id, "UTC", "USD", datetime(2024, 6, 1, tzinfo=UTC)
    )
    query = report.export_query(ctx, report.filters_model())
    assert query.lookups
    assert query.lean_sql is not None
    joined = replace(query, lean_sql=None, lookups=())
    lean = asyncio.run(_write(database_url, tenant.org.id, fmt, query))
    full = asyncio.run(_write(database_url, tenant.org.id, fmt, joined))
    assert lean == full
    assert full.count(b"\n") >= len(NAMES)  # rows were written, names among them
    assert b"Quoted" in full
    assert "報告".encode() in full


def test_csv_cells_are_quoted_as_postgresql_quotes_them(database_url: str) -> None:
    values = ["plain", "", "a,b", 'say "hi"', "line\nbreak", "cr\r", "é", " lead", None]
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        for value in values:
            buffer = bytearray()
            with cur.copy("COPY (SELECT %s::text, 1) TO STDOUT (FORMAT csv)", (value,)) as copy:
                for chunk in copy:
                    buffer += chunk
            assert bytes(buffer) == pg_csv_cell(value, "utf-8") + b",1\n", value


def test_an_id_without_a_name_fails_the_export() -> None:
    splice = _csv_splice([(1, {b"usr_1": b"usr_1,Ann"})], 3)
    assert splice(b"te_1,usr_1,x\n") == b"te_1,usr_1,Ann,x\n"
    with pytest.raises(KeyError):
        splice(b"te_1,usr_2,x\n")
