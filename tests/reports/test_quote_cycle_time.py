"""quote_cycle_time: figures checked by hand and against the pure-Python oracle."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import Tenant, create_customer, create_project, create_quote
from tests.reports.helpers import bucket_counts, check_distribution, figures, seconds, stats

# Each test runs on the rows and on freshly rolled-up months (conftest.py).
pytestmark = pytest.mark.usefixtures("summary_source")

PATH = "quote-cycle-time"
FROM = datetime(2024, 3, 1, tzinfo=UTC)
TO = datetime(2024, 4, 1, tzinfo=UTC)
WINDOW = {"fromDate": "2024-03-01T00:00:00Z", "toDate": "2024-04-01T00:00:00Z"}
LABELS = ("0-1 days", "2-3 days", "4-7 days", "8-14 days", "15-30 days", "31+ days")
DAY = timedelta(days=1)


def _decided(db: Session, tenant: Tenant, decided_at: datetime, age: timedelta, **kw: object):
    return create_quote(
        db, org=tenant.org, created_at=decided_at - age, decided_at=decided_at, **kw
    )


def _seed(db: Session, tenant: Tenant) -> dict[str, object]:
    acme = create_customer(db, org=tenant.org, name="Acme Corp")
    web = create_project(db, org=tenant.org, customer=acme, name="Website Redesign")
    app = create_project(db, org=tenant.org, customer=acme, name="Mobile App")
    quotes = [
        # decided exactly at fromDate: inside the half-open window; 2 days
        _decided(db, tenant, FROM, 2 * DAY, status="accepted", customer=acme, project=web),
        _decided(
            db, tenant, FROM + 9 * DAY, 1.5 * DAY, status="rejected", customer=acme, project=web
        ),
        # a tie at 4 days, one of them without a project
        _decided(
            db, tenant, FROM + 14 * DAY, 4 * DAY, status="accepted", customer=acme, project=app
        ),
        _decided(db, tenant, FROM + 14 * DAY, 4 * DAY, status="expired", customer=acme),
        # one second short of 2 days: still "0-1 days"
        _decided(
            db,
            tenant,
            FROM + 20 * DAY,
            2 * DAY - timedelta(seconds=1),
            status="accepted",
            customer=acme,
            project=app,
        ),
        _decided(db, tenant, TO - timedelta(seconds=1), 31 * DAY, status="accepted", customer=acme),
    ]
    # Outside: decided exactly at toDate, just before fromDate; undecided quotes.
    _decided(db, tenant, TO, DAY, status="accepted", customer=acme)
    _decided(db, tenant, FROM - timedelta(seconds=1), DAY, status="rejected", customer=acme)
    create_quote(db, org=tenant.org, customer=acme, status="sent", created_at=FROM + DAY)
    create_quote(db, org=tenant.org, customer=acme, status="draft", created_at=FROM + DAY)
    return {"customer": acme, "web": web, "app": app, "quotes": quotes}


def _oracle(quotes: list, **only: object) -> dict[str, object]:
    rows = [q for q in quotes if all(getattr(q, k) == v for k, v in only.items())]
    days = [seconds(q.decided_at - q.created_at) / 86400 for q in rows]
    return {"rows": rows, "days": days, **stats(days)}


def test_figures_match_hand_count_and_oracle(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    seeded = _seed(db, tenant)
    result = figures(tenant, PATH, **WINDOW)
    expected = _oracle(seeded["quotes"])  # type: ignore[arg-type]

    assert result["totalQuotes"] == 6
    # by hand: 1.5, 1.99998843, 2, 4, 4, 31 → median (2 + 4) / 2, mean 44.49998843 / 6
    assert result["medianCycleTimeDays"] == Decimal("3.0") == expected["median"]
    assert result["averageCycleTimeDays"] == Decimal("7.4") == expected["average"]
    assert result["minCycleTimeDays"] == Decimal("1.5") == expected["min"]
    assert result["maxCycleTimeDays"] == Decimal("31.0") == expected["max"]
    assert result["quotesByStatus"] == {"accepted": 4, "rejected": 1, "expired": 1}
    assert result["quotesByProject"] == {"Website Redesign": 2, "Mobile App": 2, "(no project)": 2}
    counts = bucket_counts(expected["days"], (2, 4, 8, 15, 31))  # type: ignore[arg-type]
    assert counts == [2, 1, 2, 0, 0, 1]
    check_distribution(result["cycleTimeDistribution"], LABELS, counts)


def test_filters_narrow_the_rows(client: httpx.Client, tenant: Tenant, db: Session) -> None:
    seeded = _seed(db, tenant)
    quotes, app = seeded["quotes"], seeded["app"]
    accepted = figures(tenant, PATH, status="accepted", **WINDOW)
    expected = _oracle(quotes, status="accepted")  # type: ignore[arg-type]
    assert accepted["totalQuotes"] == len(expected["rows"]) == 4  # type: ignore[arg-type]
    assert accepted["medianCycleTimeDays"] == expected["median"]
    assert accepted["averageCycleTimeDays"] == expected["average"]
    assert accepted["quotesByStatus"] == {"accepted": 4, "rejected": 0, "expired": 0}

    by_project = figures(tenant, PATH, projectId=app.id, **WINDOW)  # type: ignore[attr-defined]
    expected = _oracle(quotes, project_id=app.id)  # type: ignore[arg-type, attr-defined]
    assert by_project["totalQuotes"] == 2
    assert by_project["quotesByProject"] == {"Mobile App": 2}
    assert by_project["medianCycleTimeDays"] == expected["median"]

    other = create_customer(db, org=tenant.org)
    assert figures(tenant, PATH, customerId=other.id, **WINDOW)["totalQuotes"] == 0


def test_one_row_and_empty_window(client: httpx.Client, tenant: Tenant, db: Session) -> None:
    _decided(db, tenant, FROM + DAY, timedelta(hours=60), status="rejected")
    one = figures(tenant, PATH, **WINDOW)
    assert one["totalQuotes"] == 1
    assert one["averageCycleTimeDays"] == one["medianCycleTimeDays"] == Decimal("2.5")
    assert one["minCycleTimeDays"] == one["maxCycleTimeDays"] == Decimal("2.5")
    check_distribution(one["cycleTimeDistribution"], LABELS, [0, 1, 0, 0, 0, 0])

    empty = figures(tenant, PATH, fromDate="2030-01-01T00:00:00Z", toDate="2030-02-01T00:00:00Z")
    assert empty["totalQuotes"] == 0
    assert empty["averageCycleTimeDays"] is None
    assert empty["medianCycleTimeDays"] is None
    assert empty["quotesByStatus"] == {"accepted": 0, "rejected": 0, "expired": 0}
    assert empty["quotesByProject"] == {}
    check_distribution(empty["cycleTimeDistribution"], LABELS, [0] * 6)


def test_other_organizations_never_change_a_figure(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, db: Session
) -> None:
    _seed(db, tenant)
    before = figures(tenant, PATH, **WINDOW)
    _seed(db, other_tenant)
    _decided(db, other_tenant, FROM + DAY, 90 * DAY, status="accepted")
    assert figures(tenant, PATH, **WINDOW) == before


def test_envelope_echoes_the_filters_as_given(client: httpx.Client, tenant: Tenant) -> None:
    sent_at = datetime.now(UTC)
    response = client.get(
        f"/v1/reports/summary/{PATH}",
        params={"organizationId": tenant.org.id, "fromDate": "2024-03-01T00:00:00+02:00"},
        headers=tenant.headers(tenant.viewer),
    )
    answered_at = datetime.now(UTC)
    assert response.status_code == 200
    body = response.json()
    assert body["reportType"] == "quote_cycle_time"
    assert body["filters"] == {
        "organizationId": tenant.org.id,
        "fromDate": "2024-03-01T00:00:00+02:00",
    }
    assert body["generatedAt"].endswith("Z")
    assert body["dataAsOf"].endswith("Z")
    # Read on the primary (no replica here): the snapshot was taken during the request.
    assert sent_at <= datetime.fromisoformat(body["dataAsOf"]) <= answered_at
    assert set(body) == {"reportType", "filters", "summary", "generatedAt", "dataAsOf"}


def test_many_random_quotes_match_percentile_cont(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    """The histogram median equals PostgreSQL's own percentile_cont on the same rows."""
    rng = random.Random(7)
    customer = create_customer(db, org=tenant.org)
    for i in range(120):
        age = rng.choice(
            [rng.randrange(0, 20 * 86400), 4320 * rng.randrange(0, 400) + rng.choice([-1, 0, 1])]
        )
        _decided(
            db,
            tenant,
            FROM + timedelta(minutes=i),
            timedelta(seconds=max(age, 0)),
            status=rng.choice(["accepted", "rejected", "expired"]),
            customer=customer,
        )
    result = figures(tenant, PATH, **WINDOW)
    reference = db.execute(
        text(
            "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s)::numeric / 86400, 1),"
            " round(avg(s)::numeric / 86400, 1), round(min(s)::numeric / 86400, 1),"
            " round(max(s)::numeric / 86400, 1), count(*)"
            " FROM (SELECT extract(epoch FROM decided_at - created_at) AS s FROM quotes"
            " WHERE organization_id = :org AND decided_at >= :f AND decided_at < :t) q"
        ),
        {"org": tenant.org.id, "f": FROM, "t": TO},
    ).one()
    assert result["totalQuotes"] == reference[4] == 120
    assert result["medianCycleTimeDays"] == reference[0]
    assert result["averageCycleTimeDays"] == reference[1]
    assert result["minCycleTimeDays"] == reference[2]
    assert result["maxCycleTimeDays"] == reference[3]
