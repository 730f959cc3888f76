"""payments_received: completed payments received in the window.

Rows: payments with ``status = 'completed'`` and ``paid_at`` in ``[fromDate, toDate)``.
Counts cover every currency; ``totalAmount``, ``averageAmount`` and the amount
distribution cover one currency (the ``currency`` filter, else the organization's base
currency); ``totalsByCurrency`` has every currency. Months are calendar months in the
organization's time zone. Served by ``ix_payments_organization_id_paid_at`` (0004).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.reports.base import (
    ExportQuery,
    Report,
    ReportContext,
    ReportFilters,
    fetch_all,
    fetch_one,
)
from pivotal_reporting.reports.schemas import (
    CamelModel,
    CurrencyCode,
    CurrencyTotal,
    DistributionBucket,
    Money,
    SummaryResponse,
    bucket_values,
    currency_totals,
    distribution,
    money,
)
from pivotal_reporting.reports.sql import (
    Conditions,
    bucket_counts,
    formula_safe,
    iso_utc,
    money_buckets,
)

BUCKETS = money_buckets((0, 1000), (1001, 5000), (5001, 10000), (10001, 25000), (25001, 50000))
PaymentMethod = Literal["bank_transfer", "credit_card", "check", "cash", "other"]


class PaymentsReceivedFilters(ReportFilters):
    customer_id: str | None = Field(default=None, description="Only this customer's payments.")
    method: PaymentMethod | None = Field(default=None, description="Only this payment method.")
    currency: CurrencyCode | None = Field(
        default=None, description="Only this currency (and headline amounts in it)."
    )


class PaymentsReceivedSummary(CamelModel):
    """Completed payments with ``paid_at`` in the window."""

    total_payments: int = Field(description="All currencies.")
    total_amount: Money = Field(description="Sum in `currency`.")
    average_amount: Money | None = Field(description="Mean in `currency`; null when none.")
    currency: str = Field(description="Currency of the headline amounts and distribution.")
    payments_by_method: dict[str, int]
    payments_by_month: dict[str, int] = Field(description="YYYY-MM in the org's time zone.")
    payments_by_customer: dict[str, int] = Field(description="By customer name.")
    amount_distribution: list[DistributionBucket] = Field(description="Payments in `currency`.")
    totals_by_currency: dict[str, CurrencyTotal]


class PaymentsReceivedResponse(SummaryResponse[PaymentsReceivedFilters, PaymentsReceivedSummary]):
    """``GET /v1/reports/summary/payments-received``."""


def _conditions(ctx: ReportContext, filters: PaymentsReceivedFilters) -> Conditions:
    where = Conditions(params={"org": ctx.organization_id, "tz": ctx.timezone})
    where.when(filters.from_date, "p.paid_at >= %(from_date)s", "from_date")
    where.when(filters.to_date, "p.paid_at < %(to_date)s", "to_date")
    where.when(filters.customer_id, "p.customer_id = %(customer_id)s", "customer_id")
    where.when(filters.method, "p.method = %(method)s", "method")
    where.when(filters.currency, "p.currency = %(currency)s", "currency")
    return where


_ROWS = "FROM payments p WHERE p.organization_id = %(org)s AND p.status = 'completed'"

_STATS_SQL = f"""
SELECT count(*) AS total,
       sum(p.amount) FILTER (WHERE p.currency = %(report_currency)s) AS amount,
       round(avg(p.amount) FILTER (WHERE p.currency = %(report_currency)s), 2) AS average,
       {bucket_counts("p.amount", BUCKETS, only="p.currency = %(report_currency)s")}
{_ROWS} {{conditions}}
"""

# One scan, one hash table per breakdown; names are joined on the few groups only.
_GROUPS_SQL = f"""
WITH g AS (
    SELECT p.method, p.customer_id, p.currency,
           date_trunc('month', p.paid_at AT TIME ZONE %(tz)s) AS month,
           count(*) AS n, sum(p.amount) AS amount
    {_ROWS} {{conditions}}
    GROUP BY GROUPING SETS ((p.method), (p.customer_id), (p.currency), (month))
)
SELECT 'method' AS kind, method AS key, n, NULL::numeric AS amount FROM g WHERE method IS NOT NULL
UNION ALL
SELECT 'month', to_char(month, 'YYYY-MM'), n, NULL FROM g WHERE month IS NOT NULL
UNION ALL
SELECT 'currency', currency, n, amount FROM g WHERE currency IS NOT NULL
UNION ALL
SELECT 'customer', c.name, sum(g.n)::bigint, NULL FROM g
JOIN customers c ON c.organization_id = %(org)s AND c.id = g.customer_id
GROUP BY c.name
ORDER BY 1, 2
"""

EXPORT_COLUMNS = (
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
)

_EXPORT_SQL = f"""
SELECT {formula_safe("p.id")} AS payment_id, {formula_safe("p.reference")} AS reference,
       {formula_safe("p.invoice_id")} AS invoice_id, {formula_safe("i.invoice_number")} AS invoice_number,
       {formula_safe("p.customer_id")} AS customer_id, {formula_safe("c.name")} AS customer_name,
       p.method, p.status, p.currency, p.amount, {iso_utc("p.paid_at")} AS paid_at,
       to_char(p.paid_at AT TIME ZONE %(tz)s, 'YYYY-MM') AS paid_month
FROM payments p
JOIN customers c ON c.organization_id = p.organization_id AND c.id = p.customer_id
LEFT JOIN invoices i ON i.organization_id = p.organization_id AND i.id = p.invoice_id
WHERE p.organization_id = %(org)s AND p.status = 'completed' {{conditions}}
ORDER BY p.paid_at, p.id
"""


class PaymentsReceivedReport(Report):
    report_type = "payments_received"
    path = "payments-received"
    title = "Payments received: completed payments by method, month and customer"
    filters_model = PaymentsReceivedFilters
    summary_model = PaymentsReceivedSummary
    response_model = PaymentsReceivedResponse
    references = {"customer_id": "customers"}

    async def summarize(
        self, session: AsyncSession, ctx: ReportContext, filters: ReportFilters
    ) -> PaymentsReceivedSummary:
        assert isinstance(filters, PaymentsReceivedFilters)
        where = _conditions(ctx, filters)
        report_currency = filters.currency or ctx.base_currency
        params = where.params | {"report_currency": report_currency}
        stats = await fetch_one(session, _STATS_SQL.format(conditions=where.sql), params)
        groups = await fetch_all(session, _GROUPS_SQL.format(conditions=where.sql), params)
        assert stats is not None  # an aggregate without GROUP BY always returns one row
        by_kind = {
            kind: [row for row in groups if row["kind"] == kind]
            for kind in ("method", "month", "customer", "currency")
        }
        return PaymentsReceivedSummary(
            total_payments=stats["total"],
            total_amount=money(stats["amount"]),
            average_amount=stats["average"],
            currency=report_currency,
            payments_by_method={row["key"]: row["n"] for row in by_kind["method"]},
            payments_by_month={row["key"]: row["n"] for row in by_kind["month"]},
            payments_by_customer={row["key"]: row["n"] for row in by_kind["customer"]},
            amount_distribution=distribution(BUCKETS, bucket_values(stats, BUCKETS)),
            totals_by_currency=currency_totals(by_kind["currency"]),
        )

    def export_query(self, ctx: ReportContext, filters: ReportFilters) -> ExportQuery:
        assert isinstance(filters, PaymentsReceivedFilters)
        where = _conditions(ctx, filters)
        return ExportQuery(
            sql=_EXPORT_SQL.format(conditions=where.sql),
            params=where.params,
            columns=EXPORT_COLUMNS,
        )
