"""Every export endpoint's auth matrix, and isolation between users and organizations."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.orm import Session

from tests.exports.conftest import create_job, download, request_export, wait_for_job
from tests.factories import Tenant, create_payment, create_tenant

EXPORT = "/v1/reports/export"


@pytest.fixture
def completed_job(client: httpx.Client, tenant: Tenant, db: Session) -> str:
    create_payment(db, org=tenant.org)
    job_id = create_job(client, tenant)
    wait_for_job(client, tenant, job_id, statuses=("completed",))
    return job_id


def test_create_requires_a_token(client: httpx.Client) -> None:
    response = client.post(EXPORT, json={"reportType": "payments_received", "format": "csv"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("who", ["viewer", "nobody"])
def test_create_requires_export_permission(client: httpx.Client, tenant: Tenant, who: str) -> None:
    response = request_export(client, tenant, getattr(tenant, who))
    assert response.status_code == 403
    assert "reports.export_reports" in response.json()["detail"]


def test_create_answers_202_with_location(client: httpx.Client, tenant: Tenant) -> None:
    response = request_export(client, tenant)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending"
    assert body["message"] == "Export job created successfully"
    assert body["jobId"].startswith("job_")
    assert len(body["jobId"]) > 20
    assert response.headers["location"] == f"{EXPORT}/{body['jobId']}"


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("", "GET"),
        ("/{job}", "GET"),
        ("/{job}", "DELETE"),
        ("/{job}/download", "GET"),
    ],
)
def test_every_route_requires_a_token(
    client: httpx.Client, completed_job: str, path: str, method: str
) -> None:
    response = client.request(method, EXPORT + path.format(job=completed_job))
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("path", "method", "viewer_status"),
    [
        ("", "GET", 200),
        ("/{job}", "GET", 404),  # a viewer may read jobs, but this one is the exporter's
        ("/{job}", "DELETE", 403),
        ("/{job}/download", "GET", 403),
    ],
)
def test_permissions_per_route(
    client: httpx.Client,
    tenant: Tenant,
    completed_job: str,
    path: str,
    method: str,
    viewer_status: int,
) -> None:
    url = EXPORT + path.format(job=completed_job)
    assert client.request(method, url, headers=tenant.headers(tenant.nobody)).status_code == 403
    assert (
        client.request(method, url, headers=tenant.headers(tenant.viewer)).status_code
        == viewer_status
    )


def test_owner_reads_lists_and_downloads(
    client: httpx.Client, tenant: Tenant, completed_job: str
) -> None:
    headers = tenant.headers(tenant.exporter)
    assert client.get(f"{EXPORT}/{completed_job}", headers=headers).status_code == 200
    listed = client.get(EXPORT, headers=headers).json()
    assert [item["id"] for item in listed["data"]] == [completed_job]
    assert download(client, tenant, completed_job).status_code == 200


def test_other_organization_sees_nothing(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, completed_job: str
) -> None:
    intruder = other_tenant.headers(other_tenant.admin)
    for method, path in [("GET", ""), ("DELETE", ""), ("GET", "/download"), ("POST", "/cancel")]:
        response = client.request(method, f"{EXPORT}/{completed_job}{path}", headers=intruder)
        assert response.status_code == 404, (method, path, response.text)
    assert client.get(EXPORT, headers=intruder).json()["data"] == []


def test_other_user_of_the_same_organization_sees_nothing(
    client: httpx.Client, tenant: Tenant, completed_job: str
) -> None:
    colleague = tenant.headers(tenant.admin)  # holds every permission, but is not the owner
    for method, path in [("GET", ""), ("DELETE", ""), ("GET", "/download")]:
        assert (
            client.request(method, f"{EXPORT}/{completed_job}{path}", headers=colleague).status_code
            == 404
        )
    assert client.get(EXPORT, headers=colleague).json()["data"] == []
    # and the owner's job is untouched by the colleague's attempt to cancel it
    assert wait_for_job(client, tenant, completed_job)["job"]["status"] == "completed"


def test_unknown_job_is_404_like_a_foreign_one(client: httpx.Client, tenant: Tenant) -> None:
    response = client.get(f"{EXPORT}/job_doesnotexist", headers=tenant.headers(tenant.exporter))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_organization_id_in_filters_must_be_the_callers(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    own = request_export(client, tenant, filters={"organizationId": tenant.org.id})
    assert own.status_code == 202
    foreign = request_export(client, tenant, filters={"organizationId": other_tenant.org.id})
    assert foreign.status_code == 403


def test_references_to_another_organizations_rows_are_refused(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, db: Session
) -> None:
    foreign_payment = create_payment(db, org=other_tenant.org)
    response = request_export(client, tenant, filters={"customerId": foreign_payment.customer_id})
    assert response.status_code == 422
    assert "customerId" in response.text


def test_invalid_bodies_are_422_per_field(client: httpx.Client, tenant: Tenant) -> None:
    bad_type = request_export(client, tenant, report_type="sales_forecast")
    assert bad_type.status_code == 422
    bad_filters = request_export(
        client, tenant, filters={"fromDate": "2024-01-01T00:00:00"}
    )  # naive
    assert bad_filters.status_code == 422
    # The body is one schema per reportType; the field is named as the client wrote it.
    assert bad_filters.json()["errors"][0]["field"] == "filters.fromDate"
    unknown_filter = request_export(client, tenant, filters={"colour": "red"})
    assert unknown_filter.status_code == 422


def test_list_is_paginated_and_filtered_by_status(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    fresh = create_tenant(db, tenant.settings)
    jobs = [create_job(client, fresh) for _ in range(3)]
    for job in jobs:
        wait_for_job(client, fresh, job)
    headers = fresh.headers(fresh.exporter)
    page = client.get(EXPORT, params={"limit": 2}, headers=headers).json()
    assert len(page["data"]) == 2
    assert page["nextCursor"]
    rest = client.get(
        EXPORT, params={"limit": 2, "cursor": page["nextCursor"]}, headers=headers
    ).json()
    assert rest["nextCursor"] is None
    assert {i["id"] for i in page["data"] + rest["data"]} == set(jobs)
    completed = client.get(EXPORT, params={"status": "completed"}, headers=headers).json()
    assert len(completed["data"]) == 3
    assert client.get(EXPORT, params={"status": "failed"}, headers=headers).json()["data"] == []
    assert client.get(EXPORT, params={"status": "bogus"}, headers=headers).status_code == 422
