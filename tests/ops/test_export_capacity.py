"""The per-organization cap on queued/running exports: 429 on POST once reached."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ServerThread
from tests.factories import Tenant

pytest.importorskip("pivotal_reporting.reports.registry", reason="the report catalog is not in yet")

EXPORT = "/v1/reports/export"
BODY = {
    "reportType": "payments_received",
    "format": "csv",
    "filters": {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-02-01T00:00:00Z"},
}


def test_cap_per_organization(
    start_server: Callable[..., ServerThread], tenant: Tenant, other_tenant: Tenant
) -> None:
    # No worker: the jobs stay pending, so the count is deterministic.
    server = start_server(max_running_exports_per_org=2, worker_in_process=False)
    mine, admin = tenant.headers(tenant.exporter), tenant.headers(tenant.admin)
    with httpx.Client(base_url=server.base_url) as client:
        first = client.post(EXPORT, json=BODY, headers=mine)
        assert first.status_code == 202, first.text
        assert client.post(EXPORT, json=BODY, headers=admin).status_code == 202
        refused = client.post(EXPORT, json=BODY, headers=mine)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["Retry-After"]) > 0
        assert "limit 2" in refused.json()["detail"]
        # Another organization has its own cap.
        theirs = client.post(EXPORT, json=BODY, headers=other_tenant.headers(other_tenant.exporter))
        assert theirs.status_code == 202
        # A cancelled job frees its slot.
        job_id = first.json()["jobId"]
        assert client.delete(f"{EXPORT}/{job_id}", headers=mine).status_code in (200, 202, 204)
        assert client.post(EXPORT, json=BODY, headers=mine).status_code == 202
