"""payments_received: months in the org's zone, amount buckets, one headline currency."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.orm import Session

from tests.factories import Tenant, create_customer, create_payment
from tests.reports.helpers import check_distribution, figures, ok_summary

# Each test runs on the rows and on freshly rolled-up months (conftest.py).
pytestmark = pytest.mark.usefixtures("summary_source")

PATH = "payments-received"
TZ = "America/New_York"
WINDOW = {"fromDate": "2024-02-01T00:00:00-05:00", "toDate": "2024-04-01T00:00:00-04:00"}
LABELS = (
    "$0-$1,000",
    "$1,001-$5,000",
    "$5,001-$10,000",
    "$10,001-$25,000",
    "$25,001-$50,000",
    "$50,001+",
)


def _seed(db: Session, tenant: Tenant) -> list:
    tenant.org.timezone = TZ
    db.commit()
    acme = create_customer(db, org=tenant.org, name="Acme Corp")
    tech = create_customer(db, org=tenant.org, name="TechStart Inc")

    def pay(amount: str, at: datetime, **kw: object):  # type: ignore[no-untyped-def]
        return create_payment(
            db,
            org=tenant.org,
            customer=kw.pop("customer", acme),
            amount=Decimal(amount),
            paid_at=at,
            **kw,
        )

    payments = [
        pay("1000.00", datetime(2024, 2, 1, 5, tzinfo=UTC)),  # exactly at fromDate (local midnight)
        pay(
            "1000.50", datetime(2024, 2, 10, tzinfo=UTC), method="check"
        ),  # floor 1000: first bucket
        # 22:00 on 29 Feb in New York although 1 March in UTC: February
        pay("1001.00", datetime(2024, 3, 1, 3, tzinfo=UTC), method="credit_card", customer=tech),
        pay("50000.99", datetime(2024, 3, 1, 5, tzinfo=UTC), customer=tech),  # March
        pay("50001.00", datetime(2024, 3, 20, tzinfo=UTC)),
        pay("200.00", datetime(2024, 3, 21, tzinfo=UTC), currency="EUR", method="cash"),
        pay("9.99", datetime(2024, 4, 1, 3, 59, 59, tzinfo=UTC)),  # last second of the window
    ]
    # Outside: not completed, exactly at toDate, just before fromDate.
    pay("700.00", datetime(2024, 3, 2, tzinfo=UTC), status="pending")
    pay("700.00", datetime(2024, 3, 2, tzinfo=UTC), status="refunded")
    pay("700.00", datetime(2024, 4, 1, 4, tzinfo=UTC))
    pay("700.00", datetime(2024, 2, 1, 4, 59, 59, tzinfo=UTC))
    return payments


def _months(payments: list) -> dict[str, int]:
    months: dict[str, int] = {}
    for p in payments:
        key = p.paid_at.astimezone(ZoneInfo(TZ)).strftime("%Y-%m")
        months[key] = months.get(key, 0) + 1
    return months


def test_figures_match_the_oracle(client: httpx.Client, tenant: Tenant, db: Session) -> None:
    payments = _seed(db, tenant)
    result = ok_summary(client, tenant, PATH, **WINDOW)
    usd = [p.amount for p in payments if p.currency == "USD"]

    assert result["totalPayments"] == 7
    assert result["currency"] == "USD"
    assert result["totalAmount"] == sum(usd) == Decimal("103013.48")
    assert result["averageAmount"] == (sum(usd) / len(usd)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert result["paymentsByMonth"] == _months(payments) == {"2024-02": 3, "2024-03": 4}
    assert result["paymentsByMethod"] == {
        "bank_transfer": 4,
        "check": 1,
        "credit_card": 1,
        "cash": 1,
    }
    assert result["paymentsByCustomer"] == {"Acme Corp": 5, "TechStart Inc": 2}
    assert result["totalsByCurrency"] == {
        "USD": {"count": 6, "amount": Decimal("103013.48")},
        "EUR": {"count": 1, "amount": Decimal("200.00")},
    }
    # USD only: 1000.00, 1000.50, 9.99 | 1001.00 | - | - | 50000.99 | 50001.00
    check_distribution(result["amountDistribution"], LABELS, [3, 1, 0, 0, 1, 1])


def test_currency_and_method_filters(client: httpx.Client, tenant: Tenant, db: Session) -> None:
    _seed(db, tenant)
    euros = figures(tenant, PATH, currency="EUR", **WINDOW)
    assert euros["totalPayments"] == 1
    assert euros["currency"] == "EUR"
    assert euros["totalAmount"] == euros["averageAmount"] == Decimal("200.00")
    assert euros["totalsByCurrency"] == {"EUR": {"count": 1, "amount": Decimal("200.00")}}
    # Labelled in the currency the amounts are in (issue 13: "$" for EUR was wrong).
    eur_labels = (
        "EUR 0-1,000",
        "EUR 1,001-5,000",
        "EUR 5,001-10,000",
        "EUR 10,001-25,000",
        "EUR 25,001-50,000",
        "EUR 50,001+",
    )
    check_distribution(euros["amountDistribution"], eur_labels, [1, 0, 0, 0, 0, 0])

    checks = figures(tenant, PATH, method="check", **WINDOW)
    assert checks["totalPayments"] == 1
    assert checks["totalAmount"] == Decimal("1000.50")


def test_empty_window_answers_zeros(client: httpx.Client, tenant: Tenant) -> None:
    result = figures(tenant, PATH, fromDate="2030-01-01T00:00:00Z", toDate="2030-02-01T00:00:00Z")
    assert result["totalPayments"] == 0
    assert result["totalAmount"] == Decimal("0.00")
    assert result["averageAmount"] is None
    assert result["paymentsByMonth"] == {}
    assert result["totalsByCurrency"] == {}
    check_distribution(result["amountDistribution"], LABELS, [0] * 6)


def test_other_organizations_never_change_a_figure(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, db: Session
) -> None:
    _seed(db, tenant)
    before = figures(tenant, PATH, **WINDOW)
    _seed(db, other_tenant)
    assert figures(tenant, PATH, **WINDOW) == before


def test_average_rounds_half_away_from_zero(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    customer = create_customer(db, org=tenant.org)
    for amount in ("100.01", "100.04"):
        create_payment(
            db,
            org=tenant.org,
            customer=customer,
            amount=Decimal(amount),
            paid_at=datetime(2024, 3, 2, tzinfo=UTC),
        )
    result = figures(tenant, PATH, **WINDOW)
    assert result["averageAmount"] == Decimal("100.03")  # 100.025, as round(numeric, 2)
