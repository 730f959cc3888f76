"""Running one export job in a worker: claim, count, stream, checksum, publish, complete."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting import metrics
from pivotal_reporting.audit.service import record_event
from pivotal_reporting.config import Settings
from pivotal_reporting.db import Database
from pivotal_reporting.exports import repository as repo
from pivotal_reporting.exports.columns import column_kinds, select_columns
from pivotal_reporting.exports.formats import ExportDocument, get_format
from pivotal_reporting.exports.formats.base import job_names
from pivotal_reporting.exports.writers import (
    ExportCancelled,
    ProgressCallback,
    count_rows_in_snapshot,
    export_snapshot,
    snapshot_connection,
)
from pivotal_reporting.filenames import download_path
from pivotal_reporting.models.export_job import ExportJob
from pivotal_reporting.organization_settings import read_organization_settings
from pivotal_reporting.replica import ExportedSnapshot
from pivotal_reporting.reports.base import ExportQuery, ReportContext
from pivotal_reporting.reports.registry import get_report
from pivotal_reporting.storage import (
    ExportStorage,
    Partial,
    StoredFile,
    export_file_key,
)

log = logging.getLogger(__name__)


def storage_key(job: ExportJob) -> str:
    """This attempt's file key (:func:`~pivotal_reporting.storage.export_file_key`)."""
    return export_file_key(job.organization_id, job.id, job.attempts, job.format)


async def execute_export(
    database: Database,
    storage: ExportStorage,
    settings: Settings,
    job_id: str,
    organization_id: str,
) -> None:
    """Run one attempt of ``job_id``; returns quietly if it is cancelled or already done."""
    async with database.tenant_session(organization_id) as session:
        job = await repo.claim_job(session, job_id)
        if job is None:
            log.info("export %s: nothing to do (cancelled, finished or unknown)", job_id)
            return
        org = await read_organization_settings(session, organization_id)
        names = await job_names(session, organization_id, job.user_id)
    labels = (job.report_type, job.format, metrics.org_label(organization_id))
    if job.attempts == 1:
        metrics.EXPORT_STARTED.labels(*labels).inc()
        wait = (datetime.now(UTC) - job.created_at).total_seconds()
        metrics.EXPORT_QUEUE_WAIT.labels(job.report_type).observe(max(wait, 0.0))
    report = get_report(job.report_type)
    filters = report.filters_model.model_validate(job.filters)
    ctx = ReportContext(
        organization_id, job.user_id, org.timezone, org.base_currency, now=job.created_at
    )
    query = select_columns(report.export_query(ctx, filters), job.columns)
    # Earlier attempts' partial files or uploads (a killed worker's); storage calls that
    # may go over the network run in a thread, off the worker's event loop.
    await asyncio.to_thread(storage.discard_partials, f"{storage_key(job).rsplit('-', 1)[0]}-")

    def document(snapshot: ExportedSnapshot, counting: asyncio.Task[int]) -> ExportDocument:
        return ExportDocument(
            job.id, report, filters, ctx, names[0], names[1], datetime.now(UTC), database,
            snapshot.snapshot_id, column_kinds(job.report_type), counting,
            snapshot_on_replica=snapshot.read.on_replica,
        )  # fmt: skip

    try:
        rows, partial, data_as_of = await _write_file(database, storage, job, query, document)
    except ExportCancelled:
        log.info("export %s: cancelled while running; partial file removed", job_id)
        return
    stored = await _publish(
        database, storage, settings, job, partial, rows, org.retention_days, data_as_of
    )
    if stored is None:
        return
    metrics.EXPORT_COMPLETED.labels(*labels).inc()
    started = job.started_at or job.created_at
    metrics.EXPORT_DURATION_MS.labels(*labels).observe(
        (datetime.now(UTC) - started).total_seconds() * 1000
    )
    log.info("export %s: %d rows, %d bytes, sha256 %s", job_id, rows, stored.size, stored.sha256)


def _progress_reporter(
    database: Database, job: ExportJob, counting: asyncio.Task[int]
) -> ProgressCallback:
    async def report(processed: int) -> bool:
        total = counting.result() if counting.done() and not counting.cancelled() else None
        async with database.tenant_session(job.organization_id) as session:
            return await repo.record_progress(
                session, job.id, job.attempts, processed=processed, total=total
            )

    return report


async def _write_file(
    database: Database,
    storage: ExportStorage,
    job: ExportJob,
    query: ExportQuery,
    document: Callable[[ExportedSnapshot, asyncio.Task[int]], ExportDocument],
) -> tuple[int, Partial, datetime]:
    """Stream the rows into a partial file; the caller publishes it. Aborts on any error.

    Returns the rows, the file and the instant the rows are from (``dataAsOf``).
    """
    partial = storage.begin(storage_key(job))
    try:
        started = time.perf_counter()
        async with snapshot_connection(database, job.organization_id) as conn:
            snapshot = await export_snapshot(conn)
            counting = asyncio.create_task(
                count_rows_in_snapshot(database, job.organization_id, snapshot, query)
            )
            try:
                progress = _progress_reporter(database, job, counting)
                if not await progress(0):
                    raise ExportCancelled
                writer = get_format(job.format).writer
                result = await writer(document(snapshot, counting), conn, query, partial, progress)
                total = await counting
            finally:
                if not counting.done():
                    counting.cancel()
                    with contextlib.suppress(BaseException):
                        await counting
        if result.rows != total:  # impossible in one snapshot; never publish a short file
            raise RuntimeError(
                f"row count changed during export: counted {total}, wrote {result.rows}"
            )
        log.debug(
            "export %s: wrote %d rows in %.3f s", job.id, total, time.perf_counter() - started
        )
        return total, partial, snapshot.read.data_as_of
    except BaseException:
        storage.abort(partial)
        raise


async def _publish(
    database: Database,
    storage: ExportStorage,
    settings: Settings,
    job: ExportJob,
    partial: Partial,
    rows: int,
    retention_days: int,
    data_as_of: datetime,
) -> StoredFile | None:
    """Mark completed and move the file into place in one transaction; ``None`` if cancelled."""
    stored: StoredFile | None = None
    try:
        async with database.tenant_session(job.organization_id) as session:
            completed = await repo.mark_completed(
                session,
                job.id,
                job.attempts,
                rows=rows,
                storage_key=partial.key,
                checksum_sha256=partial.sha256,
                file_size_bytes=partial.size,
                download_url=download_path(settings, job.id),
                expires_at=datetime.now(UTC) + timedelta(days=retention_days),
                data_as_of=data_as_of,
            )
            if completed is None:  # cancelled (or superseded) at the last moment
                storage.abort(partial)
                return None
            await _audit_completion(session, job, partial, rows)
            # the row commits only after the rename (or the object upload completed)
            stored = await asyncio.to_thread(storage.commit, partial)
        return stored
    except BaseException:
        if stored is None:
            storage.abort(partial)
        else:  # renamed, but the row did not commit: the next attempt writes its own file
            storage.delete(stored.key)
        raise


async def _audit_completion(
    session: AsyncSession, job: ExportJob, partial: Partial, rows: int
) -> None:
    await record_event(
        session,
        organization_id=job.organization_id,
        user_id=job.user_id,
        action="export_job_completed",
        resource="export_jobs",
        resource_id=job.id,
        details={"rows": rows, "bytes": partial.size, "sha256": partial.sha256},
    )
