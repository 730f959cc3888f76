"""Queue tasks: ``run_export`` (one export job) and the periodic stalled-job sweeper.

Tasks receive ids only. Their database, storage and settings come from the worker's
:class:`~pivotal_reporting.worker_runtime.WorkerRuntime`, passed in procrastinate's
``additional_context``. The sweeper's schedule is registered by the worker when it starts
(:func:`pivotal_reporting.worker.periodic_schedule`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import procrastinate
from procrastinate import JobContext
from procrastinate.jobs import Status

from pivotal_reporting import metrics
from pivotal_reporting.db import Database
from pivotal_reporting.exports import repository as repo
from pivotal_reporting.exports.failures import (
    MAX_RETRIES,
    TransientExportError,
    error_type_of,
    is_transient,
    safe_error_message,
)
from pivotal_reporting.exports.runner import execute_export
from pivotal_reporting.queue import queue_app
from pivotal_reporting.worker_runtime import WorkerRuntime, runtime_of

log = logging.getLogger(__name__)

EXPORT_QUEUE = "exports"
SWEEP_EVERY_SECONDS = 5
QUEUE_JOB_RETENTION_HOURS = 24 * 7  # the sweeper's own rows accrue at 17,280 a day
WORKER_LOST_MESSAGE = (
    "The export was interrupted and could not be resumed; please request it again."
)


@queue_app.task(
    name="exports.run_export",
    queue=EXPORT_QUEUE,
    pass_context=True,
    retry=procrastinate.RetryStrategy(
        max_attempts=MAX_RETRIES, exponential_wait=2, retry_exceptions=[TransientExportError]
    ),
)
async def run_export(context: JobContext, *, job_id: str, organization_id: str) -> None:
    """Write one export file; transient failures raise ``TransientExportError`` (retried)."""
    runtime = runtime_of(context)
    attempts_so_far = context.job.attempts
    try:
        await execute_export(
            runtime.database, runtime.storage, runtime.settings, job_id, organization_id
        )
    except asyncio.CancelledError as exc:
        # The worker is shutting down past its grace period: hand the job to another run.
        log.warning("export %s: interrupted by worker shutdown, will retry", job_id)
        await _best_effort_release(runtime.database, job_id, organization_id)
        raise TransientExportError("interrupted by worker shutdown") from exc
    except Exception as exc:
        if is_transient(exc) and attempts_so_far < MAX_RETRIES:
            log.warning("export %s: transient failure, will retry: %r", job_id, exc)
            await _best_effort_release(runtime.database, job_id, organization_id)
            raise TransientExportError(str(exc)) from exc
        log.exception("export %s failed permanently", job_id)
        await _best_effort_fail(runtime.database, job_id, organization_id, exc)


async def _best_effort_release(database: Database, job_id: str, organization_id: str) -> None:
    try:
        async with database.tenant_session(organization_id) as session:
            job = await repo.get_job(session, organization_id, job_id)
            if job is not None and job.status == "processing":
                await repo.release_for_retry(
                    session,
                    job_id,
                    job.attempts,
                    "A temporary error occurred; the export will be retried.",
                )
    except Exception:  # the database may still be down; the queue retry covers it
        log.warning("export %s: could not record the retry", job_id, exc_info=True)


async def _best_effort_fail(
    database: Database, job_id: str, organization_id: str, exc: BaseException
) -> None:
    try:
        async with database.tenant_session(organization_id) as session:
            job = await repo.mark_failed(session, job_id, None, safe_error_message(exc))
            if job is not None:
                labels = (job.report_type, job.format, metrics.org_label(organization_id))
                metrics.EXPORT_FAILED.labels(*labels, error_type_of(exc)).inc()
    except Exception:  # the sweeper fails it later if this could not be written
        log.warning("export %s: could not record the failure", job_id, exc_info=True)


# croniter reads a 6th field as seconds: every SWEEP_EVERY_SECONDS seconds.
SWEEP_CRON = f"* * * * * */{SWEEP_EVERY_SECONDS}"
PERIODIC_ID = "exports"


@queue_app.task(name="exports.sweep_stalled_exports", queue=EXPORT_QUEUE, pass_context=True)
async def sweep_stalled_exports(context: JobContext, timestamp: int) -> None:
    """Re-queue exports whose worker died; fail export rows whose queue job is gone."""
    runtime = runtime_of(context)
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(
        task_name=run_export.name, seconds_since_heartbeat=runtime.stalled_after_seconds
    )
    for job in stalled:
        if job.attempts >= MAX_RETRIES:
            log.error("export queue job %s stalled %s times; giving up", job.id, job.attempts)
            await manager.finish_job(job=job, status=Status.FAILED, delete_job=False)
        else:
            log.warning("export queue job %s: its worker is gone; re-queueing", job.id)
            await manager.retry_job(job=job, retry_at=datetime.now(UTC))
    await _fail_orphans(runtime, grace=timedelta(seconds=runtime.stalled_after_seconds * 2))
    if timestamp % 3600 < SWEEP_EVERY_SECONDS:  # hourly: finished queue rows of this queue
        await manager.delete_old_jobs(
            nb_hours=QUEUE_JOB_RETENTION_HOURS,
            queue=EXPORT_QUEUE,
            include_failed=True,
            include_cancelled=True,
            include_aborted=True,
        )


async def _fail_orphans(runtime: WorkerRuntime, grace: timedelta) -> None:
    async with runtime.database.system_session() as session:
        for orphan in await repo.find_orphaned_jobs(session, grace.total_seconds()):
            job = await repo.mark_failed(session, orphan.id, None, WORKER_LOST_MESSAGE)
            if job is not None:
                log.error(
                    "export %s: queue job %s, marking failed",
                    orphan.id,
                    orphan.queue_status or "missing",
                )
                labels = (job.report_type, job.format, metrics.org_label(job.organization_id))
                metrics.EXPORT_FAILED.labels(*labels, "worker_lost").inc()
