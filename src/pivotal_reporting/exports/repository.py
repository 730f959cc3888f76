"""SQL on ``export_jobs``: the caller's own jobs, and the worker's guarded transitions.

Every worker transition is fenced by ``attempts``: a run that was superseded (its worker
stalled and the job was re-queued) can no longer change the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.exports.schemas import JobPosition
from pivotal_reporting.models.export_job import ExportJob
from pivotal_reporting.observability.logs import log_job_transition

ACTIVE_STATUSES = ("pending", "processing")

# Serialise the check-then-insert of one organization for the rest of the transaction,
# so two simultaneous requests cannot both see "one slot left".
_CAPACITY_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('export_capacity:' || :org, 0))"
)
_RUNNING = text(
    "SELECT count(*) FROM export_jobs "
    "WHERE organization_id = :org AND status IN ('pending', 'processing')"
)


async def lock_export_capacity(session: AsyncSession, organization_id: str) -> None:
    """Hold the organization's export-capacity lock until the transaction ends."""
    await session.execute(_CAPACITY_LOCK, {"org": organization_id})


async def count_running_exports(session: AsyncSession, organization_id: str) -> int:
    """Export jobs of ``organization_id`` that are queued or running."""
    count: int = (await session.execute(_RUNNING, {"org": organization_id})).scalar_one()
    return count


async def add_job(session: AsyncSession, job: ExportJob) -> ExportJob:
    session.add(job)
    await session.flush()
    log_job_transition(job)
    return job


async def find_by_idempotency_key(
    session: AsyncSession, *, organization_id: str, user_id: str, key: str
) -> ExportJob | None:
    query = select(ExportJob).where(
        ExportJob.organization_id == organization_id,
        ExportJob.user_id == user_id,
        ExportJob.idempotency_key == key,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_own_job(
    session: AsyncSession,
    *,
    organization_id: str,
    user_id: str,
    job_id: str,
    for_update: bool = False,
) -> ExportJob | None:
    """The job if it belongs to this user of this organization, else ``None``."""
    query = select(ExportJob).where(
        ExportJob.id == job_id,
        ExportJob.organization_id == organization_id,
        ExportJob.user_id == user_id,
    )
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def list_own_jobs(
    session: AsyncSession,
    *,
    organization_id: str,
    user_id: str,
    status: str | None,
    after: JobPosition | None,
    limit: int,
) -> list[ExportJob]:
    """Up to ``limit`` of the user's jobs after ``after``, newest first (``created_at``, ``id``)."""
    where: list[Any] = [ExportJob.organization_id == organization_id, ExportJob.user_id == user_id]
    if status:
        where.append(ExportJob.status == status)
    if after is not None:
        where.append(
            or_(
                ExportJob.created_at < after.created_at,
                and_(ExportJob.created_at == after.created_at, ExportJob.id > after.job_id),
            )
        )
    page = await session.execute(
        select(ExportJob)
        .where(*where)
        .order_by(ExportJob.created_at.desc(), ExportJob.id)
        .limit(limit)
    )
    return list(page.scalars())


async def _update_returning(
    session: AsyncSession, job_id: str, where: list[Any], **values: Any
) -> ExportJob | None:
    statement = (
        update(ExportJob)
        .where(ExportJob.id == job_id, *where)
        .values(updated_at=func.now(), **values)
        .returning(ExportJob)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    job = (await session.execute(statement)).scalar_one_or_none()
    if job is not None and "status" in values:
        log_job_transition(job)
    return job


async def claim_job(session: AsyncSession, job_id: str) -> ExportJob | None:
    """Move a pending (or interrupted) job to ``processing`` and start a new attempt."""
    return await _update_returning(
        session,
        job_id,
        [ExportJob.status.in_(ACTIVE_STATUSES), ExportJob.cancel_requested_at.is_(None)],
        status="processing",
        attempts=ExportJob.attempts + 1,
        started_at=func.coalesce(ExportJob.started_at, func.now()),
        processed_rows=0,
        total_rows=None,
        error_message=None,
    )


def _fence(attempt: int) -> list[Any]:
    return [
        ExportJob.status == "processing",
        ExportJob.attempts == attempt,
        ExportJob.cancel_requested_at.is_(None),
    ]


async def record_progress(
    session: AsyncSession, job_id: str, attempt: int, *, processed: int, total: int | None
) -> bool:
    """Store progress; ``False`` means stop: cancelled, or this attempt was superseded."""
    values: dict[str, Any] = {"processed_rows": processed}
    if total is not None:
        values["total_rows"] = total
    job = await _update_returning(session, job_id, _fence(attempt), **values)
    return job is not None


async def mark_completed(
    session: AsyncSession,
    job_id: str,
    attempt: int,
    *,
    rows: int,
    storage_key: str,
    checksum_sha256: str,
    file_size_bytes: int,
    download_url: str,
    expires_at: datetime,
    data_as_of: datetime,
) -> ExportJob | None:
    return await _update_returning(
        session,
        job_id,
        _fence(attempt),
        status="completed",
        processed_rows=rows,
        total_rows=rows,
        storage_key=storage_key,
        checksum_sha256=checksum_sha256,
        file_size_bytes=file_size_bytes,
        download_url=download_url,
        completed_at=func.now(),
        ended_at=func.now(),
        expires_at=expires_at,
        data_as_of=data_as_of,
    )


async def mark_failed(
    session: AsyncSession, job_id: str, attempt: int | None, message: str
) -> ExportJob | None:
    """``failed`` with a safe message; ``attempt=None`` for the sweeper (any attempt)."""
    where: list[Any] = [ExportJob.status.in_(ACTIVE_STATUSES)]
    if attempt is not None:
        where.append(ExportJob.attempts == attempt)
    return await _update_returning(
        session, job_id, where, status="failed", error_message=message, ended_at=func.now()
    )


async def release_for_retry(session: AsyncSession, job_id: str, attempt: int, message: str) -> bool:
    """Back to ``pending`` after a transient error; the queue retries it with backoff."""
    job = await _update_returning(
        session, job_id, _fence(attempt), status="pending", error_message=message
    )
    return job is not None


async def request_cancel(session: AsyncSession, job: ExportJob) -> ExportJob | None:
    """Cancel a pending or processing job at once; a running worker stops at its next check."""
    return await _update_returning(
        session,
        job.id,
        [ExportJob.status.in_(ACTIVE_STATUSES)],
        status="cancelled",
        cancel_requested_at=func.now(),
        ended_at=func.now(),
    )


_ORPHANS = text(
    """
    SELECT e.id, e.organization_id, e.status, j.status AS queue_status
    FROM export_jobs e
    LEFT JOIN procrastinate_jobs j ON j.id = e.queue_job_id
    WHERE e.status IN ('pending', 'processing')
      AND e.updated_at < now() - make_interval(secs => :grace)
      AND (j.id IS NULL OR j.status::text IN ('succeeded', 'failed', 'cancelled', 'aborted'))
    ORDER BY e.updated_at
    LIMIT 500
    """
)


async def find_orphaned_jobs(session: AsyncSession, grace_seconds: float) -> list[Any]:
    """Active export rows whose queue job is finished or gone (system session only)."""
    return list((await session.execute(_ORPHANS, {"grace": grace_seconds})).all())


async def get_job(session: AsyncSession, organization_id: str, job_id: str) -> ExportJob | None:
    """A job of the session's organization (worker side; row-level security applies)."""
    return await session.get(
        ExportJob, {"organization_id": organization_id, "id": job_id}, populate_existing=True
    )
