"""``/v1/reports/export-templates``: save, list, read and delete templates; export one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Request, Response
from fastapi.responses import JSONResponse

from pivotal_reporting.auth.dependencies import get_database, require
from pivotal_reporting.auth.principal import EXPORT_REPORTS, VIEW_REPORTS, Principal
from pivotal_reporting.config import Settings
from pivotal_reporting.db import Database
from pivotal_reporting.errors import problem_responses
from pivotal_reporting.exports import service as exports
from pivotal_reporting.exports.schemas import ExportCreated, ReportType
from pivotal_reporting.templates import service
from pivotal_reporting.templates.schemas import (
    TemplateCreate,
    TemplateExport,
    TemplatePage,
    TemplateRead,
)
from pivotal_reporting.validation import Id

router = APIRouter(prefix="/v1/reports/export-templates", tags=["export templates"])

Viewer = Annotated[Principal, Depends(require(VIEW_REPORTS))]
Exporter = Annotated[Principal, Depends(require(EXPORT_REPORTS))]
DatabaseDep = Annotated[Database, Depends(get_database)]
TemplateId = Annotated[Id, Path(description="The template's id.")]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
]


@router.post(
    "",
    status_code=201,
    response_model=TemplateRead,
    summary="Save an export template",
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429, 503),
)
async def create_template(
    request: Request, body: TemplateCreate, principal: Exporter, database: DatabaseDep
) -> JSONResponse:
    async with database.tenant_session(principal.organization_id) as session:
        template = await service.create_template(session, principal, body)
    settings: Settings = request.app.state.settings
    return JSONResponse(
        TemplateRead.from_template(template).model_dump(mode="json"),
        status_code=201,
        headers={
            "Location": f"{settings.public_base_path.rstrip('/')}{router.prefix}/{template.id}"
        },
    )


@router.get(
    "",
    response_model=TemplatePage,
    summary="Own and shared templates, by name",
    responses=problem_responses(401, 403, 422, 429, 503),
)
async def list_templates(
    principal: Viewer, database: DatabaseDep, report_type: ReportType | None = None
) -> TemplatePage:
    async with database.tenant_session(principal.organization_id) as session:
        templates = await service.list_templates(session, principal, report_type)
    return TemplatePage(data=[TemplateRead.from_template(t) for t in templates])


@router.get(
    "/{template_id}",
    response_model=TemplateRead,
    summary="One template",
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
async def read_template(
    template_id: TemplateId, principal: Viewer, database: DatabaseDep
) -> TemplateRead:
    async with database.tenant_session(principal.organization_id) as session:
        template = await service.get_template(session, principal, template_id)
    return TemplateRead.from_template(template)


@router.delete(
    "/{template_id}",
    status_code=204,
    summary="Delete an own template",
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
async def delete_template(
    template_id: TemplateId, principal: Exporter, database: DatabaseDep
) -> Response:
    async with database.tenant_session(principal.organization_id) as session:
        await service.delete_template(session, principal, template_id)
    return Response(status_code=204)


@router.post(
    "/{template_id}/export",
    status_code=202,
    response_model=ExportCreated,
    summary="Start an export from a template (same job lifecycle as POST /v1/reports/export)",
    responses={
        200: {"model": ExportCreated, "description": "Replay of an Idempotency-Key"},
        **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
    },
)
async def export_from_template(
    request: Request,
    template_id: TemplateId,
    principal: Exporter,
    database: DatabaseDep,
    body: Annotated[TemplateExport | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    settings: Settings = request.app.state.settings
    async with database.tenant_session(principal.organization_id) as session:
        job, created = await service.export_from_template(
            session,
            principal,
            template_id,
            body.file_name if body else None,
            idempotency_key,
            max_running=settings.max_running_exports_per_org,
        )
    message = exports.CREATED_MESSAGE if created else exports.EXISTING_MESSAGE
    content = ExportCreated(job_id=job.id, status=job.status, message=message)
    return JSONResponse(
        content.model_dump(mode="json"),
        status_code=202 if created else 200,
        headers={"Location": f"{settings.public_base_path.rstrip('/')}/v1/reports/export/{job.id}"},
    )
