"""time_approvals: hours by status, how fast timesheets are approved, what is waiting.

Rows: time entries whose ``work_date`` lies in ``[fromDate, toDate)`` (a calendar date
counts from the first instant of its local day in the organization's time zone,
``sql.local_day_start``). Approval latency is ``approved_at - submitted_at`` of
approved entries (a negative one is left out of the approval-time figures and counted in
``negativeApprovalTimes``); a pending approval is a submitted entry, its age
``now - submitted_at``. Served by
``ix_time_entries_organization_id_work_date`` (0004) and, when only the window (or the
status) is filtered, by the rollups (reports/rollups/) with these facets:

- ``hours``: per ``status`` and ``billable``: ``n`` entries, ``hours``.
- ``latency`` (hour-wide bins) and ``latency_fine`` (0.05 h): per approval-latency
  ``bin`` of approved entries: ``n``, ``total``, ``low``, ``high`` (seconds).
- ``projects`` / ``users``: per ``project_name`` / ``user_name`` (display name) and
  ``status``: ``n``, ``hours``.

Pending approvals are always read from the rows (the partial index
``ix_time_entries_organization_id_work_date_submitted``, 0007) as their count, hours and
the sum and earliest of their ``submitted_at``: clock-free, so the summary cache keeps
them; their ages (``now - submitted_at``) are derived at each request (``with_clock``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.models.business import TIME_ENTRY_STATUSES
from pivotal_reporting.reports.base import Report, ReportContext, ReportFilters, fetch_all
from pivotal_reporting.reports.bucket_filters import BucketKey, add_duration_bucket
from pivotal_reporting.reports.histogram import (
    HOUR_TENTHS_BIN,
    Histogram,
    bin_sql,
    histogram_columns,
    median_ranks,
    split_negative,
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
    Hours,
    SummaryResponse,
    distribution,
    money,
)
from pivotal_reporting.reports.source import ExportRows, NameLookup, Source, Window
from pivotal_reporting.reports.sql import (
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    Conditions,
    day_buckets,
    iso_utc,
    rounded_seconds,
)
from pivotal_reporting.validation import Id

BUCKETS = day_buckets((0, 1), (2, 3), (4, 7), (8, 14), (15, 30))
COARSE_BIN = SECONDS_PER_HOUR
_LATENCY = "date_part('epoch', t.approved_at - t.submitted_at)"
# When a pending entry was submitted, exact (numeric seconds): its age is derived from
# it at each request (``with_clock``), so the rest of the summary can be cached.
_SUBMITTED_EPOCH = "extract(epoch FROM t.submitted_at)"
_APPROVED_LATENCY = f"CASE WHEN t.status = 'approved' THEN {_LATENCY} END"
_BUCKET_MEANING = (
    "the approved entries `approvalTimeDistribution` counts in it (whole days from "
    "submission to approval; negative ones are in none)."
)


class TimeApprovalsFilters(ReportFilters):
    user_id: Id | None = Field(default=None, description="Only this user's entries.")
    project_id: Id | None = Field(default=None, description="Only this project's entries.")
    status: Literal["draft", "submitted", "approved", "rejected"] | None = Field(
        default=None, description="Only entries with this status."
    )
    approval_time_bucket: Annotated[str, BucketKey(BUCKETS, _BUCKET_MEANING)] | None = None


class TimeApprovalsSummary(CamelModel):
    """Time entries worked in the window: hours, approval latency, pending approvals."""

    total_entries: int
    total_hours: Hours = Field(description="Sum of hours, two decimals.")
    billable_hours: Hours
    non_billable_hours: Hours
    entries_by_status: dict[str, int] = Field(description="draft, submitted, approved, rejected.")
    hours_by_status: dict[str, Hours]
    approved_entries: int = Field(
        description="Approved entries in the approval-time figures (latency zero or more)."
    )
    negative_approval_times: int = Field(
        description="Approved entries approved before they were submitted: left out of "
        "every approval-time figure (never counted as zero)."
    )
    average_approval_time_hours: Hours | None = Field(description="approved_at - submitted_at.")
    median_approval_time_hours: Hours | None = Field(description="percentile_cont(0.5).")
    min_approval_time_hours: Hours | None
    max_approval_time_hours: Hours | None
    average_approval_time_days: Days | None
    median_approval_time_days: Days | None
    min_approval_time_days: Days | None
    max_approval_time_days: Days | None
    approval_time_distribution: list[DistributionBucket] = Field(description="Approved entries.")
    pending_approvals: int = Field(description="Submitted, not yet approved or rejected.")
    pending_hours: Hours
    average_pending_age_days: Days | None = Field(description="now - submitted_at, days.")
    oldest_pending_age_days: Days | None
    hours_by_project: dict[str, Hours] = Field(description="By project name.")
    hours_by_user: dict[str, Hours] = Field(description="By user display name.")


class TimeApprovalsResponse(SummaryResponse[TimeApprovalsFilters, TimeApprovalsSummary]):
    """``GET /v1/reports/summary/time-approvals``."""


SOURCE = Source("time_entries", "t")


def _bins_sql(where: Conditions) -> str:
    """One hash aggregate: the approval-latency histogram (histogram.py, 0.05 h bins so
    tenths of hours and of days both round exactly) with the hours and the pending
    approvals alongside; the NULL bin holds the entries without a latency."""
    return f"""
SELECT {bin_sql("latency", HOUR_TENTHS_BIN)} AS bin, status, billable, {histogram_columns("latency")},
       count(*) AS entries, sum(hours) AS hours,
       sum(submitted) AS submitted_sum, min(submitted) AS earliest_submitted
FROM (SELECT t.status, t.hours, t.billable,
             {_APPROVED_LATENCY} AS latency,
             CASE WHEN t.status = 'submitted' THEN {_SUBMITTED_EPOCH} END AS submitted
      {SOURCE.rows(where)} OFFSET 0) AS worked
GROUP BY 1, 2, 3
"""  # noqa: S608 -- constants and bound parameters


def _groups_sql(where: Conditions) -> str:
    """Hours per project name and per user display name."""
    return f"""
WITH g AS (
    SELECT t.project_id, t.user_id, sum(t.hours) AS hours
    {SOURCE.rows(where)}
    GROUP BY GROUPING SETS ((t.project_id), (t.user_id))
)
SELECT 'project' AS kind, p.name AS key, sum(g.hours) AS hours FROM g
JOIN projects p ON p.organization_id = %(org)s AND p.id = g.project_id
GROUP BY p.name
UNION ALL
SELECT 'user', u.display_name, sum(g.hours) FROM g
JOIN users u ON u.organization_id = %(org)s AND u.id = g.user_id
GROUP BY u.display_name
ORDER BY 1, 2
"""  # noqa: S608 -- constants and bound parameters


def _worked(ranges: str) -> str:
    """The time entries in each range of ``work_date``."""
    return range_rows(
        ranges,
        "time_entries t",
        "t.organization_id = %(org)s AND t.work_date >= r.lo AND t.work_date < r.hi",
    )


def _named_hours(facet: str, join: str, expression: str, name: str) -> Facet:
    """Entries and hours per name (``expression``, from ``join``) and status."""
    return Facet(
        facet,
        lambda ranges: (
            f"""
    SELECT r.period, {expression} AS {name}, t.status AS status, count(*) AS n,
           sum(t.hours) AS hours
    {_worked(ranges)}
    {join}
    GROUP BY r.period, {expression}, t.status"""
        ),
        stored={name: "key1", "status": "key2", "n": "n", "hours": "amount"},
        daily=True,
    )


def _latency_bins(facet: str, width: int, *, daily: bool) -> Facet:
    """The approval-latency histogram of approved entries, in bins of ``width`` seconds."""
    return Facet(
        facet,
        lambda ranges: (
            f"""
    SELECT period, {bin_sql("latency", width)} AS bin, {histogram_columns("latency")}
    FROM (SELECT r.period, {_LATENCY} AS latency
          {_worked(ranges)} AND t.status = 'approved') AS approved
    WHERE latency IS NOT NULL
    GROUP BY 1, 2"""  # noqa: S608 -- reviewed: constants only, values are bound
        ),
        stored={"bin": "bin", "n": "n", "total": "total", "low": "low", "high": "high"},
        daily=daily,
    )


ROLLUP = Rollup(
    report_type="time_approvals",
    source="time_entries",
    source_day="work_date",
    instant=False,
    facets=(
        Facet(
            "hours",
            lambda ranges: (
                f"""
    SELECT r.period, t.status AS status, t.billable AS billable, count(*) AS n,
           sum(t.hours) AS hours
    {_worked(ranges)}
    GROUP BY r.period, t.status, t.billable"""
            ),
            stored={"status": "key1", "billable": "flag", "n": "n", "hours": "amount"},
            daily=True,
        ),
        # Hour-wide bins for every latency figure but the median, which reads the
        # 0.05 h bins of only the hour(s) it falls in (Histogram.rank_span).
        _latency_bins("latency", COARSE_BIN, daily=True),
        _latency_bins("latency_fine", HOUR_TENTHS_BIN, daily=False),
        _named_hours(
            "projects",
            "JOIN projects p ON p.organization_id = %(org)s AND p.id = t.project_id",
            "p.name",
            "project_name",
        ),
        _named_hours(
            "users",
            "JOIN users u ON u.organization_id = %(org)s AND u.id = t.user_id",
            "u.display_name",
            "user_name",
        ),
    ),
)

_STATUS_WANTED = filters_match("status")  # the status filter, if any

# The rows _bins_sql gives without its latency columns: entries and hours per status and
# billable, plus one row with the pending ages (read from the rows).
_ROLLUP_HOURS_SQL = f"""
SELECT NULL::int AS bin, status, billable, sum(n)::bigint AS entries,
       sum(hours) AS hours, NULL::numeric AS submitted_sum, NULL::numeric AS earliest_submitted
FROM ({facet_rows(ROLLUP, "hours", _STATUS_WANTED)}) AS g
GROUP BY 2, 3
UNION ALL
SELECT NULL, 'submitted', NULL, 0, 0, sum(submitted), min(submitted)
FROM (SELECT {_SUBMITTED_EPOCH} AS submitted
      FROM time_entries t
      WHERE t.organization_id = %(org)s AND t.status = 'submitted'
        AND {filters_match(status="'submitted'")}
        AND (%(from_day)s::date IS NULL OR t.work_date >= %(from_day)s::date)
        AND (%(to_day)s::date IS NULL OR t.work_date < %(to_day)s::date)) AS pending
"""  # noqa: S608 -- a facet's reviewed SQL

# Latency facets hold approved entries only.
_APPROVED_WANTED = filters_match(status="'approved'")


def _latency_sql(facet: str, where: str) -> str:
    """A latency facet's bins (``where``: a condition on its columns)."""
    return f"""
SELECT bin, sum(n)::bigint AS n, sum(total) AS total, min(low) AS low, max(high) AS high
FROM ({facet_rows(ROLLUP, facet, where)}) AS g
GROUP BY bin
"""  # noqa: S608 -- a facet's reviewed SQL


_ROLLUP_LATENCY_SQL = _latency_sql("latency", _APPROVED_WANTED)
_ROLLUP_FINE_LATENCY_SQL = _latency_sql(
    "latency_fine", f"bin >= %(fine_lo)s AND bin < %(fine_hi)s AND {_APPROVED_WANTED}"
)

_ROLLUP_GROUPS_SQL = f"""
SELECT 'project' AS kind, project_name AS key, sum(hours) AS hours
FROM ({facet_rows(ROLLUP, "projects", _STATUS_WANTED)}) AS g GROUP BY project_name
UNION ALL
SELECT 'user', user_name, sum(hours)
FROM ({facet_rows(ROLLUP, "users", _STATUS_WANTED)}) AS g GROUP BY user_name
ORDER BY 1, 2
"""  # noqa: S608 -- a facet's reviewed SQL


class TimeApprovalsReport(Report[TimeApprovalsFilters]):
    report_type = "time_approvals"
    path = "time-approvals"
    title = "Time approvals: hours by status, approval latency, pending approvals"
    filters_model = TimeApprovalsFilters
    summary_model = TimeApprovalsSummary
    response_model = TimeApprovalsResponse
    references = {"user_id": "users", "project_id": "projects"}
    source = SOURCE
    window = Window("t.work_date", calendar=True)
    equals = {"user_id": "t.user_id", "project_id": "t.project_id", "status": "t.status"}
    export = ExportRows(
        columns=(
            ("time_entry_id", "t.id"),
            ("user_id", "t.user_id"),
            ("user_name", "u.display_name"),
            ("project_id", "t.project_id"),
            ("project_name", "p.name"),
            ("work_date", "t.work_date"),
            ("hours", "t.hours"),
            ("billable", "t.billable"),
            ("status", "t.status"),
            ("submitted_at", iso_utc("t.submitted_at")),
            ("approved_at", iso_utc("t.approved_at")),
            ("rejected_at", iso_utc("t.rejected_at")),
            ("approved_by", "t.approved_by"),
            ("approval_time_hours", rounded_seconds(_LATENCY, unit=SECONDS_PER_HOUR, places=2)),
            ("approval_time_days", rounded_seconds(_LATENCY, unit=SECONDS_PER_DAY, places=4)),
        ),
        joins="",
        lookups=(
            NameLookup("user_id", "user_name", "users", "u", "display_name"),
            NameLookup("project_id", "project_name", "projects", "p", "name"),
        ),
        order_by="t.work_date, t.id",
        # CHECK-constrained vocabularies and server-formatted instants: never user text.
        closed_text=frozenset({"status", "submitted_at", "approved_at", "rejected_at"}),
    )

    def params(self, ctx: ReportContext, filters: TimeApprovalsFilters) -> dict[str, Any]:
        return {"org": ctx.organization_id}

    def narrow(self, where: Conditions, ctx: ReportContext, filters: TimeApprovalsFilters) -> None:
        add_duration_bucket(
            where,
            filters.approval_time_bucket,
            name="approval_time_bucket",
            seconds=_APPROVED_LATENCY,
            width=HOUR_TENTHS_BIN,
            buckets=BUCKETS,
            unit=SECONDS_PER_DAY,
            negatives_excluded=True,
        )

    def reads_rollup(self, filters: TimeApprovalsFilters) -> bool:
        return (
            filters.user_id is None
            and filters.project_id is None
            and filters.approval_time_bucket is None
        )

    def depends_on_now(self, filters: TimeApprovalsFilters) -> bool:
        return False  # pending ages are with_clock's, from clock-free aggregates

    async def clock_free_part(
        self, session: AsyncSession, ctx: ReportContext, filters: TimeApprovalsFilters
    ) -> _Submitted:
        if self.reads_rollup(filters):
            return await self._rollup_part(session, ctx, filters)
        return await self._rows_part(session, ctx, filters)

    def with_clock(
        self,
        ctx: ReportContext,
        filters: TimeApprovalsFilters,
        part: _Submitted,
    ) -> TimeApprovalsSummary:
        return part.aged(ctx.now)

    async def summarize_from_rows(
        self, session: AsyncSession, ctx: ReportContext, filters: TimeApprovalsFilters
    ) -> TimeApprovalsSummary:
        return (await self._rows_part(session, ctx, filters)).aged(ctx.now)

    async def summarize_from_rollup(
        self, session: AsyncSession, ctx: ReportContext, filters: TimeApprovalsFilters
    ) -> TimeApprovalsSummary:
        return (await self._rollup_part(session, ctx, filters)).aged(ctx.now)

    async def _rows_part(
        self, session: AsyncSession, ctx: ReportContext, filters: TimeApprovalsFilters
    ) -> _Submitted:
        where = self.conditions(ctx, filters)
        bins = await fetch_all(session, _bins_sql(where), where.params)
        groups = await fetch_all(session, _groups_sql(where), where.params)
        timed, negative = split_negative(bins)
        latency = Histogram.from_rows(timed, HOUR_TENTHS_BIN)
        medians = (latency.median(SECONDS_PER_HOUR), latency.median(SECONDS_PER_DAY))
        return _Submitted.of(_summary(bins, groups, latency, medians, negative), bins)

    async def _rollup_part(
        self, session: AsyncSession, ctx: ReportContext, filters: TimeApprovalsFilters
    ) -> _Submitted:
        hours, groups, latency, medians, negative = await _from_rollup(self, session, ctx, filters)
        return _Submitted.of(_summary(hours, groups, latency, medians, negative), hours)


def _summary(
    bins: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    latency: Histogram,
    medians: tuple[Any, Any],
    negative: int,
) -> TimeApprovalsSummary:
    """The summary from the hours rows, the name groups and the approval latencies
    (either path)."""
    hours = _hour_totals(bins)
    return TimeApprovalsSummary(
        total_entries=sum(b["entries"] for b in bins),
        total_hours=hours["total"],
        billable_hours=hours["billable"],
        non_billable_hours=hours["total"] - hours["billable"],
        entries_by_status={s: _entries(bins, s) for s in TIME_ENTRY_STATUSES},
        hours_by_status={s: hours[s] for s in TIME_ENTRY_STATUSES},
        approved_entries=latency.count,
        negative_approval_times=negative,
        average_approval_time_hours=latency.average(SECONDS_PER_HOUR),
        median_approval_time_hours=medians[0],
        min_approval_time_hours=latency.minimum(SECONDS_PER_HOUR),
        max_approval_time_hours=latency.maximum(SECONDS_PER_HOUR),
        average_approval_time_days=latency.average(SECONDS_PER_DAY),
        median_approval_time_days=medians[1],
        min_approval_time_days=latency.minimum(SECONDS_PER_DAY),
        max_approval_time_days=latency.maximum(SECONDS_PER_DAY),
        approval_time_distribution=distribution(
            BUCKETS, latency.bucket_counts(BUCKETS, SECONDS_PER_DAY)
        ),
        **_pending(bins, hours),
        hours_by_project={r["key"]: r["hours"] for r in groups if r["kind"] == "project"},
        hours_by_user={r["key"]: r["hours"] for r in groups if r["kind"] == "user"},
    )


async def _from_rollup(
    report: TimeApprovalsReport,
    session: AsyncSession,
    ctx: ReportContext,
    filters: TimeApprovalsFilters,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Histogram, tuple[Any, Any], int]:
    """An unfiltered window from the rollup's fresh months and the other days' rows.

    The hours rows, the groups rows, the hour-wide latency histogram, the medians
    (hours, days) computed from the 0.05 h bins of the hours the median falls in, and
    the number of negative latencies (left out of the histogram).
    """
    from_day, to_day = report.window.bounds(filters, ctx.timezone)
    window = await plan(session, ROLLUP, ctx, from_day, to_day)
    params = {
        **report.params(ctx, filters),
        "from_day": from_day,
        "to_day": to_day,
        "status": filters.status,
        **window.params,
    }
    hours = await fetch_all(session, _ROLLUP_HOURS_SQL, params)
    groups = await fetch_all(session, _ROLLUP_GROUPS_SQL, params)
    timed, negative = split_negative(await fetch_all(session, _ROLLUP_LATENCY_SQL, params))
    latency = Histogram.from_rows(timed, COARSE_BIN)
    if not latency.count:
        return hours, groups, latency, (None, None), negative
    ranks = median_ranks(latency.count)
    first, last, below = latency.rank_span(ranks)
    ratio = COARSE_BIN // HOUR_TENTHS_BIN
    fine_rows = await fetch_all(
        session,
        _ROLLUP_FINE_LATENCY_SQL,
        {**params, "fine_lo": first * ratio, "fine_hi": (last + 1) * ratio},
    )
    fine = Histogram.from_rows(fine_rows, HOUR_TENTHS_BIN)
    fine_ranks = (ranks[0] - below, ranks[1] - below)
    medians = (
        fine.median_of_ranks(fine_ranks, SECONDS_PER_HOUR),
        fine.median_of_ranks(fine_ranks, SECONDS_PER_DAY),
    )
    return hours, groups, latency, medians, negative


def _hour_totals(bins: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Exact hours (two decimals): ``total``, ``billable`` and one per status."""
    totals = dict.fromkeys(("total", "billable", *TIME_ENTRY_STATUSES), Decimal("0.00"))
    for b in bins:
        totals["total"] += b["hours"]
        totals[b["status"]] += b["hours"]
        if b["billable"]:
            totals["billable"] += b["hours"]
    return {key: money(value) for key, value in totals.items()}


def _entries(bins: list[dict[str, Any]], status: str) -> int:
    return sum(int(b["entries"]) for b in bins if b["status"] == status)


def _pending(bins: list[dict[str, Any]], hours: dict[str, Decimal]) -> dict[str, Any]:
    """Pending approvals (submitted entries): count and hours; their ages are
    ``with_clock``'s (None here)."""
    return {
        "pending_approvals": _entries(bins, "submitted"),
        "pending_hours": hours["submitted"],
        "average_pending_age_days": None,
        "oldest_pending_age_days": None,
    }


@dataclass(frozen=True)
class _Submitted:
    """The summary without the ages of its pending approvals, and what they are derived
    from: the submitted entries' count, and the sum and the earliest of their
    ``submitted_at`` (exact epoch seconds)."""

    summary: TimeApprovalsSummary
    count: int
    epoch_sum: Decimal | None
    earliest: Decimal | None

    @classmethod
    def of(cls, summary: TimeApprovalsSummary, bins: list[dict[str, Any]]) -> _Submitted:
        sums = [b["submitted_sum"] for b in bins if b["submitted_sum"] is not None]
        earliest = [b["earliest_submitted"] for b in bins if b["earliest_submitted"] is not None]
        return cls(
            summary,
            summary.pending_approvals,
            sum(sums, Decimal(0)) if sums else None,
            min(earliest, default=None),
        )

    def aged(self, now: datetime) -> TimeApprovalsSummary:
        """The summary with the pending ages as of ``now``: ``now - submitted_at``,
        averaged over the pending entries, and the oldest, in days."""
        if not self.count or self.epoch_sum is None or self.earliest is None:
            return self.summary
        instant = _epoch(now)
        return self.summary.model_copy(
            update={
                "average_pending_age_days": _days(
                    (instant * self.count - self.epoch_sum) / self.count
                ),
                "oldest_pending_age_days": _days(instant - self.earliest),
            }
        )


def _epoch(instant: datetime) -> Decimal:
    """Exact seconds since the epoch (microseconds included)."""
    return Decimal((instant - _EPOCH) // timedelta(microseconds=1)) / 1_000_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _days(seconds: Decimal) -> Decimal:
    return (seconds / SECONDS_PER_DAY).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
