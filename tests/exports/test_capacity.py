"""The per-organization cap on queued/running exports: 429 on POST once reached."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.orm import Session

from tests.factories import Tenant, create_export_job
from tests.server import ServerThread

pytest.importorskip("pivotal_reporting.reports.registry", reason="the report catalog is not in yet")

EXPORT = "/v1/reports/export"
BODY = {
    "reportType": "payments_received",
    "format": "csv",
    "filters": {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-02-01T00:00:00Z"},
}


def test_cap_per_organization(
    start_server: Callable[..., ServerThread], db: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    # Jobs that are not on the queue, so no worker (of any test server) finishes them.
    running = create_export_job(db, org=tenant.org, user=tenant.admin, status="processing")
    create_export_job(db, org=tenant.org, user=tenant.viewer, status="pending")
    create_export_job(db, org=tenant.org, user=tenant.viewer, status="completed")
    server = start_server(max_running_exports_per_org=2)
    mine = tenant.headers(tenant.exporter)
    with httpx.Client(base_url=server.base_url) as client:
        refused = client.post(EXPORT, json=BODY, headers=mine)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["Retry-After"]) > 0
        assert "limit 2" in refused.json()["detail"]
        # Another organization has its own cap.
        theirs = client.post(EXPORT, json=BODY, headers=other_tenant.headers(other_tenant.exporter))
        assert theirs.status_code == 202, theirs.text
        # A job that ends frees its slot.
        running.status = "failed"
        db.commit()
        assert client.post(EXPORT, json=BODY, headers=mine).status_code == 202
