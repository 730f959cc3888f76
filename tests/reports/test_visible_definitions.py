"""Definitions a reader can see in the response itself: negative durations are counted,
not clamped to zero; amount buckets name their currency; amounts say which currency
they cover while counts cover every currency.

Each figures test runs three ways: the rows only, the rollup path before anything is
built (every period read raw) and after a refresh (periods read built).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from pivotal_reporting.reports import registry
from pivotal_reporting.reports.refresh import refresh_all_blocking
from tests.factories import (
    Tenant,
    create_customer,
    create_invoice,
    create_payment,
    create_project,
    create_time_entry,
)
from tests.reports.helpers import ok_summary, round1, seconds
from tests.reports.test_local_days import _export

WINDOW = {"fromDate": "2024-03-01T00:00:00Z", "toDate": "2024-04-01T00:00:00Z"}
SUBMITTED = datetime(2024, 3, 8, 17, tzinfo=UTC)


@pytest.fixture(params=["rows-only", "rollups-unbuilt", "rollups-built"])
def ask(
    request: pytest.FixtureRequest,
    client: httpx.Client,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., dict[str, Any]]:
    if request.param == "rows-only":  # the API runs in this process (tests/conftest.py)
        for report in registry.all_reports():
            monkeypatch.setattr(type(report), "reads_rollup", lambda self, filters: False)

    def answer(tenant: Tenant, path: str, **params: Any) -> dict[str, Any]:
        if request.param == "rollups-built":
            refresh_all_blocking(database_url, [tenant.org.id])
        return ok_summary(client, tenant, path, **params)

    return answer


def test_approved_before_submitted_is_counted_not_clamped(
    ask: Callable[..., dict[str, Any]], tenant: Tenant, db: Session
) -> None:
    project = create_project(db, org=tenant.org)
    latencies = [timedelta(hours=-5), timedelta(hours=30), timedelta(hours=50), timedelta(0)]
    for latency in latencies:
        create_time_entry(
            db,
            org=tenant.org,
            user=tenant.viewer,
            project=project,
            work_date=date(2024, 3, 8),
            submitted_at=SUBMITTED,
            approved_at=SUBMITTED + latency,
        )
    answer = ask(tenant, "time-approvals", **WINDOW)
    timed = [seconds(x) / 3600 for x in latencies if x >= timedelta(0)]
    assert answer["negativeApprovalTimes"] == 1
    assert answer["approvedEntries"] == 3
    assert answer["entriesByStatus"]["approved"] == 4
    assert answer["minApprovalTimeHours"] == round1(min(timed))  # 0.0: the real zero only
    assert answer["averageApprovalTimeHours"] == round1(sum(timed) / len(timed))
    assert answer["medianApprovalTimeHours"] == round1(Decimal(30))
    assert sum(b["count"] for b in answer["approvalTimeDistribution"]) == 3


def test_paid_or_as_of_before_the_issue_date_is_counted_not_clamped(
    ask: Callable[..., dict[str, Any]], tenant: Tenant, db: Session, database_url: str
) -> None:
    customer = create_customer(db, org=tenant.org)
    issued = date(2024, 3, 10)  # UTC organization: the day begins at 00:00Z
    start = datetime(2024, 3, 10, tzinfo=UTC)
    paid = [start - timedelta(days=2), start + timedelta(days=4), start + timedelta(days=9)]
    for paid_at in paid:
        create_invoice(
            db, org=tenant.org, customer=customer, status="paid", issue_date=issued, paid_at=paid_at
        )
    # Open, issued on 20 March: asOf 15 March is before its day began.
    create_invoice(db, org=tenant.org, customer=customer, issue_date=date(2024, 3, 20))
    as_of = {"asOf": "2024-03-15T00:00:00Z"}
    answer = ask(tenant, "invoice-settlement-time", **WINDOW, **as_of)
    assert answer["totalInvoices"] == 4
    assert answer["negativeSettlementTimes"] == 2  # paid two days early; open, not yet issued
    assert answer["minSettlementTimeDays"] == Decimal("4.0")
    assert answer["maxSettlementTimeDays"] == Decimal("9.0")
    assert answer["averageSettlementTimeDays"] == Decimal("6.5")
    assert sum(b["count"] for b in answer["settlementTimeDistribution"]) == 2
    # The export carries each settlement time as measured, the negative one included.
    rows = _export(database_url, tenant, "UTC", "invoice_settlement_time", {**WINDOW, **as_of})
    assert sorted(Decimal(r["settlement_time_days"]) for r in rows) == [
        Decimal("-5.0000"),
        Decimal("-2.0000"),
        Decimal("4.0000"),
        Decimal("9.0000"),
    ]


def test_amounts_name_their_currency_and_how_many_rows_they_cover(
    ask: Callable[..., dict[str, Any]], tenant: Tenant, db: Session
) -> None:
    customer = create_customer(db, org=tenant.org)
    at = datetime(2024, 3, 5, 12, tzinfo=UTC)
    for amount, currency in (("100.00", "EUR"), ("2500.00", "EUR"), ("70000.00", "EUR")):
        create_payment(
            db,
            org=tenant.org,
            customer=customer,
            amount=Decimal(amount),
            currency=currency,
            paid_at=at,
        )
    create_payment(db, org=tenant.org, customer=customer, amount=Decimal("10.00"), paid_at=at)
    for currency in ("EUR", "USD", "USD"):
        create_invoice(
            db,
            org=tenant.org,
            customer=customer,
            currency=currency,
            issue_date=date(2024, 3, 1),
            due_date=date(2024, 3, 2),
        )

    usd = ask(tenant, "payments-received", **WINDOW)
    assert usd["totalPayments"] == 4
    assert (usd["amountCurrency"], usd["paymentsInAmountCurrency"]) == ("USD", 1)
    assert usd["currency"] == "USD"
    assert usd["totalAmount"] == Decimal("10.00")
    assert [b["range"] for b in usd["amountDistribution"]] == [
        "$0-$1,000",
        "$1,001-$5,000",
        "$5,001-$10,000",
        "$10,001-$25,000",
        "$25,001-$50,000",
        "$50,001+",
    ]
    eur = ask(tenant, "payments-received", **WINDOW, currency="EUR")
    assert (eur["amountCurrency"], eur["paymentsInAmountCurrency"]) == ("EUR", 3)
    assert eur["totalPayments"] == 3  # the filter limits the rows too
    assert [(b["range"], b["count"]) for b in eur["amountDistribution"]] == [
        ("EUR 0-1,000", 1),
        ("EUR 1,001-5,000", 1),
        ("EUR 5,001-10,000", 0),
        ("EUR 10,001-25,000", 0),
        ("EUR 25,001-50,000", 0),
        ("EUR 50,001+", 1),
    ]

    invoices = ask(tenant, "invoice-settlement-time", **WINDOW, asOf="2024-03-20T00:00:00Z")
    assert invoices["overdueInvoices"] == 3
    assert (invoices["amountCurrency"], invoices["overdueInvoicesInAmountCurrency"]) == ("USD", 2)
    assert invoices["overdueAmount"] == Decimal("2000.00")


def test_openapi_documents_the_new_fields(client: httpx.Client) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    wanted = {
        "PaymentsReceivedSummary": ("amountCurrency", "paymentsInAmountCurrency"),
        "InvoiceSettlementTimeSummary": (
            "amountCurrency",
            "overdueInvoicesInAmountCurrency",
            "negativeSettlementTimes",
        ),
        "TimeApprovalsSummary": ("negativeApprovalTimes",),
    }
    for model, fields in wanted.items():
        properties = schemas[model]["properties"]
        for name in fields:
            assert name in properties, (model, name)
            assert properties[name].get("description"), (model, name)
