"""Summary latency at 10k and 1M rows per organization, beside the spec's figures.

    python bench/summaries.py --rows 10000 --rows 1000000

For each size: a dedicated database on a dedicated embedded PostgreSQL (under
``.data/bench-pg``; or ``--admin-url`` for any PostgreSQL 15+) is loaded once with the
demo data (one organization with N quotes, invoices, payments and time entries), then
reused. The API runs in-process under uvicorn on a loopback port; each summary is called
``--calls`` times through HTTP with fixed one-year windows, and its SQL alone (the
report's ``summarize`` in a tenant transaction, no HTTP, no audit) as many times: with
the rollups fresh, with one filter per report, then with the newest month stale (as
while it is written).
Timings never gate tests; this prints a table and the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import uvicorn

from bench_database import bench_admin_url, prepared_database
from pivotal_reporting.app import create_app
from pivotal_reporting.auth.principal import load_principal
from pivotal_reporting.auth.tokens import TokenClaims, mint_token
from pivotal_reporting.config import Settings
from pivotal_reporting.db import Database
from pivotal_reporting.demo import DEMO_ORG_ID, DEMO_USER_ID
from pivotal_reporting.reports import registry
from pivotal_reporting.reports.base import ReportContext, fetch_one
from pivotal_reporting.reports.refresh import refresh_all_blocking
from pivotal_reporting.reports.service import TUNE_TRANSACTION

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-" + "x" * 40
# The spec's "Report Summary Performance" table: (dataset, response time in ms).
SPEC = {
    "quote_cycle_time": ("10,000 quotes", 180),
    "invoice_settlement_time": ("5,000 invoices", 150),
    "payments_received": ("20,000 payments", 220),
    "time_approvals": ("15,000 entries", 200),
}
# One year, bounded by UTC midnights (New York's months then start 4-5 hours later: the
# window's first hours and last local month are read from the rows) or by the demo
# organization's own midnights (America/New_York: twelve whole months from the rollup).
WINDOWS = {
    "UTC year": {"fromDate": "2025-11-01T00:00:00Z", "toDate": "2026-11-01T00:00:00Z"},
    "local year": {"fromDate": "2025-11-01T00:00:00-04:00", "toDate": "2026-11-01T00:00:00-04:00"},
}
# One filtered query per report (the slowest kind for invoices: overdue only).
FILTERS = {
    "quote_cycle_time": {"status": "accepted"},
    "invoice_settlement_time": {"overdueOnly": "true"},
    "payments_received": {"method": "credit_card"},
    "time_approvals": {"status": "approved"},
}
# "Being written": one row per table changed on 15 October 2026, so that month is stale
# (read from the rows) as the newest month is while the business writes to it.
TOUCH_NEWEST_MONTH = (
    "UPDATE quotes SET status = status WHERE ctid = (SELECT ctid FROM quotes WHERE "
    "decided_at >= '2026-10-15' AND decided_at < '2026-10-16' LIMIT 1)",
    "UPDATE invoices SET status = status WHERE ctid = (SELECT ctid FROM invoices WHERE "
    "issue_date = '2026-10-15' LIMIT 1)",
    "UPDATE payments SET status = status WHERE ctid = (SELECT ctid FROM payments WHERE "
    "paid_at >= '2026-10-15' AND paid_at < '2026-10-16' LIMIT 1)",
    "UPDATE time_entries SET status = status WHERE ctid = (SELECT ctid FROM time_entries WHERE "
    "work_date = '2026-10-15' LIMIT 1)",
)
SLO_MS = 250.0


@dataclass(frozen=True)
class Timing:
    p50: float
    p95: float


def percentiles(samples: list[float]) -> Timing:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return Timing(p50=statistics.median(samples), p95=cuts[94])


@contextmanager
def api_server(settings: Settings) -> Iterator[str]:
    """uvicorn serving the real app on a free loopback port (as tests/conftest.py does)."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("API server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def time_http(base_url: str, token: str, path: str, window: dict[str, str], calls: int) -> Timing:
    samples = []
    with httpx.Client(base_url=base_url, timeout=120) as http:
        headers = {"Authorization": f"Bearer {token}"}
        for i in range(calls + 3):
            started = time.perf_counter()
            response = http.get(f"/v1/reports/summary/{path}", params=window, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if i >= 3:  # the first calls warm the pool and the caches
                samples.append(elapsed)
    return percentiles(samples)


async def time_sql(
    url: str, report_type: str, window: dict[str, str], calls: int
) -> tuple[Timing, int]:
    """The report's queries alone, in a tenant transaction; also the rows in the window."""
    report = registry.get_report(report_type)
    filters = report.filters_model.model_validate(window)
    database = Database.connect(url, pool_size=2)
    samples: list[float] = []
    try:
        async with database.tenant_session(DEMO_ORG_ID) as session:
            principal = await load_principal(session, TokenClaims(DEMO_USER_ID, DEMO_ORG_ID))
        assert principal is not None, "the demo user is missing"
        ctx = ReportContext(
            DEMO_ORG_ID,
            DEMO_USER_ID,
            principal.timezone,
            principal.base_currency,
            datetime.now(UTC),
        )
        for i in range(calls + 3):
            async with database.tenant_session(DEMO_ORG_ID) as session:
                started = time.perf_counter()
                await fetch_one(session, TUNE_TRANSACTION, {})
                summary = await report.summarize(session, ctx, filters)
                elapsed = (time.perf_counter() - started) * 1000
            if i >= 3:
                samples.append(elapsed)
    finally:
        await database.dispose()
    rows_in_window = next(iter(summary.model_dump().values()))  # totalQuotes, ...
    return percentiles(samples), int(rows_in_window)


def machine() -> str:
    with psycopg.connect(ADMIN_URL[0]) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    version = row[0] if row else "?"
    model = "?"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, PostgreSQL {version}, load average {load}"
    )


ADMIN_URL: list[str] = []


def bench_size(rows: int, args: argparse.Namespace) -> list[str]:
    url = prepared_database(ADMIN_URL[0], rows, args.seed)
    settings = Settings(
        env="dev",
        database_url=url,
        data_dir=REPO / ".data" / "bench-data",
        jwt_secret=SECRET,
        rate_limit_per_minute=1_000_000,
        worker_in_process=False,
    )
    token = mint_token(
        settings, user_id=DEMO_USER_ID, organization_id=DEMO_ORG_ID, expires_in=timedelta(hours=2)
    )
    lines = []
    # (label, window, filtered, newest month written)
    scenarios = [(name, window, False, False) for name, window in WINDOWS.items()]
    scenarios.append(("local year", WINDOWS["local year"], True, False))
    scenarios.append(("local year", WINDOWS["local year"], False, True))
    with api_server(settings) as base_url:
        for name, window, filtered, newest_month_written in scenarios:
            if newest_month_written:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("SELECT set_config('app.maintenance', 'on', false)")
                    for statement in TOUCH_NEWEST_MONTH:
                        conn.execute(statement)
            for report in registry.all_reports():
                query = {**window, **(FILTERS[report.report_type] if filtered else {})}
                label = name + (", newest month written" if newest_month_written else "")
                if filtered:
                    label += "".join(f", {k}={v}" for k, v in FILTERS[report.report_type].items())
                http = time_http(base_url, token, report.path, query, args.calls)
                sql, in_window = asyncio.run(time_sql(url, report.report_type, query, args.calls))
                dataset, spec_ms = SPEC[report.report_type]
                verdict = "pass" if http.p95 <= SLO_MS else "MISS"
                lines.append(
                    f"| {report.report_type:<23} | {rows:>9,} | {label:<33} | {in_window:>9,} "
                    f"| {dataset:<15} | {spec_ms:>4} | {http.p50:>8.1f} | {http.p95:>8.1f} "
                    f"| {sql.p50:>7.1f} | {sql.p95:>7.1f} | {verdict:<4} |"
                )
    refresh_all_blocking(url)  # leave the rollups fresh for the next run
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="rows per table (repeatable)")
    parser.add_argument("--calls", type=int, default=50, help="timed calls per endpoint (>= 50)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--admin-url", help="PostgreSQL admin URL (default: embedded server)")
    args = parser.parse_args()
    ADMIN_URL.append(bench_admin_url(args.admin_url))
    header = (
        "| report                  | rows/table | window                            "
        "| in window | spec dataset    | spec | HTTP p50 | HTTP p95 | SQL p50 | SQL p95 | SLO  |\n"
        "|-------------------------|-----------:|-----------------------------------"
        "|----------:|-----------------|-----:|---------:|---------:|--------:|--------:|------|"
    )
    lines = [line for rows in args.rows or [10_000] for line in bench_size(rows, args)]
    for name, window in WINDOWS.items():
        print(f"{name}: [{window['fromDate']}, {window['toDate']})")
    print(f"{args.calls} calls each, demo organization in America/New_York,")
    print("times in ms; SLO: HTTP p95 <= 250 ms")
    print(header)
    print("\n".join(lines))
    print(machine())


if __name__ == "__main__":
    main()
