"""payments_received: completed payments received in the window.

Rows: payments with ``status = 'completed'`` and ``paid_at`` in ``[fromDate, toDate)``.
Counts cover every currency; ``totalAmount``, ``averageAmount`` and the amount
distribution cover one currency (the ``currency`` filter, else the organization's base
currency); ``totalsByCurrency`` has every currency. Months are calendar months in the
organization's time zone. Served by ``ix_payments_organization_id_paid_at`` (0004) and,
when only the window is filtered (or the method or currency), by the rollups
(reports/rollups/) with these facets:

- ``totals``: per ``paid_month`` (its first day, local), ``currency``, ``method`` and
  amount ``bucket``: ``n``, ``amount``.
- ``customers``: per ``customer`` name: ``n``. For the breakdown of a filtered
  summary, ``customers_by_method`` adds ``method`` and ``currency``, and
  ``customers_by_currency`` adds ``currency`` (each filter given alone reads only the
  groups of its value: customers_facet).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.reports.base import Report, ReportContext, ReportFilters, fetch_all
from pivotal_reporting.reports.breakdown_limit import REST_DESCRIPTION, OtherCustomers
from pivotal_reporting.reports.bucket_filters import BucketKey, add_amount_bucket, amount_bucket_sql
from pivotal_reporting.reports.rollups import (
    Facet,
    Rollup,
    customer_counts_sql,
    customers_facet,
    facet_rows,
    filters_match,
    plan,
    range_rows,
)
from pivotal_reporting.reports.schemas import (
    CamelModel,
    CurrencyCode,
    CurrencyTotal,
    DistributionBucket,
    Money,
    SummaryResponse,
    distribution,
    money,
)
from pivotal_reporting.reports.source import ExportRows, NameLookup, Source, Window
from pivotal_reporting.reports.sql import (
    Conditions,
    iso_utc,
    local_month,
    money_buckets,
)
from pivotal_reporting.validation import Id

AMOUNT_RANGES = ((0, 1000), (1001, 5000), (5001, 10000), (10001, 25000), (25001, 50000))
BUCKETS = money_buckets(*AMOUNT_RANGES)  # bounds for SQL; labels per currency in summaries
PaymentMethod = Literal["bank_transfer", "credit_card", "check", "cash", "other"]
_BUCKET_MEANING = (
    "payments whose amount is in it (whole units of their own currency, as "
    "`amountDistribution` buckets them). With `currency` set to the summary's "
    "`amountCurrency`: exactly the payments the bucket counts."
)


class PaymentsReceivedFilters(ReportFilters):
    customer_id: Id | None = Field(default=None, description="Only this customer's payments.")
    method: PaymentMethod | None = Field(default=None, description="Only this payment method.")
    currency: CurrencyCode | None = Field(
        default=None, description="Only this currency (and headline amounts in it)."
    )
    amount_bucket: Annotated[str, BucketKey(BUCKETS, _BUCKET_MEANING)] | None = None


class PaymentsReceivedSummary(CamelModel):
    """Completed payments with ``paid_at`` in the window."""

    total_payments: int = Field(
        description="All currencies (as are the breakdowns by method, month and customer)."
    )
    total_amount: Money = Field(description="Sum in `amountCurrency` only.")
    average_amount: Money | None = Field(
        description="Mean in `amountCurrency` only; null when none."
    )
    currency: str = Field(description="Same as `amountCurrency` (kept for compatibility).")
    amount_currency: str = Field(
        description="The one currency totalAmount, averageAmount and amountDistribution "
        "cover: the `currency` filter, else the organization's base currency."
    )
    payments_in_amount_currency: int = Field(
        description="How many of totalPayments the amounts cover (those in `amountCurrency`)."
    )
    payments_by_method: dict[str, int]
    payments_by_month: dict[str, int] = Field(description="YYYY-MM in the org's time zone.")
    payments_by_customer: dict[str, int] = Field(description="By customer name.")
    other_customers: OtherCustomers | None = Field(default=None, description=REST_DESCRIPTION)
    amount_distribution: list[DistributionBucket] = Field(
        description="Payments in `amountCurrency` only; labels name that currency."
    )
    totals_by_currency: dict[str, CurrencyTotal]


class PaymentsReceivedResponse(SummaryResponse[PaymentsReceivedFilters, PaymentsReceivedSummary]):
    """``GET /v1/reports/summary/payments-received``."""


SOURCE = Source("payments", "p", only="p.status = 'completed'")
_BUCKET = amount_bucket_sql("p.amount", BUCKETS)  # the amountBucket filter's expression too


def _totals_sql(where: Conditions) -> str:
    """One hash aggregate on (local month, currency, method, amount bucket): a few
    hundred groups from which every count and sum is added up in Python. A payment's
    month is the month of its local date (sql.local_month), as in the export and the
    rollups."""
    return f"""
SELECT {local_month("p.paid_at")} AS month, p.currency, p.method, {_BUCKET} AS bucket,
       count(*) AS n, sum(p.amount) AS amount
{SOURCE.rows(where)}
GROUP BY 1, 2, 3, 4
"""


def _by_customer_sql(where: Conditions) -> str:
    return f"""
SELECT c.name AS key, sum(g.n)::bigint AS n
FROM (SELECT p.customer_id, count(*) AS n {SOURCE.rows(where)} GROUP BY p.customer_id) AS g
JOIN customers c ON c.organization_id = %(org)s AND c.id = g.customer_id
GROUP BY c.name ORDER BY 1
"""  # noqa: S608 -- constants and bound parameters


def _completed(ranges: str) -> str:
    """The completed payments in each range of ``paid_at``."""
    return range_rows(
        ranges,
        "payments p",
        "p.organization_id = %(org)s AND p.paid_at >= r.lo AND p.paid_at < r.hi"
        " AND p.status = 'completed'",
    )


ROLLUP = Rollup(
    report_type="payments_received",
    source="payments",
    source_day="(paid_at AT TIME ZONE 'UTC')::date",
    instant=True,
    facets=(
        Facet(
            "totals",
            lambda ranges: (
                f"""
    SELECT r.period,
           -- the first day of the payment's local month (sql.local_month)
           date_trunc('month', p.paid_at AT TIME ZONE %(tz)s)::date AS paid_month,
           p.currency AS currency, p.method AS method, {_BUCKET} AS bucket,
           count(*) AS n, sum(p.amount) AS amount
    {_completed(ranges)}
    GROUP BY 1, 2, 3, 4, 5"""
            ),
            stored={
                "paid_month": "day1",
                "currency": "key1",
                "method": "key2",
                "bucket": "bin",
                "n": "n",
                "amount": "amount",
            },
            daily=True,
        ),
        customers_facet(_completed, "p.customer_id"),
        customers_facet(
            _completed,
            "p.customer_id",
            facet="customers_by_method",
            keys={"method": "p.method", "currency": "p.currency"},
        ),
        customers_facet(
            _completed,
            "p.customer_id",
            facet="customers_by_currency",
            keys={"currency": "p.currency"},
        ),
    ),
)

# The rows of _totals_sql, from the rollup's fresh periods and the rest of the rows.
_ROLLUP_TOTALS_SQL = f"""
SELECT to_char(paid_month, 'YYYY-MM') AS month, currency, method, bucket,
       sum(n)::bigint AS n, sum(amount) AS amount
FROM ({facet_rows(ROLLUP, "totals", filters_match("method", "currency"))}) AS g
GROUP BY paid_month, currency, method, bucket
"""  # noqa: S608 -- a facet's reviewed SQL
_ROLLUP_BY_CUSTOMER_SQL = {
    facet: customer_counts_sql(ROLLUP, facet)
    for facet in ("customers", "customers_by_method", "customers_by_currency")
}


def _customer_facet(filters: PaymentsReceivedFilters) -> str:
    """The customer facet whose first key is a filter given (customers_facet)."""
    if filters.method is not None:
        return "customers_by_method"
    return "customers" if filters.currency is None else "customers_by_currency"


class PaymentsReceivedReport(Report[PaymentsReceivedFilters]):
    report_type = "payments_received"
    path = "payments-received"
    title = "Payments received: completed payments by method, month and customer"
    filters_model = PaymentsReceivedFilters
    summary_model = PaymentsReceivedSummary
    response_model = PaymentsReceivedResponse
    references = {"customer_id": "customers"}
    source = SOURCE
    window = Window("p.paid_at")
    equals = {"customer_id": "p.customer_id", "method": "p.method", "currency": "p.currency"}
    export = ExportRows(
        columns=(
            ("payment_id", "p.id"),
            ("reference", "p.reference"),
            ("invoice_id", "p.invoice_id"),
            ("invoice_number", "i.invoice_number"),
            ("customer_id", "p.customer_id"),
            ("customer_name", "c.name"),
            ("method", "p.method"),
            ("status", "p.status"),
            ("currency", "p.currency"),
            ("amount", "p.amount"),
            ("paid_at", iso_utc("p.paid_at")),
            ("paid_month", local_month("p.paid_at")),
        ),
        joins="""
LEFT JOIN invoices i ON i.organization_id = p.organization_id AND i.id = p.invoice_id""",
        lookups=(NameLookup("customer_id", "customer_name", "customers", "c", "name"),),
        order_by="p.paid_at, p.id",
        # CHECK-constrained vocabularies and server-formatted instants: never user text.
        closed_text=frozenset({"method", "status", "currency", "paid_at", "paid_month"}),
    )

    def params(self, ctx: ReportContext, filters: PaymentsReceivedFilters) -> dict[str, Any]:
        return {
            "org": ctx.organization_id,
            "tz": ctx.timezone,
            "report_currency": filters.currency or ctx.base_currency,
        }

    def narrow(
        self, where: Conditions, ctx: ReportContext, filters: PaymentsReceivedFilters
    ) -> None:
        add_amount_bucket(
            where, filters.amount_bucket, name="amount_bucket", amount="p.amount", buckets=BUCKETS
        )

    def reads_rollup(self, filters: PaymentsReceivedFilters) -> bool:
        return filters.customer_id is None and filters.amount_bucket is None

    def depends_on_now(self, filters: PaymentsReceivedFilters) -> bool:
        return False  # completed payments only: no "now" in any figure

    async def summarize_from_rows(
        self, session: AsyncSession, ctx: ReportContext, filters: PaymentsReceivedFilters
    ) -> PaymentsReceivedSummary:
        where = self.conditions(ctx, filters)
        groups = await fetch_all(session, _totals_sql(where), where.params)
        customers = await fetch_all(session, _by_customer_sql(where), where.params)
        counts = {row["key"]: row["n"] for row in customers}
        return _summary(groups, counts, filters.currency or ctx.base_currency)

    async def summarize_from_rollup(
        self, session: AsyncSession, ctx: ReportContext, filters: PaymentsReceivedFilters
    ) -> PaymentsReceivedSummary:
        window = await plan(session, ROLLUP, ctx, filters.from_date, filters.to_date)
        params = {
            **self.params(ctx, filters),
            **window.params,
            "method": filters.method,
            "currency": filters.currency,
        }
        groups = await fetch_all(session, _ROLLUP_TOTALS_SQL, params)
        by_customer = _ROLLUP_BY_CUSTOMER_SQL[_customer_facet(filters)]
        counts = (await fetch_all(session, by_customer, params))[0]["counts"]
        return _summary(groups, counts, filters.currency or ctx.base_currency)


def _summary(
    groups: list[dict[str, Any]], by_customer: dict[str, int], report_currency: str
) -> PaymentsReceivedSummary:
    """The summary from the (month, currency, method, bucket) groups and the counts per
    customer name (either path)."""
    in_currency = [g for g in groups if g["currency"].strip() == report_currency]
    amount = money(sum((g["amount"] for g in in_currency), Decimal(0)))
    count = sum(g["n"] for g in in_currency)
    return PaymentsReceivedSummary(
        total_payments=sum(g["n"] for g in groups),
        total_amount=amount,
        average_amount=money(amount / count) if count else None,
        currency=report_currency,
        amount_currency=report_currency,
        payments_in_amount_currency=count,
        payments_by_method=_count_by(groups, "method"),
        payments_by_month=dict(sorted(_count_by(groups, "month").items())),
        payments_by_customer=by_customer,
        amount_distribution=distribution(
            money_buckets(*AMOUNT_RANGES, currency=report_currency),
            [sum(g["n"] for g in in_currency if g["bucket"] == i) for i in range(len(BUCKETS))],
        ),
        totals_by_currency=_currency_totals(groups),
    )


def _count_by(groups: list[dict[str, Any]], key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for group in groups:
        counts[group[key]] = counts.get(group[key], 0) + group["n"]
    return counts


def _currency_totals(groups: list[dict[str, Any]]) -> dict[str, CurrencyTotal]:
    totals: dict[str, CurrencyTotal] = {}
    for group in groups:
        code = group["currency"].strip()
        seen = totals.get(code, CurrencyTotal(count=0, amount=Decimal("0.00")))
        totals[code] = CurrencyTotal(
            count=seen.count + group["n"], amount=seen.amount + group["amount"]
        )
    return totals
