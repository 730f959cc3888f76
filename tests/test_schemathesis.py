"""Schemathesis against the real app's ``/openapi.json``: every operation, a bounded budget.

Deselected by default (pyproject ``addopts``); CI (``.ci/run``) runs it on its own, and so
can you: ``.venv/bin/python -m pytest -m schemathesis -s tests/test_schemathesis.py``. The app
is the test server (real PostgreSQL, real queue, in-process worker); the token is an
administrator's, so every operation is reachable. Required: no server error, no status
code and no content type that the operation does not document.

Budget: ``PIVOTAL_SCHEMATHESIS_MAX_EXAMPLES`` cases per operation and phase (default 25),
fixed seed ``PIVOTAL_SCHEMATHESIS_SEED`` (default 20261129) so that a run is reproducible.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import (
    Tenant,
    create_customer,
    create_invoice,
    create_payment,
    create_project,
    create_quote,
    create_time_entry,
)
from tests.server import ServerThread

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance"


def _schemathesis() -> str:
    return str(Path(sys.executable).with_name("schemathesis"))


@pytest.mark.slow
@pytest.mark.schemathesis
def test_no_operation_answers_undocumented_or_server_errors(
    api_server: ServerThread, db: Session, tenant: Tenant, tmp_path: Path
) -> None:
    _seed(db, tenant)
    token = tenant.token(tenant.admin, expires_in=timedelta(hours=2))
    # Half of the job-id paths name a real, completed job (read, download, a refused
    # cancel); the other half are generated (404, 422).
    job_id = _completed_job(api_server, token)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'[dictionaries.jobs]\nvalues = ["{job_id}"]\n\n'
        '[parameters]\n"path.job_id" = { dictionary = "jobs", probability = 0.5 }\n'
    )
    max_examples = os.environ.get("PIVOTAL_SCHEMATHESIS_MAX_EXAMPLES", "25")
    seed = os.environ.get("PIVOTAL_SCHEMATHESIS_SEED", "20261129")
    command = [
        _schemathesis(),
        "--config-file",
        str(config),
        "run",
        f"{api_server.base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        max_examples,
        "--seed",
        seed,
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--header",
        f"Authorization: Bearer {token}",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=1200, check=False, cwd=tmp_path
    )
    output = result.stdout + result.stderr
    print(output)  # the summary (operations, cases, failures) lands in the CI log
    assert result.returncode == 0, output[-6000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", output)
    assert cases is not None, output[-6000:]
    assert cases.group(1) == cases.group(2)  # every case passed every check
    assert re.search(r"Tested: (\d+)", output), output[-6000:]
    # No job fails on input its POST accepted (each accepted POST made one).
    statuses = _settled_job_statuses(db, tenant)
    print(f"export jobs created by the run, by status: {statuses}")
    assert "failed" not in statuses, _failures(db, tenant)


def _completed_job(api_server: ServerThread, token: str) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api_server.base_url, headers=headers) as client:
        body = {"reportType": "payments_received", "format": "csv"}
        response = client.post("/v1/reports/export", json=body)
        assert response.status_code == 202, response.text
        job_id: str = response.json()["jobId"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/reports/export/{job_id}").json()["job"]["status"] != "completed":
            assert time.monotonic() < deadline, "the seed export did not complete"
            time.sleep(0.2)
    return job_id


def _seed(db: Session, tenant: Tenant) -> None:
    """A few rows of every report, so that summaries and exports read real data."""
    customer = create_customer(db, org=tenant.org, name="=Schemathesis & Co")
    project = create_project(db, org=tenant.org, customer=customer)
    invoice = create_invoice(db, org=tenant.org, customer=customer, status="paid")
    create_invoice(db, org=tenant.org, customer=customer)
    create_payment(db, org=tenant.org, customer=customer, invoice=invoice)
    create_quote(db, org=tenant.org, customer=customer, project=project)
    create_time_entry(db, org=tenant.org, user=tenant.viewer, project=project)


_JOB_STATUSES = text(
    "SELECT status, count(*) FROM export_jobs WHERE organization_id = :org GROUP BY status"
)


def _settled_job_statuses(db: Session, tenant: Tenant) -> dict[str, int]:
    """Job counts by status once none is pending or processing (at most two minutes)."""
    deadline = time.monotonic() + 120
    while True:
        db.rollback()  # a fresh snapshot
        counts = {row[0]: row[1] for row in db.execute(_JOB_STATUSES, {"org": tenant.org.id})}
        if not counts.keys() & {"pending", "processing"} or time.monotonic() > deadline:
            return counts
        time.sleep(1)


def _failures(db: Session, tenant: Tenant) -> list[tuple[object, ...]]:
    rows = db.execute(
        text(
            "SELECT report_type, filters, error_message FROM export_jobs "
            "WHERE organization_id = :org AND status = 'failed' LIMIT 10"
        ),
        {"org": tenant.org.id},
    )
    return [tuple(row) for row in rows]
