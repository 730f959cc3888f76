"""Request and response bodies of the export API (camelCase on the wire)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from pivotal_reporting.errors import InvalidInput
from pivotal_reporting.models.export_job import ExportJob
from pivotal_reporting.reports.invoice_settlement_time import InvoiceSettlementTimeFilters
from pivotal_reporting.reports.payments_received import PaymentsReceivedFilters
from pivotal_reporting.reports.quote_cycle_time import QuoteCycleTimeFilters
from pivotal_reporting.reports.time_approvals import TimeApprovalsFilters
from pivotal_reporting.schema_base import CamelModel

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


class ExportCreateBase(CamelModel):
    model_config = ConfigDict(extra="forbid")

    format: ExportFormat
    file_name: str | None = Field(default=None, max_length=255)
    columns: list[str] | None = Field(
        default=None,
        max_length=100,
        description="A subset of the report's export columns, in the order wanted "
        "(docs/export-formats.md); all of them when omitted.",
    )


class QuoteCycleTimeExportCreate(ExportCreateBase):
    report_type: Literal["quote_cycle_time"]
    filters: QuoteCycleTimeFilters = Field(default_factory=QuoteCycleTimeFilters)


class InvoiceSettlementTimeExportCreate(ExportCreateBase):
    report_type: Literal["invoice_settlement_time"]
    filters: InvoiceSettlementTimeFilters = Field(default_factory=InvoiceSettlementTimeFilters)


class PaymentsReceivedExportCreate(ExportCreateBase):
    report_type: Literal["payments_received"]
    filters: PaymentsReceivedFilters = Field(default_factory=PaymentsReceivedFilters)


class TimeApprovalsExportCreate(ExportCreateBase):
    report_type: Literal["time_approvals"]
    filters: TimeApprovalsFilters = Field(default_factory=TimeApprovalsFilters)


# ``POST /v1/reports/export``: one body schema per ``reportType``, each with that report's
# own filters, so the POST refuses (422) whatever the export job could not run.
ExportCreate = Annotated[
    QuoteCycleTimeExportCreate
    | InvoiceSettlementTimeExportCreate
    | PaymentsReceivedExportCreate
    | TimeApprovalsExportCreate,
    Field(discriminator="report_type"),
]
EXPORT_BODIES: tuple[type[ExportCreateBase], ...] = (
    QuoteCycleTimeExportCreate,
    InvoiceSettlementTimeExportCreate,
    PaymentsReceivedExportCreate,
    TimeApprovalsExportCreate,
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
    data_as_of: datetime | None = Field(
        description="Completed jobs: the instant the file's rows are exact as of (the "
        "snapshot holds every transaction committed up to it and none after); null before."
    )

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
            data_as_of=job.data_as_of,
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
    """One page of the caller's jobs, newest first; ``nextCursor`` is null on the last page."""

    data: list[ExportJobRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to read the next page; null on the last page."
    )


# Job ids are server-generated (``job_`` + URL-safe characters).
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")


@dataclass(frozen=True)
class JobPosition:
    """Where a page of jobs ends: the last job's ``created_at`` and ``id`` (the sort key)."""

    created_at: datetime
    job_id: str


def encode_job_cursor(position: JobPosition) -> str:
    """An opaque token for "the jobs after ``position``" (clients must not build it)."""
    raw = json.dumps(["v1", position.created_at.isoformat(), position.job_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_job_cursor(cursor: str) -> JobPosition:
    """The position a cursor continues after; 422 if it is malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, created_at, job_id = json.loads(raw)
        if version != "v1" or not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            raise ValueError(raw)
        instant = datetime.fromisoformat(created_at)
        if instant.tzinfo is None:
            raise ValueError(raw)
        # In UTC, as issued; an instant beyond datetime's range fails here, not in SQL.
        return JobPosition(instant.astimezone(UTC), job_id)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "Invalid cursor: pass back the nextCursor of the previous page.",
            errors=[{"field": "query.cursor", "message": "malformed cursor"}],
        ) from exc
