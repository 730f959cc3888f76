"""Export files hold exactly the report's rows, safely, under a safe name."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy.orm import Session

from tests.exports.conftest import create_job, csv_rows, download, json_rows, wait_for_job
from tests.factories import Tenant, create_customer, create_invoice, create_payment

PAYMENT_COLUMNS = [
    "payment_id",
    "reference",
    "invoice_id",
    "invoice_number",
    "customer_id",
    "customer_name",
    "method",
    "status",
    "currency",
    "amount",
    "paid_at",
    "paid_month",
]


# (customer, with invoice, amount, currency, method, status, paid_at)
CASES = [
    (
        "acme",
        True,
        "1234.56",
        "USD",
        "bank_transfer",
        "completed",
        datetime(2024, 1, 5, 9, 30, tzinfo=UTC),
    ),
    (
        "acme",
        False,
        "0.01",
        "USD",
        "cash",
        "completed",
        datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
    ),
    (
        "zeta",
        False,
        "99999.99",
        "EUR",
        "credit_card",
        "completed",
        datetime(2024, 3, 31, 12, tzinfo=UTC),
    ),
    (
        "zeta",
        False,
        "10.10",
        "USD",
        "check",
        "pending",
        datetime(2024, 2, 1, tzinfo=UTC),
    ),  # not completed
    (
        "zeta",
        False,
        "20.00",
        "USD",
        "other",
        "completed",
        datetime(2024, 4, 1, tzinfo=UTC),
    ),  # after
    (
        "acme",
        False,
        "30.00",
        "USD",
        "cash",
        "completed",
        datetime(2023, 12, 31, 23, 59, tzinfo=UTC),
    ),  # before
]


def _seed_payments(db: Session, tenant: Tenant) -> list[dict[str, str]]:
    """Payments in and around Q1 2024; returns the expected export rows, computed here."""
    customers = {
        "acme": create_customer(db, org=tenant.org, name='Acme, "Quoted" Ltd'),
        "zeta": create_customer(db, org=tenant.org, name="Zeta GmbH"),
    }
    invoice = create_invoice(db, org=tenant.org, customer=customers["acme"])
    expected = []
    for who, invoiced, amount, currency, method, status, paid_at in CASES:
        customer, inv = customers[who], invoice if invoiced else None
        payment = create_payment(
            db,
            org=tenant.org,
            customer=customer,
            invoice=inv,
            amount=Decimal(amount),
            currency=currency,
            method=method,
            status=status,
            paid_at=paid_at,
        )
        if status != "completed" or not Q1_START <= paid_at < Q1_END:
            continue
        expected.append(
            {
                "payment_id": payment.id,
                "reference": payment.reference or "",
                "invoice_id": inv.id if inv else "",
                "invoice_number": inv.invoice_number if inv else "",
                "customer_id": customer.id,
                "customer_name": customer.name,
                "method": method,
                "status": "completed",
                "currency": currency,
                "amount": amount,
                "paid_at": paid_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "paid_month": paid_at.strftime("%Y-%m"),
            }
        )
    return sorted(expected, key=lambda row: (row["paid_at"], row["payment_id"]))


Q1_START, Q1_END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)
Q1_2024 = {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-04-01T00:00:00Z"}


def test_csv_equals_the_reports_rows(client: httpx.Client, db: Session, tenant: Tenant) -> None:
    expected = _seed_payments(db, tenant)
    job_id = create_job(client, tenant, filters=Q1_2024)
    job = wait_for_job(client, tenant, job_id)["job"]
    assert job["status"] == "completed", job
    assert job["totalRows"] == job["processedRows"] == len(expected) == 3
    response = download(client, tenant, job_id)
    header, rows = csv_rows(response.content)
    assert header == PAYMENT_COLUMNS
    assert [dict(zip(header, row, strict=True)) for row in rows] == expected


def test_json_equals_the_reports_rows_with_exact_money(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    expected = _seed_payments(db, tenant)
    job_id = create_job(client, tenant, fmt="json", filters=Q1_2024)
    assert wait_for_job(client, tenant, job_id)["job"]["totalRows"] == 3
    response = download(client, tenant, job_id)
    assert response.headers["content-type"] == "application/json"
    rows = json_rows(response.content)  # numbers parsed as their exact text
    assert [list(row) for row in rows] == [PAYMENT_COLUMNS] * 3
    as_text = [{k: "" if v is None else v for k, v in row.items()} for row in rows]
    assert [row["amount"] for row in as_text] == ["1234.56", "0.01", "99999.99"]
    assert as_text == expected


def test_filters_narrow_the_rows(client: httpx.Client, db: Session, tenant: Tenant) -> None:
    expected = _seed_payments(db, tenant)
    job_id = create_job(client, tenant, filters=Q1_2024 | {"currency": "EUR"})
    wait_for_job(client, tenant, job_id)
    _, rows = csv_rows(download(client, tenant, job_id).content)
    assert [row[0] for row in rows] == [e["payment_id"] for e in expected if e["currency"] == "EUR"]


def test_empty_exports_are_valid_files(client: httpx.Client, tenant: Tenant) -> None:
    csv_job = create_job(client, tenant)
    json_job = create_job(client, tenant, fmt="json")
    assert wait_for_job(client, tenant, csv_job)["job"]["totalRows"] == 0
    assert wait_for_job(client, tenant, json_job)["progress"] == {
        "percentage": 100,
        "status": "Completed",
    }
    assert csv_rows(download(client, tenant, csv_job).content) == (PAYMENT_COLUMNS, [])
    assert json_rows(download(client, tenant, json_job).content) == []


def test_other_organizations_rows_never_appear(
    client: httpx.Client, db: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    _seed_payments(db, other_tenant)
    mine = create_payment(db, org=tenant.org)
    job_id = create_job(client, tenant)
    wait_for_job(client, tenant, job_id)
    _, rows = csv_rows(download(client, tenant, job_id).content)
    assert [row[0] for row in rows] == [mine.id]


@pytest.mark.parametrize(
    "reference", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "\nx"]
)
def test_formula_cells_are_neutralised(
    client: httpx.Client, db: Session, tenant: Tenant, reference: str
) -> None:
    customer = create_customer(db, org=tenant.org, name="=cmd|' /C calc'!A0")
    create_payment(
        db, org=tenant.org, customer=customer, reference=reference, amount=Decimal("5.00")
    )
    job_id = create_job(client, tenant)
    wait_for_job(client, tenant, job_id)
    header, rows = csv_rows(download(client, tenant, job_id).content)
    row = dict(zip(header, rows[0], strict=True))
    assert row["reference"] == "'" + reference
    assert row["customer_name"] == "'=cmd|' /C calc'!A0"
    assert row["amount"] == "5.00"  # numbers are left alone


def test_download_headers(client: httpx.Client, db: Session, tenant: Tenant) -> None:
    create_payment(db, org=tenant.org)
    job_id = create_job(client, tenant, file_name="Q1 payments.csv")
    job = wait_for_job(client, tenant, job_id)["job"]
    assert job["downloadUrl"] == f"/v1/reports/export/{job_id}/download"
    response = client.get(job["downloadUrl"], headers=tenant.headers(tenant.exporter))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        response.headers["content-length"]
        == str(len(response.content))
        == str(job["fileSizeBytes"])
    )
    digest = hashlib.sha256(response.content).hexdigest()
    assert response.headers["x-checksum-sha256"] == digest == job["checksumSha256"]
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"Q1 payments.csv\"; filename*=UTF-8''Q1%20payments.csv"
    )


@pytest.mark.parametrize(
    ("requested", "stored"),
    [
        ("../../etc/passwd", "passwd.csv"),
        ("..\\..\\windows\\win.ini", "win.ini.csv"),
        ('a"b;c.csv', "a_b_c.csv"),
        ("report\r\nSet-Cookie: x=1.csv", "reportSet-Cookie_ x=1.csv"),
        ("relevé 報告.CSV", "relevé 報告.csv"),
        ("...", None),
        ("payments.json", "payments.csv"),
    ],
)
def test_file_name_attacks(
    client: httpx.Client, tenant: Tenant, requested: str, stored: str | None
) -> None:
    job_id = create_job(client, tenant, file_name=requested)
    job = wait_for_job(client, tenant, job_id)["job"]
    if stored is None:
        assert job["fileName"].startswith("payments_received_")
        assert job["fileName"].endswith(".csv")
    else:
        assert job["fileName"] == stored
    disposition = download(client, tenant, job_id).headers["content-disposition"]
    assert disposition.isascii()
    assert "\r" not in disposition
    assert "\n" not in disposition
    ascii_part, utf8_part = disposition.split("; filename*=UTF-8''")
    fallback = ascii_part.removeprefix('attachment; filename="').removesuffix('"')
    assert '"' not in fallback
    assert "/" not in fallback
    assert "\\" not in fallback
    assert ".." not in fallback
    assert unquote(utf8_part) == job["fileName"]
