"""The benchmarks' shared database: one embedded server, one database per data size."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psycopg

from pivotal_reporting import schema
from pivotal_reporting.db import with_database
from pivotal_reporting.demo import DEMO_ORG_ID, load_demo_data
from pivotal_reporting.reports.refresh import refresh_all_blocking

REPO = Path(__file__).resolve().parent.parent


def bench_admin_url(configured: str | None) -> str:
    """``configured`` (any PostgreSQL 15+ admin URL), else the embedded server under .data."""
    if configured:
        return configured
    from pivotal_reporting.embedded import start_embedded

    return start_embedded(REPO / ".data" / "bench-pg", database="postgres")


def prepared_database(admin: str, rows: int, seed: int = 42) -> str:
    """``pivotal_bench_<rows>``, migrated and holding the demo data (loaded once, reused).

    ``$BENCH_DB_PREFIX`` replaces ``pivotal_bench`` (e.g. a branch whose migrations are
    ahead of the shared benchmark databases uses its own copies).
    """
    name = f"{os.environ.get('BENCH_DB_PREFIX', 'pivotal_bench')}_{rows}"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin, name)
    schema.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('app.maintenance', 'on', false)")
        loaded = conn.execute(
            "SELECT count(*) FROM quotes WHERE organization_id = %s", (DEMO_ORG_ID,)
        ).fetchone()
    if not loaded or loaded[0] != rows:
        started = time.perf_counter()
        print(f"loading demo data: {rows:,} rows per table ...", file=sys.stderr, flush=True)
        load_demo_data(url, orgs=1, scale=rows, seed=seed)
        print(f"  loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    refresh_all_blocking(url)  # rollups of data loaded before migration 0007, if any
    with psycopg.connect(url, autocommit=True) as conn:
        # Steady state: visibility map set, so the covering indexes serve index-only scans.
        conn.execute("VACUUM (ANALYZE) quotes, invoices, payments, time_entries, report_rollups")
        # The joined tables too: without statistics the planner takes the organization's
        # 500 users for 2 and joins a million export rows by nested loops.
        conn.execute("ANALYZE users, projects, customers, organizations")
    return url
