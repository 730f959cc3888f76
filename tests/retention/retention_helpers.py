"""Running the retention sweep from sync tests, and building jobs with files."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from pivotal_reporting.db import Database
from pivotal_reporting.models import ExportJob
from pivotal_reporting.retention.service import RetentionReport, run_retention
from pivotal_reporting.storage import LocalStorage, organization_prefix
from tests.factories import Tenant, create_export_job


def sweep(database_url: str, storage: LocalStorage, **options: Any) -> RetentionReport:
    async def run() -> RetentionReport:
        database = Database.connect(database_url, pool_size=2)
        try:
            return await run_retention(database, storage, **options)
        finally:
            await database.dispose()

    return asyncio.run(run())


def completed_job(
    db: Session, storage: LocalStorage, tenant: Tenant, *, days_ago: float, retention: int = 30
) -> ExportJob:
    """A completed job whose file exists, finished ``days_ago`` days ago."""
    ended = datetime.now(UTC) - timedelta(days=days_ago)
    job = create_export_job(
        db,
        org=tenant.org,
        user=tenant.exporter,
        status="completed",
        attempts=1,
        started_at=ended - timedelta(seconds=5),
        completed_at=ended,
        ended_at=ended,
        expires_at=ended + timedelta(days=retention),
        checksum_sha256="0" * 64,
        file_size_bytes=5,
    )
    key = f"{organization_prefix(tenant.org.id)}/{job.id}-1.csv"
    path = storage.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"a,b\n")
    job.storage_key = key
    job.download_url = f"/v1/reports/export/{job.id}/download"
    db.commit()
    db.expunge(job)  # a plain record from here on: the sweep may delete its row
    return job


def ended_job(db: Session, tenant: Tenant, *, status: str, days_ago: float) -> ExportJob:
    ended = datetime.now(UTC) - timedelta(days=days_ago)
    job = create_export_job(
        db, org=tenant.org, user=tenant.exporter, status=status, ended_at=ended, attempts=1
    )
    db.expunge(job)
    return job
