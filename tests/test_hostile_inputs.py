"""No input gets a 5xx, and a POST accepts only what its export job can run.

Each case once answered 500 (or 202 and then a failed job). Real HTTP against the app.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from pivotal_reporting.errors import MAX_BODY_BYTES
from tests.factories import Tenant

SUMMARIES = ["quote-cycle-time", "invoice-settlement-time", "payments-received", "time-approvals"]
ID_FILTERS = {
    "quote-cycle-time": ("customerId", "projectId", "organizationId"),
    "invoice-settlement-time": ("customerId", "organizationId"),
    "payments-received": ("customerId", "organizationId"),
    "time-approvals": ("userId", "projectId", "organizationId"),
}
BAD_INSTANTS = [
    {"fromDate": "0001-01-01T00:00:00Z"},
    {"toDate": "9999-12-31T23:59:59Z"},
    {"fromDate": "1"},  # once read as a Unix time
    {"fromDate": "-1400"},
    {"toDate": "2024-01-01T00:00:00"},  # no offset
    {"fromDate": "2024-02-30T00:00:00Z"},
    {"fromDate": "2024-01-01"},  # a date is not an instant
]
AS_OF_BAD = [{"asOf": "0001-01-01T00:00:00+14:00"}, {"asOf": "9999-12-31T23:59:59Z"}]


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


@pytest.mark.parametrize("path", SUMMARIES)
def test_nul_in_an_id_filter_is_422(client: httpx.Client, tenant: Tenant, path: str) -> None:
    for name in ID_FILTERS[path]:
        response = client.get(
            f"/v1/reports/summary/{path}",
            params={name: "a\x00b"},
            headers=tenant.headers(tenant.viewer),
        )
        body = _problem(response, 422)
        assert body["errors"][0]["field"] == f"query.{name}"


@pytest.mark.parametrize("path", SUMMARIES)
@pytest.mark.parametrize("params", BAD_INSTANTS)
def test_instants_outside_the_format_or_range_are_422(
    client: httpx.Client, tenant: Tenant, path: str, params: dict[str, str]
) -> None:
    response = client.get(
        f"/v1/reports/summary/{path}", params=params, headers=tenant.headers(tenant.viewer)
    )
    body = _problem(response, 422)
    assert body["errors"][0]["field"] == f"query.{next(iter(params))}"


@pytest.mark.parametrize("params", AS_OF_BAD)
def test_as_of_out_of_range_is_422(
    client: httpx.Client, tenant: Tenant, params: dict[str, str]
) -> None:
    response = client.get(
        "/v1/reports/summary/invoice-settlement-time",
        params=params,
        headers=tenant.headers(tenant.viewer),
    )
    _problem(response, 422)


def test_instants_at_the_edges_of_the_range_are_answered(
    client: httpx.Client, tenant: Tenant
) -> None:
    for path in SUMMARIES:
        response = client.get(
            f"/v1/reports/summary/{path}",
            params={"fromDate": "1900-01-01T00:00:00Z", "toDate": "2200-01-01T00:00:00Z"},
            headers=tenant.headers(tenant.viewer),
        )
        assert response.status_code == 200, response.text
    response = client.get(
        "/v1/reports/summary/invoice-settlement-time",
        params={"asOf": "1900-01-01T00:00:00+14:00"},
        headers=tenant.headers(tenant.viewer),
    )
    _problem(response, 422)  # 1899-12-31T10:00Z in UTC: outside
    response = client.get(
        "/v1/reports/summary/invoice-settlement-time",
        params={"asOf": "2199-12-31T23:59:59-00:00"},
        headers=tenant.headers(tenant.viewer),
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("report_type", "filters"),
    [
        ("invoice_settlement_time", {"fromDate": "0001-01-01T00:00:00Z"}),
        ("invoice_settlement_time", {"toDate": "9999-12-31T23:59:59Z"}),
        ("invoice_settlement_time", {"asOf": "0001-01-01T00:00:00+14:00"}),
        ("time_approvals", {"fromDate": "0001-01-01T00:00:00Z"}),
        ("time_approvals", {"toDate": "9999-12-31T23:59:59Z"}),
        ("payments_received", {"customerId": "a\x00b"}),
        ("payments_received", {"fromDate": 1}),
        ("quote_cycle_time", {"asOf": "2024-01-01T00:00:00Z"}),  # not this report's filter
    ],
)
def test_a_post_refuses_filters_its_job_could_not_run(
    client: httpx.Client, tenant: Tenant, report_type: str, filters: dict[str, Any]
) -> None:
    response = client.post(
        "/v1/reports/export",
        json={"reportType": report_type, "format": "csv", "filters": filters},
        headers=tenant.headers(tenant.exporter),
    )
    body = _problem(response, 422)
    assert body["errors"][0]["field"].startswith("filters.")


def test_a_lone_surrogate_in_a_json_body_is_422(client: httpx.Client, tenant: Tenant) -> None:
    headers = tenant.headers(tenant.exporter) | {"Content-Type": "application/json"}
    for body in (
        '{"reportType": "payments_received", "format": "csv", "filters": {"\\ud800": 1}}',
        '{"reportType": "payments_received", "format": "csv", "fileName": "a\\udc00.csv"}',
        '{"reportType": "payments_received", "format": "csv", '
        '"filters": {"customerId": "\\ud800"}}',
    ):
        response = client.post("/v1/reports/export", content=body.encode(), headers=headers)
        _problem(response, 422)


def test_nul_in_a_path_segment_is_422(client: httpx.Client, tenant: Tenant) -> None:
    headers = tenant.headers(tenant.exporter)
    for method, url in (
        ("GET", "/v1/reports/export/a%00b"),
        ("GET", "/v1/reports/export/a%00b/download"),
        ("DELETE", "/v1/reports/export/a%00b"),
        ("POST", "/v1/reports/export/a%00b/cancel"),
    ):
        body = _problem(client.request(method, url, headers=headers), 422)
        assert body["errors"][0]["field"] == "path.job_id"


def test_nul_in_audit_filters_is_422(client: httpx.Client, tenant: Tenant) -> None:
    headers = tenant.headers(tenant.admin)
    for name in ("action", "userId", "organizationId", "cursor"):
        response = client.get("/v1/audit-logs", params={name: "a\x00b"}, headers=headers)
        body = _problem(response, 422)
        assert body["errors"][0]["field"] == f"query.{name}"
    for name in ("from", "to"):
        response = client.get("/v1/audit-logs", params={name: "1"}, headers=headers)
        _problem(response, 422)


def test_a_page_size_beyond_the_limit_is_422(client: httpx.Client, tenant: Tenant) -> None:
    """The job list pages by cursor; its page size is bounded (a bigint would overflow)."""
    headers = tenant.headers(tenant.exporter)
    for limit in ("9223372036854775808", "101", "0", "-1"):
        response = client.get("/v1/reports/export", params={"limit": limit}, headers=headers)
        body = _problem(response, 422)
        assert body["errors"][0]["field"] == "query.limit"
    response = client.get("/v1/reports/export", params={"limit": "100"}, headers=headers)
    assert response.status_code == 200


def test_a_nul_in_a_lookup_is_422(client: httpx.Client, tenant: Tenant) -> None:
    headers = tenant.headers(tenant.viewer)
    for params in ({"q": "a\x00b"}, {"name": "a\x00b"}):
        response = client.get("/v1/lookups/customers", params=params, headers=headers)
        _problem(response, 422)


@pytest.mark.parametrize("claim", ["sub", "org"])
def test_a_token_with_nul_in_an_id_claim_is_401(
    client: httpx.Client, tenant: Tenant, claim: str
) -> None:
    settings = tenant.settings
    claims: dict[str, Any] = {
        "sub": tenant.viewer.id,
        "org": tenant.org.id,
        "exp": datetime.now(UTC) + timedelta(minutes=5),
        "iat": datetime.now(UTC),
    }
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    claims[claim] = claims[claim] + "\x00"
    token = jwt.encode(claims, settings.resolved_jwt_secret(), algorithm="HS256")
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    _problem(response, 401)


def _big_body() -> bytes:
    body = {"reportType": "payments_received", "format": "csv", "fileName": "x" * 300}
    padding = " " * (MAX_BODY_BYTES + 1 - len(json.dumps(body)))
    return (json.dumps(body) + padding).encode()


def test_a_body_over_the_limit_is_413(client: httpx.Client, tenant: Tenant) -> None:
    headers = tenant.headers(tenant.exporter) | {"Content-Type": "application/json"}
    big = _big_body()
    assert len(big) == MAX_BODY_BYTES + 1
    body = _problem(client.post("/v1/reports/export", content=big, headers=headers), 413)
    assert str(MAX_BODY_BYTES) in body["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    _problem(client.post("/v1/reports/export", content=chunks(), headers=headers), 413)
    # At the limit, the body is read and parsed as usual (a 422 for the oversized name).
    at_limit = big[:-1]
    response = client.post("/v1/reports/export", content=at_limit, headers=headers)
    _problem(response, 422)


def test_a_body_nested_too_deep_to_parse_is_a_documented_4xx(
    client: httpx.Client, tenant: Tenant
) -> None:
    headers = tenant.headers(tenant.exporter) | {"Content-Type": "application/json"}
    body = b'{"reportType": "payments_received", "format": "csv", "filters": ' + b"[" * 30000
    response = client.post("/v1/reports/export", content=body, headers=headers)
    assert response.status_code in (400, 422), response.text
    problem = _problem(response, response.status_code)
    documented = client.get("/openapi.json").json()["paths"]["/v1/reports/export"]["post"]
    assert str(problem["status"]) in documented["responses"]


@pytest.mark.parametrize(
    ("method", "url", "params"),
    [
        ("GET", "/v1/audit-logs", {"cursor": "not-a-cursor"}),
        ("GET", "/v1/audit-logs", {"cursor": "\u00e9\u00e9\u00e9"}),
        ("GET", "/v1/audit-logs", {"limit": "9223372036854775808"}),
        ("GET", "/v1/audit-logs", {"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}),
        ("GET", "/v1/reports/export", {"limit": "0"}),
        ("GET", "/v1/reports/summary/payments-received", {"currency": "usd"}),
        (
            "GET",
            "/v1/reports/summary/time-approvals",
            {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-01-01T00:00:00Z"},
        ),
        ("GET", "/v1/reports/export/" + "x" * 201, {}),
    ],
)
def test_odd_inputs_are_documented_4xx(
    client: httpx.Client, tenant: Tenant, method: str, url: str, params: dict[str, str]
) -> None:
    response = client.request(method, url, params=params, headers=tenant.headers(tenant.admin))
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_an_unencoded_plus_in_an_offset_is_explained(client: httpx.Client, tenant: Tenant) -> None:
    response = client.get(
        "/v1/reports/summary/payments-received?fromDate=2024-01-01T00:00:00+01:00",
        headers=tenant.headers(tenant.viewer),
    )
    body = _problem(response, 422)
    assert "%2B" in body["errors"][0]["message"]
