"""One JSON access line per request, request ids, and HTTP metrics by route template."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import httpx
import pytest

from pivotal_reporting.observability.logs import JsonFormatter
from tests.factories import Tenant
from tests.server import METRICS_HEADERS, ServerThread

SECRET_FILTER = "Confidential-Customer-Name"


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "pivotal_reporting.access"
    ]


def _wait_for_line(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in _access_lines(caplog):
            if line.get("request_id") == request_id:
                return line
        time.sleep(0.02)
    raise AssertionError(f"no access line for {request_id}")


def test_one_json_line_per_request_without_secrets(
    client: httpx.Client, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pivotal_reporting")
    headers = tenant.headers(tenant.admin) | {"X-Request-ID": "req-abc.123"}
    token = headers["Authorization"].removeprefix("Bearer ")
    response = client.get("/v1/audit-logs", params={"action": SECRET_FILTER}, headers=headers)
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-abc.123"
    line = _wait_for_line(caplog, "req-abc.123")
    assert line["event"] == "http_request"
    assert line["organization_id"] == tenant.org.id
    assert line["user_id"] == tenant.admin.id
    assert line["route"] == "/v1/audit-logs"
    assert line["method"] == "GET"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["level"] == "INFO"
    everything = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert token not in everything
    assert SECRET_FILTER not in everything


def test_request_id_is_generated_when_missing_or_unsafe(client: httpx.Client) -> None:
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32
    unsafe = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["X-Request-ID"] not in ("bad id\twith spaces", generated)


def test_unmatched_paths_are_not_labels(
    client: httpx.Client, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pivotal_reporting")
    response = client.get(
        "/v1/no-such-thing/user-typed-123", headers={"X-Request-ID": "req-unmatched"}
    )
    assert response.status_code == 404
    assert _wait_for_line(caplog, "req-unmatched")["route"] == "<unmatched>"
    metrics = client.get("/metrics", headers=METRICS_HEADERS).text
    assert "user-typed-123" not in metrics
    assert 'route="<unmatched>"' in metrics


def test_http_and_validation_metrics_by_route_template(
    client: httpx.Client, tenant: Tenant
) -> None:
    headers = tenant.headers(tenant.admin)
    client.get("/v1/me", headers=headers)
    assert client.get("/v1/audit-logs", params={"limit": 0}, headers=headers).status_code == 422
    response = client.get("/metrics", headers=METRICS_HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'pivotal_http_requests_total{method="GET",route="/v1/me",status="200"}' in text
    assert (
        'pivotal_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/me"}'
        in text
    )
    assert 'pivotal_data_validation_errors_total{route="/v1/audit-logs"}' in text
    assert "pivotal_export_duration_ms_bucket" in text or "pivotal_export_duration_ms" in text
    # Series exist at 0 for routes that never failed, so increase() sees the first error.
    assert 'pivotal_data_validation_errors_total{route="/v1/me"} 0.0' in text


def test_metrics_need_the_scrape_token(
    client: httpx.Client, start_server: Callable[..., ServerThread], tenant: Tenant
) -> None:
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert tenant.org.id not in anonymous.text
    # A user's bearer token is not the scrape token.
    user = client.get("/metrics", headers=tenant.headers(tenant.admin))
    assert user.status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer test-metrics-tokeN"})
    assert wrong.status_code == 401
    assert client.get("/metrics", headers=METRICS_HEADERS).status_code == 200


def test_without_a_token_metrics_are_not_served_on_the_api_port(
    start_server: Callable[..., ServerThread],
) -> None:
    server = start_server(metrics_token=None)
    with httpx.Client(base_url=server.base_url) as client:
        for headers in ({}, METRICS_HEADERS):
            response = client.get("/metrics", headers=headers)
            assert response.status_code == 404
            assert response.headers["content-type"] == "application/problem+json"
            assert "PIVOTAL_METRICS_PORT" in response.json()["detail"]
            assert "pivotal_http_requests_total" not in response.text
