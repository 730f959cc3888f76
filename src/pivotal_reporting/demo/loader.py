"""Load the demo data: one transaction, as the table owner, set-based INSERTs only."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from pivotal_reporting.demo import customers, payments, sales, timesheets
from pivotal_reporting.demo.catalog import (
    ACTIVITY_WORDS,
    ANCHOR,
    COMPANY_WORDS,
    DEMO_ORG_ID,
    FIRST_MONDAY,
    INDUSTRY_WORDS,
    PLACE_WORDS,
    PROJECT_WORDS,
    WORKING_DAYS,
    DemoOrg,
    all_demo_org_ids,
    demo_orgs,
)
from pivotal_reporting.demo.people import SETUP_AT, insert_organization, insert_people

log = logging.getLogger(__name__)

# What ``serve --demo`` loads when the demo organization is missing: a few seconds.
DEFAULT_ORGS = 3
DEFAULT_SCALE = 5000
DEFAULT_SEED = 42

COUNTED_TABLES = (
    "users",
    "roles",
    "customers",
    "projects",
    "quotes",
    "invoices",
    "payments",
    "time_entries",
)
BUSINESS_TABLES = ("customers", "projects", "quotes", "invoices", "payments", "time_entries")
# Serialises concurrent loads (two `serve --demo` starting at once).
_LOCK_KEY = "pivotal_reporting.demo"


@dataclass(frozen=True)
class OrgCounts:
    organization_id: str
    name: str
    counts: tuple[tuple[str, int], ...]  # (table, rows) in COUNTED_TABLES order

    def count(self, table: str) -> int:
        return dict(self.counts)[table]


@dataclass(frozen=True)
class DemoSummary:
    """What a load produced: rows per table for each demo organization."""

    seed: int
    scale: int
    organizations: tuple[OrgCounts, ...]

    def __str__(self) -> str:
        width = max(len(org.organization_id) for org in self.organizations)
        header = f"{'organization':<{width}}" + "".join(f" {t:>12}" for t in COUNTED_TABLES)
        lines = [f"demo data (seed {self.seed}, scale {self.scale}):", header]
        for org in self.organizations:
            cells = "".join(f" {n:>12,}" for _, n in org.counts)
            lines.append(f"{org.organization_id:<{width}}{cells}")
        return "\n".join(lines)


def load_demo_data(url: str, *, orgs: int, scale: int, seed: int) -> DemoSummary:
    """Replace the demo organizations with ``orgs`` freshly generated ones.

    The first organization gets ``scale`` quotes, invoices, payments and time entries;
    the others a tenth of that (at least 100). The same arguments give identical rows.
    """
    plan = demo_orgs(orgs, scale)
    with psycopg.connect(url) as conn:
        _enter_maintenance(conn)
        _load(conn, plan, seed)
        conn.commit()
    _analyze(url)
    return summarize(url, plan, seed=seed, scale=scale)


def ensure_demo_data(url: str) -> None:
    """Load the default demo data unless the demo organization already exists."""
    plan = demo_orgs(DEFAULT_ORGS, DEFAULT_SCALE)
    with psycopg.connect(url) as conn:
        _enter_maintenance(conn)
        if conn.execute("SELECT 1 FROM organizations WHERE id = %s", (DEMO_ORG_ID,)).fetchone():
            log.info("demo data already loaded (%s exists)", DEMO_ORG_ID)
            return
        _load(conn, plan, DEFAULT_SEED)
        conn.commit()
    _analyze(url)


def _enter_maintenance(conn: psycopg.Connection[Any]) -> None:
    # The owner's `maintenance` policy (see rls.py) opens every tenant's rows to this
    # transaction only; the advisory lock makes concurrent loaders wait their turn.
    conn.execute("SELECT set_config('app.maintenance', 'on', true)")
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK_KEY,))


def _load(conn: psycopg.Connection[Any], plan: list[DemoOrg], seed: int) -> None:
    # Foreign keys from every tenant table cascade from organizations.
    conn.execute("DELETE FROM organizations WHERE id = ANY(%s)", (all_demo_org_ids(),))
    for org in plan:
        started = time.perf_counter()
        insert_organization(conn, org)
        insert_people(conn, org)
        params = _params(org, seed)
        for table, statement in (
            ("customers", customers.INSERT_CUSTOMERS),
            ("projects", customers.INSERT_PROJECTS),
            ("quotes", sales.INSERT_QUOTES),
            ("invoices", sales.INSERT_INVOICES),
            ("payments", payments.INSERT_PAYMENTS),
            ("time_entries", timesheets.INSERT_TIME_ENTRIES),
        ):
            step = time.perf_counter()
            rows = conn.execute(statement, params).rowcount
            log.info(
                "%s: %s %d rows in %.1f s", org.org_id, table, rows, time.perf_counter() - step
            )
            if table in ("quotes", "invoices"):
                # Fresh statistics for the next INSERT's join on this table.
                conn.execute(f"ANALYZE {table}")
        log.info("%s loaded in %.1f s", org.org_id, time.perf_counter() - started)


def _params(org: DemoOrg, seed: int) -> dict[str, Any]:
    profile = org.profile
    return {
        "org": org.org_id,
        "slug": org.slug,
        "seed": seed,
        "n": org.rows,
        "customers": org.customers,
        "staff": org.staff,
        "managers": org.managers,
        "tz": profile.timezone,
        "base_currency": profile.base_currency,
        "second_currency": profile.second_currency,
        "second_share": profile.second_share,
        "anchor": ANCHOR,
        "setup_at": SETUP_AT,
        "first_monday": FIRST_MONDAY,
        "working_days": WORKING_DAYS,
        "company_words": list(COMPANY_WORDS),
        "industry_words": list(INDUSTRY_WORDS),
        "place_words": list(PLACE_WORDS),
        "legal_forms": list(profile.legal_forms),
        "project_words": list(PROJECT_WORDS),
        "activity_words": list(ACTIVITY_WORDS),
        "n_company": len(COMPANY_WORDS),
        "n_industry": len(INDUSTRY_WORDS),
        "n_place": len(PLACE_WORDS),
        "name_combos": len(COMPANY_WORDS) * len(INDUSTRY_WORDS) * len(profile.legal_forms),
    }


def _analyze(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in BUSINESS_TABLES:
            conn.execute(f"ANALYZE {table}")


def summarize(url: str, plan: list[DemoOrg], *, seed: int, scale: int) -> DemoSummary:
    """Count the rows each demo organization has now."""
    selects = ", ".join(
        f"(SELECT count(*) FROM {t} WHERE organization_id = o.id) AS {t}" for t in COUNTED_TABLES
    )
    with psycopg.connect(url) as conn:
        _enter_maintenance(conn)
        result = []
        for org in plan:
            row = conn.execute(
                f"SELECT o.name, {selects} FROM organizations o WHERE o.id = %s", (org.org_id,)
            ).fetchone()
            if row is None:
                raise RuntimeError(f"demo organization {org.org_id} is missing after loading")
            counts = tuple(zip(COUNTED_TABLES, (int(n) for n in row[1:]), strict=True))
            result.append(OrgCounts(org.org_id, str(row[0]), counts))
    return DemoSummary(seed=seed, scale=scale, organizations=tuple(result))
