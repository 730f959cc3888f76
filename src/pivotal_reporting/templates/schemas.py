"""Request and response bodies of the export-template API (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from pivotal_reporting.exports.schemas import ExportFormat, ReportType
from pivotal_reporting.models.export_template import ExportTemplate
from pivotal_reporting.schema_base import CamelModel


class TemplateCreate(CamelModel):
    """``POST /v1/reports/export-templates``: a named export request to start again later."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    report_type: ReportType
    format: ExportFormat
    filters: dict[str, Any] = Field(default_factory=dict)
    columns: list[str] | None = Field(default=None, max_length=100)
    shared: bool = Field(
        default=False, description="Visible to (and usable by) everyone in the organization."
    )


class TemplateExport(CamelModel):
    """``POST /v1/reports/export-templates/{id}/export``: optional per-run file name."""

    model_config = ConfigDict(extra="forbid")

    file_name: str | None = Field(default=None, max_length=255)


class TemplateRead(CamelModel):
    id: str
    organization_id: str
    user_id: str
    name: str
    report_type: str
    format: str
    filters: dict[str, Any]
    columns: list[str] | None
    shared: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_template(cls, template: ExportTemplate) -> TemplateRead:
        return cls(
            id=template.id,
            organization_id=template.organization_id,
            user_id=template.user_id,
            name=template.name,
            report_type=template.report_type,
            format=template.format,
            filters=template.filters,
            columns=template.columns,
            shared=template.shared,
            created_at=template.created_at,
            updated_at=template.updated_at,
        )


class TemplatePage(CamelModel):
    data: list[TemplateRead]
