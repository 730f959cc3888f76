"""Request and response bodies of the export API (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from pivotal_reporting.models.export_job import ExportJob

ReportType = Literal[
    "quote_cycle_time", "invoice_settlement_time", "payments_received", "time_approvals"
]
ExportFormat = Literal["csv", "json", "xlsx", "pdf", "parquet"]
ExportStatus = Literal["pending", "processing", "completed", "failed", "cancelled", "expired"]

PROGRESS_LABELS: dict[str, str] = {
    "pending": "Queued",
    "processing": "Processing",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "expired": "Expired",
}


class CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True
    )


class ExportCreate(CamelModel):
    """``POST /v1/reports/export``: ``filters`` are validated by the report's own schema."""

    model_config = ConfigDict(extra="forbid")

    report_type: ReportType
    format: ExportFormat
    filters: dict[str, Any] = Field(default_factory=dict)
    file_name: str | None = Field(default=None, max_length=255)
    columns: list[str] | None = Field(
        default=None,
        max_length=100,
        description="A subset of the report's export columns, in the order wanted "
        "(docs/export-formats.md); all of them when omitted.",
    )


class ExportCreated(CamelModel):
    job_id: str
    status: ExportStatus
    message: str


class ExportJobRead(CamelModel):
    id: str
    organization_id: str
    user_id: str
    report_type: str
    format: str
    status: str
    filters: dict[str, Any]
    columns: list[str] | None = None
    file_name: str
    total_rows: int | None
    processed_rows: int
    download_url: str | None
    error_message: str | None
    checksum_sha256: str | None
    file_size_bytes: int | None
    attempts: int
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_job(cls, job: ExportJob) -> ExportJobRead:
        return cls(
            id=job.id,
            organization_id=job.organization_id,
            user_id=job.user_id,
            report_type=job.report_type,
            format=job.format,
            status=job.status,
            filters=job.filters,
            columns=job.columns,
            file_name=job.file_name,
            total_rows=job.total_rows,
            processed_rows=job.processed_rows or 0,
            download_url=job.download_url if job.status == "completed" else None,
            error_message=job.error_message,
            checksum_sha256=job.checksum_sha256,
            file_size_bytes=job.file_size_bytes,
            attempts=job.attempts,
            started_at=job.started_at,
            completed_at=job.completed_at,
            expires_at=job.expires_at,
            created_at=job.created_at,
            updated_at=job.updated_at,
        )


class ExportProgress(CamelModel):
    percentage: int = Field(ge=0, le=100, description="Whole percent of rows written.")
    status: str = Field(
        description="Human-readable state, e.g. 'Processing 40,000 of 100,000 rows'."
    )

    @classmethod
    def of(cls, job: ExportJob) -> ExportProgress:
        processed, total = job.processed_rows or 0, job.total_rows
        if job.status == "completed":
            return cls(percentage=100, status="Completed")
        percentage = min(99, processed * 100 // total) if total else 0
        if job.status == "processing" and total is not None:
            return cls(percentage=percentage, status=f"Processing {processed:,} of {total:,} rows")
        if job.status == "processing" and processed:
            return cls(percentage=percentage, status=f"Processing {processed:,} rows")
        return cls(percentage=percentage, status=PROGRESS_LABELS.get(job.status, job.status))


class ExportJobStatusRead(CamelModel):
    job: ExportJobRead
    progress: ExportProgress

    @classmethod
    def from_job(cls, job: ExportJob) -> ExportJobStatusRead:
        return cls(job=ExportJobRead.from_job(job), progress=ExportProgress.of(job))


class ExportJobPage(CamelModel):
    items: list[ExportJobRead]
    total: int
    limit: int
    offset: int
