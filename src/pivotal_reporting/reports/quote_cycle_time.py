"""quote_cycle_time: how long quotes take from creation to a decision.

Rows: quotes decided (accepted, rejected, expired) with ``decided_at`` in
``[fromDate, toDate)``; cycle time = ``decided_at - created_at`` in days. Served by the
covering index ``ix_quotes_organization_id_decided_at`` (migration 0004) and, when only
the window is filtered, by the rollups (reports/rollups/) with these facets:

- ``bins``: per ``status`` and cycle-time ``bin``: ``n``, ``total``, ``low``, ``high``.
- ``projects``: per ``project`` name (the published key) and ``status``: ``n``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.models.business import DECIDED_QUOTE_STATUSES
from pivotal_reporting.reports.base import Report, ReportContext, ReportFilters, fetch_all
from pivotal_reporting.reports.bucket_filters import BucketKey, add_duration_bucket
from pivotal_reporting.reports.histogram import (
    DAY_TENTHS_BIN,
    Histogram,
    bin_sql,
    category_counts,
    histogram_columns,
)
from pivotal_reporting.reports.rollups import (
    Facet,
    Rollup,
    facet_rows,
    filters_match,
    plan,
    range_rows,
)
from pivotal_reporting.reports.schemas import (
    CamelModel,
    Days,
    DistributionBucket,
    SummaryResponse,
    distribution,
)
from pivotal_reporting.reports.source import ExportRows, NameLookup, Source, Window
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


SOURCE = Source("quotes", "q", only="q.decided_at IS NOT NULL")


def _bins_sql(where: Conditions) -> str:
    """One hash aggregate over the window: a histogram of cycle times (histogram.py)
    with the status counts alongside."""
    statuses = ", ".join(
        f"count(*) FILTER (WHERE status = '{s}') AS {s}" for s in DECIDED_QUOTE_STATUSES
    )
    return f"""
SELECT {bin_sql("s", DAY_TENTHS_BIN)} AS bin, {histogram_columns("s")}, {statuses}
FROM (SELECT q.status, {_SECONDS} AS s {SOURCE.rows(where)} OFFSET 0) AS decided
GROUP BY 1
"""  # noqa: S608 -- constants and bound parameters


def _by_project_sql(where: Conditions) -> str:
    return f"""
SELECT coalesce(p.name, '{NO_PROJECT}') AS key, sum(g.n)::bigint AS n
FROM (SELECT q.project_id, count(*) AS n {SOURCE.rows(where)} GROUP BY q.project_id) AS g
LEFT JOIN projects p ON p.organization_id = %(org)s AND p.id = g.project_id
GROUP BY 1 ORDER BY 1
"""  # noqa: S608 -- constants and bound parameters


def _decided(ranges: str) -> str:
    """The decided quotes in each range of ``decided_at``."""
    return range_rows(
        ranges,
        "quotes q",
        "q.organization_id = %(org)s AND q.decided_at >= r.lo AND q.decided_at < r.hi",
    )


ROLLUP = Rollup(
    report_type="quote_cycle_time",
    source="quotes",
    source_day="(decided_at AT TIME ZONE 'UTC')::date",
    instant=True,
    facets=(
        Facet(
            "bins",
            lambda ranges: (
                f"""
    SELECT r.period, q.status AS status, {bin_sql(_SECONDS, DAY_TENTHS_BIN)} AS bin,
           {histogram_columns(_SECONDS)}
    {_decided(ranges)}
    GROUP BY r.period, q.status, 3"""
            ),
            stored={
                "status": "key1",
                "bin": "bin",
                "n": "n",
                "total": "total",
                "low": "low",
                "high": "high",
            },
        ),
        Facet(
            "projects",
            lambda ranges: (
                f"""
    SELECT r.period, coalesce(p.name, '{NO_PROJECT}') AS project, q.status AS status,
           count(*) AS n
    {_decided(ranges)}
    LEFT JOIN projects p ON p.organization_id = %(org)s AND p.id = q.project_id
    GROUP BY r.period, 2, 3"""
            ),
            stored={"project": "key1", "status": "key2", "n": "n"},
            daily=True,
        ),
    ),
)

_STATUS_WANTED = filters_match("status")  # the status filter, if any

_ROLLUP_BINS_SQL = f"""
SELECT bin, sum(n)::bigint AS n, sum(total) AS total, min(low) AS low, max(high) AS high,
       {", ".join(f"sum(n) FILTER (WHERE status = '{s}') AS {s}" for s in DECIDED_QUOTE_STATUSES)}
FROM ({facet_rows(ROLLUP, "bins", _STATUS_WANTED)}) AS g
GROUP BY bin
"""  # noqa: S608 -- constants and bound parameters

_ROLLUP_BY_PROJECT_SQL = f"""
SELECT project AS key, sum(n)::bigint AS n
FROM ({facet_rows(ROLLUP, "projects", _STATUS_WANTED)}) AS g
GROUP BY project ORDER BY project
"""  # noqa: S608 -- constants and bound parameters


class QuoteCycleTimeReport(Report[QuoteCycleTimeFilters]):
    report_type = "quote_cycle_time"
    path = "quote-cycle-time"
    title = "Quote cycle time: days from creation to decision"
    filters_model = QuoteCycleTimeFilters
    summary_model = QuoteCycleTimeSummary
    response_model = QuoteCycleTimeResponse
    references = {"customer_id": "customers", "project_id": "projects"}
    source = SOURCE
    window = Window("q.decided_at")
    equals = {"customer_id": "q.customer_id", "project_id": "q.project_id", "status": "q.status"}
    export = ExportRows(
        columns=(
            ("quote_id", "q.id"),
            ("quote_number", "q.quote_number"),
            ("customer_id", "q.customer_id"),
            ("customer_name", "c.name"),
            ("project_id", "q.project_id"),
            ("project_name", "p.name"),
            ("status", "q.status"),
            ("currency", "q.currency"),
            ("total_amount", "q.total_amount"),
            ("created_at", iso_utc("q.created_at")),
            ("sent_at", iso_utc("q.sent_at")),
            ("decided_at", iso_utc("q.decided_at")),
            ("cycle_time_days", rounded_seconds(_SECONDS, unit=SECONDS_PER_DAY, places=4)),
        ),
        joins="",
        lookups=(
            NameLookup("customer_id", "customer_name", "customers", "c", "name"),
            NameLookup("project_id", "project_name", "projects", "p", "name", optional=True),
        ),
        order_by="q.decided_at, q.id",
        # CHECK-constrained vocabularies and server-formatted instants: never user text.
        closed_text=frozenset({"status", "currency", "created_at", "sent_at", "decided_at"}),
    )

    def narrow(self, where: Conditions, ctx: ReportContext, filters: QuoteCycleTimeFilters) -> None:
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

    def reads_rollup(self, filters: QuoteCycleTimeFilters) -> bool:
        return (
            filters.customer_id is None
            and filters.project_id is None
            and filters.cycle_time_bucket is None
        )

    def depends_on_now(self, filters: QuoteCycleTimeFilters) -> bool:
        return False  # decided quotes only: no "now" in any figure

    async def summarize_from_rows(
        self, session: AsyncSession, ctx: ReportContext, filters: QuoteCycleTimeFilters
    ) -> QuoteCycleTimeSummary:
        where = self.conditions(ctx, filters)
        bins = await fetch_all(session, _bins_sql(where), where.params)
        projects = await fetch_all(session, _by_project_sql(where), where.params)
        return _summary(bins, projects)

    async def summarize_from_rollup(
        self, session: AsyncSession, ctx: ReportContext, filters: QuoteCycleTimeFilters
    ) -> QuoteCycleTimeSummary:
        window = await plan(session, ROLLUP, ctx, filters.from_date, filters.to_date)
        params = {
            "org": ctx.organization_id,
            "tz": ctx.timezone,
            "status": filters.status,
            **window.params,
        }
        bins = await fetch_all(session, _ROLLUP_BINS_SQL, params)
        projects = await fetch_all(session, _ROLLUP_BY_PROJECT_SQL, params)
        return _summary(bins, projects)


def _summary(bins: list[dict[str, Any]], projects: list[dict[str, Any]]) -> QuoteCycleTimeSummary:
    """The summary from the histogram rows and the project counts (either path)."""
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
