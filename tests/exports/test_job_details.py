"""Export job details: the cancel audit event and metric, downloads of jobs without a file,
cursor paging of the job list, and the ASCII fallback of download names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.orm import Session

from pivotal_reporting.filenames import ascii_file_name, content_disposition
from tests.exports.conftest import download
from tests.factories import Tenant, create_export_job

EXPORT = "/v1/reports/export"


def _cancel_events(db: Session, job_id: str) -> list[dict[str, Any]]:
    db.execute(text("SELECT set_config('app.maintenance', 'on', false)"))
    rows = db.execute(
        text(
            "SELECT details FROM audit_logs WHERE resource_id = :id "
            "AND action = 'export_job_cancelled' ORDER BY seq"
        ),
        {"id": job_id},
    )
    details = [dict(row.details) for row in rows]
    db.rollback()
    return details


def _cancelled_count(tenant: Tenant, report_type: str, fmt: str) -> float:
    labels = {"report_type": report_type, "format": fmt, "organization_id": tenant.org.id}
    return REGISTRY.get_sample_value("pivotal_export_cancelled_total", labels) or 0.0


@pytest.mark.parametrize("status", ["pending", "processing"])
def test_cancel_audits_the_status_before_the_cancel(
    client: httpx.Client, db: Session, tenant: Tenant, status: str
) -> None:
    # Never queued, so no worker moves it: the row is exactly in ``status``.
    job = create_export_job(db, org=tenant.org, user=tenant.exporter, status=status)
    response = client.delete(f"{EXPORT}/{job.id}", headers=tenant.headers(tenant.exporter))
    assert response.status_code == 200
    assert response.json()["job"]["status"] == "cancelled"
    assert _cancel_events(db, job.id) == [{"previousStatus": status}]


def test_each_cancel_counts_once_in_the_cancelled_metric(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    json_job = create_export_job(
        db, org=tenant.org, user=tenant.exporter, report_type="time_approvals", format="json"
    )
    csv_job = create_export_job(
        db, org=tenant.org, user=tenant.exporter, report_type="time_approvals", format="csv"
    )
    headers = tenant.headers(tenant.exporter)
    for _ in range(3):  # repeats are idempotent: neither a second event nor a second count
        assert client.delete(f"{EXPORT}/{json_job.id}", headers=headers).status_code == 200
    assert client.post(f"{EXPORT}/{csv_job.id}/cancel", headers=headers).status_code == 200
    assert _cancelled_count(tenant, "time_approvals", "json") == 1
    assert _cancelled_count(tenant, "time_approvals", "csv") == 1
    assert len(_cancel_events(db, json_job.id)) == 1


def test_cancel_of_a_finished_job_counts_nothing(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    failed = create_export_job(
        db, org=tenant.org, user=tenant.exporter, status="failed", report_type="payments_received"
    )
    response = client.delete(f"{EXPORT}/{failed.id}", headers=tenant.headers(tenant.exporter))
    assert response.status_code == 409
    assert "already failed" in response.json()["detail"]
    assert _cancelled_count(tenant, "payments_received", "csv") == 0


@pytest.mark.parametrize(
    ("status", "says"),
    [
        ("cancelled", "was cancelled; it has no file"),
        ("failed", "failed; it has no file"),
        ("pending", "is pending; the file is available once it is completed"),
        ("processing", "is processing; the file is available once it is completed"),
    ],
)
def test_download_without_a_file_says_why(
    client: httpx.Client, db: Session, tenant: Tenant, status: str, says: str
) -> None:
    job = create_export_job(db, org=tenant.org, user=tenant.exporter, status=status)
    response = download(client, tenant, job.id)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == f"Export job {job.id} {says}."


def test_download_of_a_job_cancelled_through_the_api_is_409_cancelled(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    job = create_export_job(db, org=tenant.org, user=tenant.exporter)
    client.delete(f"{EXPORT}/{job.id}", headers=tenant.headers(tenant.exporter))
    response = download(client, tenant, job.id)
    assert response.status_code == 409
    assert "was cancelled" in response.json()["detail"]
    assert "once it is completed" not in response.json()["detail"]


def _pages(client: httpx.Client, headers: dict[str, str], **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        response = client.get(EXPORT, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"data", "nextCursor"}
        pages.append([job["id"] for job in body["data"]])
        cursor = body["nextCursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "paging does not end"


def test_job_list_pages_by_cursor_newest_first(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    # Seven jobs; three share one created_at, so the id breaks the tie across pages.
    instants = [start + timedelta(minutes=m) for m in (0, 1, 2, 2, 2, 3, 4)]
    jobs = [
        create_export_job(
            db, org=tenant.org, user=tenant.exporter, created_at=at, status="completed"
        )
        for at in instants
    ]
    expected = [j.id for j in sorted(jobs, key=lambda j: (-j.created_at.timestamp(), j.id))]
    headers = tenant.headers(tenant.exporter)
    pages = _pages(client, headers, limit=3)
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [job for page in pages for job in page] == expected
    assert _pages(client, headers, limit=7) == [expected]
    assert _pages(client, headers, limit=100, status="failed") == [[]]


def test_job_list_cursor_keeps_the_status_filter(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    statuses = ["completed", "failed", "completed", "failed", "completed"]
    jobs = [
        create_export_job(
            db,
            org=tenant.org,
            user=tenant.exporter,
            created_at=start + timedelta(minutes=i),
            status=status,
        )
        for i, status in enumerate(statuses)
    ]
    completed = [j.id for j in reversed(jobs) if j.status == "completed"]
    pages = _pages(client, tenant.headers(tenant.exporter), limit=2, status="completed")
    assert [job for page in pages for job in page] == completed


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense",
        "eyJ4IjogMX0",  # {"x": 1}
        "W10",  # []
        "%%%",
        "WyJ2MSIsICIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgImFcdTAwMDBiIl0",  # a NUL in the id
        "WyJ2MSIsICIwMDAxLTAxLTAxVDAwOjAwOjAwKzE0OjAwIiwgImpvYl94Il0",  # 0001-01-01+14:00
        "WyJ2MSIsICI5OTk5LTEyLTMxVDIzOjU5OjU5LTE0OjAwIiwgImpvYl94Il0",  # 9999-12-31-14:00
        "WyJ2MSIsICIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgNV0",  # a number as the id
        "WyJ2MSIsIDUsICJqb2JfeCJd",  # a number as the instant
    ],
)
def test_a_malformed_cursor_is_422(client: httpx.Client, tenant: Tenant, cursor: str) -> None:
    response = client.get(
        EXPORT, params={"cursor": cursor}, headers=tenant.headers(tenant.exporter)
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": "query.cursor", "message": "malformed cursor"}]


def test_offset_paging_is_gone_from_the_contract(client: httpx.Client) -> None:
    operation = client.get("/openapi.json").json()["paths"][EXPORT]["get"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert names == {"status", "cursor", "limit"}


@pytest.mark.parametrize(
    ("name", "fallback"),
    [
        ("Q3 \u2013 Ums\u00e4tze.csv", "Q3 - Umsatze.csv"),  # en dash
        ("2026\u2014report\u2010final.csv", "2026-report-final.csv"),  # em dash, hyphen
        ("M\u00fcller\u2019s \u201cNord\u201d report.csv", "Muller's 'Nord' report.csv"),
        ("Stra\u00dfe \u00d7 \u00c6r\u00f8.json", "Strasse x AEro.json"),
        ("Budget \u2212 \u20ac.csv", "Budget - EUR.csv"),  # minus sign, euro sign
        ("\u041e\u0442\u0447\u0451\u0442.csv", "export.csv"),  # nothing left in ASCII
        ("a\u2026b.csv", "a.b.csv"),  # never '..' in a fallback
    ],
)
def test_ascii_fallback_spells_dashes_and_quotes(name: str, fallback: str) -> None:
    assert ascii_file_name(name) == fallback
    header = content_disposition(name)
    assert header.isascii()
    assert f'filename="{fallback}"' in header
