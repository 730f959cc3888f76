"""``GET /v1/reports/summary/<path>``: one thin route per registered report.

The routes are generated from the registry so that adding a report needs no route
code; each still gets its own typed query parameters (the report's ``Filters`` model,
unknown parameters refused) and its own documented response model in OpenAPI.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from pivotal_reporting.auth.dependencies import get_database, require
from pivotal_reporting.auth.principal import VIEW_REPORTS, Principal
from pivotal_reporting.db import Database
from pivotal_reporting.errors import problem_responses
from pivotal_reporting.reports import registry, service
from pivotal_reporting.reports.base import Report, ReportFilters
from pivotal_reporting.reports.breakdown_limit import split_query, summary_query_model
from pivotal_reporting.reports.schemas import DecimalJSONResponse

router = APIRouter(prefix="/v1/reports/summary", tags=["reports"])

_RESPONSES = problem_responses(401, 403, 422, 429, 503)


def _summary_endpoint(report: Report[Any]) -> Callable[..., Awaitable[Response]]:
    async def endpoint(
        filters: ReportFilters, principal: Principal, database: Database
    ) -> Response:
        own, customer_limit = split_query(report, filters)
        envelope = await service.generate_summary(
            database, principal, report, own, customer_limit=customer_limit
        )
        return DecimalJSONResponse(envelope)

    # FastAPI reads parameters from the signature: give this report's Filters model
    # (with customerLimit where the report has a customer breakdown).
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                "filters",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[summary_query_model(report), Query()],
            ),
            inspect.Parameter(
                "principal",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[Principal, Depends(require(VIEW_REPORTS))],
            ),
            inspect.Parameter(
                "database",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[Database, Depends(get_database)],
            ),
        ],
        return_annotation=Response,
    )
    return endpoint


for _report in registry.all_reports():
    router.add_api_route(
        f"/{_report.path}",
        _summary_endpoint(_report),
        methods=["GET"],
        name=f"{_report.report_type}_summary",
        summary=_report.title,
        response_model=_report.response_model,
        response_class=DecimalJSONResponse,
        responses=_RESPONSES,
    )
