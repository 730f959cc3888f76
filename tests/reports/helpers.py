"""Shared helpers for the summary tests: the summaries (over HTTP or in-process) and
the pure-Python oracle.

The oracle recomputes every figure from the rows the test created, with the meanings
of the figures (docs/figures.md), independently of the SQL under test.

``ok_summary`` asks the running API (the whole request path: auth, envelope, cache,
JSON); ``figures`` computes the same summary in this process, ``report.summarize`` in a
read-only tenant transaction that is rolled back (no HTTP, no cache, no audit event),
which is what most figures tests need and is quicker. Each report keeps its oracle test
over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from pivotal_reporting.db import Database
from pivotal_reporting.reports import registry
from pivotal_reporting.reports.base import Report, ReportContext, ReportFilters, fetch_one
from pivotal_reporting.reports.breakdown_limit import (
    limit_customers,
    split_query,
    summary_query_model,
    without_rest,
)
from pivotal_reporting.reports.schemas import encode_json
from tests.factories import Tenant

SUMMARY = "/v1/reports/summary"
TENTH = Decimal("0.1")


def summary(
    client: httpx.Client, tenant: Tenant, path: str, **params: Any
) -> tuple[httpx.Response, dict[str, Any]]:
    """GET a summary as the tenant's viewer; the body parsed with exact decimals."""
    response = client.get(f"{SUMMARY}/{path}", params=params, headers=tenant.headers(tenant.viewer))
    body = json.loads(response.text, parse_float=Decimal) if response.content else {}
    return response, body


def ok_summary(client: httpx.Client, tenant: Tenant, path: str, **params: Any) -> dict[str, Any]:
    response, body = summary(client, tenant, path, **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    result: dict[str, Any] = body["summary"]
    return result


class _RollBack(Exception):
    """Leaves the tenant transaction by rolling it back, carrying the summary out."""

    def __init__(self, summary: dict[str, Any]) -> None:
        self.summary = summary


async def _summarize(tenant: Tenant, report: Report[Any], filters: ReportFilters) -> dict[str, Any]:
    url = tenant.settings.database_url
    assert url, "the test settings name their database"
    database = Database.connect(url, pool_size=1)
    org_id = tenant.org.id
    try:
        async with database.tenant_session(org_id, snapshot=True) as session:
            # As the API does per request: the organization's settings as stored now.
            org = await fetch_one(
                session,
                "SELECT timezone, base_currency FROM organizations WHERE id = %(org)s",
                {"org": org_id},
            )
            assert org is not None
            ctx = ReportContext(
                organization_id=org_id,
                user_id=tenant.viewer.id,
                timezone=org["timezone"],
                base_currency=org["base_currency"].strip(),
                now=datetime.now(UTC),
            )
            computed = await report.summarize(session, ctx, filters)
            raise _RollBack(without_rest(computed.model_dump(by_alias=True)))
    except _RollBack as done:
        return done.summary
    finally:
        await database.dispose()


def figures(tenant: Tenant, path: str, **params: Any) -> dict[str, Any]:
    """``computed_summary``, looked up when called (so conftest.py's ``summary_source``
    can refresh the rollups first, as it does for ``summary``)."""
    return computed_summary(tenant, path, **params)


def computed_summary(tenant: Tenant, path: str, **params: Any) -> dict[str, Any]:
    """The ``summary`` object of ``GET /v1/reports/summary/{path}?params``, computed
    in-process in a rolled-back tenant transaction; JSON-encoded as the API encodes it
    and parsed with exact decimals, so it compares like ``ok_summary``'s."""
    (report,) = (r for r in registry.all_reports() if r.path == path)
    query = summary_query_model(report).model_validate(params)
    filters, limit = split_query(report, query)
    summary = limit_customers(report, asyncio.run(_summarize(tenant, report, filters)), limit)
    result: dict[str, Any] = json.loads(encode_json(summary), parse_float=Decimal)
    return result


def seconds(delta: timedelta) -> Decimal:
    """Exact seconds of a timedelta (microseconds included)."""
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 10**6


def round1(value: Decimal | None) -> Decimal | None:
    """One decimal, half away from zero (PostgreSQL's ``round(numeric, 1)``)."""
    return None if value is None else value.quantize(TENTH, rounding=ROUND_HALF_UP)


def stats(values: Sequence[Decimal]) -> dict[str, Decimal | None]:
    """avg/median/min/max of ``values``, each rounded to one decimal (None when empty)."""
    if not values:
        return {"average": None, "median": None, "min": None, "max": None}
    return {
        "average": round1(sum(values, Decimal(0)) / len(values)),
        "median": round1(Decimal(statistics.median(values))),
        "min": round1(min(values)),
        "max": round1(max(values)),
    }


def bucket_counts(values: Iterable[Decimal], upper_bounds: Sequence[int]) -> list[int]:
    """Counts per bucket by ``floor(value)``: bucket i holds floor < upper_bounds[i]."""
    counts = [0] * (len(upper_bounds) + 1)
    for value in values:
        whole = int(value // 1)
        index = next(
            (i for i, bound in enumerate(upper_bounds) if whole < bound), len(upper_bounds)
        )
        counts[index] += 1
    return counts


def check_distribution(
    buckets: list[dict[str, Any]], labels: Sequence[str], counts: list[int]
) -> None:
    """Labels and counts exact; percentages within 0.1 of exact and adding to 100 (± 0.1)."""
    assert [b["range"] for b in buckets] == list(labels)
    assert [b["count"] for b in buckets] == counts
    total = sum(counts)
    shares = [b["percentage"] for b in buckets]
    if total == 0:
        assert all(share == 0 for share in shares)
        return
    assert abs(sum(shares) - 100) <= TENTH
    for share, count in zip(shares, counts, strict=True):
        assert abs(share - Decimal(count * 100) / total) <= TENTH


def local_midnight(day: date, timezone: str) -> datetime:
    """A calendar date's midnight in ``timezone``, as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))


def day_seconds(value: Decimal) -> Decimal:
    return value / 86400
