"""Every 403, wherever it is raised, is audited once as ``access_denied``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.factories import Tenant

WINDOW = {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-02-01T00:00:00Z"}


def _denials(owner_engine: Engine, organization_id: str) -> list[Any]:
    with owner_engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT user_id, resource_id, details FROM audit_logs "
                    "WHERE organization_id = :o AND action = 'access_denied' ORDER BY seq"
                ),
                {"o": organization_id},
            )
        )


def _summary(org: str) -> dict[str, Any]:
    return {"params": {"organizationId": org} | WINDOW}


def _export(org: str) -> dict[str, Any]:
    filters = {"organizationId": org} | WINDOW
    return {"json": {"reportType": "payments_received", "format": "csv", "filters": filters}}


def _audit_logs(org: str) -> dict[str, Any]:
    return {"params": {"organizationId": org}}


@pytest.mark.parametrize(
    ("method", "route", "request_for"),
    [
        ("GET", "/v1/reports/summary/payments-received", _summary),
        ("POST", "/v1/reports/export", _export),
        ("GET", "/v1/audit-logs", _audit_logs),
    ],
    ids=["summary", "export", "audit-logs"],
)
def test_another_organization_id_is_refused_and_audited(
    client: httpx.Client,
    tenant: Tenant,
    other_tenant: Tenant,
    owner_engine: Engine,
    method: str,
    route: str,
    request_for: Callable[[str], dict[str, Any]],
) -> None:
    response = client.request(
        method, route, headers=tenant.headers(tenant.admin), **request_for(other_tenant.org.id)
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    denials = _denials(owner_engine, tenant.org.id)
    assert [(d.user_id, d.resource_id) for d in denials] == [(tenant.admin.id, route)]
    assert denials[0].details["method"] == method
    assert "organizationId" in denials[0].details["detail"]
    # Nothing was written for the other organization.
    assert _denials(owner_engine, other_tenant.org.id) == []


def test_anonymous_refusals_have_no_one_to_attribute(
    client: httpx.Client, tenant: Tenant, owner_engine: Engine
) -> None:
    assert client.get("/v1/reports/summary/payments-received").status_code == 401
    assert _denials(owner_engine, tenant.org.id) == []
