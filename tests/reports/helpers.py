"""Shared helpers for the summary tests: calling the API and the pure-Python oracle.

The oracle recomputes every figure from the rows the test created, with the meanings
of DESIGN.md ("Report definitions"), independently of the SQL under test.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx

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
