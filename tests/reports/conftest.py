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
        original: Callable[..., Any] = helpers.summary

        def refreshed_first(client: Any, tenant: Any, path: str, **params: Any) -> Any:
            rebuilt = refresh_all_blocking(database_url, [tenant.org.id])
            assert isinstance(rebuilt, dict)
            return original(client, tenant, path, **params)

        monkeypatch.setattr(helpers, "summary", refreshed_first)
    return str(request.param)
