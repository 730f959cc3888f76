"""Export templates: saved, listed, shared, deleted, exported; tenant and owner rules."""

from __future__ import annotations

import io
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy.orm import Session

from tests.exports.conftest import download, wait_for_job
from tests.exports.test_contents import Q1_2024, _seed_payments
from tests.factories import Tenant, create_customer

BASE = "/v1/reports/export-templates"
COLUMNS = ["payment_id", "customer_name", "amount", "currency"]


def _body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Q1 payments for finance",
        "reportType": "payments_received",
        "format": "xlsx",
        "filters": Q1_2024,
        "columns": COLUMNS,
    } | overrides


def _create(client: httpx.Client, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    response = client.post(BASE, json=_body(**overrides), headers=tenant.headers(tenant.exporter))
    assert response.status_code == 201, response.text
    template: dict[str, Any] = response.json()
    return template


def test_a_template_saves_and_starts_the_same_export(
    client: httpx.Client, db: Session, tenant: Tenant
) -> None:
    _seed_payments(db, tenant)
    template = _create(client, tenant)
    assert template["columns"] == COLUMNS
    assert template["filters"] == Q1_2024
    assert template["shared"] is False
    assert template["userId"] == tenant.exporter.id
    listed = client.get(BASE, headers=tenant.headers(tenant.exporter)).json()["data"]
    assert [t["id"] for t in listed] == [template["id"]]

    response = client.post(
        f"{BASE}/{template['id']}/export",
        json={"fileName": "finance.xlsx"},
        headers=tenant.headers(tenant.exporter) | {"Idempotency-Key": "tpl-1"},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["jobId"]
    job = wait_for_job(client, tenant, job_id)["job"]
    assert job["status"] == "completed"
    assert (job["format"], job["columns"], job["filters"]) == ("xlsx", COLUMNS, Q1_2024)
    assert job["fileName"] == "finance.xlsx"
    assert job["totalRows"] == 3
    sheet = openpyxl.load_workbook(io.BytesIO(download(client, tenant, job_id).content))["Rows"]
    assert [c.value for c in sheet[1]] == COLUMNS
    replay = client.post(
        f"{BASE}/{template['id']}/export",
        json={"fileName": "finance.xlsx"},
        headers=tenant.headers(tenant.exporter) | {"Idempotency-Key": "tpl-1"},
    )
    assert replay.status_code == 200
    assert replay.json()["jobId"] == job_id


def test_private_templates_are_the_owners_shared_ones_the_organizations(
    client: httpx.Client, tenant: Tenant
) -> None:
    private = _create(client, tenant, name="mine")
    shared = _create(client, tenant, name="ours", shared=True)
    admin = tenant.headers(tenant.admin)
    assert [t["id"] for t in client.get(BASE, headers=admin).json()["data"]] == [shared["id"]]
    assert client.get(f"{BASE}/{private['id']}", headers=admin).status_code == 404
    assert client.get(f"{BASE}/{shared['id']}", headers=admin).status_code == 200
    assert client.post(f"{BASE}/{private['id']}/export", headers=admin).status_code == 404
    assert client.post(f"{BASE}/{shared['id']}/export", headers=admin).status_code == 202
    # A shared template can be used by others but deleted only by its owner.
    refused = client.delete(f"{BASE}/{shared['id']}", headers=admin)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert client.delete(f"{BASE}/{private['id']}", headers=admin).status_code == 404
    owner = tenant.headers(tenant.exporter)
    assert client.delete(f"{BASE}/{shared['id']}", headers=owner).status_code == 204
    assert client.get(f"{BASE}/{shared['id']}", headers=owner).status_code == 404


def test_auth_matrix(client: httpx.Client, tenant: Tenant, other_tenant: Tenant) -> None:
    template = _create(client, tenant, shared=True)
    one = f"{BASE}/{template['id']}"
    # anonymous: 401 everywhere
    for method, url in (("GET", BASE), ("POST", BASE), ("GET", one), ("DELETE", one)):
        response = client.request(method, url, json=_body() if method == "POST" else None)
        assert response.status_code == 401, (method, url)
    assert client.post(f"{one}/export").status_code == 401
    # lacking permission: 403 (nobody can't view; a viewer can't save, delete or export)
    nobody = tenant.headers(tenant.nobody)
    viewer = tenant.headers(tenant.viewer)
    assert client.get(BASE, headers=nobody).status_code == 403
    assert client.get(one, headers=nobody).status_code == 403
    assert client.post(BASE, json=_body(), headers=viewer).status_code == 403
    assert client.delete(one, headers=viewer).status_code == 403
    assert client.post(f"{one}/export", headers=viewer).status_code == 403
    assert client.get(one, headers=viewer).status_code == 200  # shared: a viewer may read it
    # another organization: 404, even for a shared template
    other = other_tenant.headers(other_tenant.admin)
    assert client.get(one, headers=other).status_code == 404
    assert client.delete(one, headers=other).status_code == 404
    assert client.post(f"{one}/export", headers=other).status_code == 404
    assert client.get(BASE, headers=other).json()["data"] == []
    assert client.get(one, headers=tenant.headers(tenant.exporter)).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"columns": ["amount", "currency", "bogus"]}, "bogus"),
        ({"format": "docx"}, "format"),
        ({"reportType": "nope"}, "reportType"),
        ({"filters": {"method": "barter"}}, "filters.method"),
        ({"filters": {"customerId": "cus_not_here"}}, "filters.customerId"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_templates_are_422_naming_the_field(
    client: httpx.Client, tenant: Tenant, overrides: dict[str, Any], needle: str
) -> None:
    response = client.post(BASE, json=_body(**overrides), headers=tenant.headers(tenant.exporter))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert needle in response.text


def test_another_organizations_customer_is_refused(
    client: httpx.Client, db: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = create_customer(db, org=other_tenant.org)
    response = client.post(
        BASE,
        json=_body(filters={"customerId": theirs.id}),
        headers=tenant.headers(tenant.exporter),
    )
    assert response.status_code == 422
    assert "filters.customerId" in response.text
