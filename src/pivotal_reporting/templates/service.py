"""Export template use cases: save, list, read, delete, and start an export from one.

A template is checked like an export request when it is saved (filters by the report's
own schema, references in the organization, columns among the documented ones), and
again when an export starts from it (references may have gone since). Private
templates are visible to their owner only; a ``shared`` one to everyone in the
organization, but only its owner may delete it. Anything invisible is a 404, exactly
like a template that does not exist.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.audit.service import record_event
from pivotal_reporting.auth.principal import Principal
from pivotal_reporting.errors import Forbidden, NotFound
from pivotal_reporting.exports import service as exports
from pivotal_reporting.exports.columns import validate_columns
from pivotal_reporting.models.base import new_id
from pivotal_reporting.models.export_job import ExportJob
from pivotal_reporting.models.export_template import ExportTemplate
from pivotal_reporting.reports.registry import get_report
from pivotal_reporting.templates import repository as repo
from pivotal_reporting.templates.schemas import TemplateCreate


async def create_template(
    session: AsyncSession, principal: Principal, body: TemplateCreate
) -> ExportTemplate:
    request = exports.export_request(
        {"reportType": body.report_type, "format": body.format, "filters": body.filters}
    )
    filters = exports._validated_filters(principal, request)
    validate_columns(body.report_type, body.columns)
    await get_report(body.report_type).check_references(session, filters, field_prefix="filters.")
    template = ExportTemplate(
        id=new_id("tpl"),
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        name=body.name,
        report_type=body.report_type,
        format=body.format,
        filters=filters.model_dump(mode="json", by_alias=True, exclude_none=True),
        columns=body.columns,
        shared=body.shared,
    )
    await repo.add(session, template)
    await record_event(
        session,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        action="export_template_created",
        resource="export_templates",
        resource_id=template.id,
        details={"name": template.name, "reportType": template.report_type, "shared": body.shared},
    )
    return template


async def get_template(
    session: AsyncSession, principal: Principal, template_id: str
) -> ExportTemplate:
    template = await repo.get_visible(
        session,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        template_id=template_id,
    )
    if template is None:
        raise NotFound(f"Export template {template_id} was not found.")
    return template


async def list_templates(
    session: AsyncSession, principal: Principal, report_type: str | None
) -> list[ExportTemplate]:
    return await repo.list_visible(
        session,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        report_type=report_type,
    )


async def delete_template(session: AsyncSession, principal: Principal, template_id: str) -> None:
    template = await get_template(session, principal, template_id)
    if template.user_id != principal.user_id:
        raise Forbidden("Only the template's owner can delete a shared template.")
    await repo.remove(session, template.id)
    await record_event(
        session,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        action="export_template_deleted",
        resource="export_templates",
        resource_id=template.id,
        details={"name": template.name},
    )


async def export_from_template(
    session: AsyncSession,
    principal: Principal,
    template_id: str,
    file_name: str | None,
    idempotency_key: str | None,
    *,
    max_running: int | None,
) -> tuple[ExportJob, bool]:
    """Start an export with the template's report, filters, columns and format."""
    template = await get_template(session, principal, template_id)
    request = exports.export_request(
        {
            "reportType": template.report_type,
            "format": template.format,
            "filters": template.filters,
            "columns": template.columns,
            "fileName": file_name,
        }
    )
    return await exports.request_export(
        session, principal, request, idempotency_key, max_running=max_running
    )
