"""GET /v1/me: the auth path end to end over real HTTP."""

from __future__ import annotations

import httpx

from tests.factories import Tenant


def test_me_returns_the_callers_identity(client: httpx.Client, tenant: Tenant) -> None:
    response = client.get("/v1/me", headers=tenant.headers(tenant.exporter))
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == tenant.exporter.id
    assert body["organization"]["id"] == tenant.org.id
    assert body["permissions"] == ["reports.export_reports", "reports.view_reports"]


def test_me_anonymous_is_401_problem(client: httpx.Client) -> None:
    response = client.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
