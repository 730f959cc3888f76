"""Retention: files expire (410, ``expired``), old rows and orphans go, every sweep audited."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from pivotal_reporting.config import Settings
from pivotal_reporting.db import Database
from pivotal_reporting.models import AuditLog, ExportJob
from pivotal_reporting.organization_settings import retention_days
from pivotal_reporting.retention.service import AUDIT_ACTION, run_retention
from pivotal_reporting.storage import LocalStorage, organization_prefix
from tests.factories import Tenant, create_tenant
from tests.retention.retention_helpers import completed_job, ended_job, sweep


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "exports")


def _status(db: Session, job_id: str) -> str | None:
    status: str | None = db.scalar(select(ExportJob.status).where(ExportJob.id == job_id))
    db.commit()  # end the snapshot so the next read sees the sweeper's commits
    return status


def _tenant_with_retention(db: Session, settings: Settings, raw: object) -> Tenant:
    tenant = create_tenant(db, settings)
    tenant.org.settings = {"exportRetentionDays": raw}
    db.commit()
    return tenant


def _sweep_events(db: Session, org_id: str) -> list[dict[str, Any]]:
    db.commit()
    rows = db.scalars(
        select(AuditLog)
        .where(AuditLog.organization_id == org_id, AuditLog.action == AUDIT_ACTION)
        .order_by(AuditLog.seq)
    )
    return [row.details for row in rows]


def test_file_expires_then_row_goes_seven_days_later(
    db: Session, storage: LocalStorage, tenant: Tenant, client: httpx.Client, database_url: str
) -> None:
    old = completed_job(db, storage, tenant, days_ago=31)
    recent = completed_job(db, storage, tenant, days_ago=1)
    failed = ended_job(db, tenant, status="failed", days_ago=8)
    cancelled = ended_job(db, tenant, status="cancelled", days_ago=2)
    pending = ended_job(db, tenant, status="pending", days_ago=40)
    assert old.storage_key
    assert recent.storage_key

    sweep(database_url, storage, organization_ids=[tenant.org.id])
    assert _status(db, old.id) == "expired"
    assert not storage.exists(old.storage_key)
    assert storage.exists(recent.storage_key)
    assert _status(db, failed.id) is None
    assert (_status(db, cancelled.id), _status(db, pending.id)) == ("cancelled", "pending")
    headers = tenant.headers(tenant.exporter)
    assert client.get(f"/v1/reports/export/{old.id}/download", headers=headers).status_code == 410
    body = client.get(f"/v1/reports/export/{old.id}", headers=headers).json()
    assert body["job"]["status"] == "expired"
    [event] = _sweep_events(db, tenant.org.id)
    assert event["expiredJobIds"] == [old.id]
    assert event["deletedJobIds"] == [failed.id]
    assert (event["expiredFiles"], event["deletedJobs"], event["retentionDays"]) == (1, 1, 30)

    with time_machine.travel(datetime.now(UTC) + timedelta(days=7, hours=1), tick=True):
        sweep(database_url, storage, organization_ids=[tenant.org.id])
    assert _status(db, old.id) is None  # 7 days after its file expired
    assert _status(db, cancelled.id) is None
    assert _status(db, recent.id) == "completed"
    assert _status(db, pending.id) == "pending"
    assert sorted(_sweep_events(db, tenant.org.id)[-1]["deletedJobIds"]) == sorted(
        [old.id, cancelled.id]
    )


def test_organization_setting_shortens_retention(
    db: Session, storage: LocalStorage, settings: Settings, database_url: str
) -> None:
    tenant = _tenant_with_retention(db, settings, 5)
    due = completed_job(db, storage, tenant, days_ago=6)  # stamped to expire at 30 days
    kept = completed_job(db, storage, tenant, days_ago=4)
    report = sweep(database_url, storage, organization_ids=[tenant.org.id])
    assert report.organizations[0].retention_days == 5
    assert (_status(db, due.id), _status(db, kept.id)) == ("expired", "completed")


@pytest.mark.parametrize("raw", ["forever", 0, 3651, 2.5, True, -3, {"days": 3}])
def test_invalid_retention_falls_back_to_30_days_and_is_logged(
    raw: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pivotal_reporting.organization_settings")
    assert retention_days(raw, "org_x") == 30
    assert any(getattr(r, "fields", {}).get("organization_id") == "org_x" for r in caplog.records)


@pytest.mark.parametrize(("raw", "days"), [(None, 30), (1, 1), (90, 90), (3650, 3650)])
def test_valid_retention_values(raw: object, days: int) -> None:
    assert retention_days(raw, "org_x") == days


def test_invalid_setting_in_database_uses_default(
    db: Session, storage: LocalStorage, settings: Settings, database_url: str
) -> None:
    tenant = _tenant_with_retention(db, settings, "forever")
    kept = completed_job(db, storage, tenant, days_ago=20, retention=3650)
    due = completed_job(db, storage, tenant, days_ago=31, retention=3650)
    sweep(database_url, storage, organization_ids=[tenant.org.id])
    assert (_status(db, kept.id), _status(db, due.id)) == ("completed", "expired")


def _old_file(storage: LocalStorage, key: str, age: timedelta) -> None:
    path = storage.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    stamp = time.time() - age.total_seconds()
    os.utime(path, (stamp, stamp))


def test_orphan_files_are_removed_after_a_grace_period(
    db: Session, storage: LocalStorage, tenant: Tenant, database_url: str
) -> None:
    prefix = organization_prefix(tenant.org.id)
    referenced = completed_job(db, storage, tenant, days_ago=1)
    assert referenced.storage_key
    os.utime(storage.path(referenced.storage_key), (0, 0))
    _old_file(storage, f"{prefix}/job_gone-1.csv", timedelta(hours=2))
    _old_file(storage, f"{prefix}/job_publishing-1.csv", timedelta(minutes=1))
    _old_file(storage, "org_unknown_xyz/job_z-1.json", timedelta(days=3))

    sweep(database_url, storage, organization_ids=[tenant.org.id])
    assert not storage.exists(f"{prefix}/job_gone-1.csv")
    assert storage.exists(f"{prefix}/job_publishing-1.csv")  # may be mid-publish
    assert storage.exists(referenced.storage_key)
    assert storage.exists("org_unknown_xyz/job_z-1.json")  # not this sweep's organization
    [event] = _sweep_events(db, tenant.org.id)
    assert event["orphanFileKeys"] == [f"{prefix}/job_gone-1.csv"]

    report = sweep(database_url, storage)  # unrestricted: every organization
    assert report.unattributed_orphans == ["org_unknown_xyz/job_z-1.json"]
    assert not storage.exists("org_unknown_xyz/job_z-1.json")


def test_dry_run_changes_nothing(
    db: Session, storage: LocalStorage, tenant: Tenant, database_url: str
) -> None:
    due = completed_job(db, storage, tenant, days_ago=40)
    gone = ended_job(db, tenant, status="failed", days_ago=9)
    report = sweep(database_url, storage, organization_ids=[tenant.org.id], dry_run=True)
    [org] = report.organizations
    assert (org.expired_job_ids, org.deleted_job_ids) == ([due.id], [gone.id])
    assert (_status(db, due.id), _status(db, gone.id)) == ("completed", "failed")
    assert due.storage_key
    assert storage.exists(due.storage_key)
    assert _sweep_events(db, tenant.org.id) == []


def test_concurrent_sweeps_share_the_work(
    db: Session, storage: LocalStorage, tenant: Tenant, database_url: str
) -> None:
    jobs = [completed_job(db, storage, tenant, days_ago=35) for _ in range(40)]

    async def two_sweepers() -> None:
        databases = [Database.connect(database_url, pool_size=2) for _ in range(2)]
        try:
            await asyncio.gather(
                *(
                    run_retention(d, storage, batch_size=3, organization_ids=[tenant.org.id])
                    for d in databases
                )
            )
        finally:
            for d in databases:
                await d.dispose()

    asyncio.run(two_sweepers())
    expired = [i for event in _sweep_events(db, tenant.org.id) for i in event["expiredJobIds"]]
    assert sorted(expired) == sorted(job.id for job in jobs)  # each exactly once
    assert all(_status(db, job.id) == "expired" for job in jobs)
    assert not any(job.storage_key and storage.exists(job.storage_key) for job in jobs)


def test_retention_runs_hourly_on_the_queue(settings: Settings) -> None:
    from pivotal_reporting.queue import queue_app
    from pivotal_reporting.retention import tasks
    from pivotal_reporting.worker import periodic_schedule

    assert "pivotal_reporting.retention.tasks" in queue_app.import_paths
    key = (tasks.sweep_export_retention.name, "retention")
    assert Settings.model_fields["retention_cron"].default == "17 * * * *"
    assert periodic_schedule(settings).periodic_tasks[key].cron == "17 * * * *"
    # A worker schedules it from its own settings, not from what was set at import.
    custom = settings.model_copy(update={"retention_cron": "5 4 * * *"})
    assert periodic_schedule(custom).periodic_tasks[key].cron == "5 4 * * *"


def test_cleanup_command(
    db: Session, tmp_path: Path, settings: Settings, database_url: str
) -> None:
    storage = LocalStorage(tmp_path / "cli-exports")
    tenant = create_tenant(db, settings)
    due = completed_job(db, storage, tenant, days_ago=45)
    env = os.environ | {
        "PIVOTAL_DATABASE_URL": database_url,
        "PIVOTAL_EXPORT_DIR": str(storage.root),
        "PIVOTAL_JWT_SECRET": "x" * 40,
    }
    command = [sys.executable, "-m", "pivotal_reporting", "cleanup"]
    dry = subprocess.run(
        [*command, "--dry-run"], env=env, capture_output=True, text=True, check=False
    )
    assert dry.returncode == 0, dry.stderr
    assert f"{tenant.org.id} (retention 30 d): would remove 1 expired file(s)" in dry.stdout
    assert _status(db, due.id) == "completed"
    real = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert real.returncode == 0, real.stderr
    assert f"{tenant.org.id} (retention 30 d): removed 1 expired file(s)" in real.stdout
    assert _status(db, due.id) == "expired"
