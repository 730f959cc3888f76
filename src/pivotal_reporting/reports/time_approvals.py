"""time_approvals: hours by status, how fast timesheets are approved, what is waiting.

Rows: time entries whose ``work_date`` lies in ``[fromDate, toDate)`` (a calendar date
counts from its midnight in the organization's time zone). Approval latency is
``approved_at - submitted_at`` of approved entries; a pending approval is a submitted
entry, its age ``now - submitted_at``. Served by
``ix_time_entries_organization_id_work_date`` (0004).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.models.business import TIME_ENTRY_STATUSES
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
    Days,
    DistributionBucket,
    Hours,
    SummaryResponse,
    bucket_values,
    distribution,
)
from pivotal_reporting.reports.sql import (
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    Conditions,
    bucket_counts,
    day_buckets,
    first_date_from,
    formula_safe,
    iso_utc,
    rounded,
)

BUCKETS = day_buckets((0, 1), (2, 3), (4, 7), (8, 14), (15, 30))
_LATENCY = "date_part('epoch', t.approved_at - t.submitted_at)"
_PENDING_AGE = "(%(now_epoch)s - date_part('epoch', t.submitted_at))"


class TimeApprovalsFilters(ReportFilters):
    user_id: str | None = Field(default=None, description="Only this user's entries.")
    project_id: str | None = Field(default=None, description="Only this project's entries.")
    status: Literal["draft", "submitted", "approved", "rejected"] | None = Field(
        default=None, description="Only entries with this status."
    )


class TimeApprovalsSummary(CamelModel):
    """Time entries worked in the window: hours, approval latency, pending approvals."""

    total_entries: int
    total_hours: Hours = Field(description="Sum of hours, two decimals.")
    billable_hours: Hours
    non_billable_hours: Hours
    entries_by_status: dict[str, int] = Field(description="draft, submitted, approved, rejected.")
    hours_by_status: dict[str, Hours]
    approved_entries: int = Field(description="Entries with an approval latency.")
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


def _conditions(ctx: ReportContext, filters: TimeApprovalsFilters) -> Conditions:
    where = Conditions(params={"org": ctx.organization_id, "now_epoch": ctx.now.timestamp()})
    if filters.from_date is not None:
        where.add(
            "t.work_date >= %(from_day)s", from_day=first_date_from(filters.from_date, ctx.timezone)
        )
    if filters.to_date is not None:
        where.add("t.work_date < %(to_day)s", to_day=first_date_from(filters.to_date, ctx.timezone))
    where.when(filters.user_id, "t.user_id = %(user_id)s", "user_id")
    where.when(filters.project_id, "t.project_id = %(project_id)s", "project_id")
    where.when(filters.status, "t.status = %(status)s", "status")
    return where


_ROWS = "FROM time_entries t WHERE t.organization_id = %(org)s"


def _latency(aggregate: str, divisor: int) -> str:
    return rounded(aggregate, divisor=divisor)


_STATS_SQL = f"""
SELECT count(*) AS total, coalesce(sum(hours), 0.00) AS hours,
       coalesce(sum(hours) FILTER (WHERE billable), 0.00) AS billable_hours,
       coalesce(sum(hours) FILTER (WHERE NOT billable), 0.00) AS non_billable_hours,
       {
    ", ".join(
        f"count(*) FILTER (WHERE status = '{s}') AS n_{s}, "
        f"coalesce(sum(hours) FILTER (WHERE status = '{s}'), 0.00) AS h_{s}"
        for s in TIME_ENTRY_STATUSES
    )
},
       count(latency) AS approved,
       {_latency("sum(latency)::numeric / nullif(count(latency), 0)", SECONDS_PER_HOUR)} AS avg_h,
       {_latency("percentile_cont(0.5) WITHIN GROUP (ORDER BY latency)", SECONDS_PER_HOUR)}
           AS median_h,
       {_latency("min(latency)", SECONDS_PER_HOUR)} AS min_h,
       {_latency("max(latency)", SECONDS_PER_HOUR)} AS max_h,
       {_latency("sum(latency)::numeric / nullif(count(latency), 0)", SECONDS_PER_DAY)} AS avg_d,
       {_latency("percentile_cont(0.5) WITHIN GROUP (ORDER BY latency)", SECONDS_PER_DAY)}
           AS median_d,
       {_latency("min(latency)", SECONDS_PER_DAY)} AS min_d,
       {_latency("max(latency)", SECONDS_PER_DAY)} AS max_d,
       {bucket_counts("latency", BUCKETS, unit=SECONDS_PER_DAY)},
       {_latency("avg(pending_age)", SECONDS_PER_DAY)} AS pending_avg_d,
       {_latency("max(pending_age)", SECONDS_PER_DAY)} AS pending_max_d
FROM (SELECT t.status, t.hours, t.billable,
             CASE WHEN t.status = 'approved' THEN {_LATENCY} END AS latency,
             CASE WHEN t.status = 'submitted' THEN {_PENDING_AGE} END AS pending_age
      {_ROWS} {{conditions}}) AS worked
"""

_GROUPS_SQL = f"""
WITH g AS (
    SELECT t.project_id, t.user_id, sum(t.hours) AS hours
    {_ROWS} {{conditions}}
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
"""

EXPORT_COLUMNS = (
    "time_entry_id",
    "user_id",
    "user_name",
    "project_id",
    "project_name",
    "work_date",
    "hours",
    "billable",
    "status",
    "submitted_at",
    "approved_at",
    "rejected_at",
    "approved_by",
    "approval_time_hours",
    "approval_time_days",
)

_EXPORT_SQL = f"""
SELECT {formula_safe("t.id")} AS time_entry_id,
       {formula_safe("t.user_id")} AS user_id, {formula_safe("u.display_name")} AS user_name,
       {formula_safe("t.project_id")} AS project_id, {formula_safe("p.name")} AS project_name,
       t.work_date, t.hours, t.billable, t.status,
       {iso_utc("t.submitted_at")} AS submitted_at, {iso_utc("t.approved_at")} AS approved_at,
       {iso_utc("t.rejected_at")} AS rejected_at, {formula_safe("t.approved_by")} AS approved_by,
       {rounded(_LATENCY, divisor=SECONDS_PER_HOUR, places=2)} AS approval_time_hours,
       {rounded(_LATENCY, divisor=SECONDS_PER_DAY, places=4)} AS approval_time_days
FROM time_entries t
JOIN users u ON u.organization_id = t.organization_id AND u.id = t.user_id
JOIN projects p ON p.organization_id = t.organization_id AND p.id = t.project_id
WHERE t.organization_id = %(org)s {{conditions}}
ORDER BY t.work_date, t.id
"""


class TimeApprovalsReport(Report):
    report_type = "time_approvals"
    path = "time-approvals"
    title = "Time approvals: hours by status, approval latency, pending approvals"
    filters_model = TimeApprovalsFilters
    summary_model = TimeApprovalsSummary
    response_model = TimeApprovalsResponse
    references = {"user_id": "users", "project_id": "projects"}

    async def summarize(
        self, session: AsyncSession, ctx: ReportContext, filters: ReportFilters
    ) -> TimeApprovalsSummary:
        assert isinstance(filters, TimeApprovalsFilters)
        where = _conditions(ctx, filters)
        stats = await fetch_one(session, _STATS_SQL.format(conditions=where.sql), where.params)
        groups = await fetch_all(session, _GROUPS_SQL.format(conditions=where.sql), where.params)
        assert stats is not None  # an aggregate without GROUP BY always returns one row
        return TimeApprovalsSummary(
            total_entries=stats["total"],
            total_hours=stats["hours"],
            billable_hours=stats["billable_hours"],
            non_billable_hours=stats["non_billable_hours"],
            entries_by_status={s: stats[f"n_{s}"] for s in TIME_ENTRY_STATUSES},
            hours_by_status={s: stats[f"h_{s}"] for s in TIME_ENTRY_STATUSES},
            approved_entries=stats["approved"],
            average_approval_time_hours=stats["avg_h"],
            median_approval_time_hours=stats["median_h"],
            min_approval_time_hours=stats["min_h"],
            max_approval_time_hours=stats["max_h"],
            average_approval_time_days=stats["avg_d"],
            median_approval_time_days=stats["median_d"],
            min_approval_time_days=stats["min_d"],
            max_approval_time_days=stats["max_d"],
            approval_time_distribution=distribution(BUCKETS, bucket_values(stats, BUCKETS)),
            pending_approvals=stats["n_submitted"],
            pending_hours=stats["h_submitted"],
            average_pending_age_days=stats["pending_avg_d"],
            oldest_pending_age_days=stats["pending_max_d"],
            hours_by_project={r["key"]: r["hours"] for r in groups if r["kind"] == "project"},
            hours_by_user={r["key"]: r["hours"] for r in groups if r["kind"] == "user"},
        )

    def export_query(self, ctx: ReportContext, filters: ReportFilters) -> ExportQuery:
        assert isinstance(filters, TimeApprovalsFilters)
        where = _conditions(ctx, filters)
        return ExportQuery(
            sql=_EXPORT_SQL.format(conditions=where.sql),
            params=where.params,
            columns=EXPORT_COLUMNS,
        )
