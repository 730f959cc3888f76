"""``export_jobs``: the spec's columns and five indexes, plus what the lifecycle needs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
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

EXPORT_STATUSES = ("pending", "processing", "completed", "failed", "cancelled", "expired")
TERMINAL_EXPORT_STATUSES = ("completed", "failed", "cancelled", "expired")
EXPORT_FORMATS = ("csv", "json", "xlsx", "pdf", "parquet")
REPORT_TYPES = (
    "quote_cycle_time",
    "invoice_settlement_time",
    "payments_received",
    "time_approvals",
)


class ExportJob(Base):
    __tablename__ = "export_jobs"
    # The spec names the organization index itself, so no organization_fk() here.
    __table_args__ = (
        ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            ondelete="CASCADE",
        ),
        Index("export_jobs_organization_id_idx", "organization_id"),
        Index("export_jobs_user_id_idx", "user_id"),
        Index("export_jobs_status_idx", "status"),
        Index("export_jobs_user_status_idx", "user_id", "status"),
        Index("export_jobs_org_status_idx", "organization_id", "status"),
        Index("export_jobs_org_user_idx", "organization_id", "user_id", "created_at"),
        # The stalled-job sweeper (migration 0005): active rows, joined on the queue job.
        Index("export_jobs_queue_job_id_idx", "queue_job_id"),
        Index(
            "export_jobs_active_updated_idx",
            "updated_at",
            postgresql_where=text("status IN ('pending', 'processing')"),
        ),
        # The retention sweep (migration 0006): files still stored, terminal rows, orphans.
        Index(
            "export_jobs_retention_files_idx",
            "organization_id",
            "completed_at",
            postgresql_where=text("storage_key IS NOT NULL AND file_deleted_at IS NULL"),
        ),
        Index(
            "export_jobs_retention_rows_idx",
            "organization_id",
            "ended_at",
            postgresql_where=text("status IN ('expired', 'failed', 'cancelled')"),
        ),
        Index(
            "export_jobs_storage_key_idx",
            "storage_key",
            postgresql_where=text("storage_key IS NOT NULL"),
        ),
        UniqueConstraint("organization_id", "user_id", "idempotency_key"),
        tenant_pk(),
        CheckConstraint(status_check("status", EXPORT_STATUSES), name="status"),
        CheckConstraint(status_check("format", EXPORT_FORMATS), name="format"),
        CheckConstraint(status_check("report_type", REPORT_TYPES), name="report_type"),
        CheckConstraint("processed_rows >= 0", name="processed_rows_non_negative"),
    )

    id: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[str] = mapped_column(Text, nullable=False)
    user_id: Mapped[str] = mapped_column(Text, nullable=False)
    report_type: Mapped[str] = mapped_column(String(50))
    format: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), server_default=text("'pending'"))
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    file_name: Mapped[str] = mapped_column(Text)
    total_rows: Mapped[int | None] = mapped_column(Integer)
    processed_rows: Mapped[int | None] = mapped_column(Integer, server_default=text("0"))
    download_url: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    # Beyond the spec: what the lifecycle, retention and integrity need.
    storage_key: Mapped[str | None] = mapped_column(Text)
    checksum_sha256: Mapped[str | None] = mapped_column(String(64))
    file_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    file_deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The chosen export columns, in order (NULL: all of the report's columns).
    columns: Mapped[list[str] | None] = mapped_column(JSONB)
    # The instant the file's rows are exact as of (migration 0011, docs/read-replica.md).
    data_as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_STATUSES",
    "REPORT_TYPES",
    "TERMINAL_EXPORT_STATUSES",
    "ExportJob",
]
