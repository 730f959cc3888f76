"""Load the demo data: set-based INSERTs as the table owner, replacing earlier demo orgs.

A small load (and any load by a role that is not a superuser) runs in one transaction
with every constraint checked row by row. A large load by a superuser splits the first
organization's rows into two halves inserted concurrently on two connections (PostgreSQL
runs an INSERT on one core, and index maintenance dominates), with the per-row
foreign-key triggers off and every key verified set-based before each commit
(integrity.py). Either way the rows are identical: each is a function of (seed, org, row
number) only.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
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
from pivotal_reporting.demo.integrity import (
    delete_organizations_in_bulk,
    skip_row_checks,
    verify_foreign_keys,
)
from pivotal_reporting.demo.people import SETUP_AT, insert_organization, insert_people
from pivotal_reporting.demo.random_sql import STREAMS, stream_seed
from pivotal_reporting.demo.summary import DemoSummary, count_rows
from pivotal_reporting.reports.refresh import refresh_all_blocking

log = logging.getLogger(__name__)

# What ``serve --demo`` loads when the demo organization is missing: a few seconds.
DEFAULT_ORGS = 3
DEFAULT_SCALE = 5000
DEFAULT_SEED = 42
# From this many rows per table in the first organization, load it in two halves.
PARALLEL_MIN_ROWS = 100_000

BUSINESS_TABLES = ("customers", "projects", "quotes", "invoices", "payments", "time_entries")
LOADED_TABLES = ("users", "roles", "role_permissions", "user_roles", *BUSINESS_TABLES)
ROW_TABLES = ("quotes", "invoices", "payments", "time_entries")
# In dependency order: invoice g bills quote g, payment g settles invoice g.
ROW_STATEMENTS = (
    ("quotes", sales.INSERT_QUOTES),
    ("invoices", sales.INSERT_INVOICES),
    ("payments", payments.INSERT_PAYMENTS),
    ("time_entries", timesheets.INSERT_TIME_ENTRIES),
)
# Serialises loads (two `serve --demo` starting at once, or a load during a load).
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('pivotal_reporting.demo'))"
_SESSION_LOCK = "SELECT pg_advisory_lock(hashtext('pivotal_reporting.demo'))"
_SESSION_UNLOCK = "SELECT pg_advisory_unlock(hashtext('pivotal_reporting.demo'))"


def load_demo_data(url: str, *, orgs: int, scale: int, seed: int) -> DemoSummary:
    """Replace the demo organizations with ``orgs`` freshly generated ones.

    The first organization gets ``scale`` quotes, invoices, payments and time entries;
    the others a tenth of that (at least 100). The same arguments give identical rows.
    """
    plan = demo_orgs(orgs, scale)
    with psycopg.connect(url, autocommit=True) as control:
        control.execute(_SESSION_LOCK)
        try:
            if plan[0].rows >= PARALLEL_MIN_ROWS and _is_superuser(control):
                _load_in_halves(url, plan, seed)
            else:
                with psycopg.connect(url) as conn:
                    _enter_maintenance(conn)
                    _delete_demo_orgs(conn)
                    _load(conn, plan, seed)
        finally:
            control.execute(_SESSION_UNLOCK)
    _analyze(url)
    # The bulk path loads with triggers off: rebuild the rollups from the rows.
    refresh_all_blocking(url, [org.org_id for org in plan], rebuild=True)
    with psycopg.connect(url) as conn:
        _enter_maintenance(conn)
        return count_rows(conn, [org.org_id for org in plan], seed=seed, scale=scale)


def ensure_demo_data(url: str) -> None:
    """Load the default demo data (in a few seconds) unless the demo organization exists."""
    with psycopg.connect(url) as conn:
        _enter_maintenance(conn)
        conn.execute(_LOCK)
        if conn.execute("SELECT 1 FROM organizations WHERE id = %s", (DEMO_ORG_ID,)).fetchone():
            log.info("demo data already loaded (%s exists)", DEMO_ORG_ID)
            return
        _delete_demo_orgs(conn)
        plan = demo_orgs(DEFAULT_ORGS, DEFAULT_SCALE)
        _load(conn, plan, DEFAULT_SEED)
    _analyze(url)
    refresh_all_blocking(url, [org.org_id for org in plan], rebuild=True)


def _enter_maintenance(conn: psycopg.Connection[Any]) -> None:
    # The owner's `maintenance` policy (rls.py) opens every tenant's rows to this
    # transaction only. The tables' statistics predate the load, so the planner would
    # take a growing table for an empty one and join it by nested loops: hash joins,
    # with the memory to hold a million keys, instead.
    conn.execute(
        "SELECT set_config('app.maintenance', 'on', true),"
        " set_config('enable_nestloop', 'off', true), set_config('work_mem', '256MB', true)"
    )


def _is_superuser(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT current_setting('is_superuser') = 'on'").fetchone()
    return bool(row and row[0])


def _delete_demo_orgs(conn: psycopg.Connection[Any]) -> None:
    # Every tenant table's foreign key cascades from organizations.
    conn.execute("DELETE FROM organizations WHERE id = ANY(%s)", (all_demo_org_ids(),))


def _load(conn: psycopg.Connection[Any], plan: list[DemoOrg], seed: int) -> None:
    """Every organization of ``plan``, whole, in the caller's transaction."""
    for org in plan:
        started = time.perf_counter()
        _insert_parties(conn, org, seed)
        _insert_rows(conn, org, seed, 1, org.rows)
        log.info("%s loaded in %.1f s", org.org_id, time.perf_counter() - started)


def _load_in_halves(url: str, plan: list[DemoOrg], seed: int) -> None:
    """Two connections, each one half of the first organization's rows (superuser only).

    Three commits: the organizations with their people, customers and projects, then
    each half of the activity rows. A failure after the first is cleaned up by deleting
    the demo organizations again.
    """
    first = plan[0]
    middle = first.rows // 2
    with psycopg.connect(url) as main, psycopg.connect(url) as helper:
        try:
            _enter_maintenance(main)
            skip_row_checks(main)
            delete_organizations_in_bulk(main, all_demo_org_ids())
            main.commit()  # or the helper's unique checks would wait on the deleted rows
            _vacuum(main, ROW_TABLES)
            _enter_maintenance(main)
            skip_row_checks(main)
            for org in plan:
                _insert_parties(main, org, seed)
            _verify(main, plan)
            main.commit()  # both halves reference these rows, and verify that they do
            for conn in (main, helper):
                _enter_maintenance(conn)
                skip_row_checks(conn)
            with ThreadPoolExecutor(max_workers=1) as pool:
                second_half = pool.submit(_insert_half, helper, plan[:1], seed, middle + 1)
                try:
                    _insert_half(main, plan, seed, 1, middle)
                finally:
                    second_half.result()
            main.commit()
            helper.commit()
        except BaseException:
            main.rollback()
            helper.rollback()
            with psycopg.connect(url) as cleanup:
                _enter_maintenance(cleanup)
                _delete_demo_orgs(cleanup)
            raise


def _insert_half(
    conn: psycopg.Connection[Any],
    plan: list[DemoOrg],
    seed: int,
    first_row: int,
    last_row: int | None = None,
) -> None:
    """The first org's rows from ``first_row`` (to ``last_row``), then the other orgs'."""
    first, *others = plan
    _insert_rows(conn, first, seed, first_row, first.rows if last_row is None else last_row)
    for org in others:
        _insert_rows(conn, org, seed, 1, org.rows)
    _verify(conn, plan)


def _vacuum(conn: psycopg.Connection[Any], tables: tuple[str, ...]) -> None:
    """Clear what an earlier large load left behind: later scans need not skip it."""
    started = time.perf_counter()
    conn.autocommit = True
    try:
        for table in tables:
            conn.execute(f"VACUUM {table}")
    finally:
        conn.autocommit = False
    log.info("vacuumed in %.1f s", time.perf_counter() - started)


def _verify(conn: psycopg.Connection[Any], plan: list[DemoOrg]) -> None:
    started = time.perf_counter()
    verify_foreign_keys(conn, LOADED_TABLES, [org.org_id for org in plan])
    log.info("foreign keys verified in %.1f s", time.perf_counter() - started)


def _insert_parties(conn: psycopg.Connection[Any], org: DemoOrg, seed: int) -> None:
    """The organization, its people and roles, customers and projects."""
    insert_organization(conn, org)
    insert_people(conn, org)
    params = _params(org, seed, 1, org.rows)
    conn.execute(customers.INSERT_CUSTOMERS, params)
    conn.execute(customers.INSERT_PROJECTS, params)


def _insert_rows(
    conn: psycopg.Connection[Any], org: DemoOrg, seed: int, first_row: int, last_row: int
) -> None:
    """Rows ``first_row..last_row`` of each of the organization's four activity tables."""
    params = _params(org, seed, first_row, last_row)
    for table, statement in ROW_STATEMENTS:
        started = time.perf_counter()
        rows = conn.execute(statement, params).rowcount
        elapsed = time.perf_counter() - started
        log.info("%s: %d %s (from row %d) in %.1f s", org.org_id, rows, table, first_row, elapsed)


def _params(org: DemoOrg, seed: int, first_row: int, last_row: int) -> dict[str, Any]:
    profile = org.profile
    seeds = {f"seed_{stream}": stream_seed(seed, org.slug, stream) for stream in STREAMS}
    return seeds | {
        "org": org.org_id,
        "slug": org.slug,
        "n": org.rows,
        "g_from": first_row,
        "g_to": last_row,
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
    """Fresh planner statistics for the reports that run next."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in BUSINESS_TABLES:
            conn.execute(f"ANALYZE {table}")
