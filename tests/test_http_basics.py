"""Health, OpenAPI and the problem+json rendering of every error class, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import httpx
import psycopg
import pytest
from fastapi import Depends, FastAPI, Query
from sqlalchemy import Engine, text

from pivotal_reporting.app import create_app
from pivotal_reporting.auth.dependencies import require
from pivotal_reporting.config import Settings
from pivotal_reporting.errors import Conflict
from tests.factories import Tenant
from tests.server import ServerThread

PROBLEM = "application/problem+json"


def _probe_app(settings: Settings) -> FastAPI:
    app = create_app(settings.model_copy(update={"worker_in_process": False}))

    @app.get("/v1/_probe/guarded", dependencies=[Depends(require("reports.view_reports"))])
    async def guarded() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/v1/_probe/boom")
    async def boom() -> dict[str, str]:
        raise RuntimeError("secret internal detail /etc/passwd")

    @app.get("/v1/_probe/conflict")
    async def conflict() -> dict[str, str]:
        raise Conflict("That already exists.")

    @app.get("/v1/_probe/items/{item_id}")
    async def item(item_id: int, size: Annotated[int, Query(ge=1, le=10)] = 1) -> dict[str, int]:
        return {"id": item_id, "size": size}

    return app


@pytest.fixture(scope="module")
def probe(settings: Settings) -> Iterator[httpx.Client]:
    with (
        ServerThread(_probe_app(settings)) as server,
        httpx.Client(base_url=server.base_url) as http,
    ):
        yield http


def test_liveness_and_readiness(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_readiness_is_503_when_migrations_are_behind(admin_url: str, settings: Settings) -> None:
    from pivotal_reporting import schema
    from pivotal_reporting.db import with_database

    name = "pivotal_behind_" + settings.data_dir.name[-8:].replace("-", "_")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    try:
        schema.upgrade(url, "0002")
        behind = settings.model_copy(update={"database_url": url, "worker_in_process": False})
        with ServerThread(create_app(behind)) as server:
            response = httpx.get(f"{server.base_url}/health/ready")
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        assert "not at head" in response.json()["detail"]
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_openapi_documents_the_api(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/me" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_unknown_route_is_404_problem(client: httpx.Client) -> None:
    response = client.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["instance"] == "/v1/nowhere"


def test_wrong_method_is_405_problem(client: httpx.Client) -> None:
    response = client.delete("/health")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM


def test_missing_permission_is_403_and_audited(
    probe: httpx.Client, tenant: Tenant, owner_engine: Engine
) -> None:
    denied = probe.get("/v1/_probe/guarded", headers=tenant.headers(tenant.nobody))
    assert denied.status_code == 403
    assert denied.headers["content-type"] == PROBLEM
    assert "reports.view_reports" in denied.json()["detail"]
    assert probe.get("/v1/_probe/guarded", headers=tenant.headers(tenant.viewer)).status_code == 200
    with owner_engine.connect() as conn:
        events = conn.execute(
            text(
                "SELECT user_id, action, resource_id, details FROM audit_logs WHERE organization_id = :o"
            ),
            {"o": tenant.org.id},
        ).all()
    assert [(e.user_id, e.action, e.resource_id) for e in events] == [
        (tenant.nobody.id, "access_denied", "/v1/_probe/guarded")
    ]
    assert events[0].details["required_permission"] == "reports.view_reports"


def test_validation_error_is_422_naming_each_field(probe: httpx.Client) -> None:
    response = probe.get("/v1/_probe/items/abc", params={"size": 99})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"path.item_id", "query.size"}


def test_domain_conflict_is_409_problem(probe: httpx.Client) -> None:
    response = probe.get("/v1/_probe/conflict")
    assert response.status_code == 409
    assert response.json()["detail"] == "That already exists."


def test_unhandled_error_is_500_without_internals(probe: httpx.Client) -> None:
    response = probe.get("/v1/_probe/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "passwd" not in response.text
    assert "Traceback" not in response.text


SUMMARY_PATHS = [
    "/v1/reports/summary/invoice-settlement-time",
    "/v1/reports/summary/payments-received",
    "/v1/reports/summary/quote-cycle-time",
    "/v1/reports/summary/time-approvals",
]


@pytest.mark.parametrize("path", ["/v1/reports/summary/nope", "/v1/reports/summary/nope/deeper"])
def test_unknown_summary_path_lists_the_valid_ones(
    client: httpx.Client, tenant: Tenant, path: str
) -> None:
    response = client.get(path, headers=tenant.headers(tenant.viewer))
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    detail = response.json()["detail"]
    assert detail == (
        "No such path. The paths under /v1/reports/summary/ are: " + ", ".join(SUMMARY_PATHS) + "."
    )


def test_unknown_path_outside_a_family_points_to_the_docs(client: httpx.Client) -> None:
    response = client.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.json()["detail"] == "No such path; /docs lists the API."


def test_validation_messages_carry_no_pydantic_prefix(client: httpx.Client, tenant: Tenant) -> None:
    window = {"fromDate": "2026-02-01T00:00:00Z", "toDate": "2026-01-01T00:00:00Z"}
    summary = client.get(
        "/v1/reports/summary/payments-received",
        params=window,
        headers=tenant.headers(tenant.viewer),
    )
    export = client.post(
        "/v1/reports/export",
        json={"reportType": "payments_received", "format": "csv", "filters": window},
        headers=tenant.headers(tenant.exporter),
    )
    for response, field in ((summary, "query.toDate"), (export, "filters.toDate")):
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {"field": field, "message": "toDate must be later than fromDate"}
        ]
        assert "Value error" not in response.text


@pytest.mark.parametrize(
    "raw",
    ["2026-01-01T00:00:00+02:00", "2026-01-01T00:00:00.250+0530", "2026-01-01T00:00+02:00"],
)
def test_an_unencoded_plus_in_an_offset_says_to_encode_it(
    client: httpx.Client, tenant: Tenant, raw: str
) -> None:
    # Sent literally (not as %2B), the query string's '+' is decoded as a space.
    response = client.get(
        f"/v1/reports/summary/payments-received?fromDate={raw}",
        headers=tenant.headers(tenant.viewer),
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "query.fromDate"
    assert "encode + as %2B" in error["message"]
    encoded = client.get(
        "/v1/reports/summary/payments-received",
        params={"fromDate": raw},  # httpx encodes '+' as %2B
        headers=tenant.headers(tenant.viewer),
    )
    assert encoded.status_code == 200, encoded.text


def test_a_plain_invalid_date_keeps_pydantic_s_message(
    client: httpx.Client, tenant: Tenant
) -> None:
    response = client.get(
        "/v1/reports/summary/payments-received",
        params={"fromDate": "yesterday"},
        headers=tenant.headers(tenant.viewer),
    )
    assert response.status_code == 422
    assert "%2B" not in response.json()["errors"][0]["message"]


EXPORT_BODY = b'{"reportType": "payments_received", "format": "csv"}'


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_a_json_body_not_declared_as_json_is_415(
    client: httpx.Client, tenant: Tenant, content_type: str | None
) -> None:
    headers = tenant.headers(tenant.exporter)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post("/v1/reports/export", content=EXPORT_BODY, headers=headers)
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM
    assert "Content-Type: application/json" in response.json()["detail"]
    declared = client.post(
        "/v1/reports/export",
        content=EXPORT_BODY,
        headers=tenant.headers(tenant.exporter) | {"Content-Type": "application/json"},
    )
    assert declared.status_code == 202, declared.text


def test_a_json_post_without_a_body_is_still_422(client: httpx.Client, tenant: Tenant) -> None:
    response = client.post("/v1/reports/export", headers=tenant.headers(tenant.exporter))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"


def test_415_is_documented_on_the_export_post(client: httpx.Client) -> None:
    responses = client.get("/openapi.json").json()["paths"]["/v1/reports/export"]["post"][
        "responses"
    ]
    assert "application/problem+json" in responses["415"]["content"]
