"""invoice_settlement_time: paid late vs open vs overdue, calendar dates in the org's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.orm import Session

from tests.factories import Tenant, create_customer, create_invoice, create_tenant
from tests.reports.helpers import (
    bucket_counts,
    check_distribution,
    figures,
    local_midnight,
    ok_summary,
    seconds,
    stats,
)

# Each test runs on the rows and on freshly rolled-up months (conftest.py).
pytestmark = pytest.mark.usefixtures("summary_source")

PATH = "invoice-settlement-time"
TZ = "America/New_York"
# Local midnights: 1 March (EST, UTC-5) to 1 April (EDT, UTC-4).
WINDOW = {"fromDate": "2024-03-01T00:00:00-05:00", "toDate": "2024-04-01T00:00:00-04:00"}
AS_OF = datetime(2024, 4, 15, 12, tzinfo=UTC)
LABELS = ("0-7 days", "8-14 days", "15-30 days", "31-60 days", "61-90 days", "91+ days")


def _tenant(db: Session, tenant: Tenant) -> Tenant:
    tenant.org.timezone = TZ
    db.commit()
    return tenant


def _seed(db: Session, tenant: Tenant) -> list:
    acme = create_customer(db, org=tenant.org, name="Acme Corp")
    tech = create_customer(db, org=tenant.org, name="TechStart Inc")
    midnight = local_midnight(date(2024, 3, 1), TZ)
    invoices = [
        # paid on time, 20 days after local midnight of the issue date
        create_invoice(
            db,
            org=tenant.org,
            customer=acme,
            status="paid",
            issue_date=date(2024, 3, 1),
            paid_at=datetime(2024, 3, 21, 5, tzinfo=UTC),
        ),
        # paid late (after its due date): settled, not overdue; spans the DST change
        create_invoice(
            db,
            org=tenant.org,
            customer=acme,
            status="paid",
            issue_date=date(2024, 3, 1),
            due_date=date(2024, 3, 15),
            paid_at=datetime(2024, 4, 10, 4, tzinfo=UTC),
        ),
        # open and overdue (due 20 March, nothing paid)
        create_invoice(
            db,
            org=tenant.org,
            customer=tech,
            status="issued",
            issue_date=date(2024, 3, 10),
            due_date=date(2024, 3, 20),
            total_amount="1200.50",
        ),
        # open, part paid, not yet due at asOf
        create_invoice(
            db,
            org=tenant.org,
            customer=tech,
            status="part_paid",
            issue_date=date(2024, 3, 31),
            due_date=date(2024, 4, 30),
            total_amount="800.00",
            amount_paid="300.00",
        ),
        # overdue in another currency: counted, but not in the USD overdueAmount
        create_invoice(
            db,
            org=tenant.org,
            customer=acme,
            status="part_paid",
            currency="EUR",
            issue_date=date(2024, 3, 5),
            due_date=date(2024, 3, 25),
            total_amount="500.00",
            amount_paid="100.00",
        ),
        # written off: no settlement time, never overdue
        create_invoice(
            db,
            org=tenant.org,
            customer=tech,
            status="written_off",
            issue_date=date(2024, 3, 5),
            due_date=date(2024, 3, 6),
        ),
    ]
    # Outside: the days just before and after the window, draft and void ones.
    create_invoice(db, org=tenant.org, customer=acme, issue_date=date(2024, 2, 29))
    create_invoice(db, org=tenant.org, customer=acme, issue_date=date(2024, 4, 1))
    create_invoice(db, org=tenant.org, customer=acme, status="draft", issue_date=date(2024, 3, 2))
    create_invoice(db, org=tenant.org, customer=acme, status="void", issue_date=date(2024, 3, 2))
    assert midnight == datetime(2024, 3, 1, 5, tzinfo=UTC)
    return invoices


def _is_overdue(invoice, as_of: datetime = AS_OF) -> bool:  # type: ignore[no-untyped-def]
    as_of_date = as_of.astimezone(local_midnight(date(2024, 1, 1), TZ).tzinfo).date()
    return (
        invoice.due_date < as_of_date
        and invoice.balance_due > 0
        and invoice.status not in ("paid", "void", "written_off")
    )


def _settlement_days(invoice, as_of: datetime = AS_OF) -> Decimal | None:  # type: ignore[no-untyped-def]
    start = local_midnight(invoice.issue_date, TZ)
    if invoice.status == "paid":
        return seconds(invoice.paid_at - start) / 86400
    if invoice.status in ("issued", "part_paid"):
        return seconds(as_of - start) / 86400
    return None


def test_figures_match_the_oracle(client: httpx.Client, tenant: Tenant, db: Session) -> None:
    invoices = _seed(db, _tenant(db, tenant))
    result = ok_summary(client, tenant, PATH, asOf="2024-04-15T12:00:00Z", **WINDOW)
    days = [d for i in invoices if (d := _settlement_days(i)) is not None]
    expected = stats(days)

    assert result["totalInvoices"] == 6
    assert result["averageSettlementTimeDays"] == expected["average"]
    assert result["medianSettlementTimeDays"] == expected["median"]
    assert (
        result["minSettlementTimeDays"] == Decimal("15.3") == expected["min"]
    )  # open since 31 Mar
    assert result["maxSettlementTimeDays"] == expected["max"]
    # paid 20 days after; paid late 40 days minus the DST hour
    assert sorted(days)[1] == Decimal(20)
    assert (
        Decimal("39.9")
        < max(d for i, d in zip(invoices, days, strict=False) if i.status == "paid")
        < 40
    )
    assert result["overdueInvoices"] == 2 == sum(_is_overdue(i) for i in invoices)
    assert result["overdueAmount"] == Decimal("1200.50")
    assert result["currency"] == "USD"
    assert result["asOf"] == "2024-04-15T12:00:00Z"
    assert result["invoicesByStatus"] == {"paid": 2, "overdue": 2, "part_paid": 1, "written_off": 1}
    assert result["invoicesByCustomer"] == {"Acme Corp": 3, "TechStart Inc": 3}
    assert result["totalsByCurrency"] == {
        "USD": {"count": 5, "amount": Decimal("5000.50")},
        "EUR": {"count": 1, "amount": Decimal("500.00")},
    }
    assert result["overdueByCurrency"] == {
        "USD": {"count": 1, "amount": Decimal("1200.50")},
        "EUR": {"count": 1, "amount": Decimal("400.00")},
    }
    counts = bucket_counts(days, (8, 15, 31, 61, 91))
    check_distribution(result["settlementTimeDistribution"], LABELS, counts)


def test_amounts_are_json_numbers_with_two_decimals(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    _seed(db, _tenant(db, tenant))
    response = client.get(
        f"/v1/reports/summary/{PATH}",
        params={"asOf": "2024-04-15T12:00:00Z", **WINDOW},
        headers=tenant.headers(tenant.viewer),
    )
    assert '"overdueAmount":1200.50' in response.text
    assert '"EUR":{"count":1,"amount":500.00}' in response.text


def test_overdue_only_and_currency(client: httpx.Client, tenant: Tenant, db: Session) -> None:
    invoices = _seed(db, _tenant(db, tenant))
    overdue = figures(tenant, PATH, asOf="2024-04-15T12:00:00Z", overdueOnly="true", **WINDOW)
    rows = [i for i in invoices if _is_overdue(i)]
    assert overdue["totalInvoices"] == overdue["overdueInvoices"] == len(rows) == 2
    assert overdue["invoicesByStatus"] == {"overdue": 2}
    assert (
        overdue["medianSettlementTimeDays"] == stats([_settlement_days(i) for i in rows])["median"]
    )

    euros = figures(tenant, PATH, asOf="2024-04-15T12:00:00Z", currency="EUR", **WINDOW)
    assert euros["totalInvoices"] == 1
    assert euros["currency"] == "EUR"
    assert euros["overdueAmount"] == Decimal("400.00")

    # Before its due date nothing is overdue; days outstanding are counted to asOf.
    early = figures(tenant, PATH, asOf="2024-03-12T05:00:00Z", **WINDOW)
    assert early["overdueInvoices"] == 0
    assert early["overdueAmount"] == Decimal("0.00")


def test_empty_window(client: httpx.Client, tenant: Tenant) -> None:
    result = figures(tenant, PATH, fromDate="2030-01-01T00:00:00Z", toDate="2030-02-01T00:00:00Z")
    assert result["totalInvoices"] == 0
    assert result["averageSettlementTimeDays"] is None
    assert result["overdueInvoices"] == 0
    assert result["overdueAmount"] == Decimal("0.00")
    assert result["invoicesByStatus"] == {}
    assert result["totalsByCurrency"] == {}
    check_distribution(result["settlementTimeDistribution"], LABELS, [0] * 6)


def test_other_organizations_never_change_a_figure(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    _seed(db, _tenant(db, tenant))
    before = figures(tenant, PATH, asOf="2024-04-15T12:00:00Z", **WINDOW)
    other = create_tenant(db, tenant.settings, timezone=TZ)
    _seed(db, other)
    assert figures(tenant, PATH, asOf="2024-04-15T12:00:00Z", **WINDOW) == before


def test_without_a_window_every_invoice_counts(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    invoices = _seed(db, _tenant(db, tenant))
    result = figures(tenant, PATH, asOf="2024-04-15T12:00:00Z")
    assert result["totalInvoices"] == len(invoices) + 2  # the two just outside the window
    assert sum(b["count"] for b in result["settlementTimeDistribution"]) == len(invoices) + 1
