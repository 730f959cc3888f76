"""Browser fixtures: Debian's Chromium driven by Playwright (from PyPI) against the real
test server on real PostgreSQL, and one organization with rows behind every report.

Chromium: ``/usr/bin/chromium`` (``.ci/run`` installs the Debian package); the tests are
skipped with a reason when it is missing. Screenshots go to ``.data/screenshots/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pivotal_reporting.config import Settings
from pivotal_reporting.models import Customer, Payment, Project
from tests.conftest import REPO
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

CHROMIUM = os.environ.get("PIVOTAL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO / ".data" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
METHODS = ("bank_transfer", "credit_card", "check", "cash")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):  # .ci/run installs it: a missing browser is a CI failure
            pytest.fail(f"{CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: object) -> Iterator[object]:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 900}, locale="en-US", accept_downloads=True
    )
    yield context
    context.close()


@dataclass
class Seeded:
    tenant: Tenant
    payments: list[Payment] = field(default_factory=list)
    customers: list[Customer] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)


def _month_ago(today: date, months: int, day: int) -> datetime:
    y, m = today.year, today.month - months
    while m <= 0:
        y, m = y - 1, m + 12
    return datetime(y, m, min(day, 28), 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded(owner_engine: Engine, settings: Settings) -> Seeded:
    """An organization (UTC) with rows in the last twelve months and the twelve before."""
    with Session(owner_engine, expire_on_commit=False) as db:
        tenant = create_tenant(db, settings, name="Northwind Advisory")
        data = Seeded(tenant)
        data.customers = [
            create_customer(db, org=tenant.org, name=f"Client {i:02d} {'Ltd' if i % 2 else 'LLC'}")
            for i in range(14)
        ]
        data.projects = [
            create_project(db, org=tenant.org, customer=data.customers[i], name=name)
            for i, name in enumerate(("Apollo rollout", "Zephyr audit", "Orion support"))
        ]
        today = datetime.now(UTC).date()
        for i in range(36):
            months = i % 11 if i < 30 else 12 + i % 6  # 30 this year, 6 in the year before
            data.payments.append(
                create_payment(
                    db,
                    org=tenant.org,
                    customer=data.customers[i % 14 if i % 3 else 0],
                    amount=Decimal(f"{250 + 137 * i}.{i:02d}"),
                    currency="EUR" if i % 7 == 3 else "USD",
                    method=METHODS[i % 4],
                    paid_at=_month_ago(today, months, 3 + i % 20),
                )
            )
        for i in range(18):
            created = _month_ago(today, i % 10, 2 + i)
            create_quote(
                db,
                org=tenant.org,
                customer=data.customers[i % 5],
                project=data.projects[i % 3] if i % 4 else None,
                status=("accepted", "rejected", "expired")[i % 3],
                created_at=created,
                decided_at=created + timedelta(days=1 + (i * 5) % 40, hours=i),
                total_amount=Decimal("1500.00") + i,
            )
        for i in range(16):
            issue = _month_ago(today, i % 10, 1 + i).date()
            create_invoice(
                db,
                org=tenant.org,
                customer=data.customers[i % 6],
                status="paid" if i % 3 == 0 else "issued",
                issue_date=issue,
                total_amount=f"{800 + 95 * i}.00",
                currency="USD" if i % 5 else "EUR",
            )
        people = (tenant.exporter, tenant.admin, tenant.viewer)
        for i in range(24):
            work = _month_ago(today, i % 9, 4 + i % 20)
            status = ("approved", "approved", "submitted", "rejected", "draft")[i % 5]
            create_time_entry(
                db,
                org=tenant.org,
                user=people[i % 3],
                project=data.projects[i % 3],
                work_date=work.date(),
                hours=Decimal(f"{1 + i % 8}.{(i * 25) % 100:02d}"),
                billable=i % 4 != 0,
                status=status,
                submitted_at=work + timedelta(hours=8) if status != "draft" else None,
            )
        return data
