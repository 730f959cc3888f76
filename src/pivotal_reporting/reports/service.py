"""The summary runner: tenant scope, reference checks, the report, audit and metrics.

The figures are read in one tenant snapshot; the ``report_generated`` audit event is
then appended in a transaction of its own (audit.service.append_event), committed before
the response is sent.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting import metrics
from pivotal_reporting.audit.service import append_event
from pivotal_reporting.auth.principal import Principal
from pivotal_reporting.db import Database, read_snapshot_of
from pivotal_reporting.errors import ServiceUnavailable
from pivotal_reporting.replica import ReplicaUnavailable
from pivotal_reporting.reports import cache
from pivotal_reporting.reports.base import Report, ReportContext, ReportFilters, fetch_one
from pivotal_reporting.reports.beside import SIBLING_KEY
from pivotal_reporting.reports.breakdown_limit import (
    CUSTOMER_BREAKDOWNS,
    limit_customers,
    without_rest,
)

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
    database: Database,
    principal: Principal,
    report: Report[Any],
    filters: ReportFilters,
    *,
    customer_limit: int | None = None,
) -> dict[str, Any]:
    """The response envelope ``{reportType, filters, summary, generatedAt, dataAsOf}``.

    Raises ``Forbidden`` when ``filters.organizationId`` names another organization (it
    never widens the scope), ``InvalidInput`` when an id filter is not in the caller's
    organization, and ``ServiceUnavailable`` when the read replica cannot answer and
    ``PIVOTAL_READ_FALLBACK=unavailable``. ``customer_limit`` trims the customer
    breakdown of the (cached) summary (breakdown_limit.py).
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
    # The audit event follows in its own transaction on the primary, since the chain
    # head it updates must not be snapshot-bound.
    try:
        found = await _cached_part(database, report, ctx, filters)
        data_as_of, key, part = found or await _read_part(database, report, ctx, filters)
    except ReplicaUnavailable as exc:
        raise ServiceUnavailable(
            "The figures are read from a replica that is unavailable or behind; "
            "please retry shortly."
        ) from exc
    computed = report.with_clock(ctx, filters, part)
    summary = _summary_fields(report, computed, key, whole=customer_limit is None)
    await append_event(
        database,
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
        "summary": limit_customers(report, summary, customer_limit),
        "generatedAt": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "dataAsOf": utc_text(data_as_of),
    }


async def _cached_part(
    database: Database, report: Report[Any], ctx: ReportContext, filters: ReportFilters
) -> tuple[datetime, cache.CacheKey, Any] | None:
    """A cached part found in one round trip, with the instant of the snapshot its
    versions were read in; ``None`` if there is none (or this request cannot take this
    path: a read replica is configured, or an id filter must be checked first)."""
    checked = any(getattr(filters, name) is not None for name in report.references)
    if database.replica is not None or checked or not cache.SUMMARIES.cacheable(report, filters):
        return None
    snapshot, rows = await database.snapshot_read(
        ctx.organization_id,
        cache.VERSIONS_QUERY,
        org=ctx.organization_id,
        report=report.report_type,
    )
    key = cache.SUMMARIES.key_at(rows[0], report, ctx, filters)
    part = cache.SUMMARIES.get(key, count_miss=False)  # a miss is counted by _read_part
    return None if part is None else (snapshot.data_as_of, key, part)


async def _read_part(
    database: Database, report: Report[Any], ctx: ReportContext, filters: ReportFilters
) -> tuple[datetime, cache.CacheKey | None, Any]:
    """The part in one snapshot, cached or computed there, and that snapshot's instant.

    One snapshot for all of a summary's queries (rollups.py decides which periods are
    fresh in one statement and reads them in the next), on the read replica if there is
    one. A cached part is used only while the data versions read in this very snapshot
    are those it was computed at, so its figures are exact as of this snapshot too.
    """
    async with database.tenant_session(ctx.organization_id, snapshot=True, replica=True) as session:
        data_as_of = read_snapshot_of(session).data_as_of
        await report.check_references(session, filters, field_prefix="query.")
        key = await cache.SUMMARIES.key(session, report, ctx, filters)
        part = cache.SUMMARIES.get(key)
        if part is None:
            await fetch_one(session, TUNE_TRANSACTION, {})  # for the queries that follow
            if not read_snapshot_of(session).on_replica:
                session.info[SIBLING_KEY] = partial(_sibling, database, ctx.organization_id)
            part = await report.clock_free_part(session, ctx, filters)
            cache.SUMMARIES.put(key, part)
        return data_as_of, key, part


@asynccontextmanager
async def _sibling(
    database: Database, organization_id: str, snapshot_id: str
) -> AsyncIterator[AsyncSession | None]:
    """A second transaction in the snapshot of ``_read_part``, tuned as it is (beside.py)."""
    async with database.snapshot_sibling(organization_id, snapshot_id, TUNE_TRANSACTION) as sibling:
        yield sibling


def _summary_fields(
    report: Report[Any], computed: BaseModel, key: cache.CacheKey | None, *, whole: bool
) -> dict[str, Any]:
    """The summary's fields by their JSON names, in order. A whole customer breakdown
    (``with_clock`` takes it from the part unchanged) is the JSON text kept with the
    cached part: ten thousand customers are not copied and written again per answer."""
    breakdown = CUSTOMER_BREAKDOWNS.get(report.report_type)
    if breakdown is None or not whole:
        return without_rest(computed.model_dump(by_alias=True))
    names = {field.alias or name: name for name, field in type(computed).model_fields.items()}
    dumped = without_rest(computed.model_dump(by_alias=True, exclude={names[breakdown]}))
    text = cache.SUMMARIES.encoded(key, breakdown, lambda: getattr(computed, names[breakdown]))
    return {
        alias: text if alias == breakdown else dumped[alias]
        for alias in names
        if alias == breakdown or alias in dumped
    }


def utc_text(instant: datetime) -> str:
    """``2026-11-29T11:13:13.253117Z``: an instant in UTC with all its microseconds."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
