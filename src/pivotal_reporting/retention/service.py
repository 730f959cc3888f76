"""The retention sweep: expire files, delete old job rows and orphan files, audit it all.

Per organization and per batch, one tenant transaction locks its rows (SKIP LOCKED),
deletes the files, updates or deletes the rows and appends one audit event listing what
went. A file is deleted before its row records it: a crash in between leaves a row whose
download already answers 410 and that the next sweep finishes, never a row that outlives
its file's deletion unnoticed or a file without a row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.audit.service import record_event
from pivotal_reporting.config import Settings
from pivotal_reporting.db import Database
from pivotal_reporting.observability.logs import log_event, log_job_transition
from pivotal_reporting.organization_settings import retention_days_by_organization
from pivotal_reporting.retention import repository as repo
from pivotal_reporting.retention.orphans import delete_orphans, find_orphans
from pivotal_reporting.retention.policy import ORPHAN_GRACE, STALE_PARTIAL_AGE, Cutoffs
from pivotal_reporting.storage import ExportStorage, organization_prefix
from pivotal_reporting.storage_backends import open_storage

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
AUDIT_ACTION = "export_retention_sweep"


@dataclass
class OrganizationSweep:
    """What one sweep removed (or, in a dry run, would remove) for one organization."""

    organization_id: str
    retention_days: int
    expired_job_ids: list[str] = field(default_factory=list)
    deleted_job_ids: list[str] = field(default_factory=list)
    orphan_keys: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.expired_job_ids or self.deleted_job_ids or self.orphan_keys)


@dataclass
class RetentionReport:
    dry_run: bool
    organizations: list[OrganizationSweep]
    unattributed_orphans: list[str]
    stale_partials: int = 0

    def totals(self) -> dict[str, int]:
        return {
            "expired_files": sum(len(o.expired_job_ids) for o in self.organizations),
            "deleted_jobs": sum(len(o.deleted_job_ids) for o in self.organizations),
            "orphan_files": sum(len(o.orphan_keys) for o in self.organizations)
            + len(self.unattributed_orphans),
        }


async def run_retention(
    database: Database,
    storage: ExportStorage,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    orphan_grace: timedelta = ORPHAN_GRACE,
    organization_ids: Collection[str] | None = None,
) -> RetentionReport:
    """One sweep over every organization (or only ``organization_ids``).

    Safe to run from several workers at once. Orphan files whose key names no known
    organization are removed only by an unrestricted sweep.
    """
    now = now or datetime.now(UTC)
    orgs, orphans = await _scope(database, storage, now - orphan_grace, organization_ids)
    report = RetentionReport(dry_run=dry_run, organizations=[], unattributed_orphans=[])
    for organization_id, days in orgs:
        sweep = OrganizationSweep(organization_id, days)
        sweep.orphan_keys = orphans.pop(organization_prefix(organization_id), [])
        await _sweep_organization(
            database, storage, sweep, Cutoffs.at(now, days), dry_run, batch_size
        )
        report.organizations.append(sweep)
    report.unattributed_orphans = [key for keys in orphans.values() for key in keys]
    if not dry_run:
        await asyncio.to_thread(delete_orphans, storage, report.unattributed_orphans)
        if organization_ids is None:  # partial writes (uploads) of long-dead workers
            report.stale_partials = await asyncio.to_thread(
                storage.discard_stale_partials, now - STALE_PARTIAL_AGE
            )
    log_event(
        log, "retention sweep finished", event="retention_sweep", dry_run=dry_run, **report.totals()
    )
    return report


async def _scope(
    database: Database,
    storage: ExportStorage,
    orphans_before: datetime,
    organization_ids: Collection[str] | None,
) -> tuple[list[tuple[str, int]], dict[str, list[str]]]:
    """The organizations to sweep with their retention days, and the orphan files by prefix."""
    async with database.system_session() as session:
        orgs = await retention_days_by_organization(session, organization_ids)
        orphans = await find_orphans(session, storage, orphans_before)
    if organization_ids is not None:
        wanted = {organization_prefix(org) for org, _ in orgs}
        orphans = {prefix: keys for prefix, keys in orphans.items() if prefix in wanted}
    return orgs, orphans


async def _sweep_organization(
    database: Database,
    storage: ExportStorage,
    sweep: OrganizationSweep,
    cutoffs: Cutoffs,
    dry_run: bool,
    batch_size: int,
) -> None:
    if dry_run:
        async with database.tenant_session(sweep.organization_id) as session:
            org = sweep.organization_id
            sweep.expired_job_ids = [
                r.id for r in await repo.files_due(session, org, cutoffs, None)
            ]
            sweep.deleted_job_ids = await repo.rows_due(session, org, cutoffs, None)
        return
    orphan_keys = sweep.orphan_keys
    while True:
        async with database.tenant_session(sweep.organization_id) as session:
            expired, deleted = await _sweep_batch(session, storage, sweep, cutoffs, batch_size)
            batch_orphans, orphan_keys = orphan_keys, []
            await asyncio.to_thread(delete_orphans, storage, batch_orphans)
            if expired or deleted or batch_orphans:
                await _audit(session, sweep, cutoffs, expired, deleted, batch_orphans)
        sweep.expired_job_ids += expired
        sweep.deleted_job_ids += deleted
        if len(expired) < batch_size and len(deleted) < batch_size:
            return


async def _sweep_batch(
    session: AsyncSession,
    storage: ExportStorage,
    sweep: OrganizationSweep,
    cutoffs: Cutoffs,
    limit: int,
) -> tuple[list[str], list[str]]:
    """Delete one locked batch of files, then one of rows; return their job ids."""
    org = sweep.organization_id
    due = await repo.files_due(session, org, cutoffs, limit)
    for row in due:
        # idempotent: a file already gone is fine; an object store is a network call
        await asyncio.to_thread(storage.delete, row.storage_key)
    changed = (
        await repo.mark_files_deleted(session, org, [row.id for row in due], cutoffs) if due else []
    )
    for job in changed:
        log_job_transition(job, reason="retention: file deleted")
    ids = await repo.rows_due(session, org, cutoffs, limit)
    removed = await repo.delete_rows(session, org, ids) if ids else []
    for job in removed:
        log_job_transition(job, reason="retention: job row deleted")
    return [row.id for row in due], [job.id for job in removed]


async def _audit(
    session: AsyncSession,
    sweep: OrganizationSweep,
    cutoffs: Cutoffs,
    expired: list[str],
    deleted: list[str],
    orphans: list[str],
) -> None:
    await record_event(
        session,
        organization_id=sweep.organization_id,
        user_id=None,
        action=AUDIT_ACTION,
        resource="export_jobs",
        details={
            "retentionDays": sweep.retention_days,
            "sweptAt": cutoffs.now.isoformat(),
            "expiredFiles": len(expired),
            "expiredJobIds": expired,
            "deletedJobs": len(deleted),
            "deletedJobIds": deleted,
            "orphanFiles": len(orphans),
            "orphanFileKeys": orphans,
        },
    )


async def run_cleanup(url: str, settings: Settings, *, dry_run: bool) -> RetentionReport:
    """The ``cleanup`` command: one sweep with its own small connection pool."""
    database = Database.connect(url, pool_size=2)
    try:
        return await run_retention(database, open_storage(settings), dry_run=dry_run)
    finally:
        await database.dispose()


def describe(report: RetentionReport) -> list[str]:
    """Human-readable lines: one per organization that had something to remove, then totals."""
    verb = "would remove" if report.dry_run else "removed"
    lines = [
        f"{sweep.organization_id} (retention {sweep.retention_days} d): {verb} "
        f"{len(sweep.expired_job_ids)} expired file(s), {len(sweep.deleted_job_ids)} job row(s), "
        f"{len(sweep.orphan_keys)} orphan file(s)"
        for sweep in report.organizations
        if sweep.anything
    ]
    totals = report.totals()
    lines.append(
        f"total: {verb} {totals['expired_files']} expired file(s), {totals['deleted_jobs']} "
        f"job row(s), {totals['orphan_files']} orphan file(s)"
    )
    return lines
