"""payments_received: completed payments received in the window.

Rows: payments with ``status = 'completed'`` and ``paid_at`` in ``[fromDate, toDate)``.
Counts cover every currency; ``totalAmount``, ``averageAmount`` and the amount
distribution cover one currency (the ``currency`` filter, else the organization's base
currency); ``totalsByCurrency`` has every currency. Months are calendar months in the
organization's time zone. Served by ``ix_payments_organization_id_paid_at`` (0004) and,
when only the window is filtered, by the rollups (rollups.py) with these facets:

- ``totals``: ``day1`` local month paid, ``key1`` currency, ``key2`` method, ``bin``
  amount bucket; ``n``, ``amount``.
- ``customers``: ``key1`` customer name; ``n``. ``customers_filtered`` adds ``key2``
  method and ``key3`` currency, for the breakdown of a filtered summary.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.reports.base import (
    ExportQuery,
    Report,
    ReportContext,
    ReportFilters,
    fetch_all,
)
from pivotal_reporting.reports.breakdown_limit import REST_DESCRIPTION, OtherCustomers
from pivotal_reporting.reports.bucket_filters import BucketKey, add_amount_bucket
from pivotal_reporting.reports.rollups import Facet, Rollup, count_by_customer_name
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


def _conditions(ctx: ReportContext, filters: PaymentsReceivedFilters) -> Conditions:
    where = Conditions(params={"org": ctx.organization_id, "tz": ctx.timezone})
    where.when(filters.from_date, "p.paid_at >= %(from_date)s", "from_date")
    where.when(filters.to_date, "p.paid_at < %(to_date)s", "to_date")
    where.when(filters.customer_id, "p.customer_id = %(customer_id)s", "customer_id")
    where.when(filters.method, "p.method = %(method)s", "method")
    where.when(filters.currency, "p.currency = %(currency)s", "currency")
    add_amount_bucket(
        where, filters.amount_bucket, name="amount_bucket", amount="p.amount", buckets=BUCKETS
    )
    return where


_ROWS = "FROM payments p WHERE p.organization_id = %(org)s AND p.status = 'completed'"

# One hash aggregate on (local month, currency, method, amount bucket): a few hundred
# groups from which every count and sum is added up in Python. A payment's month is the
# month of its local date (sql.local_month), as in the export and the rollups.
_TOTALS_SQL = f"""
SELECT {local_month("p.paid_at")} AS month, p.currency, p.method,
       width_bucket(p.amount, ARRAY[{", ".join(str(b.upper) for b in BUCKETS[:-1])}]::numeric[])
           AS bucket,
       count(*) AS n, sum(p.amount) AS amount
{_ROWS} {{conditions}}
GROUP BY 1, 2, 3, 4
"""

_BY_CUSTOMER_SQL = f"""
SELECT c.name AS key, sum(g.n)::bigint AS n
FROM (SELECT p.customer_id, count(*) AS n {_ROWS} {{conditions}} GROUP BY p.customer_id) AS g
JOIN customers c ON c.organization_id = %(org)s AND c.id = g.customer_id
GROUP BY c.name ORDER BY 1
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

# The first day of a payment's local month (sql.local_month), for ``day1``.
_LOCAL_MONTH = "date_trunc('month', p.paid_at AT TIME ZONE %(tz)s)::date"

_RANGE_ROWS = """FROM {ranges} AS r
JOIN payments p ON p.organization_id = %(org)s AND p.paid_at >= r.lo AND p.paid_at < r.hi
 AND p.status = 'completed'"""

ROLLUP = Rollup(
    report_type="payments_received",
    source="payments",
    source_day="(paid_at AT TIME ZONE 'UTC')::date",
    instant=True,
    facets=(
        Facet(
            "totals",
            ("day1", "key1", "key2", "bin", "n", "amount"),
            f"""
    SELECT r.period, {_LOCAL_MONTH} AS day1,
           p.currency AS key1, p.method AS key2,
           width_bucket(p.amount, ARRAY[{", ".join(str(b.upper) for b in BUCKETS[:-1])}]::numeric[])
               AS bin,
           count(*) AS n, sum(p.amount) AS amount
    {_RANGE_ROWS}
    GROUP BY 1, 2, 3, 4, 5""",
            daily=True,
        ),
        count_by_customer_name(_RANGE_ROWS, "p.customer_id"),
        count_by_customer_name(
            _RANGE_ROWS,
            "p.customer_id",
            facet="customers_filtered",
            keys=("p.method", "p.currency"),
        ),
    ),
)

_IS_FILTER = "(%({filter})s::text IS NULL OR {key} = %({filter})s)"
_TOTALS_WANTED = " AND ".join(
    (
        _IS_FILTER.format(key="key2", filter="method"),
        _IS_FILTER.format(key="key1", filter="currency"),
    )
)

# The rows of _TOTALS_SQL and _BY_CUSTOMER_SQL, from the rollup's fresh periods.
_ROLLUP_TOTALS_SQL = f"""
SELECT to_char(day1, 'YYYY-MM') AS month, key1 AS currency, key2 AS method, bin AS bucket,
       sum(n)::bigint AS n, sum(amount) AS amount
FROM ({ROLLUP.rows("totals", _TOTALS_WANTED)}) AS g
GROUP BY day1, key1, key2, bin
"""

_BY_CUSTOMER = """
SELECT key1 AS key, sum(n)::bigint AS n FROM ({rows}) AS g
GROUP BY key1 ORDER BY key1
"""
# Per filter (at most one of method and currency): the customers facet that has its key.
_CUSTOMERS_WANTED = " AND ".join(
    (
        _IS_FILTER.format(key="key2", filter="method"),
        _IS_FILTER.format(key="key3", filter="currency"),
    )
)
# Unfiltered: the compact customers facet; with method and/or currency: the one keyed by both.
_ROLLUP_BY_CUSTOMER_SQL = {
    False: _BY_CUSTOMER.format(rows=ROLLUP.rows("customers")),
    True: _BY_CUSTOMER.format(rows=ROLLUP.rows("customers_filtered", _CUSTOMERS_WANTED)),
}

# CHECK-constrained vocabularies and server-formatted instants: never user text.
CLOSED_TEXT_COLUMNS = frozenset({"method", "status", "currency", "paid_at", "paid_month"})

_EXPORT_SQL = f"""
SELECT p.id AS payment_id, p.reference AS reference,
       p.invoice_id AS invoice_id, i.invoice_number AS invoice_number,
       p.customer_id AS customer_id, c.name AS customer_name,
       p.method, p.status, p.currency, p.amount, {iso_utc("p.paid_at")} AS paid_at,
       {local_month("p.paid_at")} AS paid_month
FROM payments p
JOIN customers c ON c.organization_id = p.organization_id AND c.id = p.customer_id
LEFT JOIN invoices i ON i.organization_id = p.organization_id AND i.id = p.invoice_id
WHERE p.organization_id = %(org)s AND p.status = 'completed' {{conditions}}
ORDER BY p.paid_at, p.id
"""
_EXPORT_COUNT_SQL = "SELECT count(*) FROM payments p WHERE p.organization_id = %(org)s AND p.status = 'completed' {conditions}"


class PaymentsReceivedReport(Report):
    report_type = "payments_received"
    path = "payments-received"
    title = "Payments received: completed payments by method, month and customer"
    filters_model = PaymentsReceivedFilters
    summary_model = PaymentsReceivedSummary
    response_model = PaymentsReceivedResponse
    references = {"customer_id": "customers"}

    def reads_rollup(self, filters: ReportFilters) -> bool:
        assert isinstance(filters, PaymentsReceivedFilters)
        return filters.customer_id is None and filters.amount_bucket is None

    def depends_on_now(self, filters: ReportFilters) -> bool:
        return False  # completed payments only: no "now" in any figure

    async def summarize(
        self, session: AsyncSession, ctx: ReportContext, filters: ReportFilters
    ) -> PaymentsReceivedSummary:
        assert isinstance(filters, PaymentsReceivedFilters)
        where = _conditions(ctx, filters)
        report_currency = filters.currency or ctx.base_currency
        params = {"from_date": None, "to_date": None, **where.params}
        params["report_currency"] = report_currency
        if self.reads_rollup(filters):
            plan = await ROLLUP.plan(session, ctx, filters.from_date, filters.to_date)
            params.update(plan.params)
            params.update(method=filters.method, currency=filters.currency)
            filtered = filters.method is not None or filters.currency is not None
            groups = await fetch_all(session, _ROLLUP_TOTALS_SQL, params)
            customers = await fetch_all(session, _ROLLUP_BY_CUSTOMER_SQL[filtered], params)
        else:
            groups = await fetch_all(session, _TOTALS_SQL.format(conditions=where.sql), params)
            customers = await fetch_all(
                session, _BY_CUSTOMER_SQL.format(conditions=where.sql), params
            )
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
            payments_by_customer={row["key"]: row["n"] for row in customers},
            amount_distribution=distribution(
                money_buckets(*AMOUNT_RANGES, currency=report_currency),
                [sum(g["n"] for g in in_currency if g["bucket"] == i) for i in range(len(BUCKETS))],
            ),
            totals_by_currency=_currency_totals(groups),
        )

    def export_query(self, ctx: ReportContext, filters: ReportFilters) -> ExportQuery:
        assert isinstance(filters, PaymentsReceivedFilters)
        where = _conditions(ctx, filters)
        return ExportQuery(
            sql=_EXPORT_SQL.format(conditions=where.sql),
            params=where.params,
            columns=EXPORT_COLUMNS,
            closed_text_columns=CLOSED_TEXT_COLUMNS,
            count_sql=_EXPORT_COUNT_SQL.format(conditions=where.sql),
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
