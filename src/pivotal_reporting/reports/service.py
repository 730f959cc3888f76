"""The summary runner: tenant scope, reference checks, the report, audit and metrics.

One tenant transaction per request: the figures are read and the ``report_generated``
audit event is written in the same transaction, committed before the response is sent.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pivotal_reporting import metrics
from pivotal_reporting.audit.service import record_event
from pivotal_reporting.auth.principal import Principal
from pivotal_reporting.db import Database
from pivotal_reporting.reports import cache
from pivotal_reporting.reports.base import Report, ReportContext, ReportFilters, fetch_one

# Per transaction only: JIT compilation (tens of ms) never pays off for a sub-second
# aggregate; the histogram's group count cannot be estimated (an expression), so the
# planner would sort half a million rows to group them: make it hash them instead; and
# the covering indexes are cached like the heap, so price their pages as such (the
# usual SSD setting), which keeps the window scans index-only.
TUNE_TRANSACTION = (
    "SELECT set_config('work_mem', '64MB', true), set_config('jit', 'off', true), "
    "set_config('enable_sort', 'off', true), set_config('random_page_cost', '1.1', true)"
)


async def generate_summary(
    database: Database, principal: Principal, report: Report, filters: ReportFilters
) -> dict[str, Any]:
    """The response envelope ``{reportType, filters, summary, generatedAt}`` for the caller.

    Raises ``Forbidden`` when ``filters.organizationId`` names another organization (it
    never widens the scope) and ``InvalidInput`` when an id filter is not in the caller's
    organization.
    """
    started = time.perf_counter()
    now = datetime.now(UTC)
    principal.ensure_own_organization(
        filters.organization_id,
        audit_details={"reason": "organization_mismatch", "reportType": report.report_type},
    )
    ctx = ReportContext(
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        timezone=principal.timezone,
        base_currency=principal.base_currency,
        now=now,
    )
    # One snapshot for all of a summary's queries (rollups.py decides which periods
    # are fresh in one statement and reads them in the next); the audit event follows in
    # its own transaction, since the chain head it updates must not be snapshot-bound.
    async with database.tenant_session(principal.organization_id, snapshot=True) as session:
        await fetch_one(session, TUNE_TRANSACTION, {})
        await report.check_references(session, filters, field_prefix="query.")
        key = await cache.SUMMARIES.key(session, report, ctx, filters)
        summary = cache.SUMMARIES.get(key)
        if summary is None:
            summary = (await report.summarize(session, ctx, filters)).model_dump(by_alias=True)
            cache.SUMMARIES.put(key, summary)
    async with database.tenant_session(principal.organization_id) as session:
        await record_event(
            session,
            organization_id=principal.organization_id,
            user_id=principal.user_id,
            action="report_generated",
            resource="reports",
            resource_id=report.report_type,
            details={"filters": filters.applied(), "summaryGenerated": True},
        )
    metrics.REPORT_GENERATED.labels(
        report.report_type, metrics.org_label(principal.organization_id)
    ).inc()
    metrics.REPORT_DURATION.labels(report.report_type).observe(time.perf_counter() - started)
    return {
        "reportType": report.report_type,
        "filters": filters.applied(),
        "summary": summary,
        "generatedAt": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
