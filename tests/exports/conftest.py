"""Export test helpers: wait for a job, download it, parse its rows."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import httpx
import pytest

from tests.factories import Tenant, User

TERMINAL = ("completed", "failed", "cancelled", "expired")


def request_export(
    client: httpx.Client,
    tenant: Tenant,
    user: User | None = None,
    *,
    report_type: str = "payments_received",
    fmt: str = "csv",
    filters: dict[str, Any] | None = None,
    file_name: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"reportType": report_type, "format": fmt, "filters": filters or {}}
    if file_name is not None:
        body["fileName"] = file_name
    return client.post(
        "/v1/reports/export",
        json=body,
        headers=tenant.headers(user or tenant.exporter) | (headers or {}),
    )


def create_job(
    client: httpx.Client, tenant: Tenant, user: User | None = None, **kwargs: Any
) -> str:
    response = request_export(client, tenant, user, **kwargs)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def wait_for_job(
    client: httpx.Client,
    tenant: Tenant,
    job_id: str,
    user: User | None = None,
    *,
    statuses: tuple[str, ...] = TERMINAL,
    timeout: float = 60.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        response = client.get(
            f"/v1/reports/export/{job_id}", headers=tenant.headers(user or tenant.exporter)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["job"]["status"] in statuses:
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} still {body['job']['status']} after {timeout} s: {body}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)  # stay well inside the per-user rate limit


def download(
    client: httpx.Client, tenant: Tenant, job_id: str, user: User | None = None
) -> httpx.Response:
    return client.get(
        f"/v1/reports/export/{job_id}/download", headers=tenant.headers(user or tenant.exporter)
    )


def csv_rows(content: bytes) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))
    return rows[0], rows[1:]


def json_rows(content: bytes) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(content, parse_float=str, parse_int=str)
    return rows


def bulk_payments(db: Any, organization_id: str, rows: int) -> None:
    """``rows`` completed payments of one new customer, inserted set-based by the owner."""
    from sqlalchemy import text

    customer_id = f"cus_bulk_{organization_id}"
    db.execute(text("SELECT set_config('app.maintenance', 'on', true)"))
    db.execute(
        text(
            "INSERT INTO customers (id, organization_id, name) VALUES (:id, :org, 'Bulk customer')"
        ),
        {"id": customer_id, "org": organization_id},
    )
    db.execute(
        text(
            """
            INSERT INTO payments (id, organization_id, invoice_id, customer_id, amount, currency, method,
                                  status, paid_at, reference)
            SELECT 'pay_bulk_' || :org || '_' || g, :org, NULL, :customer, 1 + (g % 100000) / 100.0, 'USD', 'bank_transfer',
                   'completed', timestamptz '2024-01-01' + g * interval '1 second', 'REF-' || g
            FROM generate_series(1, :rows) AS g
            """
        ),
        {"org": organization_id, "customer": customer_id, "rows": rows},
    )
    db.commit()
