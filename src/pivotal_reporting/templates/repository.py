"""Queries on ``export_templates``; every one runs in a tenant transaction (RLS)."""

from __future__ import annotations

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.models.export_template import ExportTemplate


async def add(session: AsyncSession, template: ExportTemplate) -> ExportTemplate:
    session.add(template)
    await session.flush()
    await session.refresh(template)
    return template


async def get_visible(
    session: AsyncSession, *, organization_id: str, user_id: str, template_id: str
) -> ExportTemplate | None:
    """The template if it is the user's own or shared in the organization, else ``None``."""
    statement = select(ExportTemplate).where(
        ExportTemplate.id == template_id,
        ExportTemplate.organization_id == organization_id,
        or_(ExportTemplate.user_id == user_id, ExportTemplate.shared.is_(True)),
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def list_visible(
    session: AsyncSession, *, organization_id: str, user_id: str, report_type: str | None
) -> list[ExportTemplate]:
    """Own and shared templates, by name (templates are few: no paging)."""
    statement = select(ExportTemplate).where(
        ExportTemplate.organization_id == organization_id,
        or_(ExportTemplate.user_id == user_id, ExportTemplate.shared.is_(True)),
    )
    if report_type is not None:
        statement = statement.where(ExportTemplate.report_type == report_type)
    statement = statement.order_by(ExportTemplate.name, ExportTemplate.id).limit(500)
    return list((await session.execute(statement)).scalars())


async def remove(session: AsyncSession, template_id: str) -> None:
    await session.execute(delete(ExportTemplate).where(ExportTemplate.id == template_id))
