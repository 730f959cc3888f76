"""``summary_source``: run a figures test twice, once read from the rows and once with
every month of the tenant rolled up first (reports/rollups/), against the same oracle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pivotal_reporting.reports.refresh import refresh_all_blocking
from tests.reports import helpers


@pytest.fixture(params=["rows", "rollups"])
def summary_source(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> str:
    if request.param == "rollups":
        over_http: Callable[..., Any] = helpers.summary
        in_process: Callable[..., Any] = helpers.computed_summary

        def refresh(tenant: Any) -> None:
            rebuilt = refresh_all_blocking(database_url, [tenant.org.id])
            assert isinstance(rebuilt, dict)

        def summary_refreshed_first(client: Any, tenant: Any, path: str, **params: Any) -> Any:
            refresh(tenant)
            return over_http(client, tenant, path, **params)

        def figures_refreshed_first(tenant: Any, path: str, **params: Any) -> Any:
            refresh(tenant)
            return in_process(tenant, path, **params)

        monkeypatch.setattr(helpers, "summary", summary_refreshed_first)
        monkeypatch.setattr(helpers, "computed_summary", figures_refreshed_first)
    return str(request.param)
