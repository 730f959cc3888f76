"""invoice_settlement_time: how long invoices take to be paid, and what is overdue.

Rows: invoices (not draft, not void) whose ``issue_date`` lies in ``[fromDate, toDate)``
(a calendar date counts from the first instant of its local day in the organization's
time zone, ``sql.local_day_start``: the earlier of two midnights, or the end of a gap).
Settlement time is ``paid_at - issue_date`` for paid invoices and ``asOf - issue_date``
(days outstanding) for open ones (issued, part_paid), from the instant the issue date
began; written-off invoices have none. A negative one is left out of the settlement-time
figures and counted in ``negativeSettlementTimes`` (the export shows it as it is). An
invoice is **overdue** when ``due_date`` is before ``asOf``'s date, ``balance_due > 0``
and it is not paid, void or written off. Served by
``ix_invoices_organization_id_issue_date`` (0004) and, when only the window (and
``asOf``, the status or the currency) is given, by the rollups (reports/rollups/) with
these facets:

- ``paid``: per ``currency`` and settlement-time ``bin``: ``n``, ``total``, ``low``,
  ``high``, ``invoiced`` (sum of total_amount).
- ``unpaid`` (issued, part_paid, written_off): per ``status``, ``currency``,
  ``issue_date``, ``due_date`` and ``has_balance`` (balance_due > 0): ``n``,
  ``invoiced``, ``balance`` (sum of balance_due). Days outstanding and overdue depend on
  ``asOf``, so they are derived from these groups when asked.
- ``customers``: per ``customer`` name: ``n``. For the breakdown of a filtered
  summary, ``customers_by_status`` adds ``status`` and ``currency``, and
  ``customers_by_currency`` adds ``currency`` (each filter given alone reads only the
  groups of its value: customers_facet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.reports.base import Report, ReportContext, ReportFilters, fetch_all
from pivotal_reporting.reports.beside import fetch_beside
from pivotal_reporting.reports.breakdown_limit import REST_DESCRIPTION, OtherCustomers
from pivotal_reporting.reports.bucket_filters import BucketKey, add_duration_bucket
from pivotal_reporting.reports.histogram import (
    DAY_TENTHS_BIN,
    Histogram,
    bin_sql,
    category_counts,
    histogram_columns,
    split_negative,
)
from pivotal_reporting.reports.outstanding import UnpaidInvoices
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
    Days,
    DistributionBucket,
    Money,
    SummaryResponse,
    currency_totals,
    distribution,
    money,
)
from pivotal_reporting.reports.source import ExportRows, NameLookup, Source, Window
from pivotal_reporting.reports.sql import (
    SECONDS_PER_DAY,
    Conditions,
    day_buckets,
    iso_utc,
    local_date,
    local_midnight_epoch,
    rounded_seconds,
)
from pivotal_reporting.validation import Id, Instant

BUCKETS = day_buckets((0, 7), (8, 14), (15, 30), (31, 60), (61, 90))
# Stored statuses reported, with "overdue" shown instead of issued/part_paid when it is.
DISPLAYED_STATUSES = ("overdue", "issued", "part_paid", "paid", "written_off")
OVERDUE = (
    "(i.due_date < %(as_of_date)s AND i.balance_due > 0 "
    "AND i.status NOT IN ('paid', 'void', 'written_off'))"
)


def _seconds(midnight: str) -> str:
    """Seconds to settle (paid) or outstanding so far (open); NULL when written off.
    Negative (paid, or ``asOf``, before the issue date began) as it is: the summary
    leaves those out of its settlement-time figures and counts them.

    ``midnight`` is the epoch of the instant the issue date's local day begins.
    """
    return f"""CASE
    WHEN i.status = 'paid' THEN date_part('epoch', i.paid_at) - {midnight}
    WHEN i.status IN ('issued', 'part_paid') THEN %(as_of_epoch)s - {midnight}
    END"""


_BUCKET_MEANING = (
    "the paid and open invoices `settlementTimeDistribution` counts in it (whole days "
    "to payment, or outstanding as of `asOf`: pass the summary's `asOf` to select the "
    "same open invoices later; negative ones are in none)."
)

# Day starts of the window's days, converted once per day rather than once per row
# (a time-zone conversion costs more than the rest of a row's work).
_MIDNIGHTS = f"""JOIN (
    SELECT d::date AS day, {local_midnight_epoch("d")} AS epoch
    FROM generate_series(
        coalesce(%(from_day)s::date,
                 (SELECT min(issue_date) FROM invoices WHERE organization_id = %(org)s))::timestamp,
        coalesce(%(to_day)s::date,
                 (SELECT max(issue_date) FROM invoices WHERE organization_id = %(org)s))::timestamp,
        interval '1 day') AS d
    OFFSET 0  -- a fence: convert each day once, not once per joined row
) AS m ON m.day = i.issue_date"""  # noqa: S608 -- reviewed: constants only, values are bound


class InvoiceSettlementTimeFilters(ReportFilters):
    customer_id: Id | None = Field(default=None, description="Only this customer's invoices.")
    status: Literal["issued", "part_paid", "paid", "written_off"] | None = Field(
        default=None, description="Only invoices with this stored status."
    )
    overdue_only: bool | None = Field(default=None, description="Only overdue invoices.")
    as_of: Instant | None = Field(
        default=None, description="Instant for days outstanding and overdue; default now."
    )
    currency: CurrencyCode | None = Field(
        default=None, description="Only this currency (and headline amounts in it)."
    )
    settlement_time_bucket: Annotated[str, BucketKey(BUCKETS, _BUCKET_MEANING)] | None = None


class InvoiceSettlementTimeSummary(CamelModel):
    """Invoices issued in the window (draft and void excluded)."""

    total_invoices: int
    average_settlement_time_days: Days | None = Field(description="Paid and open; days.")
    median_settlement_time_days: Days | None = Field(description="percentile_cont(0.5), days.")
    min_settlement_time_days: Days | None
    max_settlement_time_days: Days | None
    negative_settlement_times: int = Field(
        description="Invoices paid before their issue date began, or open ones issued "
        "after `asOf`: left out of every settlement-time figure (never counted as zero)."
    )
    overdue_invoices: int = Field(description="All currencies.")
    overdue_amount: Money = Field(
        description="Sum of balance_due of the overdue ones in `amountCurrency` only."
    )
    currency: str = Field(description="Same as `amountCurrency` (kept for compatibility).")
    amount_currency: str = Field(
        description="The one currency overdueAmount covers: the `currency` filter, else "
        "the organization's base currency. Counts cover every currency."
    )
    overdue_invoices_in_amount_currency: int = Field(
        description="How many of overdueInvoices overdueAmount covers (those in `amountCurrency`)."
    )
    as_of: datetime = Field(description="The instant days outstanding and overdue refer to.")
    invoices_by_status: dict[str, int] = Field(
        description='Stored status, except "overdue" for overdue ones; adds up to the total.'
    )
    invoices_by_customer: dict[str, int] = Field(description="By customer name.")
    other_customers: OtherCustomers | None = Field(default=None, description=REST_DESCRIPTION)
    settlement_time_distribution: list[DistributionBucket] = Field(
        description="Paid and open invoices (written-off ones have no settlement time)."
    )
    totals_by_currency: dict[str, CurrencyTotal] = Field(description="Invoiced total_amount.")
    overdue_by_currency: dict[str, CurrencyTotal] = Field(description="Overdue balance_due.")


class InvoiceSettlementTimeResponse(
    SummaryResponse[InvoiceSettlementTimeFilters, InvoiceSettlementTimeSummary]
):
    """``GET /v1/reports/summary/invoice-settlement-time``."""


def _as_of(ctx: ReportContext, filters: InvoiceSettlementTimeFilters) -> datetime:
    return filters.as_of or ctx.now


SOURCE = Source("invoices", "i", only="i.status NOT IN ('draft', 'void')")


def _paid_bins_sql(where: Conditions) -> str:
    """The paid invoices' settlement-time histogram (histogram.py): rows as the unpaid
    ones' from outstanding.py (``bin, n, total, low, high, rows``, the status counts)."""
    return f"""
SELECT {bin_sql("s", DAY_TENTHS_BIN)} AS bin, {histogram_columns("s")},
       count(*) AS rows, 0 AS overdue, NULL::numeric AS overdue_amount, 0 AS issued,
       0 AS part_paid, count(*) AS paid, 0 AS written_off
FROM (SELECT {_seconds("m.epoch")} AS s
      {SOURCE.rows(where, joins=_MIDNIGHTS)} AND i.status = 'paid' OFFSET 0) AS paid
GROUP BY 1
"""  # noqa: S608 -- constants and bound parameters


def _unpaid_sql(where: Conditions) -> str:
    """The unpaid invoices (issued, part paid, written off) as outstanding.py reads
    them (``_unpaid_rows``)."""
    return _unpaid_rows(f"""
    SELECT i.status, i.currency, i.issue_date, i.due_date, i.balance_due > 0 AS has_balance,
           count(*) AS n, sum(i.balance_due) AS balance
    {SOURCE.rows(where)} AND i.status <> 'paid'
    GROUP BY 1, 2, 3, 4, 5""")


def _unpaid_rows(groups: str) -> str:
    """``groups`` of unpaid invoices (``status, currency, issue_date, due_date,
    has_balance, n, balance``) added up as ``UnpaidInvoices.from_groups`` reads them:
    rows of ``kind`` 'day' per status and issue date, with the epoch the date's local day
    began, and rows of ``kind`` 'due' per status, currency and due date of the open ones
    with a balance. Half as many rows as the groups, each converted once."""
    return f"""
SELECT kind, status, currency, due_date,
       CASE kind WHEN 'day' THEN {local_midnight_epoch("issue_date")} END AS midnight,
       n, balance
FROM (SELECT CASE WHEN GROUPING(issue_date) = 0 THEN 'day' ELSE 'due' END AS kind,
             status, currency, issue_date, due_date, has_balance,
             sum(n)::bigint AS n, sum(balance) AS balance
      FROM ({groups}) AS g
      GROUP BY GROUPING SETS ((status, issue_date), (status, currency, due_date, has_balance))
     ) AS added
WHERE kind = 'day' OR (has_balance AND status IN ('issued', 'part_paid'))
"""  # noqa: S608 -- constants and bound parameters


def _groups_sql(where: Conditions) -> str:
    """Invoiced amounts per currency (rows of ``kind`` 'currency'), and one row of
    ``kind`` 'customers' whose ``counts`` are the counts per customer name, as one JSON
    object in name order (as rollups.customer_counts_sql gives them)."""
    return f"""
WITH g AS (
    SELECT i.customer_id, i.currency, count(*) AS n, sum(i.total_amount) AS amount
    {SOURCE.rows(where)}
    GROUP BY GROUPING SETS ((i.customer_id), (i.currency))
)
SELECT 'currency' AS kind, currency AS key, n, amount, NULL::json AS counts FROM g
WHERE currency IS NOT NULL
UNION ALL
SELECT 'customers', NULL, NULL, NULL, coalesce(json_object_agg(name, n ORDER BY name), '{{}}')
FROM (SELECT c.name, sum(g.n)::bigint AS n FROM g
      JOIN customers c ON c.organization_id = %(org)s AND c.id = g.customer_id
      GROUP BY c.name) AS named
ORDER BY 1, 2
"""  # noqa: S608 -- constants and bound parameters


def _day_starts(issue_dates: str) -> str:
    """The day starts (epochs) of ``issue_dates`` (a FROM item yielding ``d.day``), once
    per date rather than once per row (the local-day rule costs a few time-zone
    conversions)."""
    return f"""
    SELECT d.day, {local_midnight_epoch("d.day")} AS epoch
    FROM {issue_dates}"""  # noqa: S608 -- reviewed: constants only, values are bound


def _issued(ranges: str) -> str:
    """The invoices (not draft, not void) in each range of ``issue_date``."""
    return range_rows(
        ranges,
        "invoices i",
        "i.organization_id = %(org)s AND i.issue_date >= r.lo AND i.issue_date < r.hi"
        " AND i.status NOT IN ('draft', 'void')",
    )


def _paid_facet(ranges: str) -> str:
    starts = _day_starts(
        f"""{ranges} AS rr, LATERAL (SELECT DISTINCT issue_date AS day FROM invoices
          WHERE organization_id = %(org)s AND issue_date >= rr.lo AND issue_date < rr.hi) AS d"""  # noqa: S608 -- reviewed: constants only, values are bound
    )
    return f"""
    WITH starts AS MATERIALIZED ({starts})
    SELECT period, currency, {bin_sql("s", DAY_TENTHS_BIN)} AS bin,
           {histogram_columns("s")}, sum(total_amount) AS invoiced
    FROM (SELECT r.period, i.currency, i.total_amount, date_part('epoch', i.paid_at) - m.epoch AS s
          {_issued(ranges)} AND i.status = 'paid'
          JOIN starts m ON m.day = i.issue_date) AS paid
    GROUP BY 1, 2, 3"""  # noqa: S608 -- reviewed: constants only, values are bound


def _unpaid_facet(ranges: str) -> str:
    return f"""
    SELECT r.period, i.status AS status, i.currency AS currency, i.issue_date AS issue_date,
           i.due_date AS due_date, i.balance_due > 0 AS has_balance,
           count(*) AS n, sum(i.total_amount) AS invoiced, sum(i.balance_due) AS balance
    {_issued(ranges)} AND i.status <> 'paid'
    GROUP BY 1, 2, 3, 4, 5, 6"""


ROLLUP = Rollup(
    report_type="invoice_settlement_time",
    source="invoices",
    source_day="issue_date",
    instant=False,
    facets=(
        Facet(
            "paid",
            _paid_facet,
            stored={
                "currency": "key1",
                "bin": "bin",
                "n": "n",
                "total": "total",
                "low": "low",
                "high": "high",
                "invoiced": "amount",
            },
        ),
        Facet(
            "unpaid",
            _unpaid_facet,
            stored={
                "status": "key1",
                "currency": "key2",
                "issue_date": "day1",
                "due_date": "day2",
                "has_balance": "flag",
                "n": "n",
                "invoiced": "amount",
                "balance": "amount2",
            },
            daily=True,
        ),
        customers_facet(_issued, "i.customer_id"),
        customers_facet(
            _issued,
            "i.customer_id",
            facet="customers_by_status",
            keys={"status": "i.status", "currency": "i.currency"},
        ),
        customers_facet(
            _issued,
            "i.customer_id",
            facet="customers_by_currency",
            keys={"currency": "i.currency"},
        ),
    ),
)

_UNPAID_GROUPS = facet_rows(ROLLUP, "unpaid", filters_match("status", "currency"))
_PAID_GROUPS = facet_rows(ROLLUP, "paid", filters_match("currency", status="'paid'"))

# The clock-free part of a summary from the rollups (the summary cache keeps it): rows
# of two kinds, "bins", the paid invoices' rows of _bins_sql (stored bins: a payment's
# settlement time never changes), and "currency", the invoiced totals of _groups_sql.
_SETTLED_SQL = f"""
WITH unpaid_groups AS MATERIALIZED ({_UNPAID_GROUPS}
), paid_groups AS MATERIALIZED ({_PAID_GROUPS}
)
SELECT 'bins' AS kind, NULL::text AS key, bin, sum(n)::bigint AS n, sum(total) AS total,
       min(low) AS low, max(high) AS high, sum(n)::bigint AS rows, 0::bigint AS overdue,
       NULL::numeric AS overdue_amount, 0::bigint AS issued, 0::bigint AS part_paid,
       sum(n)::bigint AS paid, 0::bigint AS written_off, NULL::numeric AS amount
FROM paid_groups
GROUP BY bin
UNION ALL
SELECT 'currency', currency, NULL, sum(n)::bigint, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, sum(invoiced)
FROM (SELECT currency, n, invoiced FROM paid_groups
      UNION ALL
      SELECT currency, n, invoiced FROM unpaid_groups) AS invoiced
GROUP BY currency
"""  # noqa: S608 -- a facet's reviewed SQL

# The unpaid groups (issued, part paid, written off) per issue date, with the epoch
# its local day began (one time-zone conversion per group): what days outstanding and
# overdue are derived from at each request (outstanding.py).
_UNPAID_SQL = _unpaid_rows(_UNPAID_GROUPS)
_ROLLUP_BY_CUSTOMER_SQL = {
    facet: customer_counts_sql(ROLLUP, facet)
    for facet in ("customers", "customers_by_status", "customers_by_currency")
}


def _customer_facet(filters: InvoiceSettlementTimeFilters) -> str:
    """The customer facet whose first key is a filter given (customers_facet)."""
    if filters.status is not None:
        return "customers_by_status"
    return "customers" if filters.currency is None else "customers_by_currency"


class InvoiceSettlementTimeReport(Report[InvoiceSettlementTimeFilters]):
    report_type = "invoice_settlement_time"
    path = "invoice-settlement-time"
    title = "Invoice settlement time: days to payment, days outstanding, overdue"
    filters_model = InvoiceSettlementTimeFilters
    summary_model = InvoiceSettlementTimeSummary
    response_model = InvoiceSettlementTimeResponse
    references = {"customer_id": "customers"}
    source = SOURCE
    window = Window("i.issue_date", calendar=True)
    equals = {"customer_id": "i.customer_id", "status": "i.status", "currency": "i.currency"}
    export = ExportRows(
        columns=(
            ("invoice_id", "i.id"),
            ("invoice_number", "i.invoice_number"),
            ("customer_id", "i.customer_id"),
            ("customer_name", "c.name"),
            ("status", "i.status"),
            ("overdue", OVERDUE),
            ("currency", "i.currency"),
            ("total_amount", "i.total_amount"),
            ("amount_paid", "i.amount_paid"),
            ("balance_due", "i.balance_due"),
            ("issue_date", "i.issue_date"),
            ("due_date", "i.due_date"),
            ("paid_at", iso_utc("i.paid_at")),
            (
                "settlement_time_days",
                rounded_seconds(_seconds("m.epoch"), unit=SECONDS_PER_DAY, places=4),
            ),
        ),
        with_="starts AS MATERIALIZED ("  # noqa: S608 -- reviewed: constants only, values are bound
        + _day_starts(
            "(SELECT DISTINCT issue_date AS day FROM invoices WHERE organization_id = %(org)s) AS d"
        )
        + ")",
        joins="""
JOIN starts m ON m.day = i.issue_date""",
        lookups=(NameLookup("customer_id", "customer_name", "customers", "c", "name"),),
        order_by="i.issue_date, i.id",
        # CHECK-constrained vocabularies and server-formatted instants: never user text.
        closed_text=frozenset({"status", "currency", "paid_at"}),
    )

    def params(self, ctx: ReportContext, filters: InvoiceSettlementTimeFilters) -> dict[str, Any]:
        as_of = _as_of(ctx, filters)
        return {
            "org": ctx.organization_id,
            "tz": ctx.timezone,
            "as_of_epoch": as_of.timestamp(),
            "as_of_date": local_date(as_of, ctx.timezone),
            "report_currency": filters.currency or ctx.base_currency,
        }

    def narrow(
        self, where: Conditions, ctx: ReportContext, filters: InvoiceSettlementTimeFilters
    ) -> None:
        if filters.overdue_only:
            # Implied by OVERDUE; spelled out so the open-invoices index (0007) serves it.
            where.add(f"{OVERDUE} AND i.status IN ('issued', 'part_paid')")
        add_duration_bucket(
            where,
            filters.settlement_time_bucket,
            name="settlement_time_bucket",
            # The summary's own expression, with the day start computed per row (the
            # summary joins it per day: the same function of the same date).
            seconds=_seconds(local_midnight_epoch("i.issue_date")),
            width=DAY_TENTHS_BIN,
            buckets=BUCKETS,
            unit=SECONDS_PER_DAY,
            negatives_excluded=True,
        )

    def reads_rollup(self, filters: InvoiceSettlementTimeFilters) -> bool:
        return (
            filters.customer_id is None
            and not filters.overdue_only
            and filters.settlement_time_bucket is None
        )

    def depends_on_now(self, filters: InvoiceSettlementTimeFilters) -> bool:
        # Which invoices are in a settlement-time bucket depends on the instant of asOf;
        # every other clock-free part, on the date at most (cache_scope).
        return filters.as_of is None and filters.settlement_time_bucket is not None

    def cache_scope(self, ctx: ReportContext, filters: InvoiceSettlementTimeFilters) -> str:
        # Overdue-only invoices as of now are those overdue today (local date).
        if filters.overdue_only and filters.as_of is None:
            return local_date(ctx.now, ctx.timezone).isoformat()
        return ""

    async def clock_free_part(
        self, session: AsyncSession, ctx: ReportContext, filters: InvoiceSettlementTimeFilters
    ) -> _Settled:
        if self.reads_rollup(filters):
            return await self._settled(session, ctx, filters)
        return await self._settled_rows(session, ctx, filters)

    def with_clock(
        self,
        ctx: ReportContext,
        filters: InvoiceSettlementTimeFilters,
        part: _Settled,
    ) -> InvoiceSettlementTimeSummary:
        as_of = _as_of(ctx, filters)
        bins, overdue = part.unpaid.rows(
            as_of_epoch=as_of.timestamp(),
            as_of_date=local_date(as_of, ctx.timezone),
            report_currency=filters.currency or ctx.base_currency,
            width=DAY_TENTHS_BIN,
        )
        return _summary(part.with_unpaid(bins), overdue, ctx, filters)

    async def summarize_from_rows(
        self, session: AsyncSession, ctx: ReportContext, filters: InvoiceSettlementTimeFilters
    ) -> InvoiceSettlementTimeSummary:
        part = await self._settled_rows(session, ctx, filters)
        return self.with_clock(ctx, filters, part)

    async def summarize_from_rollup(
        self, session: AsyncSession, ctx: ReportContext, filters: InvoiceSettlementTimeFilters
    ) -> InvoiceSettlementTimeSummary:
        part = await self._settled(session, ctx, filters)
        return self.with_clock(ctx, filters, part)

    async def _settled_rows(
        self, session: AsyncSession, ctx: ReportContext, filters: InvoiceSettlementTimeFilters
    ) -> _Settled:
        where = self.conditions(ctx, filters)
        paid = not filters.overdue_only and filters.status in (None, "paid")
        async with fetch_beside(session, _groups_sql(where), where.params) as groups:
            bins = await fetch_all(session, _paid_bins_sql(where), where.params) if paid else []
            unpaid = await fetch_all(session, _unpaid_sql(where), where.params)
            return _Settled.of(
                bins=bins, groups=await groups(), unpaid=UnpaidInvoices.from_groups(unpaid)
            )

    async def _settled(
        self, session: AsyncSession, ctx: ReportContext, filters: InvoiceSettlementTimeFilters
    ) -> _Settled:
        from_day, to_day = self.window.bounds(filters, ctx.timezone)
        window = await plan(session, ROLLUP, ctx, from_day, to_day)
        params = {
            **self.params(ctx, filters),
            **window.params,
            "status": filters.status,
            "currency": filters.currency,
        }
        by_customer = _ROLLUP_BY_CUSTOMER_SQL[_customer_facet(filters)]
        async with fetch_beside(session, by_customer, params) as customers:
            parts = await fetch_all(session, _SETTLED_SQL, params)
            unpaid = await fetch_all(session, _UNPAID_SQL, params)
            return _Settled.of(
                bins=[row for row in parts if row["kind"] == "bins"],
                groups=[row for row in parts if row["kind"] != "bins"],
                unpaid=UnpaidInvoices.from_groups(unpaid),
                by_customer=(await customers())[0]["counts"],
            )


_COUNTS = ("rows", "overdue", *DISPLAYED_STATUSES)


@dataclass(frozen=True)
class _Settled:
    """The clock-free part of a summary (from the rollups or the rows): the paid
    invoices' settlement times and counts, the invoiced totals per currency, the counts
    per customer, and the unpaid invoices their days outstanding and overdue figures
    come from (outstanding.py)."""

    paid: Histogram
    paid_negative: int
    paid_counts: dict[str, int]
    currency_rows: list[dict[str, Any]]
    by_customer: dict[str, int]
    unpaid: UnpaidInvoices

    @classmethod
    def of(
        cls,
        *,
        bins: list[dict[str, Any]],
        groups: list[dict[str, Any]],
        unpaid: UnpaidInvoices,
        by_customer: dict[str, int] | None = None,
    ) -> _Settled:
        """From the paid invoices' bin rows and the currency group rows, and the counts
        per customer (else the ``counts`` of the group row of kind 'customers')."""
        timed, negative = split_negative(bins)
        if by_customer is None:
            by_customer = next(row["counts"] for row in groups if row["kind"] == "customers")
        return cls(
            paid=Histogram.from_rows(timed, DAY_TENTHS_BIN),
            paid_negative=negative,
            paid_counts=category_counts(bins, _COUNTS),
            currency_rows=[row for row in groups if row["kind"] == "currency"],
            by_customer=by_customer,
            unpaid=unpaid,
        )

    def with_unpaid(self, bins: list[dict[str, Any]]) -> _Figures:
        """The figures with the unpaid invoices' bin rows (``UnpaidInvoices.rows``)."""
        timed, negative = split_negative(bins)
        counts = category_counts(bins, _COUNTS)
        return _Figures(
            settlement=self.paid.merged(Histogram.from_rows(timed, DAY_TENTHS_BIN)),
            negative=self.paid_negative + negative,
            counts={key: self.paid_counts[key] + counts[key] for key in _COUNTS},
            overdue_amount=sum((r["overdue_amount"] or Decimal(0) for r in bins), Decimal(0)),
            currency_rows=self.currency_rows,
            by_customer=self.by_customer,
        )


@dataclass(frozen=True)
class _Figures:
    """Every invoice in the window, as of ``asOf``: what ``_summary`` publishes."""

    settlement: Histogram
    negative: int
    counts: dict[str, int]
    overdue_amount: Decimal
    currency_rows: list[dict[str, Any]]
    by_customer: dict[str, int]


def _summary(
    figures: _Figures,
    overdue_rows: list[dict[str, Any]],
    ctx: ReportContext,
    filters: InvoiceSettlementTimeFilters,
) -> InvoiceSettlementTimeSummary:
    """The summary from the figures and the overdue balances per currency (either path)."""
    report_currency = filters.currency or ctx.base_currency
    settlement = figures.settlement
    totals = figures.counts
    summary = InvoiceSettlementTimeSummary(
        total_invoices=totals["rows"],
        average_settlement_time_days=settlement.average(SECONDS_PER_DAY),
        median_settlement_time_days=settlement.median(SECONDS_PER_DAY),
        min_settlement_time_days=settlement.minimum(SECONDS_PER_DAY),
        max_settlement_time_days=settlement.maximum(SECONDS_PER_DAY),
        negative_settlement_times=figures.negative,
        overdue_invoices=totals["overdue"],
        overdue_amount=money(figures.overdue_amount),
        currency=report_currency,
        amount_currency=report_currency,
        overdue_invoices_in_amount_currency=sum(
            row["n"] for row in overdue_rows if str(row["key"]).strip() == report_currency
        ),
        as_of=_as_of(ctx, filters),
        invoices_by_status={s: totals[s] for s in DISPLAYED_STATUSES if totals[s]},
        invoices_by_customer={},
        settlement_time_distribution=distribution(
            BUCKETS, settlement.bucket_counts(BUCKETS, SECONDS_PER_DAY)
        ),
        totals_by_currency=currency_totals(figures.currency_rows),
        overdue_by_currency=currency_totals(overdue_rows),
    )
    # Set, not validated again at every request: the part's own dict of str → int,
    # built once from the query's rows (a cached part's may hold 10,000 customers).
    summary.invoices_by_customer = figures.by_customer
    return summary
