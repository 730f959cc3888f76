"""``/v1/reports/export``: create, list, read, cancel and download export jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse

from pivotal_reporting.auth.dependencies import get_database, require
from pivotal_reporting.auth.principal import EXPORT_REPORTS, VIEW_REPORTS, Principal
from pivotal_reporting.config import Settings
from pivotal_reporting.db import Database
from pivotal_reporting.errors import problem_responses
from pivotal_reporting.exports import service
from pivotal_reporting.exports.schemas import (
    ExportCreate,
    ExportCreated,
    ExportJobPage,
    ExportJobStatusRead,
    ExportStatus,
)
from pivotal_reporting.filenames import content_disposition
from pivotal_reporting.storage import ExportStorage
from pivotal_reporting.storage_backends import open_storage
from pivotal_reporting.validation import Id

router = APIRouter(prefix="/v1/reports/export", tags=["exports"])

Viewer = Annotated[Principal, Depends(require(VIEW_REPORTS))]
Exporter = Annotated[Principal, Depends(require(EXPORT_REPORTS))]
DatabaseDep = Annotated[Database, Depends(get_database)]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
]


def get_storage(request: Request) -> ExportStorage:
    """The export file storage of this app (one per process)."""
    storage: ExportStorage | None = getattr(request.app.state, "export_storage", None)
    if storage is None:
        settings: Settings = request.app.state.settings
        storage = request.app.state.export_storage = open_storage(settings)
    return storage


JobId = Annotated[Id, Path(description="The export job's id.")]
StorageDep = Annotated[ExportStorage, Depends(get_storage)]


@router.post(
    "",
    status_code=202,
    response_model=ExportCreated,
    summary="Request an export (queued; poll the job, then download)",
    responses={
        200: {"model": ExportCreated, "description": "Replay of an Idempotency-Key"},
        **problem_responses(400, 401, 403, 409, 413, 415, 422, 429, 503),
    },
)
async def create_export(
    request: Request,
    body: ExportCreate,
    principal: Exporter,
    database: DatabaseDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    settings: Settings = request.app.state.settings
    async with database.tenant_session(principal.organization_id) as session:
        job, created = await service.request_export(
            session,
            principal,
            body,
            idempotency_key,
            max_running=settings.max_running_exports_per_org,
        )
    message = service.CREATED_MESSAGE if created else service.EXISTING_MESSAGE
    content = ExportCreated(job_id=job.id, status=job.status, message=message)
    return JSONResponse(
        content.model_dump(mode="json"),
        status_code=202 if created else 200,
        headers={"Location": f"{settings.public_base_path.rstrip('/')}{router.prefix}/{job.id}"},
    )


@router.get(
    "",
    response_model=ExportJobPage,
    summary="The caller's export jobs, newest first",
    responses=problem_responses(401, 403, 422, 429, 503),
)
async def list_exports(
    principal: Viewer,
    database: DatabaseDep,
    status: ExportStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ExportJobPage:
    async with database.tenant_session(principal.organization_id) as session:
        return await service.list_exports(
            session, principal, status=status, cursor=cursor, limit=limit
        )


@router.get(
    "/{job_id}",
    response_model=ExportJobStatusRead,
    summary="One export job and its progress",
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
async def read_export(
    job_id: JobId, principal: Viewer, database: DatabaseDep
) -> ExportJobStatusRead:
    async with database.tenant_session(principal.organization_id) as session:
        job = await service.get_export(session, principal, job_id)
    return ExportJobStatusRead.from_job(job)


@router.delete(
    "/{job_id}",
    response_model=ExportJobStatusRead,
    summary="Cancel a pending or running export",
    responses=problem_responses(401, 403, 404, 409, 413, 422, 429, 503),
)
async def cancel_export(
    job_id: JobId, principal: Exporter, database: DatabaseDep
) -> ExportJobStatusRead:
    async with database.tenant_session(principal.organization_id) as session:
        job = await service.cancel_export(session, principal, job_id)
    return ExportJobStatusRead.from_job(job)


@router.post(
    "/{job_id}/cancel",
    response_model=ExportJobStatusRead,
    summary="Cancel (POST alias of DELETE)",
    responses=problem_responses(401, 403, 404, 409, 413, 422, 429, 503),
)
async def cancel_export_post(
    job_id: JobId, principal: Exporter, database: DatabaseDep
) -> ExportJobStatusRead:
    return await cancel_export(job_id, principal, database)


@router.get(
    "/{job_id}/download",
    response_class=Response,
    summary="Download a completed export",
    responses={
        200: {"content": {"text/csv": {}, "application/json": {}}},
        307: {"description": "Redirect to a short-lived presigned URL (S3, redirect mode)"},
        **problem_responses(401, 403, 404, 409, 410, 422, 429, 503),
    },
)
async def download_export(
    request: Request, job_id: JobId, principal: Exporter, database: DatabaseDep, storage: StorageDep
) -> Response:
    settings: Settings = request.app.state.settings
    async with database.tenant_session(principal.organization_id) as session:
        download = await service.open_download(
            session, principal, storage, job_id, service.DeliveryOptions.of(settings)
        )
    if download.redirect_url is not None:
        return RedirectResponse(
            download.redirect_url, status_code=307, headers={"Cache-Control": "private, no-store"}
        )
    headers = {
        "Content-Disposition": content_disposition(download.file_name),
        "Content-Length": str(download.size),
        "X-Checksum-SHA256": download.sha256,
        "Repr-Digest": f"sha-256=:{service.base64_digest(download.sha256)}:",
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(download.chunks, media_type=download.media_type, headers=headers)
