"""``export_templates``: a saved export request (report, filters, columns, format).

Private to its owner unless ``shared`` with the organization; tenant-scoped by
row-level security like ``export_jobs``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pivotal_reporting.models.base import (
    Base,
    created_at_column,
    status_check,
    tenant_pk,
    updated_at_column,
)
from pivotal_reporting.models.export_job import EXPORT_FORMATS, REPORT_TYPES


class ExportTemplate(Base):
    __tablename__ = "export_templates"
    __table_args__ = (
        ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            ondelete="CASCADE",
        ),
        # The list: own templates and the organization's shared ones, by name.
        Index("ix_export_templates_organization_id_user_id", "organization_id", "user_id"),
        Index(
            "ix_export_templates_organization_id_shared",
            "organization_id",
            postgresql_where=text("shared"),
        ),
        CheckConstraint(status_check("format", EXPORT_FORMATS), name="format"),
        CheckConstraint(status_check("report_type", REPORT_TYPES), name="report_type"),
        CheckConstraint("length(name) BETWEEN 1 AND 200", name="name_length"),
        tenant_pk(),
    )

    id: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[str] = mapped_column(Text, nullable=False)
    user_id: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text)
    report_type: Mapped[str] = mapped_column(String(50))
    format: Mapped[str] = mapped_column(String(10))
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    columns: Mapped[list[str] | None] = mapped_column(JSONB)
    shared: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


__all__ = ["ExportTemplate"]
