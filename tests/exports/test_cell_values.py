"""Export cells: JSON carries the values as stored; CSV guards user text and spells booleans.

Real exports through the worker; expected cells are computed here from the stored values.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.orm import Session

from tests.exports.conftest import create_job, csv_rows, download, json_rows, wait_for_job
from tests.factories import (
    Tenant,
    create_customer,
    create_invoice,
    create_payment,
    create_time_entry,
    create_user,
)

# Text a spreadsheet would run as a formula, and text that only looks like it might.
HOSTILE = [
    "-=ORC pay_1",
    '=HYPERLINK("http://x")',
    "  =1+1",
    " \t@SUM(A1)",
    "\uff1d1+1",
    "\uff0b1",
    "\uff0d2",
    "\uff20SUM(A1)",
    "\u3000\uff1d1",
    "\tx",
    "\r\nx",
]
HARMLESS = ["a=b", "plain", " x", "'=already quoted", "é 報告", '"quoted", comma']


def _export(client: httpx.Client, tenant: Tenant, fmt: str, report_type: str) -> bytes:
    job_id = create_job(client, tenant, fmt=fmt, report_type=report_type)
    job = wait_for_job(client, tenant, job_id)["job"]
    assert job["status"] == "completed", job
    response = download(client, tenant, job_id)
    assert response.status_code == 200
    return response.content


def _seed_payments(db: Session, tenant: Tenant, texts: list[str]) -> None:
    for text in texts:
        customer = create_customer(db, org=tenant.org, name=text)
        create_payment(db, org=tenant.org, customer=customer, reference=text)


def _is_formula(cell: str) -> bool:
    """The rule, written independently of the SQL: after leading white space (including
    U+3000), a first character in = + - @ or their full-width forms; or a leading tab/CR/LF."""
    if cell[:1] in ("\t", "\r", "\n"):
        return True
    stripped = cell.lstrip(" \t\r\n\v\f\u3000")
    return stripped[:1] in ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def test_the_rule_classifies_the_cases() -> None:
    assert all(_is_formula(text) for text in HOSTILE)
    assert not any(_is_formula(text) for text in HARMLESS)


def test_json_export_is_byte_exact(client: httpx.Client, db: Session, tenant: Tenant) -> None:
    texts = HOSTILE + HARMLESS
    _seed_payments(db, tenant, texts)
    content = _export(client, tenant, "json", "payments_received")
    rows = json_rows(content)
    assert sorted(row["reference"] for row in rows) == sorted(texts)
    assert sorted(row["customer_name"] for row in rows) == sorted(texts)
    for text in texts:  # the stored text, JSON-escaped, is in the file as is
        assert json.dumps(text, ensure_ascii=False).encode() in content


def test_csv_guards_user_text(client: httpx.Client, db: Session, tenant: Tenant) -> None:
    texts = HOSTILE + HARMLESS
    _seed_payments(db, tenant, texts)
    header, rows = csv_rows(_export(client, tenant, "csv", "payments_received"))
    cells = [dict(zip(header, row, strict=True)) for row in rows]
    expected = sorted("'" + t if _is_formula(t) else t for t in texts)
    assert sorted(cell["reference"] for cell in cells) == expected
    assert sorted(cell["customer_name"] for cell in cells) == expected
    for cell in cells:
        assert cell["amount"] == "500.00"  # numbers are not text: left alone
        assert cell["status"] == "completed"


def test_csv_guards_ids(client: httpx.Client, db: Session, tenant: Tenant) -> None:
    """Ids come from the source system (no CHECK on their form): they are guarded too."""
    customer = create_customer(db, org=tenant.org, id="=cus_1")
    create_payment(db, org=tenant.org, customer=customer, id="\uff0dpay_1")
    header, rows = csv_rows(_export(client, tenant, "csv", "payments_received"))
    cell = dict(zip(header, rows[0], strict=True))
    assert (cell["payment_id"], cell["customer_id"]) == ("'\uff0dpay_1", "'=cus_1")
    rows_json = json_rows(_export(client, tenant, "json", "payments_received"))
    assert (rows_json[0]["payment_id"], rows_json[0]["customer_id"]) == ("\uff0dpay_1", "=cus_1")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_booleans_are_true_and_false(
    client: httpx.Client, db: Session, tenant: Tenant, fmt: str
) -> None:
    user = create_user(db, org=tenant.org)
    billable = {
        create_time_entry(db, org=tenant.org, user=user, billable=flag).id: flag
        for flag in (True, False)
    }
    overdue = {  # due 2024-02-09, asOf now: open is overdue, paid is not
        create_invoice(db, org=tenant.org, status=status, issue_date=date(2024, 1, 10)).id: flag
        for status, flag in (("issued", True), ("paid", False))
    }
    if fmt == "csv":
        header, rows = csv_rows(_export(client, tenant, fmt, "time_approvals"))
        got = {r[header.index("time_entry_id")]: r[header.index("billable")] for r in rows}
        assert got == {k: str(v).lower() for k, v in billable.items()}
        header, rows = csv_rows(_export(client, tenant, fmt, "invoice_settlement_time"))
        got = {r[header.index("invoice_id")]: r[header.index("overdue")] for r in rows}
        assert got == {k: str(v).lower() for k, v in overdue.items()}
    else:
        content = _export(client, tenant, fmt, "time_approvals")
        assert {r["time_entry_id"]: r["billable"] for r in json.loads(content)} == billable
        content = _export(client, tenant, fmt, "invoice_settlement_time")
        assert {r["invoice_id"]: r["overdue"] for r in json.loads(content)} == overdue


def test_closed_text_columns_are_constrained(db: Session, tenant: Tenant) -> None:
    """What the CSV guard skips can't be user text: the database refuses a hostile status."""
    from sqlalchemy.exc import IntegrityError

    customer = create_customer(db, org=tenant.org)
    for column, value in (("status", "=1"), ("method", "=1"), ("currency", "=US")):
        with pytest.raises(IntegrityError):
            create_payment(
                db,
                org=tenant.org,
                customer=customer,
                paid_at=datetime(2024, 2, 1, tzinfo=UTC),
                amount=Decimal("1.00"),
                **{column: value},
            )
        db.rollback()
