"""Every summary endpoint: the auth matrix, tenant scope, validation, audit and metrics."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.orm import Session

from pivotal_reporting.models import AuditLog
from tests.factories import Tenant, create_customer, create_project, create_user

PATHS = {
    "quote-cycle-time": "quote_cycle_time",
    "invoice-settlement-time": "invoice_settlement_time",
    "payments-received": "payments_received",
    "time-approvals": "time_approvals",
}
# Each report's id filters and the table they must exist in.
ID_FILTERS = {
    "quote-cycle-time": ("customerId", "projectId"),
    "invoice-settlement-time": ("customerId",),
    "payments-received": ("customerId",),
    "time-approvals": ("userId", "projectId"),
}
WINDOW = {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2025-01-01T00:00:00Z"}
paths = pytest.mark.parametrize("path", list(PATHS))


def _url(path: str) -> str:
    return f"/v1/reports/summary/{path}"


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert "summary" not in body
    return body


def _fields(body: dict[str, object]) -> set[str]:
    errors = body["errors"]
    assert isinstance(errors, list)
    return {error["field"] for error in errors}


@paths
def test_anonymous_is_401(client: httpx.Client, path: str) -> None:
    _problem(client.get(_url(path), params=WINDOW), 401)


@paths
def test_without_permission_is_403(client: httpx.Client, tenant: Tenant, path: str) -> None:
    _problem(client.get(_url(path), params=WINDOW, headers=tenant.headers(tenant.nobody)), 403)


@paths
def test_viewer_gets_200(client: httpx.Client, tenant: Tenant, path: str) -> None:
    response = client.get(_url(path), params=WINDOW, headers=tenant.headers(tenant.viewer))
    assert response.status_code == 200
    assert response.json()["reportType"] == PATHS[path]


@paths
def test_another_organization_id_is_403(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, path: str
) -> None:
    params = {"organizationId": other_tenant.org.id, **WINDOW}
    body = _problem(
        client.get(_url(path), params=params, headers=tenant.headers(tenant.viewer)), 403
    )
    assert "organizationId" in str(body["detail"])


@paths
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"fromDate": "2024-01-01T00:00:00"}, "query.fromDate"),  # naive
        ({"fromDate": "yesterday"}, "query.fromDate"),
        ({"fromDate": "2024-02-01T00:00:00Z", "toDate": "2024-02-01T00:00:00Z"}, "query.toDate"),
        ({"colour": "red"}, "query.colour"),  # unknown parameters are refused
        ({"status": "bogus"}, "query.status"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: httpx.Client, tenant: Tenant, path: str, params: dict[str, str], field: str
) -> None:
    body = _problem(
        client.get(_url(path), params=params, headers=tenant.headers(tenant.viewer)), 422
    )
    assert field in _fields(body)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("payments-received", {"method": "barter"}, "query.method"),
        ("payments-received", {"currency": "usd"}, "query.currency"),
        ("invoice-settlement-time", {"asOf": "2024-01-01T00:00:00"}, "query.asOf"),
        ("invoice-settlement-time", {"overdueOnly": "perhaps"}, "query.overdueOnly"),
        ("invoice-settlement-time", {"status": "draft"}, "query.status"),
    ],
)
def test_report_specific_bad_input(
    client: httpx.Client, tenant: Tenant, path: str, params: dict[str, str], field: str
) -> None:
    body = _problem(
        client.get(_url(path), params=params, headers=tenant.headers(tenant.viewer)), 422
    )
    assert field in _fields(body)


def _ids(db: Session, tenant: Tenant) -> dict[str, str]:
    customer = create_customer(db, org=tenant.org)
    return {
        "customerId": customer.id,
        "projectId": create_project(db, org=tenant.org, customer=customer).id,
        "userId": create_user(db, org=tenant.org).id,
    }


@paths
def test_ids_of_another_organization_are_422_without_data(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, db: Session, path: str
) -> None:
    own, foreign = _ids(db, tenant), _ids(db, other_tenant)
    headers = tenant.headers(tenant.viewer)
    for name in ID_FILTERS[path]:
        assert client.get(_url(path), params={name: own[name]}, headers=headers).status_code == 200
        for unknown in (foreign[name], "no-such-id"):
            body = _problem(client.get(_url(path), params={name: unknown}, headers=headers), 422)
            assert _fields(body) == {f"query.{name}"}


@paths
def test_each_call_is_audited_and_counted(
    client: httpx.Client, tenant: Tenant, db: Session, path: str
) -> None:
    labels = {"report_type": PATHS[path], "organization_id": tenant.org.id}
    before = REGISTRY.get_sample_value("pivotal_report_generated_total", labels) or 0.0
    latency = {"report_type": PATHS[path]}
    observed = REGISTRY.get_sample_value(
        "pivotal_report_generation_duration_seconds_count", latency
    )
    response = client.get(_url(path), params=WINDOW, headers=tenant.headers(tenant.viewer))
    assert response.status_code == 200
    assert REGISTRY.get_sample_value("pivotal_report_generated_total", labels) == before + 1
    after = REGISTRY.get_sample_value("pivotal_report_generation_duration_seconds_count", latency)
    assert after == (observed or 0.0) + 1

    db.expire_all()
    events = db.scalars(
        select(AuditLog).where(
            AuditLog.organization_id == tenant.org.id, AuditLog.action == "report_generated"
        )
    ).all()
    assert len(events) == 1
    assert events[0].user_id == tenant.viewer.id
    assert events[0].resource == "reports"
    assert events[0].resource_id == PATHS[path]
    assert events[0].details == {"filters": WINDOW, "summaryGenerated": True}


def test_refused_calls_are_neither_audited_as_generated_nor_counted(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, db: Session
) -> None:
    labels = {"report_type": "quote_cycle_time", "organization_id": tenant.org.id}
    params = {"organizationId": other_tenant.org.id}
    response = client.get(
        _url("quote-cycle-time"), params=params, headers=tenant.headers(tenant.viewer)
    )
    assert response.status_code == 403
    assert REGISTRY.get_sample_value("pivotal_report_generated_total", labels) is None
    db.expire_all()
    actions = db.scalars(
        select(AuditLog.action).where(AuditLog.organization_id == tenant.org.id)
    ).all()
    assert actions == ["access_denied"]


def test_summaries_are_documented_in_openapi(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    for path, _report_type in PATHS.items():
        operation = spec["paths"][_url(path)]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert {"organizationId", "fromDate", "toDate"} <= names
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith("Response")
    summary = spec["components"]["schemas"]["TimeApprovalsSummary"]["properties"]
    assert {"hoursByProject", "hoursByUser", "medianApprovalTimeHours", "pendingApprovals"} <= set(
        summary
    )
    assert summary["totalHours"]["type"] == "number"
