"""Every export download, cancellation and denial lands in the organization's audit log."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from sqlalchemy.orm import Session

from pivotal_reporting.observability.logs import JsonFormatter
from tests.factories import Tenant, create_customer, create_export_job, create_payment

pytest.importorskip("pivotal_reporting.reports.registry", reason="the report catalog is not in yet")

EXPORT = "/v1/reports/export"
BODY = {
    "reportType": "payments_received",
    "format": "csv",
    "filters": {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-12-31T00:00:00Z"},
}


def _wait_completed(client: httpx.Client, tenant: Tenant, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        job = client.get(f"{EXPORT}/{job_id}", headers=tenant.headers(tenant.exporter)).json()[
            "job"
        ]
        if job["status"] == "completed":
            return
        assert job["status"] in ("pending", "processing"), job
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_export_lifecycle_and_denials_are_audited(
    client: httpx.Client,
    db: Session,
    tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pivotal_reporting.jobs")
    create_payment(db, org=tenant.org, customer=create_customer(db, org=tenant.org))
    exporter = tenant.headers(tenant.exporter)
    done = client.post(EXPORT, json=BODY, headers=exporter).json()["jobId"]
    _wait_completed(client, tenant, done)
    assert client.get(f"{EXPORT}/{done}/download", headers=exporter).status_code == 200
    # Not on the queue, so no worker can finish it before it is cancelled.
    cancelled = create_export_job(db, org=tenant.org, user=tenant.exporter, status="pending").id
    assert client.delete(f"{EXPORT}/{cancelled}", headers=exporter).status_code < 300
    assert client.post(EXPORT, json=BODY, headers=tenant.headers(tenant.viewer)).status_code == 403

    rows = client.get(
        "/v1/audit-logs", params={"order": "asc"}, headers=tenant.headers(tenant.admin)
    ).json()["data"]
    trail = [(row["action"], row["resourceId"]) for row in rows]
    assert ("export_job_created", done) in trail
    assert ("export_downloaded", done) in trail
    assert ("export_job_cancelled", cancelled) in trail
    assert ("access_denied", EXPORT) in trail
    denial = next(row for row in rows if row["action"] == "access_denied")
    assert denial["userId"] == tenant.viewer.id
    assert denial["details"]["required_permission"] == "reports.export_reports"

    # One structured log line per job transition, without the filters.
    lines = [
        json.loads(JsonFormatter().format(record))
        for record in caplog.records
        if record.name == "pivotal_reporting.jobs"
    ]
    statuses = [line["status"] for line in lines if line["job_id"] == done]
    assert statuses[0] == "pending"
    assert statuses[-1] == "completed"
    assert "processing" in statuses
    sample = next(line for line in lines if line["job_id"] == done)
    assert sample["event"] == "export_job_transition"
    assert (sample["organization_id"], sample["user_id"]) == (tenant.org.id, tenant.exporter.id)
    assert "2024-12-31" not in json.dumps(lines)
