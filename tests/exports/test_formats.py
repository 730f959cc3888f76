"""XLSX, Parquet and PDF exports read back: types, values and figures.

Expected values come from the seeded rows (Python) or straight from the database, never
from the export code.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import httpx
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.exports.conftest import create_job, download, wait_for_job
from tests.exports.test_contents import PAYMENT_COLUMNS, Q1_2024, _seed_payments
from tests.factories import Tenant, create_customer, create_payment

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / ".data" / "screenshots"
NEW_YORK = "America/New_York"
Q1_FROM, Q1_TO = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)


def _in_new_york(db: Session, tenant: Tenant) -> None:
    db.execute(
        text("UPDATE organizations SET timezone = :tz WHERE id = :org"),
        {"tz": NEW_YORK, "org": tenant.org.id},
    )
    db.commit()


def _db_payments(db: Session, organization_id: str) -> list[dict[str, Any]]:
    """The completed Q1 payments as stored, in export order (the owner reads them)."""
    rows = db.execute(
        text(
            """
            SELECT p.id, p.reference, p.invoice_id, i.invoice_number, p.customer_id,
                   c.name AS customer_name, p.method, p.status, p.currency, p.amount, p.paid_at
            FROM payments p JOIN customers c ON c.id = p.customer_id
            LEFT JOIN invoices i ON i.id = p.invoice_id
            WHERE p.organization_id = :org AND p.status = 'completed'
              AND p.paid_at >= :lo AND p.paid_at < :hi
            ORDER BY p.paid_at, p.id
            """
        ),
        {"org": organization_id, "lo": Q1_FROM, "hi": Q1_TO},
    ).mappings()
    return [dict(row) for row in rows]


def _summary(client: httpx.Client, tenant: Tenant, params: dict[str, str]) -> dict[str, Any]:
    response = client.get(
        "/v1/reports/summary/payments-received",
        params=params,
        headers=tenant.headers(tenant.viewer),
    )
    assert response.status_code == 200, response.text
    import json

    body: dict[str, Any] = json.loads(response.content, parse_float=Decimal)
    return body


def _flatten(summary: dict[str, Any]) -> dict[str, Any]:
    """The endpoint's summary as ``path → leaf`` (distributions keyed by range)."""
    flat: dict[str, Any] = {}

    def walk(path: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{path}.{key}", inner)
        elif isinstance(value, list):
            for bucket in value:
                flat[f"{path}.{bucket['range']}.count"] = bucket["count"]
                flat[f"{path}.{bucket['range']}.percentage"] = bucket["percentage"]
        else:
            flat[path] = value

    for key, value in summary.items():
        walk(key, value)
    return flat


def _completed(client: httpx.Client, tenant: Tenant, **kwargs: Any) -> tuple[dict[str, Any], bytes]:
    job_id = create_job(client, tenant, **kwargs)
    job = wait_for_job(client, tenant, job_id)["job"]
    assert job["status"] == "completed", job
    response = download(client, tenant, job_id)
    assert response.status_code == 200, response.text
    return job, response.content


# --- XLSX -----------------------------------------------------------------------------


def test_xlsx_cells_are_typed_and_summary_equals_the_endpoint(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    _in_new_york(db, tenant)
    _seed_payments(db, tenant)
    stored = _db_payments(db, tenant.org.id)
    job, content = _completed(client, tenant, fmt="xlsx", filters=Q1_2024)
    assert job["totalRows"] == len(stored) == 3
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    assert workbook.sheetnames == ["Summary", "Rows"]

    rows = workbook["Rows"]
    header = [cell.value for cell in rows[1]]
    assert header == [f"{c} ({NEW_YORK})" if c == "paid_at" else c for c in PAYMENT_COLUMNS]
    assert rows.freeze_panes == "A2"
    assert rows.auto_filter.ref == f"A1:L{len(stored) + 1}"
    assert rows[1][0].font.b
    for excel_row, db_row in zip(rows.iter_rows(min_row=2), stored, strict=True):
        cells = dict(zip(PAYMENT_COLUMNS, excel_row, strict=True))
        for name in ("payment_id", "reference", "customer_id", "customer_name", "method"):
            assert cells[name].data_type == "s"
            assert cells[name].value == db_row[name.replace("payment_id", "id")]
        assert cells["invoice_id"].value == db_row["invoice_id"]  # None: an empty cell
        assert cells["amount"].data_type == "n"
        assert Decimal(str(cells["amount"].value)) == db_row["amount"]
        assert db_row["currency"] in cells["amount"].number_format
        assert cells["paid_at"].is_date
        local = db_row["paid_at"].astimezone(ZoneInfo(NEW_YORK)).replace(tzinfo=None)
        assert cells["paid_at"].value == local
        assert cells["paid_month"].value == local.strftime("%Y-%m")

    expected = _flatten(_summary(client, tenant, Q1_2024)["summary"])
    sheet = workbook["Summary"]
    about = {r[0].value: r[1].value for r in sheet.iter_rows(max_col=2) if r[0].value}
    assert about["Organization"] == "Test Org"
    assert about["Time zone"] == NEW_YORK
    assert about["Rows"] == 3
    assert about["Filter: fromDate"] == "2024-01-01T00:00:00Z"
    assert tenant.exporter.email in about["Generated by"]
    assert isinstance(about["Generated at (UTC)"], datetime)
    assert about["Database snapshot"]
    start = next(r[0].row for r in sheet.iter_rows(max_col=1) if r[0].value == "Figure")
    figures = {r[0].value: r[1].value for r in sheet.iter_rows(min_row=start + 1, max_col=2)}
    assert set(figures) == set(expected)
    for key, value in expected.items():
        if isinstance(value, Decimal):
            assert Decimal(str(figures[key])) == value, key
        else:
            assert figures[key] == value, key


def test_xlsx_text_is_text_never_a_formula(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    customer = create_customer(db, org=tenant.org, name="=1+1")
    create_payment(db, org=tenant.org, customer=customer, reference="0042", amount=Decimal("5"))
    odd = create_customer(db, org=tenant.org, name="Smith & Sons <b>\u00e9 </b> ")
    create_payment(db, org=tenant.org, customer=odd, paid_at=datetime(2024, 3, 1, tzinfo=UTC))
    _, content = _completed(client, tenant, fmt="xlsx")
    rows = openpyxl.load_workbook(io.BytesIO(content))["Rows"]
    cells = dict(zip(PAYMENT_COLUMNS, next(rows.iter_rows(min_row=2)), strict=True))
    assert cells["customer_name"].data_type == "s"  # a string, never a formula ("f")
    assert cells["customer_name"].value.endswith("=1+1")
    assert cells["reference"].value == "0042"  # not the number 42
    assert cells["amount"].value == 5  # a number
    cells = dict(zip(PAYMENT_COLUMNS, next(rows.iter_rows(min_row=3)), strict=True))
    assert cells["customer_name"].value == "Smith & Sons <b>\u00e9 </b> "  # escaped, spaces kept


# --- Parquet --------------------------------------------------------------------------


def test_parquet_schema_and_values_equal_the_database(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    _seed_payments(db, tenant)
    create_payment(  # microseconds must survive
        db,
        org=tenant.org,
        customer=create_customer(db, org=tenant.org, name="Micro"),
        amount=Decimal("12345678.91"),
        paid_at=datetime(2024, 3, 1, 8, 0, 0, 123456, tzinfo=UTC),
    )
    stored = _db_payments(db, tenant.org.id)
    job, content = _completed(client, tenant, fmt="parquet", filters=Q1_2024)
    assert job["totalRows"] == len(stored) == 4
    table = pq.read_table(io.BytesIO(content))
    assert table.schema.names == PAYMENT_COLUMNS
    types = dict(zip(table.schema.names, table.schema.types, strict=True))
    assert types["amount"] == pa.decimal128(15, 2)
    assert types["paid_at"] == pa.timestamp("us", tz="UTC")
    assert types["payment_id"] == pa.string()
    meta = table.schema.metadata
    assert meta[b"pivotal.report_type"] == b"payments_received"
    assert meta[b"pivotal.organization_id"] == tenant.org.id.encode()
    got = table.to_pylist()
    for row, db_row in zip(got, stored, strict=True):
        assert row["payment_id"] == db_row["id"]
        assert row["amount"] == db_row["amount"]  # Decimal, to the cent
        assert row["currency"] == db_row["currency"].strip()
        assert row["paid_at"] == db_row["paid_at"]  # to the microsecond
        assert row["invoice_id"] == db_row["invoice_id"]
        assert row["customer_name"] == db_row["customer_name"]

    tmp = REPO / ".data" / f"test-{job['id']}.parquet"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(content)
    try:
        con = duckdb.connect()
        result = con.execute(
            "SELECT payment_id, amount, currency, paid_at, typeof(amount), typeof(paid_at) "
            "FROM read_parquet(?) ORDER BY paid_at, payment_id",
            [str(tmp)],
        ).fetchall()
        totals = con.execute(
            "SELECT currency, sum(amount) FROM read_parquet(?) GROUP BY 1 ORDER BY 1", [str(tmp)]
        ).fetchall()
    finally:
        tmp.unlink()
    assert [r[0] for r in result] == [r["id"] for r in stored]
    assert [r[1] for r in result] == [r["amount"] for r in stored]
    assert [r[3] for r in result] == [r["paid_at"] for r in stored]
    assert result[0][4] == "DECIMAL(15,2)"
    assert result[0][5] == "TIMESTAMP WITH TIME ZONE"
    by_currency: dict[str, Decimal] = {}
    for r in stored:
        by_currency[r["currency"].strip()] = by_currency.get(r["currency"].strip(), 0) + r["amount"]
    assert dict(totals) == by_currency


# --- PDF ------------------------------------------------------------------------------


def _headline(value: Any) -> str:
    return f"{value:,}"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_pdf_shows_every_headline_figure_and_renders(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    _in_new_york(db, tenant)
    _seed_payments(db, tenant)
    for i in range(30):  # enough customers for a "top N" table
        create_payment(
            db,
            org=tenant.org,
            customer=create_customer(db, org=tenant.org, name=f"Customer {i:02d} #[x]"),
            amount=Decimal(100 + i),
            paid_at=datetime(2024, 2, 1 + i % 28, 15, tzinfo=UTC),
        )
    job, content = _completed(client, tenant, fmt="pdf", filters=Q1_2024)
    assert content.startswith(b"%PDF-")
    assert job["fileName"].endswith(".pdf")
    summary = _summary(client, tenant, Q1_2024)["summary"]
    pdf = REPO / ".data" / "screenshots" / "payments_received_export.pdf"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(content)
    words = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    for key in ("totalPayments", "totalAmount", "averageAmount"):
        assert _headline(summary[key]) in words, key
    for method, count in summary["paymentsByMethod"].items():
        assert method in words
        assert str(count) in words
    for code, total in summary["totalsByCurrency"].items():
        assert f"{code}" in words
        assert _headline(total["amount"]) in words
    assert "Test Org" in words
    assert "2024-01-01 00:00" not in words  # the window is shown in New York time
    assert "2023-12-31 19:00 to 2024-03-31 20:00" in words
    assert tenant.exporter.email in words
    assert "Page 1 of" in words
    assert "Customer 00 #[x]" in words  # user text is text, not markup
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True)
    font_rows = fonts.stdout.splitlines()[2:]
    assert font_rows, fonts.stdout
    assert all(" yes " in row for row in font_rows), fonts.stdout
    png = SCREENSHOTS / "payments_received_export_page1"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(png)],
        check=True,
    )
    assert png.with_suffix(".png").stat().st_size > 10_000


# --- columns --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx", "parquet"])
def test_chosen_columns_in_their_order(
    client: httpx.Client, db: Session, tenant: Tenant, fmt: str
) -> None:
    _seed_payments(db, tenant)
    columns = ["amount", "currency", "payment_id"]
    response = client.post(
        "/v1/reports/export",
        json={
            "reportType": "payments_received",
            "format": fmt,
            "filters": Q1_2024,
            "columns": columns,
        },
        headers=tenant.headers(tenant.exporter),
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["jobId"]
    job = wait_for_job(client, tenant, job_id)["job"]
    assert job["status"] == "completed"
    assert job["columns"] == columns
    content = download(client, tenant, job_id).content
    if fmt == "csv":
        assert content.decode().splitlines()[0] == "amount,currency,payment_id"
    elif fmt == "json":
        import json

        assert [list(row) for row in json.loads(content)] == [columns] * 3
    elif fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(content))["Rows"]
        assert [c.value for c in sheet[1]] == columns
        assert sheet.max_row == 4
    else:
        assert pq.read_table(io.BytesIO(content)).schema.names == columns


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"columns": ["amount", "currency", "nope", "worse"]}, "nope, worse"),
        ({"columns": ["amount"]}, "currency"),
        ({"columns": ["currency", "currency"]}, "repeated"),
        ({"columns": []}, "at least one"),
        ({"format": "docx"}, "format"),
    ],
)
def test_bad_columns_or_format_are_422_naming_them(
    client: httpx.Client, tenant: Tenant, body: dict[str, Any], needle: str
) -> None:
    payload = {"reportType": "payments_received", "format": "csv", "filters": {}} | body
    response = client.post(
        "/v1/reports/export", json=payload, headers=tenant.headers(tenant.exporter)
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert needle in response.text


# --- lifecycle ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xlsx", "pdf", "parquet"])
def test_checksum_audit_and_metrics_for_each_format(
    client: httpx.Client, db: Session, tenant: Tenant, fmt: str
) -> None:
    from prometheus_client import REGISTRY

    _seed_payments(db, tenant)
    job, content = _completed(client, tenant, fmt=fmt, filters=Q1_2024)
    assert hashlib.sha256(content).hexdigest() == job["checksumSha256"]
    assert len(content) == job["fileSizeBytes"]
    assert job["fileName"].endswith(f".{fmt}")
    assert job["expiresAt"] is not None
    labels = {"report_type": "payments_received", "format": fmt, "organization_id": tenant.org.id}
    assert REGISTRY.get_sample_value("pivotal_export_completed_total", labels) == 1
    actions = db.execute(
        text("SELECT action FROM audit_logs WHERE resource_id = :id ORDER BY created_at"),
        {"id": job["id"]},
    ).scalars()
    assert "export_job_completed" in list(actions)


def test_xlsx_rows_continue_on_further_sheets() -> None:
    """More rows than a sheet holds go on "Rows (2)", "Rows (3)" (a small limit here)."""

    from pivotal_reporting.exports.columns import column_kinds
    from pivotal_reporting.exports.formats.base import ExportDocument
    from pivotal_reporting.exports.formats.typed_rows import arrow_schema
    from pivotal_reporting.exports.formats.xlsx import build_workbook
    from pivotal_reporting.reports.base import ReportContext
    from pivotal_reporting.reports.registry import get_report

    report = get_report("payments_received")
    kinds = column_kinds("payments_received")
    columns = ("payment_id", "amount", "currency", "paid_at")
    schema = arrow_schema(columns, kinds)
    ids = [f"pay_{i}" for i in range(7)]
    batch = pa.record_batch(
        [
            pa.array(ids),
            pa.array([Decimal(f"{i}.25") for i in range(7)], pa.decimal128(15, 2)),
            pa.array(["EUR"] * 7),
            pa.array([datetime(2024, 1, 1, i, tzinfo=UTC) for i in range(7)], schema.field(3).type),
        ],
        schema=schema,
    )
    now = datetime(2024, 5, 1, tzinfo=UTC)
    document = ExportDocument(
        "job_x", report, report.filters_model(), ReportContext("org", "usr", "UTC", "USD", now),
        "Org", "someone", now, None, "00000003-0000001B-1", kinds, None,
    )  # type: ignore[arg-type]  # fmt: skip
    path = REPO / ".data" / "test-rollover.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        rows = build_workbook(str(path), document, columns, iter([batch]), dict, max_rows=3)
        workbook = openpyxl.load_workbook(path)
    finally:
        path.unlink(missing_ok=True)
    assert rows == 7
    assert workbook.sheetnames == ["Summary", "Rows", "Rows (2)", "Rows (3)"]
    seen = []
    for name in workbook.sheetnames[1:]:
        sheet = workbook[name]
        assert [c.value for c in sheet[1]] == ["payment_id", "amount", "currency", "paid_at (UTC)"]
        assert sheet.freeze_panes == "A2"
        seen += [r[0].value for r in sheet.iter_rows(min_row=2)]
        assert sheet.max_row <= 4
    assert seen == ids
    assert workbook["Rows (3)"]["B2"].value == 6.25
    assert '"EUR"' in workbook["Rows (3)"]["B2"].number_format


@pytest.fixture(scope="module")
def many_payments(owner_engine: Any, settings: Any) -> Tenant:
    """An organization with enough payments that a typed export runs for a while."""
    from tests.exports.conftest import bulk_payments
    from tests.factories import create_tenant

    with Session(owner_engine, expire_on_commit=False) as session:
        tenant = create_tenant(session, settings)
        bulk_payments(session, tenant.org.id, 600_000)
    return tenant


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["xlsx", "parquet"])
def test_cancel_stops_a_running_typed_export(
    client: httpx.Client, many_payments: Tenant, settings: Any, fmt: str
) -> None:
    import time

    tenant = many_payments
    # A fast run can finish between two polls before it is seen running: try again then
    # (a few seconds each), so that what is tested is the cancel, not the poll's luck.
    for _attempt in range(4):
        job_id = create_job(client, tenant, fmt=fmt)
        deadline = time.monotonic() + 60
        while True:
            job = wait_for_job(client, tenant, job_id, statuses=("processing", "completed"))["job"]
            if job["status"] != "processing" or job["processedRows"]:
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        if job["status"] != "processing":
            continue
        response = client.delete(
            f"/v1/reports/export/{job_id}", headers=tenant.headers(tenant.exporter)
        )
        if response.status_code == 409:
            continue  # it finished between the poll and the cancel
        break
    assert job["status"] == "processing", "every export finished before it could be cancelled"
    assert response.json()["job"]["status"] == "cancelled"
    cancelled_at = time.monotonic()
    while list((settings.exports_path / ".partial").glob(f"*{job_id}*")):
        assert time.monotonic() - cancelled_at < 5, "the worker did not stop within 5 s"
        time.sleep(0.05)
    final = wait_for_job(client, tenant, job_id)["job"]
    assert final["status"] == "cancelled"
    assert not list(settings.exports_path.rglob(f"{job_id}*"))


def test_documented_columns_are_each_reports_export_columns() -> None:
    from pivotal_reporting.exports.columns import column_kinds
    from pivotal_reporting.reports.base import ReportContext
    from pivotal_reporting.reports.registry import all_reports

    ctx = ReportContext("org", "usr", "UTC", "USD", datetime(2024, 1, 1, tzinfo=UTC))
    for report in all_reports():
        query = report.export_query(ctx, report.filters_model())
        assert tuple(column_kinds(report.report_type)) == query.columns, report.report_type


def test_parquet_dates_booleans_hours_and_days(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    from tests.factories import create_time_entry

    create_time_entry(db, org=tenant.org, user=tenant.viewer, hours=Decimal("7.25"))
    create_time_entry(
        db,
        org=tenant.org,
        user=tenant.viewer,
        status="draft",
        billable=False,
        hours=Decimal("0.50"),
        work_date=datetime(2024, 2, 29).date(),
    )
    stored = [
        dict(row)
        for row in db.execute(
            text(
                "SELECT id, work_date, hours, billable, submitted_at, approved_at, "
                "round(date_part('epoch', approved_at - submitted_at)::numeric / 86400, 4) AS days "
                "FROM time_entries WHERE organization_id = :org ORDER BY work_date, id"
            ),
            {"org": tenant.org.id},
        ).mappings()
    ]
    _, content = _completed(client, tenant, report_type="time_approvals", fmt="parquet")
    table = pq.read_table(io.BytesIO(content))
    types = dict(zip(table.schema.names, table.schema.types, strict=True))
    assert types["work_date"] == pa.date32()
    assert types["billable"] == pa.bool_()
    assert types["hours"] == pa.decimal128(18, 2)
    assert types["approval_time_days"] == pa.decimal128(18, 4)
    got = table.to_pylist()
    assert [r["time_entry_id"] for r in got] == [r["id"] for r in stored]
    for row, db_row in zip(got, stored, strict=True):
        assert row["work_date"] == db_row["work_date"]
        assert row["hours"] == db_row["hours"]
        assert row["billable"] is db_row["billable"]
        assert row["submitted_at"] == db_row["submitted_at"]
        assert row["approved_at"] == db_row["approved_at"]
        assert row["approval_time_days"] == db_row["days"]
    assert got[1]["approved_by"] is None


def test_typed_copy_asks_for_microseconds_whatever_the_query_returns() -> None:
    from pivotal_reporting.exports.formats.typed_rows import typed_copy_sql
    from pivotal_reporting.reports.base import ExportQuery
    from pivotal_reporting.reports.sql import iso_utc

    text_query = ExportQuery(f"SELECT {iso_utc('x.at')} AS at FROM x", {}, ("at",))
    copy = typed_copy_sql(text_query, {"at": "instant"})
    assert "SS.US" in copy
    assert "SS.MS" not in copy
    raw_query = ExportQuery("SELECT x.at FROM x", {}, ("at",))
    copy = typed_copy_sql(raw_query, {"at": "instant"}, frozenset({"at"}))
    assert """to_char(q."at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""" in copy
