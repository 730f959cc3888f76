"""Export job use cases for the API: request, read, list, cancel, download.

Services run inside the caller's tenant transaction and only ``flush()``; the route's
``tenant_session`` commits before the response is sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting import metrics
from pivotal_reporting.audit.service import record_event
from pivotal_reporting.auth.principal import Principal
from pivotal_reporting.config import Settings
from pivotal_reporting.errors import Conflict, Gone, NotFound
from pivotal_reporting.exports import repository as repo
from pivotal_reporting.exports.capacity import ensure_export_capacity
from pivotal_reporting.exports.schemas import (
    ExportCreate,
    ExportJobPage,
    ExportJobRead,
    JobPosition,
    decode_job_cursor,
    encode_job_cursor,
)
from pivotal_reporting.exports.tasks import run_export
from pivotal_reporting.filenames import MEDIA_TYPES, safe_file_name
from pivotal_reporting.models.base import new_id
from pivotal_reporting.models.export_job import ExportJob
from pivotal_reporting.reports.base import ReportFilters
from pivotal_reporting.reports.registry import get_report
from pivotal_reporting.storage import ExportStorage

CREATED_MESSAGE = "Export job created successfully"
EXISTING_MESSAGE = "Export job already exists for this Idempotency-Key"


@dataclass(frozen=True)
class Download:
    """A file to stream (``chunks``) or, in redirect mode, a presigned ``redirect_url``."""

    file_name: str
    media_type: str
    size: int
    sha256: str
    chunks: Iterator[bytes]
    redirect_url: str | None = None


@dataclass(frozen=True)
class DeliveryOptions:
    """How downloads are answered: ``stream`` through the API or ``redirect`` (presigned)."""

    mode: str = "stream"
    url_seconds: int = 300

    @classmethod
    def of(cls, settings: Settings) -> DeliveryOptions:
        return cls(settings.export_download_mode, settings.export_download_url_seconds)


def _validated_filters(principal: Principal, body: ExportCreate) -> ReportFilters:
    """The body's filters (already validated by the report's own schema) for this caller."""
    filters = body.filters
    principal.ensure_own_organization(filters.organization_id, field="filters.organizationId")
    return filters


def _request_hash(body: ExportCreate, filters: dict[str, Any]) -> str:
    canonical = {
        "reportType": body.report_type,
        "format": body.format,
        "filters": filters,
        "fileName": body.file_name,
    }
    return hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


async def request_export(
    session: AsyncSession,
    principal: Principal,
    body: ExportCreate,
    idempotency_key: str | None,
    *,
    max_running: int | None = None,
) -> tuple[ExportJob, bool]:
    """Record a pending job, audit it and queue it, all in the caller's transaction.

    Returns ``(job, created)``; ``created`` is ``False`` when ``idempotency_key`` replays
    an earlier identical request. The same key with a different body is a 409. With
    ``max_running``, a new job beyond that many queued or running ones is a 429.
    """
    filters = _validated_filters(principal, body)
    await get_report(body.report_type).check_references(session, filters)
    stored_filters = filters.model_dump(mode="json", by_alias=True, exclude_none=True)
    request_hash = _request_hash(body, stored_filters)
    if idempotency_key:
        earlier = await _replayed(session, principal, idempotency_key, request_hash)
        if earlier is not None:
            return earlier, False
    if max_running is not None:
        await ensure_export_capacity(session, principal.organization_id, max_running)
    job = _new_job(principal, body, stored_filters, idempotency_key, request_hash)
    earlier = await _insert_or_replay(session, principal, job)
    if earlier is not None:
        return earlier, False
    await record_event(
        session,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        action="export_job_created",
        resource="export_jobs",
        resource_id=job.id,
        details={"reportType": job.report_type, "format": job.format, "filters": stored_filters},
    )
    job.queue_job_id = await _defer(session, job)
    await session.flush()
    return job, True


def _new_job(
    principal: Principal,
    body: ExportCreate,
    filters: dict[str, Any],
    idempotency_key: str | None,
    request_hash: str,
) -> ExportJob:
    return ExportJob(
        id=new_id("job"),
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        report_type=body.report_type,
        format=body.format,
        status="pending",
        filters=filters,
        file_name=safe_file_name(body.file_name, body.report_type, body.format, datetime.now(UTC)),
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )


async def _insert_or_replay(
    session: AsyncSession, principal: Principal, job: ExportJob
) -> ExportJob | None:
    """Insert ``job``; if a concurrent request with its key won the race, return that job."""
    try:
        async with session.begin_nested():
            await repo.add_job(session, job)
    except IntegrityError:
        if job.idempotency_key is None or job.request_hash is None:
            raise
        earlier = await _replayed(session, principal, job.idempotency_key, job.request_hash)
        if earlier is None:
            raise
        return earlier
    return None


async def _replayed(
    session: AsyncSession, principal: Principal, key: str, request_hash: str
) -> ExportJob | None:
    earlier = await repo.find_by_idempotency_key(
        session, organization_id=principal.organization_id, user_id=principal.user_id, key=key
    )
    if earlier is not None and earlier.request_hash != request_hash:
        raise Conflict("This Idempotency-Key was already used with a different request body.")
    return earlier


async def _defer(session: AsyncSession, job: ExportJob) -> int:
    """Queue ``run_export`` on the session's own connection: it commits with the job row."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    queued: int = await run_export.configure(connection=driver).defer_async(
        job_id=job.id, organization_id=job.organization_id
    )
    return queued


async def get_export(
    session: AsyncSession, principal: Principal, job_id: str, *, for_update: bool = False
) -> ExportJob:
    """The caller's own job; anybody else's (or none) is 404."""
    job = await repo.get_own_job(
        session,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        job_id=job_id,
        for_update=for_update,
    )
    if job is None:
        raise NotFound(f"Export job {job_id} was not found.")
    return job


async def list_exports(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> ExportJobPage:
    """One page of the caller's jobs, newest first, and the cursor of the next page."""
    rows = await repo.list_own_jobs(
        session,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        status=status,
        after=decode_job_cursor(cursor) if cursor else None,
        limit=limit + 1,  # one more tells whether a next page exists
    )
    page = rows[:limit]
    next_cursor = (
        encode_job_cursor(JobPosition(page[-1].created_at, page[-1].id))
        if len(rows) > limit
        else None
    )
    return ExportJobPage(data=[ExportJobRead.from_job(j) for j in page], next_cursor=next_cursor)


async def cancel_export(session: AsyncSession, principal: Principal, job_id: str) -> ExportJob:
    """Cancel a pending or running job; a running worker stops and removes its partial file."""
    job = await get_export(session, principal, job_id, for_update=True)
    if job.status == "cancelled":
        return job
    # The update below refreshes ``job`` in place (same identity): read the status first.
    previous_status = job.status
    cancelled = await repo.request_cancel(session, job)
    if cancelled is None:
        raise Conflict(
            f"Export job {job_id} is already {previous_status} and can no longer be cancelled."
        )
    await record_event(
        session,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        action="export_job_cancelled",
        resource="export_jobs",
        resource_id=job_id,
        details={"previousStatus": previous_status},
    )
    metrics.EXPORT_CANCELLED.labels(
        cancelled.report_type, cancelled.format, metrics.org_label(cancelled.organization_id)
    ).inc()
    return cancelled


# Terminal states without a file: waiting will not help, so the 409 says why.
_NO_FILE_EVER = {"cancelled": "was cancelled", "failed": "failed"}


async def open_download(
    session: AsyncSession,
    principal: Principal,
    storage: ExportStorage,
    job_id: str,
    delivery: DeliveryOptions = DeliveryOptions(),
) -> Download:
    """The completed file and its metadata; 409 until completed, 410 once expired or deleted.

    In redirect mode a storage that can presign (S3) answers with a URL valid for
    ``delivery.url_seconds``; issuing it is the audited download.
    """
    job = await get_export(session, principal, job_id)
    if job.status == "expired" or job.file_deleted_at is not None:
        raise Gone(f"Export job {job_id} has expired; its file was deleted.")
    if job.status in _NO_FILE_EVER:
        raise Conflict(f"Export job {job_id} {_NO_FILE_EVER[job.status]}; it has no file.")
    if job.status != "completed" or job.storage_key is None or job.checksum_sha256 is None:
        raise Conflict(
            f"Export job {job_id} is {job.status}; the file is available once it is completed."
        )
    if job.expires_at is not None and job.expires_at <= datetime.now(UTC):
        raise Gone(f"Export job {job_id} has expired.")
    try:  # a HEAD request on S3: off the event loop
        size = await asyncio.to_thread(storage.size, job.storage_key)
    except FileNotFoundError as exc:
        raise Gone(f"The file of export job {job_id} is no longer available.") from exc
    media_type = MEDIA_TYPES[job.format]
    url = None
    if delivery.mode == "redirect":
        url = storage.download_url(
            job.storage_key,
            file_name=job.file_name,
            media_type=media_type,
            expires_in=delivery.url_seconds,
        )
    details: dict[str, Any] = {
        "fileName": job.file_name,
        "bytes": size,
        "sha256": job.checksum_sha256,
        "delivery": "stream" if url is None else "redirect",
    }
    if url is not None:
        details["urlExpiresAt"] = (
            datetime.now(UTC) + timedelta(seconds=delivery.url_seconds)
        ).isoformat()
    await record_event(
        session,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        action="export_downloaded",
        resource="export_jobs",
        resource_id=job_id,
        details=details,
    )
    return Download(
        job.file_name,
        media_type,
        size,
        job.checksum_sha256,
        iter(()) if url is not None else storage.iter_bytes(job.storage_key),
        redirect_url=url,
    )


def base64_digest(sha256_hex: str) -> str:
    """The hex SHA-256 as base64, for ``Repr-Digest: sha-256=:...:`` (RFC 9530)."""
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()
