"""Drill-down into a distribution bar: each bucket filter selects exactly the bucket's rows.

The oracle buckets the factory rows in Python (durations from the timestamps, amounts by
their whole units), independently of the SQL; the summary's bucket count, the filtered
summary's total and the filtered export's rows must all equal it, for every bucket, with
values on and just below every boundary, negatives and rows without a duration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from pivotal_reporting.reports.bucket_filters import amount_bucket_sql
from pivotal_reporting.reports.payments_received import BUCKETS as PAYMENT_BUCKETS
from pivotal_reporting.reports.payments_received import _totals_sql
from pivotal_reporting.reports.sql import Conditions
from tests.exports.conftest import create_job, download, json_rows, request_export, wait_for_job
from tests.factories import (
    Tenant,
    create_customer,
    create_invoice,
    create_payment,
    create_quote,
    create_time_entry,
)
from tests.reports.helpers import local_midnight, ok_summary, seconds, summary

TZ = "America/New_York"
WINDOW = {"fromDate": "2024-01-01T00:00:00-05:00", "toDate": "2025-01-01T00:00:00-05:00"}
AS_OF = "2024-06-01T12:00:00Z"
MICRO = timedelta(microseconds=1)
DAY_BOUNDS = (0, 2, 4, 8, 15, 31)  # quotes and approvals: "0-1", "2-3", ... "31+"
INVOICE_BOUNDS = (0, 8, 15, 31, 61, 91)


@dataclass(frozen=True)
class Case:
    report_type: str
    path: str
    distribution: str
    filter: str
    total: str
    keys: tuple[str, ...]
    extra: dict[str, str]  # filters the drill-down adds (the summary's asOf / amountCurrency)


CASES = {
    "quote_cycle_time": Case(
        "quote_cycle_time",
        "quote-cycle-time",
        "cycleTimeDistribution",
        "cycleTimeBucket",
        "totalQuotes",
        ("0-1", "2-3", "4-7", "8-14", "15-30", "31+"),
        {},
    ),
    "invoice_settlement_time": Case(
        "invoice_settlement_time",
        "invoice-settlement-time",
        "settlementTimeDistribution",
        "settlementTimeBucket",
        "totalInvoices",
        ("0-7", "8-14", "15-30", "31-60", "61-90", "91+"),
        {"asOf": AS_OF},
    ),
    "payments_received": Case(
        "payments_received",
        "payments-received",
        "amountDistribution",
        "amountBucket",
        "totalPayments",
        ("0-1000", "1001-5000", "5001-10000", "10001-25000", "25001-50000", "50001+"),
        {"currency": "USD"},
    ),
    "time_approvals": Case(
        "time_approvals",
        "time-approvals",
        "approvalTimeDistribution",
        "approvalTimeBucket",
        "totalEntries",
        ("0-1", "2-3", "4-7", "8-14", "15-30", "31+"),
        {},
    ),
}


def _bucket(value: Decimal, bounds: tuple[int, ...]) -> int:
    """Index of the bucket ``[bounds[i], bounds[i + 1])`` holding ``floor(value)``; a value
    below the first bound is in bucket 0 (callers leave negatives out when they must)."""
    whole = int(value // 1)
    return max(0, sum(1 for bound in bounds[1:] if whole >= bound))


def _durations(bounds: tuple[int, ...]) -> list[timedelta]:
    """On every bucket boundary and a microsecond below it, plus some inside."""
    out = [timedelta(hours=5), timedelta(days=200)]
    for bound in bounds[1:]:
        out += [timedelta(days=bound), timedelta(days=bound) - MICRO]
    return out


def _seed_quotes(db: Session, tenant: Tenant) -> dict[str, int]:
    created = datetime(2024, 3, 5, 12, tzinfo=UTC)
    buckets: dict[str, int] = {}
    deltas = [*_durations(DAY_BOUNDS), timedelta(0)]  # never negative (a CHECK constraint)
    for n, delta in enumerate(deltas):
        quote = create_quote(
            db,
            org=tenant.org,
            status=("accepted", "rejected", "expired")[n % 3],
            created_at=created,
            decided_at=created + delta,
        )
        buckets[quote.id] = _bucket(seconds(delta) / 86400, DAY_BOUNDS)
    create_quote(db, org=tenant.org, status="draft")  # undecided: in no bucket
    return buckets


def _seed_invoices(db: Session, tenant: Tenant) -> dict[str, int]:
    buckets: dict[str, int] = {}
    customer = create_customer(db, org=tenant.org)
    issued = date(2024, 1, 2)
    midnight = local_midnight(issued, TZ).astimezone(UTC)  # absolute durations from here
    for delta in _durations(INVOICE_BOUNDS):
        invoice = create_invoice(
            db,
            org=tenant.org,
            customer=customer,
            status="paid",
            issue_date=issued,
            paid_at=midnight + delta,
        )
        buckets[invoice.id] = _bucket(seconds(delta) / 86400, INVOICE_BOUNDS)
    as_of = datetime.fromisoformat(AS_OF)
    for day in (date(2024, 5, 31), date(2024, 5, 20), date(2024, 3, 2), date(2024, 1, 3)):
        invoice = create_invoice(
            db, org=tenant.org, customer=customer, status="issued", issue_date=day
        )
        outstanding = seconds(as_of - local_midnight(day, TZ)) / 86400
        buckets[invoice.id] = _bucket(outstanding, INVOICE_BOUNDS)
    # Paid before its issue date began, issued after asOf, written off, void: in no bucket.
    create_invoice(
        db, org=tenant.org, status="paid", issue_date=issued, paid_at=midnight - timedelta(hours=1)
    )
    create_invoice(db, org=tenant.org, status="issued", issue_date=date(2024, 7, 1))
    create_invoice(db, org=tenant.org, status="written_off", issue_date=issued)
    create_invoice(db, org=tenant.org, status="void", issue_date=issued)
    return buckets


def _seed_payments(db: Session, tenant: Tenant) -> dict[str, int]:
    """USD payments (the summary's amountCurrency); EUR ones are in the export of a bucket
    filter without a currency, never in the USD distribution."""
    buckets: dict[str, int] = {}
    amounts = ["0.01", "1000.99", "1001.00", "5000.99", "5001.00", "10000.99", "10001.00"]
    amounts += ["25000.99", "25001.00", "50000.99", "50001.00", "99999.99"]
    paid_at = datetime(2024, 4, 2, 15, tzinfo=UTC)
    for amount in amounts:
        payment = create_payment(db, org=tenant.org, amount=Decimal(amount), paid_at=paid_at)
        buckets[payment.id] = _bucket(Decimal(amount), (0, 1001, 5001, 10001, 25001, 50001))
    create_payment(db, org=tenant.org, amount=Decimal("1500.00"), currency="EUR", paid_at=paid_at)
    create_payment(db, org=tenant.org, amount=Decimal("1500.00"), status="failed", paid_at=paid_at)
    return buckets


def _seed_time_entries(db: Session, tenant: Tenant) -> dict[str, int]:
    buckets: dict[str, int] = {}
    submitted = datetime(2024, 2, 3, 18, tzinfo=UTC)
    for delta in _durations(DAY_BOUNDS):
        entry = create_time_entry(
            db,
            org=tenant.org,
            user=tenant.viewer,
            work_date=date(2024, 2, 2),
            submitted_at=submitted,
            approved_at=submitted + delta,
        )
        buckets[entry.id] = _bucket(seconds(delta) / 86400, DAY_BOUNDS)
    # Approved before submitted, and entries without an approval time: in no bucket.
    create_time_entry(
        db,
        org=tenant.org,
        user=tenant.viewer,
        work_date=date(2024, 2, 2),
        submitted_at=submitted,
        approved_at=submitted - timedelta(minutes=5),
    )
    for status in ("draft", "submitted", "rejected"):
        create_time_entry(
            db, org=tenant.org, user=tenant.viewer, status=status, work_date=date(2024, 2, 2)
        )
    return buckets


SEEDS: dict[str, Callable[[Session, Tenant], dict[str, int]]] = {
    "quote_cycle_time": _seed_quotes,
    "invoice_settlement_time": _seed_invoices,
    "payments_received": _seed_payments,
    "time_approvals": _seed_time_entries,
}
ID_COLUMNS = {
    "quote_cycle_time": "quote_id",
    "invoice_settlement_time": "invoice_id",
    "payments_received": "payment_id",
    "time_approvals": "time_entry_id",
}


def _seeded(db: Session, tenant: Tenant, report_type: str) -> dict[str, int]:
    tenant.org.timezone = TZ
    db.commit()
    return SEEDS[report_type](db, tenant)


def _expected(buckets: dict[str, int], index: int) -> set[str]:
    return {row_id for row_id, bucket in buckets.items() if bucket == index}


@pytest.mark.usefixtures("summary_source")
@pytest.mark.parametrize("report_type", list(CASES))
def test_each_bucket_filter_selects_the_rows_the_bucket_counts(
    client: httpx.Client, tenant: Tenant, db: Session, report_type: str
) -> None:
    case = CASES[report_type]
    buckets = _seeded(db, tenant, report_type)
    params = {**WINDOW, **case.extra}
    unfiltered = ok_summary(client, tenant, case.path, **params)
    counts = [b["count"] for b in unfiltered[case.distribution]]
    assert counts == [len(_expected(buckets, i)) for i in range(len(case.keys))]
    assert all(counts), "every bucket holds rows: the test covers each one"
    for index, key in enumerate(case.keys):
        filtered = ok_summary(client, tenant, case.path, **params, **{case.filter: key})
        assert filtered[case.total] == counts[index], key
        assert [b["count"] for b in filtered[case.distribution]] == [
            counts[index] if i == index else 0 for i in range(len(case.keys))
        ], key


@pytest.mark.parametrize("report_type", list(CASES))
def test_the_export_of_a_bucket_holds_exactly_its_rows(
    client: httpx.Client, tenant: Tenant, db: Session, report_type: str
) -> None:
    case = CASES[report_type]
    buckets = _seeded(db, tenant, report_type)
    distribution = ok_summary(client, tenant, case.path, **WINDOW, **case.extra)[case.distribution]
    # One job after the other: an organization may have only 5 queued or running, and
    # a report may have more buckets than that.
    for index, key in enumerate(case.keys):
        job_id = create_job(
            client,
            tenant,
            report_type=report_type,
            fmt="json",
            filters={**WINDOW, **case.extra, case.filter: key},
        )
        job = wait_for_job(client, tenant, job_id)["job"]
        assert job["status"] == "completed", job
        assert job["filters"][case.filter] == key
        response = download(client, tenant, job_id)
        assert response.status_code == 200
        exported = {row[ID_COLUMNS[report_type]] for row in json_rows(response.content)}
        assert exported == _expected(buckets, index), key
        assert job["totalRows"] == len(exported) == distribution[index]["count"], key


def test_an_amount_bucket_without_a_currency_selects_every_currency(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    _seeded(db, tenant, "payments_received")
    usd = ok_summary(client, tenant, "payments-received", **WINDOW, amountBucket="1001-5000")
    assert usd["totalPayments"] == 3  # 1001.00, 5000.99 and the EUR 1,500.00
    assert usd["totalsByCurrency"]["EUR"]["count"] == 1
    assert usd["amountDistribution"][1]["count"] == 2  # the distribution: USD only


def test_the_amount_bucket_is_the_expression_the_summary_groups_by() -> None:
    assert amount_bucket_sql("p.amount", PAYMENT_BUCKETS) in _totals_sql(Conditions())


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [
        ("quote-cycle-time", "cycleTimeBucket", "0-7"),
        ("invoice-settlement-time", "settlementTimeBucket", "0-1"),
        ("payments-received", "amountBucket", "$0-$1,000"),
        ("time-approvals", "approvalTimeBucket", ""),
        ("payments-received", "settlementTimeBucket", "0-7"),  # another report's filter
    ],
)
def test_an_unknown_bucket_is_a_422_problem(
    client: httpx.Client, tenant: Tenant, path: str, name: str, value: str
) -> None:
    response, body = summary(client, tenant, path, **{name: value})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert f"query.{name}" in {error["field"] for error in body["errors"]}
    assert "Traceback" not in response.text


def test_an_export_with_an_unknown_bucket_is_a_422_problem(
    client: httpx.Client, tenant: Tenant
) -> None:
    response = request_export(
        client, tenant, report_type="payments_received", filters={"amountBucket": "1-2"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    fields: Any = {error["field"] for error in response.json()["errors"]}
    assert any("amountBucket" in field for field in fields), fields
