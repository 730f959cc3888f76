"""End to end: a real Prometheus scrapes the API and a standalone worker during an export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from pivotal_reporting.config import Settings
from tests.factories import Tenant, create_customer, create_payment
from tests.observability.prometheus_server import PrometheusServer
from tests.server import (
    QUIET_ROLLUP_CRON,
    TEST_JWT_SECRET,
    TEST_METRICS_TOKEN,
    ServerThread,
    free_port,
)

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="prometheus is not installed (.ci/run installs it)"
)
pytest.importorskip("pivotal_reporting.reports.registry", reason="the report catalog is not in yet")

RESULT_FILE = Path(__file__).resolve().parents[2] / ".data" / "prometheus-integration-result.json"


@pytest.fixture
def standalone_worker(settings: Settings, tmp_path: Path) -> Iterator[int]:
    """``pivotal-reporting worker --metrics-port`` sharing the API's database and files."""
    port = free_port()
    env = os.environ | {
        "PIVOTAL_DATABASE_URL": str(settings.database_url),
        "PIVOTAL_DATA_DIR": str(settings.data_dir),
        "PIVOTAL_JWT_SECRET": TEST_JWT_SECRET,
        "PIVOTAL_ROLLUP_CRON": QUIET_ROLLUP_CRON,
    }
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "pivotal_reporting", "worker", "--metrics-port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, (tmp_path / "worker.log").read_text()
        assert time.monotonic() < deadline, "worker metrics port did not open"
        time.sleep(0.2)
    yield port
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def _export(client: httpx.Client, tenant: Tenant) -> str:
    body = {
        "reportType": "payments_received",
        "format": "csv",
        "filters": {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-12-31T00:00:00Z"},
    }
    headers = tenant.headers(tenant.exporter)
    response = client.post("/v1/reports/export", json=body, headers=headers)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    deadline = time.monotonic() + 90
    while True:
        job = client.get(f"/v1/reports/export/{job_id}", headers=headers).json()["job"]
        if job["status"] in ("completed", "failed", "cancelled"):
            assert job["status"] == "completed", job
            return job_id
        assert time.monotonic() < deadline, f"export still {job['status']}"
        time.sleep(0.1)


def _wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.25)


def _wait_for_value(
    prometheus: PrometheusServer, promql: str, expected: float
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = prometheus.query(promql)
        if result and float(result[0]["value"][1]) == expected:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{promql} never reached {expected}: {result}")


def test_prometheus_scrapes_export_metrics(
    start_server: Callable[..., ServerThread],
    standalone_worker: int,
    db: Session,
    tenant: Tenant,
    tmp_path: Path,
) -> None:
    customer = create_customer(db, org=tenant.org)
    for _ in range(3):
        create_payment(db, org=tenant.org, customer=customer)
    # The API without its in-process worker: the standalone worker runs the export.
    api = start_server(worker_in_process=False)
    targets = {
        "pivotal-api": f"127.0.0.1:{api.port}",
        "pivotal-worker": f"127.0.0.1:{standalone_worker}",
    }
    with (
        PrometheusServer(
            tmp_path, free_port(), targets, bearer_tokens={"pivotal-api": TEST_METRICS_TOKEN}
        ) as prometheus,
        httpx.Client(base_url=api.base_url, timeout=30) as client,
    ):
        _wait_until(lambda: prometheus.targets_up() == {j: "up" for j in targets})
        job_id = _export(client, tenant)
        org = tenant.org.id
        promql = f'sum(pivotal_export_completed_total{{organization_id="{org}"}})'
        result = _wait_for_value(prometheus, promql, 1.0)
        by_job = prometheus.query(
            f'sum by (job, report_type, format) (pivotal_export_completed_total{{organization_id="{org}"}})'
        )
        http = prometheus.query(
            'sum by (route) (pivotal_http_requests_total{job="pivotal-api",route="/v1/reports/export"})'
        )
        # Normally the standalone worker ran it; another test's in-process worker may win.
        [series] = by_job
        assert series["metric"]["job"] in ("pivotal-worker", "pivotal-api")
        assert (series["metric"]["report_type"], series["metric"]["format"]) == (
            "payments_received",
            "csv",
        )
        assert http, "the API's HTTP metrics are scraped too"
        RESULT_FILE.parent.mkdir(exist_ok=True)
        RESULT_FILE.write_text(
            json.dumps(
                {"query": promql, "result": result, "by_job": by_job, "job_id": job_id}, indent=2
            )
        )
