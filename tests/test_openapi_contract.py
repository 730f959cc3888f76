"""The OpenAPI document says what each operation can answer, and what the export takes."""

from __future__ import annotations

from typing import Any, get_args

import httpx

from pivotal_reporting.exports.schemas import EXPORT_BODIES
from pivotal_reporting.reports import registry

PROBLEM = "application/problem+json"


def _openapi(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = document
    for part in ref.removeprefix("#/").split("/"):
        resolved = resolved[part]
    return resolved


def test_the_export_body_is_one_schema_per_report_type(client: httpx.Client) -> None:
    document = _openapi(client)
    body = document["paths"]["/v1/reports/export"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["discriminator"]["propertyName"] == "reportType"
    mapping = schema["discriminator"]["mapping"]
    assert set(mapping) == {report.report_type for report in registry.all_reports()}
    for report in registry.all_reports():
        variant = _resolve(document, {"$ref": mapping[report.report_type]})
        assert variant["additionalProperties"] is False
        filters = _resolve(document, variant["properties"]["filters"])
        expected = set(report.filters_model.model_json_schema(by_alias=True)["properties"])
        assert set(filters["properties"]) == expected  # that report's own filters
    tags = {get_args(model.model_fields["report_type"].annotation)[0] for model in EXPORT_BODIES}
    assert tags == {report.report_type for report in registry.all_reports()}


def test_every_api_operation_documents_its_problems(client: httpx.Client) -> None:
    document = _openapi(client)
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "401" in responses, (method, path)
            assert "429" in responses, (method, path)  # the rate limit covers /v1/
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    assert set(response["content"]) == {PROBLEM}, (method, path, status)
            if method in ("post", "delete"):
                assert "413" in responses or method == "delete", (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in responses, (method, path)
