"""time_approvals: hours by status, approval latency, pending approvals and their age."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.orm import Session

from tests.factories import Tenant, create_customer, create_project, create_time_entry, create_user
from tests.reports.helpers import check_distribution, figures, ok_summary, round1, seconds, stats

# Each test runs on the rows and on freshly rolled-up months (conftest.py).
pytestmark = pytest.mark.usefixtures("summary_source")

PATH = "time-approvals"
WINDOW = {"fromDate": "2024-03-01T00:00:00Z", "toDate": "2024-04-01T00:00:00Z"}
LABELS = ("0-1 days", "2-3 days", "4-7 days", "8-14 days", "15-30 days", "31+ days")
SUBMITTED = datetime(2024, 3, 8, 17, tzinfo=UTC)


def _seed(db: Session, tenant: Tenant) -> list:
    acme = create_customer(db, org=tenant.org)
    web = create_project(db, org=tenant.org, customer=acme, name="Website Redesign")
    audit = create_project(db, org=tenant.org, customer=acme, name="Annual Audit")
    ada = create_user(db, org=tenant.org, display_name="Ada Lovelace")
    alan = create_user(db, org=tenant.org, display_name="Alan Turing")

    def entry(
        user,
        project,
        day: date,
        hours: str,
        status: str,
        latency: timedelta | None = None,
        **kw: object,
    ):  # type: ignore[no-untyped-def]
        extra: dict[str, object] = {}
        if status != "draft":
            extra["submitted_at"] = SUBMITTED
        if latency is not None:
            extra["approved_at"] = SUBMITTED + latency
        return create_time_entry(
            db,
            org=tenant.org,
            user=user,
            project=project,
            work_date=day,
            hours=Decimal(hours),
            status=status,
            **extra,
            **kw,
        )

    entries = [
        entry(ada, web, date(2024, 3, 1), "8.00", "approved", timedelta(hours=24)),  # first day
        entry(ada, web, date(2024, 3, 4), "7.50", "approved", timedelta(hours=24)),  # a tie
        entry(
            alan,
            audit,
            date(2024, 3, 5),
            "1.25",
            "approved",
            timedelta(hours=1, minutes=30),
            billable=False,
        ),
        entry(alan, web, date(2024, 3, 6), "6.00", "approved", timedelta(hours=49)),
        entry(alan, audit, date(2024, 3, 7), "4.00", "submitted"),
        entry(ada, audit, date(2024, 3, 8), "2.00", "rejected", billable=False),
        entry(ada, web, date(2024, 3, 31), "3.00", "draft"),  # last day
    ]
    entry(ada, web, date(2024, 2, 29), "5.00", "approved", timedelta(hours=2))  # before
    entry(ada, web, date(2024, 4, 1), "5.00", "approved", timedelta(hours=2))  # toDate's day
    return entries


def test_figures_match_the_oracle(client: httpx.Client, tenant: Tenant, db: Session) -> None:
    entries = _seed(db, tenant)
    result = ok_summary(client, tenant, PATH, **WINDOW)
    now = datetime.now(UTC)
    latency = [seconds(e.approved_at - e.submitted_at) for e in entries if e.status == "approved"]
    in_hours = stats([s / 3600 for s in latency])
    in_days = stats([s / 86400 for s in latency])

    assert result["totalEntries"] == 7
    assert result["totalHours"] == Decimal("31.75")
    assert result["billableHours"] == Decimal("28.50")
    assert result["nonBillableHours"] == Decimal("3.25")
    assert result["entriesByStatus"] == {"draft": 1, "submitted": 1, "approved": 4, "rejected": 1}
    assert result["hoursByStatus"] == {
        "draft": Decimal("3.00"),
        "submitted": Decimal("4.00"),
        "approved": Decimal("22.75"),
        "rejected": Decimal("2.00"),
    }
    assert result["approvedEntries"] == 4
    # by hand: 1.5, 24, 24, 49 hours → median 24.0, mean 24.625 → 24.6
    assert result["medianApprovalTimeHours"] == Decimal("24.0") == in_hours["median"]
    assert result["averageApprovalTimeHours"] == Decimal("24.6") == in_hours["average"]
    assert result["minApprovalTimeHours"] == Decimal("1.5") == in_hours["min"]
    assert result["maxApprovalTimeHours"] == Decimal("49.0") == in_hours["max"]
    assert result["medianApprovalTimeDays"] == Decimal("1.0") == in_days["median"]
    assert result["averageApprovalTimeDays"] == in_days["average"]
    assert result["maxApprovalTimeDays"] == Decimal("2.0") == in_days["max"]
    check_distribution(result["approvalTimeDistribution"], LABELS, [3, 1, 0, 0, 0, 0])
    assert result["pendingApprovals"] == 1
    assert result["pendingHours"] == Decimal("4.00")
    age = round1(seconds(now - SUBMITTED) / 86400)
    assert age is not None
    assert abs(result["oldestPendingAgeDays"] - age) <= Decimal("0.1")
    assert result["averagePendingAgeDays"] == result["oldestPendingAgeDays"]
    assert result["hoursByProject"] == {
        "Annual Audit": Decimal("7.25"),
        "Website Redesign": Decimal("24.50"),
    }
    assert result["hoursByUser"] == {
        "Ada Lovelace": Decimal("20.50"),
        "Alan Turing": Decimal("11.25"),
    }


def test_filters(client: httpx.Client, tenant: Tenant, db: Session) -> None:
    entries = _seed(db, tenant)
    ada = next(e.user_id for e in entries)
    mine = figures(tenant, PATH, userId=ada, **WINDOW)
    assert mine["totalEntries"] == 4
    assert list(mine["hoursByUser"]) == ["Ada Lovelace"]
    approved = figures(tenant, PATH, status="approved", **WINDOW)
    assert approved["totalEntries"] == approved["approvedEntries"] == 4
    assert approved["pendingApprovals"] == 0
    assert approved["oldestPendingAgeDays"] is None


def test_empty_window(client: httpx.Client, tenant: Tenant) -> None:
    result = figures(tenant, PATH, fromDate="2030-01-01T00:00:00Z", toDate="2030-02-01T00:00:00Z")
    assert result["totalEntries"] == 0
    assert result["totalHours"] == Decimal("0.00")
    assert result["medianApprovalTimeHours"] is None
    assert result["hoursByProject"] == {}
    assert result["hoursByUser"] == {}
    check_distribution(result["approvalTimeDistribution"], LABELS, [0] * 6)


def test_other_organizations_never_change_a_figure(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, db: Session
) -> None:
    _seed(db, tenant)
    before = figures(tenant, PATH, **WINDOW)
    _seed(db, other_tenant)
    after = figures(tenant, PATH, **WINDOW)
    for moving in ("averagePendingAgeDays", "oldestPendingAgeDays"):  # "now" moves on
        assert abs(after.pop(moving) - before.pop(moving)) <= Decimal("0.1")
    assert after == before
