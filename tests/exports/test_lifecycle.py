"""Idempotency, cancellation, retries, failures, expiry, audit events and metrics."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pivotal_reporting.config import Settings
from pivotal_reporting.exports.tasks import WORKER_LOST_MESSAGE, run_export
from tests.exports.conftest import bulk_payments, create_job, download, request_export, wait_for_job
from tests.factories import Tenant, create_export_job, create_payment, create_tenant

EXPORT = "/v1/reports/export"


def _audit_actions(db: Session, job_id: str) -> list[str]:
    db.execute(text("SELECT set_config('app.maintenance', 'on', false)"))
    rows = db.execute(
        text("SELECT action FROM audit_logs WHERE resource_id = :id ORDER BY seq"), {"id": job_id}
    )
    actions = [row.action for row in rows]
    db.rollback()
    return actions


def test_same_idempotency_key_and_body_returns_the_same_job(
    client: httpx.Client, tenant: Tenant
) -> None:
    key = {"Idempotency-Key": "monthly-close-2024-03"}
    first = request_export(client, tenant, headers=key)
    again = request_export(client, tenant, headers=key)
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["jobId"] == first.json()["jobId"]
    listed = client.get(EXPORT, headers=tenant.headers(tenant.exporter)).json()
    assert len(listed["data"]) == 1


def test_same_idempotency_key_with_another_body_is_409(
    client: httpx.Client, tenant: Tenant
) -> None:
    key = {"Idempotency-Key": "k-1"}
    assert request_export(client, tenant, headers=key).status_code == 202
    conflict = request_export(client, tenant, fmt="json", headers=key)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"].startswith("application/problem+json")


def test_idempotency_keys_are_per_user(client: httpx.Client, tenant: Tenant) -> None:
    key = {"Idempotency-Key": "shared"}
    mine = request_export(client, tenant, tenant.exporter, headers=key).json()["jobId"]
    theirs = request_export(client, tenant, tenant.admin, headers=key).json()["jobId"]
    assert mine != theirs


def test_concurrent_requests_with_one_key_make_one_job(api_server: object, tenant: Tenant) -> None:
    async def post_many() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api_server.base_url, timeout=60) as http:  # type: ignore[attr-defined]
            body = {"reportType": "payments_received", "format": "csv", "filters": {}}
            headers = tenant.headers(tenant.exporter) | {"Idempotency-Key": "race"}
            return await asyncio.gather(
                *(http.post(EXPORT, json=body, headers=headers) for _ in range(8))
            )

    responses = asyncio.run(post_many())
    assert sorted(r.status_code for r in responses).count(202) == 1
    assert {r.status_code for r in responses} <= {200, 202}
    assert len({r.json()["jobId"] for r in responses}) == 1


def test_job_row_audit_event_and_queue_job_commit_together(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    job_id = create_job(client, tenant)
    wait_for_job(client, tenant, job_id)
    # The queue marks its job succeeded just after the task's own commit: on a loaded
    # machine the row can still say "doing" for a moment.
    deadline = time.monotonic() + 30
    while True:
        db.execute(text("SELECT set_config('app.maintenance', 'on', false)"))
        queue = db.execute(
            text(
                "SELECT j.task_name, j.args, j.status FROM export_jobs e "
                "JOIN procrastinate_jobs j ON j.id = e.queue_job_id WHERE e.id = :id"
            ),
            {"id": job_id},
        ).one()
        db.rollback()
        if queue.status != "doing" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert queue.task_name == "exports.run_export"
    assert queue.args == {"job_id": job_id, "organization_id": tenant.org.id}
    assert queue.status == "succeeded"
    assert _audit_actions(db, job_id) == ["export_job_created", "export_job_completed"]


def test_download_is_409_until_completed_then_audited(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    pending = create_export_job(
        db, org=tenant.org, user=tenant.exporter
    )  # never queued: stays pending
    response = download(client, tenant, pending.id)
    assert response.status_code == 409
    create_payment(db, org=tenant.org)
    job_id = create_job(client, tenant)
    wait_for_job(client, tenant, job_id)
    assert download(client, tenant, job_id).status_code == 200
    assert _audit_actions(db, job_id)[-1] == "export_downloaded"


def test_download_is_410_once_expired(client: httpx.Client, db: Session, tenant: Tenant) -> None:
    job_id = create_job(client, tenant)
    wait_for_job(client, tenant, job_id)
    db.execute(text("SELECT set_config('app.maintenance', 'on', false)"))
    db.execute(
        text("UPDATE export_jobs SET expires_at = now() - interval '1 second' WHERE id = :id"),
        {"id": job_id},
    )
    db.commit()
    assert download(client, tenant, job_id).status_code == 410
    db.execute(text("SELECT set_config('app.maintenance', 'on', false)"))
    db.execute(
        text("UPDATE export_jobs SET status = 'expired', file_deleted_at = now() WHERE id = :id"),
        {"id": job_id},
    )
    db.commit()
    assert download(client, tenant, job_id).status_code == 410


def test_cancel_a_pending_job(client: httpx.Client, db: Session, tenant: Tenant) -> None:
    pending = create_export_job(db, org=tenant.org, user=tenant.exporter)
    response = client.delete(f"{EXPORT}/{pending.id}", headers=tenant.headers(tenant.exporter))
    assert response.status_code == 200
    assert response.json()["job"]["status"] == "cancelled"
    assert response.json()["progress"]["status"] == "Cancelled"
    again = client.delete(f"{EXPORT}/{pending.id}", headers=tenant.headers(tenant.exporter))
    assert again.status_code == 200  # idempotent
    assert _audit_actions(db, pending.id) == ["export_job_cancelled"]


def test_cancel_a_completed_job_is_409(client: httpx.Client, tenant: Tenant) -> None:
    job_id = create_job(client, tenant)
    wait_for_job(client, tenant, job_id)
    response = client.delete(f"{EXPORT}/{job_id}", headers=tenant.headers(tenant.exporter))
    assert response.status_code == 409


def _partials(settings: Settings, job_id: str) -> list[Path]:
    return list((settings.exports_path / ".partial").glob(f"*{job_id}*"))


def _wait_until_streaming(client: httpx.Client, tenant: Tenant, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = wait_for_job(client, tenant, job_id, statuses=("processing", "completed", "failed"))[
            "job"
        ]
        if job["status"] != "processing" or (job["processedRows"] or 0) > 0:
            return job
        time.sleep(0.2)
    pytest.fail("the export never started streaming")


BULK_ROWS = 800_000


@pytest.fixture(scope="module")
def bulk_tenant(owner_engine: Engine, settings: Settings) -> Tenant:
    """An organization with many payments, so that an export runs for a few seconds."""
    with Session(owner_engine, expire_on_commit=False) as session:
        tenant = create_tenant(session, settings)
        bulk_payments(session, tenant.org.id, BULK_ROWS)
    return tenant


@pytest.mark.slow
def test_cancel_stops_a_running_export_and_removes_its_file(
    client: httpx.Client, bulk_tenant: Tenant, settings: Settings
) -> None:
    tenant = bulk_tenant
    job_id = create_job(client, tenant, fmt="json")
    job = _wait_until_streaming(client, tenant, job_id)
    assert job["status"] == "processing", "export finished before it could be cancelled"
    assert _partials(settings, job_id)
    cancelled_at = time.monotonic()
    response = client.delete(f"{EXPORT}/{job_id}", headers=tenant.headers(tenant.exporter))
    assert response.json()["job"]["status"] == "cancelled"
    while _partials(settings, job_id):
        assert time.monotonic() - cancelled_at < 5, "the worker did not stop within 5 s"
        time.sleep(0.05)
    final = wait_for_job(client, tenant, job_id)["job"]
    assert final["status"] == "cancelled"
    assert final["downloadUrl"] is None
    assert not list(settings.exports_path.rglob(f"{job_id}*"))
    assert download(client, tenant, job_id).status_code == 409


@pytest.mark.slow
def test_a_dropped_connection_is_retried_and_completes(
    client: httpx.Client, bulk_tenant: Tenant, database_url: str
) -> None:
    tenant = bulk_tenant
    job_id = create_job(client, tenant, fmt="json")
    assert _wait_until_streaming(client, tenant, job_id)["status"] == "processing"
    with psycopg.connect(database_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'COPY (SELECT ''{%%' AND datname = current_database()"
        ).fetchall()
    assert killed, "no COPY to interrupt"
    job = wait_for_job(client, tenant, job_id, timeout=120)["job"]
    assert job["status"] == "completed", job
    assert job["attempts"] >= 2
    assert job["totalRows"] == BULK_ROWS
    rows = download(client, tenant, job_id).content.count(b'\n{"payment_id"')
    assert rows == BULK_ROWS


def test_a_permanent_failure_sets_failed_with_a_safe_message(
    client: httpx.Client, db: Session, tenant: Tenant, database_url: str
) -> None:
    # A job whose stored filters no longer validate (e.g. written by an older release).
    job = create_export_job(
        db,
        org=tenant.org,
        user=tenant.exporter,
        report_type="payments_received",
        filters={"fromDate": "not a date"},
    )

    async def enqueue() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await run_export.configure(connection=conn).defer_async(
                job_id=job.id, organization_id=tenant.org.id
            )

    asyncio.run(enqueue())
    failed = wait_for_job(client, tenant, job.id)["job"]
    assert failed["status"] == "failed"
    assert failed["errorMessage"] == "The export's filters are no longer valid for this report."
    assert failed["attempts"] == 1  # not retried: retrying cannot help


def test_worker_metrics(client: httpx.Client, db: Session, tenant: Tenant) -> None:
    from prometheus_client import REGISTRY

    labels = {"report_type": "payments_received", "format": "csv", "organization_id": tenant.org.id}
    job_id = create_job(client, tenant)
    wait_for_job(client, tenant, job_id)
    assert REGISTRY.get_sample_value("pivotal_export_started_total", labels) == 1
    assert REGISTRY.get_sample_value("pivotal_export_completed_total", labels) == 1
    assert REGISTRY.get_sample_value("pivotal_export_duration_ms_count", labels) == 1
    waits = REGISTRY.get_sample_value(
        "pivotal_export_queue_wait_seconds_count", {"report_type": "payments_received"}
    )
    assert waits is not None
    assert waits >= 1


def test_progress_while_pending(client: httpx.Client, db: Session, tenant: Tenant) -> None:
    pending = create_export_job(
        db,
        org=tenant.org,
        user=tenant.exporter,
        created_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    body = client.get(f"{EXPORT}/{pending.id}", headers=tenant.headers(tenant.exporter)).json()
    assert body["progress"] == {"percentage": 0, "status": "Queued"}
    assert body["job"]["downloadUrl"] is None


def test_a_processing_row_without_a_live_queue_job_is_failed_by_the_sweeper(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    # e.g. a job whose queue row was deleted, or whose worker could not record its end
    orphan = create_export_job(
        db,
        org=tenant.org,
        user=tenant.exporter,
        status="processing",
        attempts=1,
        updated_at=datetime.now(UTC) - timedelta(minutes=10),
    )
    job = wait_for_job(client, tenant, orphan.id, timeout=30)["job"]
    assert job["status"] == "failed"
    assert job["errorMessage"] == WORKER_LOST_MESSAGE
