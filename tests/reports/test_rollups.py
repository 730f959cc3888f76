"""Monthly rollups (reports/rollups/): read only while fresh, never a different figure.

Black-box throughout: the API answers, and the database is only touched the way the
application that owns the rows would (insert, update, delete, rename, a new time zone),
plus one deliberate tampering of a rollup row to prove which months are read from it.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from pivotal_reporting.config import Settings
from pivotal_reporting.reports import cache, registry
from pivotal_reporting.reports.refresh import refresh_all_blocking
from tests.factories import (
    Tenant,
    create_customer,
    create_invoice,
    create_payment,
    create_project,
    create_quote,
    create_tenant,
    create_time_entry,
)
from tests.reports.helpers import ok_summary
from tests.server import QUIET_ROLLUP_CRON, ServerThread

TZ = "America/New_York"
# January to May 2024 in New York: four whole local months.
WINDOW = {"fromDate": "2024-01-01T00:00:00-05:00", "toDate": "2024-05-01T00:00:00-04:00"}


@pytest.fixture(autouse=True)
def no_summary_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests alter the rollups behind the triggers' back (a state no write can
    make) to see which periods are read: every request must compute its summary."""
    monkeypatch.setattr(cache, "SUMMARIES", cache.SummaryCache(max_entries=0))


@pytest.fixture
def ny_tenant(db: Session, tenant: Tenant) -> Tenant:
    return create_tenant(db, tenant.settings, timezone=TZ)


def _quotes(db: Session, tenant: Tenant, project: Any = None) -> None:
    for month in (1, 2, 3, 4):
        for day in (3, 15):
            decided = datetime(2024, month, day, 18, tzinfo=UTC)
            create_quote(
                db,
                org=tenant.org,
                project=project,
                status="accepted",
                created_at=decided - timedelta(days=month),
                decided_at=decided,
            )


def _refresh(url: str, tenant: Tenant) -> dict[str, int]:
    return dict(refresh_all_blocking(url, [tenant.org.id]))


def _tamper(
    db: Session, tenant: Tenant, period: date, extra: int, grain: str = "month", facet: str = "bins"
) -> None:
    """Add ``extra`` to one stored group of a period: visible only if the period is read."""
    db.execute(
        text(
            "UPDATE report_rollups SET n = n + :extra WHERE ctid = (SELECT ctid FROM "
            "report_rollups WHERE organization_id = :org AND report_type = 'quote_cycle_time' "
            "AND facet = :facet AND grain = :grain AND period = :period LIMIT 1)"
        ),
        {"extra": extra, "org": tenant.org.id, "period": period, "grain": grain, "facet": facet},
    )
    db.commit()


def _built_months(db: Session, tenant: Tenant) -> set[date]:
    return set(
        db.execute(
            text(
                "SELECT period FROM rollup_periods WHERE organization_id = :org "
                "AND report_type = 'quote_cycle_time' AND grain = 'month'"
            ),
            {"org": tenant.org.id},
        ).scalars()
    )


def _logged_changes(db: Session, tenant: Tenant) -> int:
    return int(
        db.execute(
            text("SELECT count(*) FROM rollup_changes WHERE organization_id = :org"),
            {"org": tenant.org.id},
        ).scalar_one()
    )


def test_fresh_months_are_read_from_the_rollup_and_a_change_makes_its_month_stale(
    client: httpx.Client, ny_tenant: Tenant, db: Session, database_url: str
) -> None:
    _quotes(db, ny_tenant)
    _refresh(database_url, ny_tenant)
    assert _built_months(db, ny_tenant) >= {date(2024, m, 1) for m in (1, 2, 3, 4)}
    assert _logged_changes(db, ny_tenant) == 0
    baseline = ok_summary(client, ny_tenant, "quote-cycle-time", **WINDOW)["totalQuotes"]
    assert baseline == 8

    _tamper(db, ny_tenant, date(2024, 2, 1), 1000)
    read = ok_summary(client, ny_tenant, "quote-cycle-time", **WINDOW)
    assert read["totalQuotes"] == 8 + 1000, "a fresh month is read from the rollup"

    # A new quote decided on 20 February: February is read from its days again at once,
    # and 19 to 21 February from the rows.
    added = create_quote(
        db,
        org=ny_tenant.org,
        status="rejected",
        created_at=datetime(2024, 2, 10, tzinfo=UTC),
        decided_at=datetime(2024, 2, 20, tzinfo=UTC),
    )
    read = ok_summary(client, ny_tenant, "quote-cycle-time", **WINDOW)
    assert read["totalQuotes"] == 9
    assert read["quotesByStatus"] == {"accepted": 8, "rejected": 1, "expired": 0}

    # Updates and deletes are logged the same way, between refreshes too.
    _refresh(database_url, ny_tenant)
    db.execute(text("UPDATE quotes SET status = 'expired' WHERE id = :id"), {"id": added.id})
    db.commit()
    read = ok_summary(client, ny_tenant, "quote-cycle-time", **WINDOW)
    assert read["quotesByStatus"] == {"accepted": 8, "rejected": 0, "expired": 1}
    _refresh(database_url, ny_tenant)
    db.execute(text("DELETE FROM quotes WHERE id = :id"), {"id": added.id})
    db.commit()
    assert ok_summary(client, ny_tenant, "quote-cycle-time", **WINDOW)["totalQuotes"] == 8
    _refresh(database_url, ny_tenant)
    assert ok_summary(client, ny_tenant, "quote-cycle-time", **WINDOW)["totalQuotes"] == 8
    assert _logged_changes(db, ny_tenant) == 0


def test_a_partial_month_is_read_from_its_days_and_a_partial_day_from_the_rows(
    client: httpx.Client, ny_tenant: Tenant, db: Session, database_url: str
) -> None:
    _quotes(db, ny_tenant)
    _refresh(database_url, ny_tenant)
    _tamper(db, ny_tenant, date(2024, 4, 1), 1000)
    # Up to 15 April 12:00 New York: April is only partly inside, so its month is not
    # read; the quote of 15 April 18:00 UTC (14:00 local) is outside.
    window = {"fromDate": WINDOW["fromDate"], "toDate": "2024-04-15T12:00:00-04:00"}
    assert ok_summary(client, ny_tenant, "quote-cycle-time", **window)["totalQuotes"] == 7
    # 3 April (a whole day inside) is read from its day, for the facets kept daily
    # (quotes per project; the cycle-time bins of a day are read from the rows).
    _tamper(db, ny_tenant, date(2024, 4, 3), 100, grain="day", facet="projects")
    read = ok_summary(client, ny_tenant, "quote-cycle-time", **window)
    assert read["quotesByProject"] == {"(no project)": 107}
    assert read["totalQuotes"] == 7
    # 15 April is only partly inside: never read from its day.
    _tamper(db, ny_tenant, date(2024, 4, 15), 10, grain="day", facet="projects")
    read = ok_summary(client, ny_tenant, "quote-cycle-time", **window)
    assert read["quotesByProject"] == {"(no project)": 107}


def test_a_new_time_zone_is_never_served_from_months_built_in_the_old_one(
    client: httpx.Client, ny_tenant: Tenant, db: Session, database_url: str
) -> None:
    # 1 March 03:00 UTC is 29 February in New York but 1 March in UTC.
    for decided in (datetime(2024, 3, 1, 3, tzinfo=UTC), datetime(2024, 2, 10, tzinfo=UTC)):
        create_quote(
            db, org=ny_tenant.org, created_at=decided - timedelta(days=1), decided_at=decided
        )
    _refresh(database_url, ny_tenant)
    february_ny = {"fromDate": "2024-02-01T00:00:00-05:00", "toDate": "2024-03-01T00:00:00-05:00"}
    assert ok_summary(client, ny_tenant, "quote-cycle-time", **february_ny)["totalQuotes"] == 2

    db.execute(
        text("UPDATE organizations SET timezone = 'UTC' WHERE id = :org"), {"org": ny_tenant.org.id}
    )
    db.commit()
    february_utc = {"fromDate": "2024-02-01T00:00:00Z", "toDate": "2024-03-01T00:00:00Z"}
    assert ok_summary(client, ny_tenant, "quote-cycle-time", **february_utc)["totalQuotes"] == 1
    _refresh(database_url, ny_tenant)
    assert ok_summary(client, ny_tenant, "quote-cycle-time", **february_utc)["totalQuotes"] == 1
    zones = db.execute(
        text("SELECT DISTINCT timezone FROM rollup_periods WHERE organization_id = :org"),
        {"org": ny_tenant.org.id},
    ).scalars()
    assert set(zones) == {"UTC"}


def test_periods_built_by_other_facet_sql_are_never_read_and_get_rebuilt(
    client: httpx.Client, ny_tenant: Tenant, db: Session, database_url: str
) -> None:
    from pivotal_reporting.reports.quote_cycle_time import ROLLUP

    _quotes(db, ny_tenant)
    _refresh(database_url, ny_tenant)
    _tamper(db, ny_tenant, date(2024, 2, 1), 1000)
    assert ok_summary(client, ny_tenant, "quote-cycle-time", **WINDOW)["totalQuotes"] == 1008
    # As after a release that changed the report's facets:
    db.execute(
        text("UPDATE rollup_periods SET definition = 'older' WHERE organization_id = :org"),
        {"org": ny_tenant.org.id},
    )
    db.commit()
    assert ok_summary(client, ny_tenant, "quote-cycle-time", **WINDOW)["totalQuotes"] == 8
    refresh_all_blocking(database_url)  # finds the organization by itself
    definitions = db.execute(
        text(
            "SELECT DISTINCT definition FROM rollup_periods WHERE organization_id = :org "
            "AND report_type = 'quote_cycle_time'"
        ),
        {"org": ny_tenant.org.id},
    ).scalars()
    assert set(definitions) == {ROLLUP.definition}
    assert ok_summary(client, ny_tenant, "quote-cycle-time", **WINDOW)["totalQuotes"] == 8


def test_renaming_a_project_is_seen_at_once(
    client: httpx.Client, ny_tenant: Tenant, db: Session, database_url: str
) -> None:
    customer = create_customer(db, org=ny_tenant.org)
    project = create_project(db, org=ny_tenant.org, customer=customer, name="Alpha")
    _quotes(db, ny_tenant, project=project)
    _refresh(database_url, ny_tenant)
    before = ok_summary(client, ny_tenant, "quote-cycle-time", **WINDOW)
    assert before["quotesByProject"] == {"Alpha": 8}

    db.execute(text("UPDATE projects SET name = 'Beta' WHERE id = :id"), {"id": project.id})
    db.commit()
    assert ok_summary(client, ny_tenant, "quote-cycle-time", **WINDOW)["quotesByProject"] == {
        "Beta": 8
    }
    _refresh(database_url, ny_tenant)
    assert ok_summary(client, ny_tenant, "quote-cycle-time", **WINDOW)["quotesByProject"] == {
        "Beta": 8
    }


def test_the_refresh_runs_on_the_queue_every_minute_by_default(
    settings: Settings, api_server: ServerThread
) -> None:
    from pivotal_reporting.queue import queue_app
    from pivotal_reporting.reports import tasks
    from pivotal_reporting.worker import periodic_schedule

    assert "pivotal_reporting.reports.tasks" in queue_app.import_paths
    key = (tasks.refresh_report_rollups.name, "rollups")
    assert Settings.model_fields["rollup_cron"].default == "* * * * *"
    default = settings.model_copy(update={"rollup_cron": "* * * * *"})
    assert periodic_schedule(default).periodic_tasks[key].cron == "* * * * *"
    # The suite's own schedule (tests/server.py), registered by the test server's worker
    # when it started: it never fires during a run.
    assert settings.rollup_cron == QUIET_ROLLUP_CRON
    deadline = time.monotonic() + 30
    while key not in queue_app.periodic_registry.periodic_tasks:
        assert time.monotonic() < deadline, "the in-process worker never scheduled the refresh"
        time.sleep(0.05)
    assert queue_app.periodic_registry.periodic_tasks[key].cron == QUIET_ROLLUP_CRON


def test_a_payment_at_an_ambiguous_local_midnight_counts_in_one_month_on_every_path(
    client: httpx.Client,
    tenant: Tenant,
    db: Session,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Havana turns its clocks back from 01:00 to 00:00 on Sunday 1 November 2026: local
    # midnight happens twice, and PostgreSQL starts November at the second one.
    havana = create_tenant(db, tenant.settings, timezone="America/Havana")
    for paid_at in ("2026-11-01T04:30:00Z", "2026-10-20T12:00:00Z", "2026-11-10T12:00:00Z"):
        create_payment(db, org=havana.org, paid_at=datetime.fromisoformat(paid_at))
    window = {"fromDate": "2026-10-15T00:00:00Z", "toDate": "2026-11-20T00:00:00Z"}

    def months(*, rows_only: bool) -> dict[str, int]:
        with monkeypatch.context() as patch:
            if rows_only:
                for report in registry.all_reports():
                    patch.setattr(type(report), "reads_rollup", lambda self, filters: False)
            by_month = ok_summary(client, havana, "payments-received", **window)
            return dict(by_month["paymentsByMonth"])

    expected = months(rows_only=True)
    assert sum(expected.values()) == 3
    assert months(rows_only=False) == expected  # read from the rows (nothing built)
    _refresh(database_url, havana)
    assert months(rows_only=False) == expected  # from the days and months built


def test_an_open_window_reaches_rows_at_the_ends_of_the_calendar(
    client: httpx.Client,
    ny_tenant: Tenant,
    db: Session,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_quote(
        db,
        org=ny_tenant.org,
        created_at=datetime(1, 1, 1, 1, tzinfo=UTC),
        decided_at=datetime(1, 1, 1, 12, tzinfo=UTC),
    )
    invoice = create_invoice(db, org=ny_tenant.org, issue_date=date(9999, 11, 1))
    db.execute(  # past what the factory's date arithmetic can reach
        text(
            "UPDATE invoices SET issue_date = '9999-12-10', due_date = '9999-12-20' WHERE id = :id"
        ),
        {"id": invoice.id},
    )
    db.commit()

    def totals(*, rows_only: bool) -> tuple[int, int]:
        with monkeypatch.context() as patch:
            if rows_only:
                for report in registry.all_reports():
                    patch.setattr(type(report), "reads_rollup", lambda self, filters: False)
            quotes = ok_summary(client, ny_tenant, "quote-cycle-time")["totalQuotes"]
            answer = ok_summary(client, ny_tenant, "invoice-settlement-time")
            invoices = answer["totalInvoices"]
            return quotes, invoices

    assert totals(rows_only=True) == (1, 1)
    assert totals(rows_only=False) == (1, 1)
    _refresh(database_url, ny_tenant)
    assert totals(rows_only=False) == (1, 1)


def test_deleting_an_organization_takes_its_rollups_and_log_with_it(
    ny_tenant: Tenant, db: Session, database_url: str
) -> None:
    _quotes(db, ny_tenant)
    _refresh(database_url, ny_tenant)
    db.execute(text("DELETE FROM organizations WHERE id = :org"), {"org": ny_tenant.org.id})
    db.commit()
    _refresh(database_url, ny_tenant)
    left = db.execute(
        text(
            "SELECT (SELECT count(*) FROM report_rollups WHERE organization_id = :org) "
            "+ (SELECT count(*) FROM rollup_periods WHERE organization_id = :org) "
            "+ (SELECT count(*) FROM rollup_changes WHERE organization_id = :org)"
        ),
        {"org": ny_tenant.org.id},
    ).scalar_one()
    assert left == 0


def _random_rows(db: Session, tenant: Tenant, rng: random.Random) -> None:
    """About 60 rows per report over eight months, in two currencies, many statuses."""
    customers = [create_customer(db, org=tenant.org, name=f"Customer {i}") for i in range(3)]
    projects = [
        create_project(db, org=tenant.org, customer=customers[i % 3], name=f"Project {i % 2}")
        for i in range(3)
    ]
    start = datetime(2023, 12, 20, tzinfo=UTC)

    def instant() -> datetime:
        return start + timedelta(seconds=rng.randrange(0, 240 * 86400))

    for _ in range(60):
        decided = instant()
        create_quote(
            db,
            org=tenant.org,
            customer=rng.choice(customers),
            project=rng.choice([*projects, None]),
            status=rng.choice(["accepted", "rejected", "expired"]),
            created_at=decided - timedelta(seconds=rng.randrange(0, 40 * 86400)),
            decided_at=decided,
        )
        status = rng.choice(["issued", "part_paid", "paid", "written_off", "void", "draft"])
        issue = instant().date()
        total = Decimal(rng.randrange(100, 500000)) / 100
        paid = {"paid": total, "part_paid": total / 2}.get(status, Decimal("0.00"))
        create_invoice(
            db,
            org=tenant.org,
            customer=rng.choice(customers),
            status=status,
            currency=rng.choice(["USD", "EUR"]),
            total_amount=total,
            amount_paid=paid.quantize(Decimal("0.01")),
            issue_date=issue,
            due_date=issue + timedelta(days=rng.choice([0, 15, 30])),
            paid_at=instant() if status == "paid" else None,
        )
        create_payment(
            db,
            org=tenant.org,
            customer=rng.choice(customers),
            amount=Decimal(rng.randrange(100, 2000000)) / 100,
            currency=rng.choice(["USD", "EUR"]),
            method=rng.choice(["bank_transfer", "credit_card", "check"]),
            status=rng.choice(["completed", "completed", "failed"]),
            paid_at=instant(),
        )
        submitted = instant()
        create_time_entry(
            db,
            org=tenant.org,
            user=rng.choice([tenant.viewer, tenant.admin]),
            project=rng.choice(projects),
            status=rng.choice(["draft", "submitted", "approved", "approved", "rejected"]),
            work_date=submitted.date(),
            hours=Decimal(rng.randrange(25, 1000)) / 100,
            billable=rng.random() < 0.7,
            submitted_at=submitted,
        )


def _random_window(rng: random.Random) -> dict[str, str]:
    lower = datetime(2023, 12, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 200 * 86400))
    upper = lower + timedelta(seconds=rng.randrange(3600, 200 * 86400))
    offset = rng.choice(["Z", "-05:00", "+09:30"])
    window: dict[str, str] = {}
    if rng.random() < 0.9:
        window["fromDate"] = lower.strftime("%Y-%m-%dT%H:%M:%S") + offset
    if rng.random() < 0.9:
        window["toDate"] = upper.strftime("%Y-%m-%dT%H:%M:%S") + offset
    return window


# Each summary unfiltered and with the filters the rollups serve (status, currency, method).
QUERIES: tuple[tuple[str, dict[str, str]], ...] = (
    ("quote-cycle-time", {}),
    ("quote-cycle-time", {"status": "rejected"}),
    ("invoice-settlement-time", {}),
    ("invoice-settlement-time", {"status": "issued"}),
    ("invoice-settlement-time", {"status": "paid"}),
    ("invoice-settlement-time", {"currency": "EUR"}),
    ("invoice-settlement-time", {"status": "paid", "currency": "USD"}),
    ("payments-received", {}),
    ("payments-received", {"method": "check"}),
    ("payments-received", {"currency": "EUR"}),
    ("payments-received", {"method": "credit_card", "currency": "USD"}),
    ("time-approvals", {}),
    ("time-approvals", {"status": "approved"}),
    ("time-approvals", {"status": "submitted"}),
)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_windows_answer_alike_from_rows_and_from_rollups(
    client: httpx.Client,
    ny_tenant: Tenant,
    db: Session,
    database_url: str,
    seed: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rollup path against the rows-only path (each report's own row SQL, forced
    here by ``reads_rollup``), in random windows, unfiltered and filtered, then again
    after scattered changes leave some periods stale."""
    rng = random.Random(seed)
    _random_rows(db, ny_tenant, rng)
    windows = [_random_window(rng) for _ in range(12)]
    windows += [WINDOW, {}]
    as_of = {"asOf": "2024-03-15T12:00:00-04:00"}

    def answers(*, rows_only: bool) -> list[dict[str, Any]]:
        with monkeypatch.context() as patch:
            if rows_only:  # the API runs in this process (tests/conftest.py)
                for report in registry.all_reports():
                    patch.setattr(type(report), "reads_rollup", lambda self, filters: False)
            found = []
            for window in windows:
                for path, filters in QUERIES:
                    extra = as_of if path.startswith("inv") else {}
                    answer = ok_summary(client, ny_tenant, path, **window, **extra, **filters)
                    # Pending ages are measured from "now", which moves between passes.
                    answer.pop("averagePendingAgeDays", None)
                    answer.pop("oldestPendingAgeDays", None)
                    found.append(answer)
            return found

    def compare() -> None:
        from_rows = answers(rows_only=True)
        from_rollups = answers(rows_only=False)
        labels = [(w, q) for w in windows for q in QUERIES]
        for rows, rolled_up, label in zip(from_rows, from_rollups, labels, strict=True):
            assert rolled_up == rows, label
        assert sum(a["totalQuotes"] for a in from_rows[0 :: len(QUERIES)]) > 100, "no data"

    compare()  # nothing built yet: the rollup path reads every period raw
    _refresh(database_url, ny_tenant)
    compare()  # every period fresh
    for statement in _SCATTERED_CHANGES:
        for _ in range(3):
            db.execute(text(statement), {"org": ny_tenant.org.id, "k": rng.randrange(0, 50)})
    db.commit()
    compare()  # a few periods stale, the rest fresh


_PICK = "(SELECT id FROM {table} WHERE organization_id = :org ORDER BY id OFFSET :k LIMIT 1)"
_SCATTERED_CHANGES = (
    "UPDATE quotes SET status = CASE status WHEN 'accepted' THEN 'rejected' ELSE 'accepted' END "
    f"WHERE id = {_PICK.format(table='quotes')}",
    f"UPDATE invoices SET due_date = issue_date WHERE id = {_PICK.format(table='invoices')}",
    f"UPDATE payments SET amount = amount + 1 WHERE id = {_PICK.format(table='payments')}",
    f"DELETE FROM time_entries WHERE id = {_PICK.format(table='time_entries')}",
)


def _tamper_customers(db: Session, tenant: Tenant, grain: str, period: date, extra: int) -> None:
    """Add ``extra`` to the payment summary's stored count of the one customer in a
    period of ``grain``: visible in its breakdown only if that period is read."""
    db.execute(
        text(
            "UPDATE report_rollups SET n = n + :extra WHERE organization_id = :org "
            "AND report_type = 'payments_received' AND facet = 'customers' "
            "AND grain = :grain AND period = :period"
        ),
        {"extra": extra, "org": tenant.org.id, "grain": grain, "period": period},
    )
    db.commit()


def test_customer_counts_read_whole_quarters_then_months_and_a_change_makes_its_quarter_stale(
    client: httpx.Client, ny_tenant: Tenant, db: Session, database_url: str
) -> None:
    """January to April: the first quarter's customer counts are read from its quarter
    (not from its months), April from its month; a payment in February makes the
    quarter stale, and its months are read again (February from the rows)."""
    customer = create_customer(db, org=ny_tenant.org, name="Quarterly Customer")
    for month in (1, 2, 3, 4):
        for day in (3, 15):
            paid_at = datetime(2024, month, day, 18, tzinfo=UTC)
            create_payment(db, org=ny_tenant.org, customer=customer, paid_at=paid_at)
    _refresh(database_url, ny_tenant)
    built = db.execute(
        text(
            "SELECT grain, period FROM rollup_periods WHERE organization_id = :org "
            "AND report_type = 'payments_received' AND grain = 'quarter'"
        ),
        {"org": ny_tenant.org.id},
    ).all()
    assert ("quarter", date(2024, 1, 1)) in {tuple(row) for row in built}

    def count() -> int:
        summary = ok_summary(client, ny_tenant, "payments-received", **WINDOW)
        assert summary["totalPayments"] == sum(summary["paymentsByMonth"].values())
        return int(summary["paymentsByCustomer"]["Quarterly Customer"])

    assert count() == 8
    _tamper_customers(db, ny_tenant, "quarter", date(2024, 1, 1), 1000)
    _tamper_customers(db, ny_tenant, "month", date(2024, 2, 1), 10_000)  # inside the quarter
    _tamper_customers(db, ny_tenant, "month", date(2024, 4, 1), 100)
    assert count() == 8 + 1000 + 100, "the quarter and April are read, not February"

    # February rebuilt after its quarter (as a process of an earlier version, which
    # knows no quarters, would): the quarter may have missed a change, its months are read.
    later = "refreshed_at + interval '1 second'"
    _set_refreshed(db, ny_tenant, date(2024, 2, 1), later)
    assert count() == 8 + 10_000 + 100
    _set_refreshed(db, ny_tenant, date(2024, 2, 1), "refreshed_at - interval '1 second'")
    assert count() == 8 + 1000 + 100

    create_payment(
        db, org=ny_tenant.org, customer=customer, paid_at=datetime(2024, 2, 20, 18, tzinfo=UTC)
    )
    assert count() == 9 + 100, "a stale quarter: January and March, February raw, April"

    _refresh(database_url, ny_tenant)  # rebuilds the quarter and February, not April
    assert count() == 9 + 100
    summary = ok_summary(client, ny_tenant, "payments-received", **WINDOW)
    assert summary["totalPayments"] == 9


def _set_refreshed(db: Session, tenant: Tenant, month: date, expression: str) -> None:
    db.execute(
        text(
            f"UPDATE rollup_periods SET refreshed_at = {expression} "
            "WHERE organization_id = :org AND report_type = 'payments_received' "
            "AND grain = 'month' AND period = :period"
        ),
        {"org": tenant.org.id, "period": month},
    )
    db.commit()
