"""Local days on calendars whose midnight moves (DESIGN "Round 2": a local date's day
begins at the first instant whose local date is that date; a month likewise).

Every zone that had an offset change touching a local midnight between 1970 and 2037
(``calendar_oracle.midnight_transitions``, derived from zoneinfo) is checked:

- the shared helpers themselves (the SQL day start and the Python window edges) at
  every such change, against the oracle;
- the summaries, read from the rows only and from built rollups, and the export rows,
  in windows whose edges sit on the day starts, the changes and the later midnights.

The API sweep runs a representative set of zones by default and every zone under
``-m slow``. Expected figures come from ``calendar_oracle`` (zoneinfo), never from SQL.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.orm import Session

from pivotal_reporting.reports import registry
from pivotal_reporting.reports.base import ExportQuery, ReportContext
from pivotal_reporting.reports.refresh import refresh_all_blocking
from pivotal_reporting.reports.sql import first_date_from, local_midnight_epoch
from pivotal_reporting.rls import TENANT_ROLE
from tests.factories import (
    Tenant,
    create_customer,
    create_invoice,
    create_payment,
    create_project,
    create_tenant,
    create_time_entry,
)
from tests.reports import calendar_oracle as oracle
from tests.reports.helpers import figures

SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
# A paid invoice settles this long after its issue date begins: 3.07 days (3.1 when
# rounded), 3.0 if counted from a midnight an hour late.
SETTLE_AFTER = timedelta(days=3, seconds=6048)
REPRESENTATIVE = (
    "America/Havana",  # two midnights on 1 Nov 2026, none on 8 Mar 2026
    "America/St_Johns",  # 00:01 back to 23:01: a date comes, goes back, comes again
    "America/Sao_Paulo",  # 00:00 back to 23:00 (the day before repeats its last hour)
    "Asia/Beirut",  # 00:00 forward to 01:00 and 00:00 back to 23:00
    "Pacific/Apia",  # 30 December 2011 never happened
    "Antarctica/Casey",  # three hours back over midnight
)
# Havana's changes the issue reported (2025-11-02 back, 2026-03-08 forward, 2026-11-01 back).
HAVANA_DATES = {date(2025, 11, 2), date(2026, 3, 8), date(2026, 11, 1)}


def _zone_params() -> list[Any]:
    zones = oracle.midnight_transitions()
    assert set(REPRESENTATIVE) <= set(zones)
    return [
        pytest.param(zone, marks=() if zone in REPRESENTATIVE else pytest.mark.slow)
        for zone in sorted(zones)
    ]


def test_the_scan_finds_the_zones_with_moving_midnights() -> None:
    zones = oracle.midnight_transitions()
    assert len(zones) > 100
    havana = {t.instant: d for t in zones["America/Havana"] for d in t.midnight_dates}
    assert havana[datetime(2026, 11, 1, 5, tzinfo=UTC)] == date(2026, 11, 1)
    assert oracle.day_start(date(2026, 11, 1), "America/Havana") == datetime(
        2026, 11, 1, 4, tzinfo=UTC
    )
    assert oracle.day_start(date(2026, 3, 8), "America/Havana") == datetime(
        2026, 3, 8, 5, tzinfo=UTC
    )


def _probe_days(zone: str) -> list[date]:
    days = set()
    for change in oracle.midnight_transitions()[zone]:
        for day in change.midnight_dates:
            days.update(day + k * DAY for k in (-1, 0, 1, 2))
            days.add(day.replace(day=1))
    return sorted(days)


def test_sql_day_starts_match_zoneinfo_at_every_midnight_change(database_url: str) -> None:
    """The SQL helper, for every date around every change touching a midnight."""
    wrong = []
    with psycopg.connect(database_url) as conn:
        for zone in sorted(oracle.midnight_transitions()):
            days = _probe_days(zone)
            rows = conn.execute(
                f"SELECT d, {local_midnight_epoch('d')} "
                "FROM unnest(%(days)s::date[]) AS d ORDER BY d",
                {"days": days, "tz": zone},
            ).fetchall()
            for day, epoch in rows:
                expected = oracle.day_start(day, zone)
                if Decimal(str(epoch)) != Decimal(int(expected.timestamp())):
                    wrong.append((zone, day, datetime.fromtimestamp(float(epoch), UTC), expected))
    assert wrong == []


def test_python_window_edges_match_zoneinfo_at_every_midnight_change() -> None:
    """``first_date_from`` (windows on calendar dates) at instants on and around the
    day starts and the changes."""
    wrong = []
    for zone, changes in oracle.midnight_transitions().items():
        for change in changes:
            instants = {change.instant}
            for day in change.midnight_dates:
                start = oracle.day_start(day, zone)
                instants.update({start, oracle.day_start(day + DAY, zone)})
            for instant in sorted(instants):
                for probe in (instant - SECOND, instant, instant + SECOND):
                    expected = oracle.first_day_from(probe, zone)
                    if first_date_from(probe, zone) != expected:
                        wrong.append((zone, probe, first_date_from(probe, zone), expected))
    assert wrong == []


# --- summaries and exports -------------------------------------------------------------


@dataclass
class Seeded:
    payments: list[datetime]
    entries: dict[date, Decimal]  # work date → hours (unique per date)
    invoices: dict[date, datetime]  # issue date → paid_at


def _chosen_changes(zone: str) -> list[oracle.Transition]:
    changes = oracle.midnight_transitions()[zone]
    if zone == "America/Havana":
        return [c for c in changes if set(c.midnight_dates) & HAVANA_DATES]
    # The latest change back and the latest forward: the newest calendars matter most.
    back = [c for c in changes if c.after < c.before]
    forward = [c for c in changes if c.after > c.before]
    return [group[-1] for group in (back, forward) if group]


def _later_midnight(day: date, zone: str) -> datetime | None:
    """The second of two midnights (what ``day::timestamp AT TIME ZONE`` picks), if any."""
    tz = zoneinfo.ZoneInfo(zone)
    late = datetime.combine(day, time(), tzinfo=tz).replace(fold=1).astimezone(UTC)
    local = late.astimezone(tz)
    if local.date() == day and local.time() == time() and late != oracle.day_start(day, zone):
        return late
    return None


def _edges(change: oracle.Transition, zone: str) -> tuple[date, list[datetime]]:
    day = change.midnight_dates[0]
    edges = {oracle.day_start(day, zone), change.instant, oracle.day_start(day + DAY, zone)}
    later = _later_midnight(day, zone)
    if later is not None:
        edges.add(later)
    return day, sorted(edges)


def _seed(db: Session, tenant: Tenant, zone: str, changes: list[oracle.Transition]) -> Seeded:
    customer = create_customer(db, org=tenant.org)
    project = create_project(db, org=tenant.org, customer=customer)
    seeded = Seeded([], {}, {})
    for change in changes:
        day, edges = _edges(change, zone)
        for edge in edges:
            for paid_at in (edge - SECOND, edge, edge + SECOND):
                if paid_at not in seeded.payments:
                    create_payment(db, org=tenant.org, customer=customer, paid_at=paid_at)
                    seeded.payments.append(paid_at)
        for k, work_date in enumerate((day - DAY, day, day + DAY)):
            if work_date in seeded.entries:
                continue
            hours = Decimal(k + 1) + Decimal(len(seeded.entries)) / 100
            create_time_entry(
                db,
                org=tenant.org,
                user=tenant.viewer,
                project=project,
                work_date=work_date,
                hours=hours,
                submitted_at=change.instant,
            )
            seeded.entries[work_date] = hours
            paid_at = oracle.day_start(work_date, zone) + SETTLE_AFTER
            create_invoice(
                db,
                org=tenant.org,
                customer=customer,
                status="paid",
                issue_date=work_date,
                due_date=work_date + timedelta(days=30),
                paid_at=paid_at,
            )
            seeded.invoices[work_date] = paid_at
    return seeded


def _windows(zone: str, changes: list[oracle.Transition]) -> list[dict[str, str]]:
    windows: list[dict[str, str]] = [{}]
    for change in changes:
        day, edges = _edges(change, zone)
        before, after = oracle.day_start(day - DAY, zone), oracle.day_start(day + 2 * DAY, zone)
        month = day.replace(day=1)
        next_month = (month + timedelta(days=32)).replace(day=1)
        spans = [(edges[0], oracle.day_start(day + DAY, zone))]  # exactly the local day
        spans.append((oracle.day_start(month, zone), oracle.day_start(next_month, zone)))
        for edge in edges:
            spans += [(before, edge), (edge, after)]
        for lower, upper in spans:
            if lower < upper:
                windows.append({"fromDate": lower.isoformat(), "toDate": upper.isoformat()})
    return windows


def _inside(value: datetime, window: dict[str, str]) -> bool:
    lower = window.get("fromDate")
    upper = window.get("toDate")
    return (lower is None or datetime.fromisoformat(lower) <= value) and (
        upper is None or value < datetime.fromisoformat(upper)
    )


def _days(delta: timedelta, places: str) -> Decimal:
    return (Decimal(int(delta.total_seconds())) / 86400).quantize(
        Decimal(places), rounding=ROUND_HALF_UP
    )


def _expected(seeded: Seeded, zone: str, window: dict[str, str]) -> dict[str, Any]:
    payments = [p for p in seeded.payments if _inside(p, window)]
    entries = {
        d: h for d, h in seeded.entries.items() if _inside(oracle.day_start(d, zone), window)
    }
    invoices = {
        d: p for d, p in seeded.invoices.items() if _inside(oracle.day_start(d, zone), window)
    }
    settle = [_days(p - oracle.day_start(d, zone), "0.1") for d, p in invoices.items()]
    return {
        "payments-received": {
            "totalPayments": len(payments),
            "paymentsByMonth": dict(
                sorted(Counter(oracle.local_month(p, zone) for p in payments).items())
            ),
        },
        "time-approvals": {
            "totalEntries": len(entries),
            "totalHours": sum(entries.values(), Decimal("0.00")),
        },
        "invoice-settlement-time": {
            "totalInvoices": len(invoices),
            "minSettlementTimeDays": min(settle, default=None),
            "maxSettlementTimeDays": max(settle, default=None),
        },
    }


@contextmanager
def _rows_only(monkeypatch: pytest.MonkeyPatch, enabled: bool) -> Iterator[None]:
    with monkeypatch.context() as patch:
        if enabled:  # the API runs in this process (tests/conftest.py)
            for report in registry.all_reports():
                patch.setattr(type(report), "reads_rollup", lambda self, filters: False)
        yield


def _answers(
    client: httpx.Client, tenant: Tenant, windows: list[dict[str, str]], wanted: dict[str, Any]
) -> list[dict[str, Any]]:
    found = []
    for window in windows:
        answer = {}
        for path, fields in wanted.items():
            summary = figures(tenant, path, **window)
            answer[path] = {name: summary[name] for name in fields}
        found.append(answer)
    return found


def _copy(url: str, org_id: str, query: ExportQuery) -> list[dict[str, str]]:
    buffer = io.BytesIO()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT set_config('role', %s, true), set_config('app.organization_id', %s, true)",
            (TENANT_ROLE, org_id),
        )
        with cur.copy(
            f"COPY ({query.sql}) TO STDOUT WITH (FORMAT csv, HEADER)", query.params
        ) as copy:
            for chunk in copy:
                buffer.write(chunk)
    return list(csv.DictReader(io.StringIO(buffer.getvalue().decode())))


def _export(url: str, tenant: Tenant, zone: str, report_type: str, window: dict[str, str]) -> Any:
    report = registry.get_report(report_type)
    ctx = ReportContext(tenant.org.id, tenant.viewer.id, zone, "USD", datetime.now(UTC))
    return _copy(
        url, tenant.org.id, report.export_query(ctx, report.filters_model.model_validate(window))
    )


def _check_exports(
    url: str, tenant: Tenant, zone: str, seeded: Seeded, window: dict[str, str]
) -> None:
    payments = _export(url, tenant, zone, "payments_received", window)
    expected_payments = sorted(p for p in seeded.payments if _inside(p, window))
    assert [datetime.fromisoformat(r["paid_at"]) for r in payments] == expected_payments, window
    assert [r["paid_month"] for r in payments] == [
        oracle.local_month(p, zone) for p in expected_payments
    ], window
    entries = _export(url, tenant, zone, "time_approvals", window)
    assert sorted(date.fromisoformat(r["work_date"]) for r in entries) == sorted(
        d for d in seeded.entries if _inside(oracle.day_start(d, zone), window)
    ), window
    invoices = _export(url, tenant, zone, "invoice_settlement_time", window)
    expected_invoices = {
        d: _days(p - oracle.day_start(d, zone), "0.0001")
        for d, p in seeded.invoices.items()
        if _inside(oracle.day_start(d, zone), window)
    }
    assert {
        date.fromisoformat(r["issue_date"]): Decimal(r["settlement_time_days"]) for r in invoices
    } == expected_invoices, window


@pytest.mark.parametrize("zone", _zone_params())
def test_windows_on_moving_midnights_agree_on_every_path(
    client: httpx.Client,
    tenant: Tenant,
    db: Session,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    zone: str,
) -> None:
    local = create_tenant(db, tenant.settings, timezone=zone)
    changes = _chosen_changes(zone)
    seeded = _seed(db, local, zone, changes)
    windows = _windows(zone, changes)
    expected = [_expected(seeded, zone, window) for window in windows]
    wanted = {path: list(fields) for path, fields in expected[0].items()}

    with _rows_only(monkeypatch, True):
        from_rows = _answers(client, local, windows, wanted)
    for window, found, want in zip(windows, from_rows, expected, strict=True):
        assert found == want, ("rows", zone, window)

    refresh_all_blocking(database_url, [local.org.id])
    with _rows_only(monkeypatch, False):
        from_rollups = _answers(client, local, windows, wanted)
    for window, found, want in zip(windows, from_rollups, expected, strict=True):
        assert found == want, ("rollups", zone, window)

    for window in windows:
        _check_exports(database_url, local, zone, seeded, window)


def test_havana_as_the_issue_reported_it(
    client: httpx.Client,
    tenant: Tenant,
    db: Session,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's own windows, with America/Havana."""
    zone = "America/Havana"
    havana = create_tenant(db, tenant.settings, timezone=zone)
    customer = create_customer(db, org=havana.org)
    project = create_project(db, org=havana.org, customer=customer)
    # Three payments between the two midnights of 1 November 2026 (04:00Z and 05:00Z).
    for minute in (0, 20, 59):
        create_payment(
            db,
            org=havana.org,
            customer=customer,
            paid_at=datetime(2026, 11, 1, 4, minute, tzinfo=UTC),
        )
    # 8 March 2026 (no midnight: it begins at 05:00Z): one time entry, two invoices.
    create_time_entry(
        db, org=havana.org, user=havana.viewer, project=project, work_date=date(2026, 3, 8)
    )
    for _ in range(2):
        create_invoice(
            db,
            org=havana.org,
            customer=customer,
            status="paid",
            issue_date=date(2026, 3, 8),
            paid_at=datetime(2026, 3, 8, 5, tzinfo=UTC) + SETTLE_AFTER,
        )
    # 2 November 2025 begins at 04:00Z (its first midnight): one invoice issued then,
    # settled 3.07 days after that first midnight.
    create_invoice(
        db,
        org=havana.org,
        customer=customer,
        status="paid",
        issue_date=date(2025, 11, 2),
        paid_at=datetime(2025, 11, 2, 4, tzinfo=UTC) + SETTLE_AFTER,
    )
    between = {"fromDate": "2026-11-01T00:00:00-04:00", "toDate": "2026-11-01T00:00:00-05:00"}
    march_8 = {"fromDate": "2026-03-08T00:00:00-05:00", "toDate": "2026-03-09T00:00:00-04:00"}
    to_second_midnight = {
        "fromDate": "2025-11-01T00:00:00-04:00",
        "toDate": "2025-11-02T00:00:00-05:00",
    }
    from_second_midnight = {
        "fromDate": "2025-11-02T00:00:00-05:00",
        "toDate": "2025-11-04T00:00:00-05:00",
    }

    def check() -> None:
        paid = figures(havana, "payments-received", **between)
        assert paid["paymentsByMonth"] == {"2026-11": 3}
        assert figures(havana, "time-approvals", **march_8)["totalEntries"] == 1
        assert figures(havana, "invoice-settlement-time", **march_8)["totalInvoices"] == 2
        # The window ending at the second midnight holds 2 November: its day began an hour
        # earlier; the window starting there does not.
        ending = figures(havana, "invoice-settlement-time", **to_second_midnight)
        assert ending["totalInvoices"] == 1
        assert ending["maxSettlementTimeDays"] == Decimal("3.1")
        starting = figures(havana, "invoice-settlement-time", **from_second_midnight)
        assert starting["totalInvoices"] == 0

    with _rows_only(monkeypatch, True):
        check()
    refresh_all_blocking(database_url, [havana.org.id])
    check()
    rows = _export(database_url, havana, zone, "payments_received", between)
    assert [r["paid_month"] for r in rows] == ["2026-11"] * 3
    settled = _export(database_url, havana, zone, "invoice_settlement_time", to_second_midnight)
    assert [r["settlement_time_days"] for r in settled] == ["3.0700"]


# The rollup definitions at 98affd6, before local days followed the rule: periods they
# built used the later of two midnights (bounds, settlement times, payment months).
BUILT_BEFORE = {
    "quote_cycle_time": "d221f33fe10742d0",
    "payments_received": "7b0304386f0c3f51",
    "invoice_settlement_time": "5a75d22ced83207e",
}


def test_periods_built_before_the_rule_are_stale_and_bounds_are_part_of_the_definition() -> None:
    from pivotal_reporting.reports import (
        invoice_settlement_time,
        payments_received,
        quote_cycle_time,
    )

    modules = {
        "quote_cycle_time": quote_cycle_time,
        "payments_received": payments_received,
        "invoice_settlement_time": invoice_settlement_time,
    }
    for report_type, old in BUILT_BEFORE.items():
        rollup = modules[report_type].ROLLUP
        assert rollup.definition != old, report_type
        # Another way of bounding periods (instants vs dates) is another definition.
        assert (
            dataclasses.replace(rollup, instant=not rollup.instant).definition != rollup.definition
        )
