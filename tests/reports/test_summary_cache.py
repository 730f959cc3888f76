"""The exact summary cache (reports/cache.py): a repeated summary is served from the
cache only while its data is unchanged; every change is seen by the next request.

The API runs in this process (tests/conftest.py), so the cache's hit counter is
observable here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from pivotal_reporting.models import AuditLog
from pivotal_reporting.reports import cache, service
from pivotal_reporting.reports.refresh import refresh_all_blocking
from tests.factories import (
    Tenant,
    create_customer,
    create_invoice,
    create_payment,
    create_quote,
    create_time_entry,
)
from tests.reports.helpers import ok_summary, summary

WINDOW = {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2025-01-01T00:00:00Z"}


def _hits() -> int:
    return cache.SUMMARIES.hits


def test_a_repeated_summary_is_a_hit_until_a_row_is_inserted(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    create_quote(db, org=tenant.org, status="accepted")
    first = ok_summary(client, tenant, "quote-cycle-time", **WINDOW)
    assert first["totalQuotes"] == 1
    hits = _hits()
    assert ok_summary(client, tenant, "quote-cycle-time", **WINDOW) == first
    assert _hits() == hits + 1, "the same question on unchanged data is a hit"

    create_quote(db, org=tenant.org, status="rejected")
    after = ok_summary(client, tenant, "quote-cycle-time", **WINDOW)
    assert after["totalQuotes"] == 2
    assert after["quotesByStatus"] == {"accepted": 1, "rejected": 1, "expired": 0}
    assert _hits() == hits + 1, "a changed organization is computed afresh"


def test_a_hit_is_exact_as_of_its_own_snapshot_and_keeps_the_breakdown_bytes(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    for name in ("Zeta GmbH", "Ålborg A/S", 'Quote "Co"', "alpha ltd"):
        customer = create_customer(db, org=tenant.org, name=name)
        create_payment(
            db, org=tenant.org, customer=customer, paid_at=datetime(2024, 5, 1, tzinfo=UTC)
        )
    first_response, first = summary(client, tenant, "payments-received", **WINDOW)
    hits = _hits()
    before_hit = db.scalar(text("SELECT clock_timestamp()"))
    hit_response, hit = summary(client, tenant, "payments-received", **WINDOW)
    assert _hits() == hits + 1
    assert hit["summary"] == first["summary"]
    breakdown = hit["summary"]["paymentsByCustomer"]
    assert list(breakdown) == list(first["summary"]["paymentsByCustomer"])
    assert sorted(breakdown.values()) == [1, 1, 1, 1]
    # The breakdown is written once and spliced in: the same bytes in both answers.
    assert _breakdown_text(hit_response.text) == _breakdown_text(first_response.text)
    # The hit's snapshot was taken after this request began, not when it was first computed.
    as_of = datetime.fromisoformat(hit["dataAsOf"].replace("Z", "+00:00"))
    assert as_of >= before_hit > datetime.fromisoformat(first["dataAsOf"].replace("Z", "+00:00"))


def _breakdown_text(body: str) -> str:
    start = body.index('"paymentsByCustomer":')
    return body[start : body.index("}", start) + 1]


def test_updates_deletes_and_refreshes_are_seen(
    client: httpx.Client, tenant: Tenant, db: Session, database_url: str
) -> None:
    payment = create_payment(db, org=tenant.org, amount=Decimal("100.00"))
    create_payment(db, org=tenant.org, amount=Decimal("50.00"))
    assert ok_summary(client, tenant, "payments-received", **WINDOW)["totalAmount"] == Decimal(
        "150.00"
    )
    # A refresh consumes the change log: the data version must not go back.
    refresh_all_blocking(database_url, [tenant.org.id])
    hits = _hits()
    assert ok_summary(client, tenant, "payments-received", **WINDOW)["totalAmount"] == Decimal(
        "150.00"
    )
    assert _hits() == hits + 1, "a refresh changes no figure: still a hit"

    db.execute(text("UPDATE payments SET amount = 70 WHERE id = :id"), {"id": payment.id})
    db.commit()
    assert ok_summary(client, tenant, "payments-received", **WINDOW)["totalAmount"] == Decimal(
        "120.00"
    )
    refresh_all_blocking(database_url, [tenant.org.id])
    db.execute(text("DELETE FROM payments WHERE id = :id"), {"id": payment.id})
    db.commit()
    assert ok_summary(client, tenant, "payments-received", **WINDOW)["totalAmount"] == Decimal(
        "50.00"
    )


def test_renaming_a_customer_shows_the_new_name(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    customer = create_customer(db, org=tenant.org, name="Old Name Ltd")
    create_payment(db, org=tenant.org, customer=customer)
    before = ok_summary(client, tenant, "payments-received", **WINDOW)
    assert before["paymentsByCustomer"] == {"Old Name Ltd": 1}
    assert ok_summary(client, tenant, "payments-received", **WINDOW) == before

    db.execute(
        text("UPDATE customers SET name = 'New Name Ltd' WHERE id = :id"), {"id": customer.id}
    )
    db.commit()
    after = ok_summary(client, tenant, "payments-received", **WINDOW)
    assert after["paymentsByCustomer"] == {"New Name Ltd": 1}


def test_filters_and_organizations_never_share_an_answer(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, db: Session
) -> None:
    create_payment(db, org=tenant.org, method="credit_card")
    create_payment(db, org=tenant.org, method="bank_transfer")
    create_payment(db, org=other_tenant.org, method="credit_card")
    for _ in range(2):  # the second round is served from the cache
        assert ok_summary(client, tenant, "payments-received", **WINDOW)["totalPayments"] == 2
        card = ok_summary(client, tenant, "payments-received", **WINDOW, method="credit_card")
        assert card["totalPayments"] == 1
        other = ok_summary(client, other_tenant, "payments-received", **WINDOW)
        assert other["totalPayments"] == 1


class _Clock:
    """Stands in for ``datetime`` in the summary runner: ``now()`` is ``at``."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self, tz: object = None) -> datetime:
        return self.at


def test_a_hit_still_ages_open_invoices_and_pending_approvals(
    client: httpx.Client, tenant: Tenant, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Days outstanding of an open invoice, and the age of a pending approval, grow with
    # the clock: the cache keeps what they are derived from, never the figures.
    create_invoice(
        db, org=tenant.org, status="issued", issue_date=date(2024, 3, 1), due_date=date(2024, 3, 31)
    )
    create_time_entry(
        db,
        org=tenant.org,
        user=tenant.viewer,
        status="submitted",
        work_date=date(2024, 3, 1),
        submitted_at=datetime(2024, 3, 1, 12, tzinfo=UTC),
    )
    clock = _Clock(datetime(2024, 3, 11, tzinfo=UTC))
    monkeypatch.setattr(service, "datetime", clock)
    hits = _hits()
    first = ok_summary(client, tenant, "invoice-settlement-time", **WINDOW)
    pending = ok_summary(client, tenant, "time-approvals", **WINDOW)
    # 1 March 00:00 to 11 March 00:00 (UTC organization): 10 days, not yet due.
    assert first["averageSettlementTimeDays"] == Decimal("10.0")
    assert first["overdueInvoices"] == 0
    assert first["invoicesByStatus"] == {"issued": 1}
    assert pending["averagePendingAgeDays"] == Decimal("9.5")
    assert pending["oldestPendingAgeDays"] == Decimal("9.5")

    clock.at = datetime(2024, 4, 10, 12, tzinfo=UTC)
    later = ok_summary(client, tenant, "invoice-settlement-time", **WINDOW)
    pending = ok_summary(client, tenant, "time-approvals", **WINDOW)
    assert _hits() == hits + 2, "the clock-free part of both is served from the cache"
    assert later["averageSettlementTimeDays"] == Decimal("40.5")
    assert later["overdueInvoices"] == 1, "due 31 March, open on 10 April"
    assert later["invoicesByStatus"] == {"overdue": 1}
    assert later["asOf"] == "2024-04-10T12:00:00Z"
    assert pending["averagePendingAgeDays"] == Decimal("40.0")


def test_what_depends_on_the_instant_is_never_cached(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    # Which open invoices lie in a days-outstanding bucket moves with the clock: read
    # from the rows at each request unless an explicit asOf fixes the instant.
    create_invoice(db, org=tenant.org, status="issued", issue_date=date(2024, 3, 1))
    bucket = {"settlementTimeBucket": "91+"}
    hits = _hits()
    for _ in range(2):
        ok_summary(client, tenant, "invoice-settlement-time", **WINDOW, **bucket)
    assert _hits() == hits

    as_of = {"asOf": "2024-06-01T00:00:00Z"}
    first = ok_summary(client, tenant, "invoice-settlement-time", **WINDOW, **as_of)
    assert ok_summary(client, tenant, "invoice-settlement-time", **WINDOW, **as_of) == first
    assert _hits() == hits + 1
    # 1 March to 1 June 2024 (UTC organization): 92 days outstanding.
    assert first["averageSettlementTimeDays"] == Decimal("92.0")


def test_overdue_only_is_cached_for_the_day_it_is_asked(
    client: httpx.Client, tenant: Tenant, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Overdue today: due 31 March, open. The set of overdue invoices changes with the
    # date; their days outstanding with the instant.
    create_invoice(
        db, org=tenant.org, status="issued", issue_date=date(2024, 3, 1), due_date=date(2024, 3, 31)
    )
    clock = _Clock(datetime(2024, 3, 31, 12, tzinfo=UTC))
    monkeypatch.setattr(service, "datetime", clock)
    overdue = {"overdueOnly": "true"}
    hits = _hits()
    assert (
        ok_summary(client, tenant, "invoice-settlement-time", **WINDOW, **overdue)["totalInvoices"]
        == 0
    ), "due today is not overdue yet"
    clock.at = datetime(2024, 3, 31, 23, tzinfo=UTC)
    assert (
        ok_summary(client, tenant, "invoice-settlement-time", **WINDOW, **overdue)["totalInvoices"]
        == 0
    )
    assert _hits() == hits + 1, "the same day: a hit"
    clock.at = datetime(2024, 4, 1, 12, tzinfo=UTC)
    next_day = ok_summary(client, tenant, "invoice-settlement-time", **WINDOW, **overdue)
    assert _hits() == hits + 1, "the next day is asked afresh"
    assert next_day["totalInvoices"] == 1
    assert next_day["overdueInvoices"] == 1
    assert next_day["averageSettlementTimeDays"] == Decimal("31.5")


def test_a_cache_hit_is_audited_and_counted_like_any_call(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    create_quote(db, org=tenant.org, decided_at=datetime(2024, 1, 10, tzinfo=UTC) + timedelta(1))
    for _ in range(3):
        ok_summary(client, tenant, "quote-cycle-time", **WINDOW)
    db.expire_all()
    events = db.scalar(
        select(func.count())
        .select_from(AuditLog)
        .where(AuditLog.organization_id == tenant.org.id, AuditLog.action == "report_generated")
    )
    assert events == 3


def test_the_data_version_only_grows_even_through_truncate(admin_url: str) -> None:
    """In a scratch database (TRUNCATE would take every test's rows): the version the
    cache reads grows with each write, stays put through a refresh, and grows when a
    source table or the log itself is truncated."""
    import secrets

    import psycopg

    from pivotal_reporting import schema
    from pivotal_reporting.db import with_database
    from pivotal_reporting.reports.cache import _VERSIONS_SQL

    name = f"pivotal_scratch_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    try:
        schema.upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT set_config('app.maintenance', 'on', false)")
            params = {"org": "org_a", "report": "quote_cycle_time"}

            def version() -> int:
                row = conn.execute(_VERSIONS_SQL, params).fetchone()
                assert row is not None
                return int(row[0])

            conn.execute(
                "INSERT INTO organizations (id, name, base_currency, timezone, settings) "
                "VALUES ('org_a', 'A', 'USD', 'UTC', '{}')"
            )
            conn.execute(
                "INSERT INTO customers (id, organization_id, name) VALUES ('cus_a', 'org_a', 'C')"
            )
            start = version()
            conn.execute(
                "INSERT INTO quotes (id, organization_id, quote_number, customer_id, status, "
                "currency, total_amount, created_at, sent_at, decided_at) VALUES "
                "('quo_a', 'org_a', 'Q1', 'cus_a', 'accepted', 'USD', 10, "
                "'2024-01-01Z', '2024-01-01Z', '2024-01-03Z')"
            )
            written = version()
            assert written > start
            conn.execute("DELETE FROM rollup_changes")  # as a refresh consumes the log
            assert version() == written
            conn.execute("TRUNCATE rollup_changes")
            assert version() == written
            conn.execute("TRUNCATE quotes CASCADE")
            assert version() > written
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_cache_is_bounded_by_entries_and_by_breakdown_items() -> None:
    small = cache.SummaryCache(max_entries=2, max_items=100)
    small.put(("a",), {"total": 1})
    small.put(("b",), {"total": 2})
    small.put(("c",), {"total": 3})  # a third entry evicts the least recently used
    assert small.get(("a",)) is None
    assert small.get(("b",)) == {"total": 2}
    big = {"byCustomer": {f"c{i}": i for i in range(60)}}  # 61 items
    small.put(("d",), big)  # with b (1) and c (1): 63 items, 3 entries > 2: c goes
    assert small.get(("c",)) is None
    small.put(("e",), dict(big))  # 122 items > 100: d goes
    assert small.get(("d",)) is None
    assert small.get(("e",)) == big
    small.put(("f",), {"byCustomer": {f"c{i}": i for i in range(200)}})  # never fits
    assert small.get(("f",)) is None
    assert small.get(("e",)) == big
