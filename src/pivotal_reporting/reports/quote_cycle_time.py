"""quote_cycle_time: how long quotes take from creation to a decision.

Rows: quotes decided (accepted, rejected, expired) with ``decided_at`` in
``[fromDate, toDate)``; cycle time = ``decided_at - created_at`` in days. Served by the
covering index ``ix_quotes_organization_id_decided_at`` (migration 0004) and, when only
the window is filtered, by the rollups (rollups.py) with these facets:

- ``bins``: ``key1`` status, ``bin`` cycle-time bin; ``n``, ``total``, ``low``, ``high``.
- ``projects``: ``key1`` project name (the published key), ``key2`` status; ``n``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.models.business import DECIDED_QUOTE_STATUSES
from pivotal_reporting.reports.base import (
    ExportQuery,
    Report,
    ReportContext,
    ReportFilters,
    fetch_all,
)
from pivotal_reporting.reports.bucket_filters import BucketKey, add_duration_bucket
from pivotal_reporting.reports.histogram import (
    DAY_TENTHS_BIN,
    Histogram,
    bin_sql,
    category_counts,
    histogram_columns,
)
from pivotal_reporting.reports.rollups import Facet, Rollup
from pivotal_reporting.reports.schemas import (
    CamelModel,
    Days,
    DistributionBucket,
    SummaryResponse,
    distribution,
)
from pivotal_reporting.reports.sql import (
    SECONDS_PER_DAY,
    Conditions,
    day_buckets,
    iso_utc,
    rounded_seconds,
)
from pivotal_reporting.validation import Id

BUCKETS = day_buckets((0, 1), (2, 3), (4, 7), (8, 14), (15, 30))
NO_PROJECT = "(no project)"
_SECONDS = "date_part('epoch', q.decided_at - q.created_at)"
_BUCKET_MEANING = "the quotes `cycleTimeDistribution` counts in it (whole days of cycle time)."


class QuoteCycleTimeFilters(ReportFilters):
    customer_id: Id | None = Field(default=None, description="Only this customer's quotes.")
    project_id: Id | None = Field(default=None, description="Only this project's quotes.")
    status: Literal["accepted", "rejected", "expired"] | None = Field(
        default=None, description="Only quotes decided this way."
    )
    cycle_time_bucket: Annotated[str, BucketKey(BUCKETS, _BUCKET_MEANING)] | None = None


class QuoteCycleTimeSummary(CamelModel):
    """Cycle time (``decided_at - created_at``) of the quotes decided in the window."""

    total_quotes: int
    average_cycle_time_days: Days | None = Field(description="Mean, days; null when empty.")
    median_cycle_time_days: Days | None = Field(description="percentile_cont(0.5), days.")
    min_cycle_time_days: Days | None
    max_cycle_time_days: Days | None
    quotes_by_status: dict[str, int] = Field(description="accepted, rejected, expired.")
    quotes_by_project: dict[str, int] = Field(description=f'By project name; "{NO_PROJECT}".')
    cycle_time_distribution: list[DistributionBucket]


class QuoteCycleTimeResponse(SummaryResponse[QuoteCycleTimeFilters, QuoteCycleTimeSummary]):
    """``GET /v1/reports/summary/quote-cycle-time``."""


def _conditions(ctx: ReportContext, filters: QuoteCycleTimeFilters) -> Conditions:
    where = Conditions(params={"org": ctx.organization_id})
    where.when(filters.from_date, "q.decided_at >= %(from_date)s", "from_date")
    where.when(filters.to_date, "q.decided_at < %(to_date)s", "to_date")
    where.when(filters.customer_id, "q.customer_id = %(customer_id)s", "customer_id")
    where.when(filters.project_id, "q.project_id = %(project_id)s", "project_id")
    where.when(filters.status, "q.status = %(status)s", "status")
    add_duration_bucket(
        where,
        filters.cycle_time_bucket,
        name="cycle_time_bucket",
        seconds=_SECONDS,
        width=DAY_TENTHS_BIN,
        buckets=BUCKETS,
        unit=SECONDS_PER_DAY,
        negatives_excluded=False,  # the summary's first bucket holds any negative too
    )
    return where


_ROWS = "FROM quotes q WHERE q.organization_id = %(org)s AND q.decided_at IS NOT NULL"

# One hash aggregate over the window: a histogram of cycle times (see
# histogram.py) with the status counts alongside.
_BINS_SQL = f"""
SELECT {bin_sql("s", DAY_TENTHS_BIN)} AS bin, {histogram_columns("s")},
       {", ".join(f"count(*) FILTER (WHERE status = '{s}') AS {s}" for s in DECIDED_QUOTE_STATUSES)}
FROM (SELECT q.status, {_SECONDS} AS s {_ROWS} {{conditions}} OFFSET 0) AS decided
GROUP BY 1
"""

_BY_PROJECT_SQL = f"""
SELECT coalesce(p.name, '{NO_PROJECT}') AS key, sum(g.n)::bigint AS n
FROM (SELECT q.project_id, count(*) AS n {_ROWS} {{conditions}} GROUP BY q.project_id) AS g
LEFT JOIN projects p ON p.organization_id = %(org)s AND p.id = g.project_id
GROUP BY 1 ORDER BY 1
"""

_RANGE_ROWS = """FROM {ranges} AS r
JOIN quotes q ON q.organization_id = %(org)s AND q.decided_at >= r.lo AND q.decided_at < r.hi"""

ROLLUP = Rollup(
    report_type="quote_cycle_time",
    source="quotes",
    source_day="(decided_at AT TIME ZONE 'UTC')::date",
    instant=True,
    facets=(
        Facet(
            "bins",
            ("key1", "bin", "n", "total", "low", "high"),
            f"""
    SELECT r.period, q.status AS key1, {bin_sql(_SECONDS, DAY_TENTHS_BIN)} AS bin,
           {histogram_columns(_SECONDS)}
    {_RANGE_ROWS}
    GROUP BY r.period, q.status, 3""",
        ),
        Facet(
            "projects",
            ("key1", "key2", "n"),
            f"""
    SELECT r.period, coalesce(p.name, '{NO_PROJECT}') AS key1, q.status AS key2, count(*) AS n
    {_RANGE_ROWS}
    LEFT JOIN projects p ON p.organization_id = %(org)s AND p.id = q.project_id
    GROUP BY r.period, 2, 3""",
            daily=True,
        ),
    ),
)

_STATUS_IS = "(%(status)s::text IS NULL OR {key} = %(status)s)"  # the status filter, if any

_ROLLUP_BINS_SQL = f"""
SELECT bin, sum(n)::bigint AS n, sum(total) AS total, min(low) AS low, max(high) AS high,
       {", ".join(f"sum(n) FILTER (WHERE key1 = '{s}') AS {s}" for s in DECIDED_QUOTE_STATUSES)}
FROM ({ROLLUP.rows("bins", _STATUS_IS.format(key="key1"))}) AS g
GROUP BY bin
"""

_ROLLUP_BY_PROJECT_SQL = f"""
SELECT key1 AS key, sum(n)::bigint AS n
FROM ({ROLLUP.rows("projects", _STATUS_IS.format(key="key2"))}) AS g
GROUP BY key1 ORDER BY key1
"""

EXPORT_COLUMNS = (
    "quote_id",
    "quote_number",
    "customer_id",
    "customer_name",
    "project_id",
    "project_name",
    "status",
    "currency",
    "total_amount",
    "created_at",
    "sent_at",
    "decided_at",
    "cycle_time_days",
)

# CHECK-constrained vocabularies and server-formatted instants: never user text.
CLOSED_TEXT_COLUMNS = frozenset({"status", "currency", "created_at", "sent_at", "decided_at"})

_EXPORT_SQL = f"""
SELECT q.id AS quote_id, q.quote_number AS quote_number,
       q.customer_id AS customer_id, c.name AS customer_name,
       q.project_id AS project_id, p.name AS project_name,
       q.status, q.currency, q.total_amount,
       {iso_utc("q.created_at")} AS created_at, {iso_utc("q.sent_at")} AS sent_at,
       {iso_utc("q.decided_at")} AS decided_at,
       {rounded_seconds(_SECONDS, unit=SECONDS_PER_DAY, places=4)} AS cycle_time_days
FROM quotes q
JOIN customers c ON c.organization_id = q.organization_id AND c.id = q.customer_id
LEFT JOIN projects p ON p.organization_id = q.organization_id AND p.id = q.project_id
WHERE q.organization_id = %(org)s AND q.decided_at IS NOT NULL {{conditions}}
ORDER BY q.decided_at, q.id
"""
_EXPORT_COUNT_SQL = "SELECT count(*) FROM quotes q WHERE q.organization_id = %(org)s AND q.decided_at IS NOT NULL {conditions}"


class QuoteCycleTimeReport(Report):
    report_type = "quote_cycle_time"
    path = "quote-cycle-time"
    title = "Quote cycle time: days from creation to decision"
    filters_model = QuoteCycleTimeFilters
    summary_model = QuoteCycleTimeSummary
    response_model = QuoteCycleTimeResponse
    references = {"customer_id": "customers", "project_id": "projects"}

    def reads_rollup(self, filters: ReportFilters) -> bool:
        assert isinstance(filters, QuoteCycleTimeFilters)
        return (
            filters.customer_id is None
            and filters.project_id is None
            and filters.cycle_time_bucket is None
        )

    def depends_on_now(self, filters: ReportFilters) -> bool:
        return False  # decided quotes only: no "now" in any figure

    async def summarize(
        self, session: AsyncSession, ctx: ReportContext, filters: ReportFilters
    ) -> QuoteCycleTimeSummary:
        assert isinstance(filters, QuoteCycleTimeFilters)
        if self.reads_rollup(filters):
            plan = await ROLLUP.plan(session, ctx, filters.from_date, filters.to_date)
            params = {
                "org": ctx.organization_id,
                "tz": ctx.timezone,
                "status": filters.status,
                **plan.params,
            }
            bins = await fetch_all(session, _ROLLUP_BINS_SQL, params)
            projects = await fetch_all(session, _ROLLUP_BY_PROJECT_SQL, params)
        else:
            where = _conditions(ctx, filters)
            bins = await fetch_all(session, _BINS_SQL.format(conditions=where.sql), where.params)
            projects = await fetch_all(
                session, _BY_PROJECT_SQL.format(conditions=where.sql), where.params
            )
        cycle = Histogram.from_rows(bins, DAY_TENTHS_BIN)
        return QuoteCycleTimeSummary(
            total_quotes=cycle.count,
            average_cycle_time_days=cycle.average(SECONDS_PER_DAY),
            median_cycle_time_days=cycle.median(SECONDS_PER_DAY),
            min_cycle_time_days=cycle.minimum(SECONDS_PER_DAY),
            max_cycle_time_days=cycle.maximum(SECONDS_PER_DAY),
            quotes_by_status=category_counts(bins, DECIDED_QUOTE_STATUSES),
            quotes_by_project={row["key"]: row["n"] for row in projects},
            cycle_time_distribution=distribution(
                BUCKETS, cycle.bucket_counts(BUCKETS, SECONDS_PER_DAY)
            ),
        )

    def export_query(self, ctx: ReportContext, filters: ReportFilters) -> ExportQuery:
        assert isinstance(filters, QuoteCycleTimeFilters)
        where = _conditions(ctx, filters)
        return ExportQuery(
            sql=_EXPORT_SQL.format(conditions=where.sql),
            params=where.params,
            columns=EXPORT_COLUMNS,
            closed_text_columns=CLOSED_TEXT_COLUMNS,
            count_sql=_EXPORT_COUNT_SQL.format(conditions=where.sql),
        )
