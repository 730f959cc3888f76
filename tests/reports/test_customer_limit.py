"""``customerLimit``: the top N customers of a breakdown plus the rest summed.

The oracle counts the factory rows by customer name in Python; the top N, the rest and
the untouched default shape are checked against it, on the rows and on the rollups.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.orm import Session

from tests.exports.conftest import request_export
from tests.factories import Tenant, create_customer, create_invoice, create_payment
from tests.reports.helpers import ok_summary, summary

WINDOW = {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2025-01-01T00:00:00Z"}
CURRENCIES = ("USD", "EUR", "GBP")


def _seed(db: Session, tenant: Tenant, report: str) -> Counter[str]:
    """Customers with 1..12 rows each (some tied), in several currencies; rows by name."""
    names: Counter[str] = Counter()
    for i, rows in enumerate([12, 9, 9, 7, 5, 5, 5, 3, 2, 1, 1, 1, 1]):
        customer = create_customer(db, org=tenant.org, name=f"Customer {chr(77 - i)}")
        for n in range(rows):
            currency = CURRENCIES[(i + n) % 3]
            if report == "invoices":
                create_invoice(
                    db,
                    org=tenant.org,
                    customer=customer,
                    currency=currency,
                    status=("paid", "issued")[n % 2],
                    issue_date=date(2024, 3, 1 + n),
                )
            else:
                create_payment(
                    db,
                    org=tenant.org,
                    customer=customer,
                    currency=currency,
                    amount=Decimal("10.00") + n,
                    paid_at=datetime(2024, 3, 1 + n, 12, tzinfo=UTC),
                )
            names[customer.name] += 1
    create_invoice(db, org=tenant.org, status="void", issue_date=date(2024, 3, 1))
    create_payment(db, org=tenant.org, status="failed", paid_at=datetime(2024, 3, 1, tzinfo=UTC))
    return names


CASES = [
    ("invoices", "invoice-settlement-time", "invoicesByCustomer", "totalInvoices"),
    ("payments", "payments-received", "paymentsByCustomer", "totalPayments"),
]


@pytest.mark.usefixtures("summary_source")
@pytest.mark.parametrize(("report", "path", "field", "total"), CASES)
@pytest.mark.parametrize("limit", [1, 3, 5, 13, 50])
def test_top_customers_and_the_rest_add_up_to_the_whole_breakdown(
    client: httpx.Client,
    tenant: Tenant,
    db: Session,
    report: str,
    path: str,
    field: str,
    total: str,
    limit: int,
) -> None:
    names = _seed(db, tenant, report)
    window = {**WINDOW, "asOf": "2024-06-01T00:00:00Z"} if report == "invoices" else WINDOW
    full = ok_summary(client, tenant, path, **window)
    assert "otherCustomers" not in full  # the default shape is unchanged
    assert full[field] == dict(sorted(names.items()))
    trimmed = ok_summary(client, tenant, path, **window, customerLimit=limit)
    ranked = sorted(names.items(), key=lambda item: (-item[1], item[0]))
    assert list(trimmed[field].items()) == ranked[:limit]  # largest first, ties by name
    rest = ranked[limit:]
    assert trimmed["otherCustomers"] == {
        "customers": len(rest),
        "count": sum(n for _, n in rest),
    }
    assert sum(trimmed[field].values()) + trimmed["otherCustomers"]["count"] == full[total]
    # Every other figure is the full summary's.
    others = {k: v for k, v in trimmed.items() if k not in (field, "otherCustomers")}
    assert others == {k: v for k, v in full.items() if k != field}


@pytest.mark.parametrize(("report", "path", "field", "total"), CASES)
def test_a_filtered_summary_trims_its_own_breakdown(
    client: httpx.Client,
    tenant: Tenant,
    db: Session,
    report: str,
    path: str,
    field: str,
    total: str,
) -> None:
    _seed(db, tenant, report)
    full = ok_summary(client, tenant, path, **WINDOW, currency="EUR")
    trimmed = ok_summary(client, tenant, path, **WINDOW, currency="EUR", customerLimit=2)
    assert len(trimmed[field]) == 2
    assert set(trimmed[field].items()) <= set(full[field].items())
    assert sum(trimmed[field].values()) + trimmed["otherCustomers"]["count"] == full[total]
    assert trimmed["otherCustomers"]["customers"] == len(full[field]) - 2


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("invoice-settlement-time", "0"),
        ("invoice-settlement-time", "-3"),
        ("payments-received", "ten"),
        ("payments-received", "10001"),
        ("payments-received", "2.5"),
        ("quote-cycle-time", "10"),  # no customer breakdown: no such parameter
        ("time-approvals", "10"),
    ],
)
def test_a_bad_customer_limit_is_a_422_problem(
    client: httpx.Client, tenant: Tenant, path: str, value: str
) -> None:
    response, body = summary(client, tenant, path, customerLimit=value)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "query.customerLimit" in {error["field"] for error in body["errors"]}


def test_customer_limit_is_not_an_export_filter(client: httpx.Client, tenant: Tenant) -> None:
    response = request_export(client, tenant, filters={"customerLimit": 10})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_limit_is_documented_on_the_two_summaries_only(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    for path, expected in [
        ("invoice-settlement-time", True),
        ("payments-received", True),
        ("quote-cycle-time", False),
        ("time-approvals", False),
    ]:
        operation = document["paths"][f"/v1/reports/summary/{path}"]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert ("customerLimit" in names) is expected, path
    schemas = document["components"]["schemas"]
    for name in ("InvoiceSettlementTimeSummary", "PaymentsReceivedSummary"):
        properties = schemas[name]["properties"]
        assert "otherCustomers" in properties
        assert "otherCustomers" not in schemas[name].get("required", [])
