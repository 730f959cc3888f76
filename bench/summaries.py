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
    parser.add_argument(
        "--scaling", action="store_true", help="every filter kind, cached / computed / rows-only"
    )
    parser.add_argument("--reference-calls", type=int, default=5, help="rows-only SQL calls")
    parser.add_argument("--load", action="store_true", help="the spec's load test instead")
    parser.add_argument(
        "--hit-cost", action="store_true", help="server CPU per cache hit, one API process"
    )
    parser.add_argument("--users", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--api-workers", type=int, default=2, help="serve --workers in --load")
    parser.add_argument("--load-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    ADMIN_URL.append(bench_admin_url(args.admin_url))
    if args.scaling:
        run_scaling(args)
        return
    if args.load:
        run_load(args)
        return
    if args.hit_cost:
        run_hit_cost(args)
        return
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


# --- Growth and distance to the reference (issue 14): --scaling --------------------------
#
# Per size, report and filter kind: HTTP p95 with the summary cache (repeated identical
# calls: the frequently-requested case), HTTP p95 with the cache off (every call
# computes), and the reference of the same run: the report's rows-only SQL path (its own
# row queries, rollups bypassed, no HTTP, no audit). The ratio is uncached HTTP / rows-only.


def filter_kinds(url: str) -> dict[str, list[dict[str, str]]]:
    """Every filter kind per report; id filters name the demo's busiest customer, project
    and user."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT set_config('app.maintenance', 'on', false)")

        def busiest(table: str, column: str) -> str:
            row = conn.execute(
                f"SELECT {column} FROM {table} WHERE organization_id = %s AND {column} IS NOT NULL "
                f"GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
                (DEMO_ORG_ID,),
            ).fetchone()
            assert row is not None
            return str(row[0])

        customer = busiest("payments", "customer_id")
        project = busiest("time_entries", "project_id")
        user = busiest("time_entries", "user_id")
        quote_project = busiest("quotes", "project_id")
    return {
        "quote_cycle_time": [
            {},
            {"status": "accepted"},
            {"customerId": customer},
            {"projectId": quote_project},
        ],
        "invoice_settlement_time": [
            {},
            {"asOf": "2026-11-01T00:00:00Z"},
            {"status": "paid"},
            {"currency": "EUR"},
            {"overdueOnly": "true"},
            {"customerId": customer},
            {"overdueOnly": "true", "currency": "USD"},
        ],
        "payments_received": [
            {},
            {"method": "credit_card"},
            {"currency": "EUR"},
            {"customerId": customer},
            {"method": "credit_card", "currency": "USD"},
        ],
        "time_approvals": [
            {},
            {"status": "approved"},
            {"userId": user},
            {"projectId": project},
        ],
    }


async def time_rows_only(url: str, report_type: str, query: dict[str, str], calls: int) -> Timing:
    """The rows-only SQL path: ``summarize`` with the rollups bypassed."""
    report = registry.get_report(report_type)
    original = type(report).reads_rollup
    type(report).reads_rollup = lambda self, filters: False  # type: ignore[method-assign]
    try:
        timing, _ = await time_sql(url, report_type, query, calls)
    finally:
        type(report).reads_rollup = original  # type: ignore[method-assign]
    return timing


def run_scaling(args: argparse.Namespace) -> None:
    from pivotal_reporting.reports import cache

    lines = []
    window = WINDOWS["local year"]
    for rows in args.rows or [10_000, 100_000, 1_000_000]:
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
            settings,
            user_id=DEMO_USER_ID,
            organization_id=DEMO_ORG_ID,
            expires_in=timedelta(hours=2),
        )
        kinds = filter_kinds(url)
        with api_server(settings) as base_url:
            for report in registry.all_reports():
                for filters in kinds[report.report_type]:
                    query = {**window, **filters}
                    cached = time_http(base_url, token, report.path, query, args.calls)
                    enabled = cache.SUMMARIES
                    cache.SUMMARIES = cache.SummaryCache(max_entries=0)
                    try:
                        uncached = time_http(base_url, token, report.path, query, args.calls)
                    finally:
                        cache.SUMMARIES = enabled
                    reference = asyncio.run(
                        time_rows_only(url, report.report_type, query, args.reference_calls)
                    )
                    label = ", ".join(f"{k}={v[:12]}" for k, v in filters.items()) or "window only"
                    cacheable = (
                        "no"
                        if report.depends_on_now(report.filters_model.model_validate(query))
                        else "yes"
                    )
                    lines.append(
                        f"| {report.report_type:<23} | {rows:>9,} | {label:<38} | {cacheable:<6} "
                        f"| {cached.p95:>8.1f} | {uncached.p95:>8.1f} | {reference.p95:>8.1f} "
                        f"| {uncached.p95 / reference.p95:>5.2f}x "
                        f"| {'met' if uncached.p95 <= 100 else 'not met':<7} |"
                    )
    print(f"window: local year [{window['fromDate']}, {window['toDate']}), {args.calls} calls each")
    print("times in ms (p95); target: every summary <= 100 ms p95 at 1M rows")
    print(
        "| report                  | rows/table | filters                                | cache? "
        "| HTTP hit | HTTP computed | rows-only SQL | ratio | target  |"
    )
    print(
        "|-------------------------|-----------:|----------------------------------------|--------"
        "|---------:|---------:|---------:|------:|---------|"
    )
    print("\n".join(lines))
    print(machine())


# --- The specification's load test (issue 14): --load --------------------------------------
#
# 25 users, no think time, 60 s, each calling the four summaries in turn (local one-year
# window), against ``pivotal-reporting serve --workers N`` as its own process tree.


async def _load_user(
    http: httpx.AsyncClient, token: str, stop_at: float, latencies: list[float], errors: list[str]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    paths = [report.path for report in registry.all_reports()]
    i = 0
    while time.perf_counter() < stop_at:
        path = paths[i % len(paths)]
        i += 1
        started = time.perf_counter()
        try:
            response = await http.get(
                f"/v1/reports/summary/{path}", params=WINDOWS["local year"], headers=headers
            )
            if response.status_code != 200:
                errors.append(f"{path}: {response.status_code}")
                continue
        except httpx.HTTPError as exc:
            errors.append(f"{path}: {type(exc).__name__}")
            continue
        latencies.append((time.perf_counter() - started) * 1000)


async def _load(
    base_url: str, token: str, users: int, seconds: float
) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=users + 5)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(
            *(_load_user(http, token, stop_at, latencies, errors) for _ in range(users))
        )
        return latencies, errors, time.perf_counter() - started


@contextmanager
def served(args: argparse.Namespace, workers: int) -> Iterator[tuple[str, str, int]]:
    """``pivotal-reporting serve --workers N`` on the load database, as its own process
    tree: (base URL, a token of the demo user, the supervisor's pid)."""
    import socket
    import subprocess
    import sys
    import tempfile

    url = prepared_database(ADMIN_URL[0], args.load_rows, args.seed)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data_dir = tempfile.mkdtemp(prefix="pivotal-bench-load-")
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | {
        "PIVOTAL_DATABASE_URL": url,
        "PIVOTAL_DATA_DIR": data_dir,
        "PIVOTAL_JWT_SECRET": SECRET,
        "PIVOTAL_RATE_LIMIT_PER_MINUTE": "1000000",
        "PIVOTAL_WORKER_IN_PROCESS": "false",
        "PIVOTAL_LOG_LEVEL": "WARNING",
    }
    cli = str(Path(sys.executable).parent / "pivotal-reporting")
    server = subprocess.Popen(
        [cli, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    token = mint_token(
        Settings(database_url=url, jwt_secret=SECRET),
        user_id=DEMO_USER_ID,
        organization_id=DEMO_ORG_ID,
        expires_in=timedelta(hours=2),
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("serve did not start")
            time.sleep(0.3)
        yield base_url, token, server.pid
    finally:
        server.terminate()
        server.wait(timeout=60)


def run_load(args: argparse.Namespace) -> None:
    with served(args, args.api_workers) as (base_url, token, _):
        asyncio.run(_load(base_url, token, args.users, 5))  # warm-up: pools, caches
        latencies, errors, wall = asyncio.run(_load(base_url, token, args.users, args.seconds))
    timing = percentiles(latencies)
    print(
        f"Load: {args.users} users, no think time, {args.seconds:.0f} s, the four summaries in turn "
        f"(local year), serve --workers {args.api_workers}, {args.load_rows:,} rows per table"
    )
    print("| requests | errors | requests/s | p50 ms | p95 ms | target p95 <= 250 ms, 0 errors |")
    print("|---------:|-------:|-----------:|-------:|-------:|--------------------------------|")
    met = "met" if timing.p95 <= SLO_MS and not errors else "not met"
    print(
        f"| {len(latencies):>8,} | {len(errors):>6} | {len(latencies) / wall:>10.1f} "
        f"| {timing.p50:>6.1f} | {timing.p95:>6.1f} | {met:<30} |"
    )
    if errors:
        print("errors (first 5):", errors[:5])
    print(machine())


# --- What one cache hit costs the server: --hit-cost ---------------------------------------
#
# One API process, sequential calls (no concurrency), the CPU time the process tree used
# per call (from /proc, Linux only), beside the wall time the client saw.


def _tree_cpu_seconds(pid: int) -> float:
    import subprocess

    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    ticks = 0
    for each in [pid, *map(int, children.stdout.split())]:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def run_hit_cost(args: argparse.Namespace) -> None:
    calls = max(args.calls, 200)
    print(
        f"Cache hits: one API process, {calls} sequential calls per report (local year), "
        f"{args.load_rows:,} rows per table"
    )
    print("| report                  | server CPU ms/call | wall ms/call | response bytes |")
    print("|-------------------------|-------------------:|-------------:|---------------:|")
    with served(args, 1) as (base_url, token, pid), httpx.Client(base_url=base_url) as http:
        headers = {"Authorization": f"Bearer {token}"}
        for report in registry.all_reports():
            path = f"/v1/reports/summary/{report.path}"
            for _ in range(5):  # computed once, then hits
                http.get(path, params=WINDOWS["local year"], headers=headers).raise_for_status()
            cpu, started = _tree_cpu_seconds(pid), time.perf_counter()
            for _ in range(calls):
                response = http.get(path, params=WINDOWS["local year"], headers=headers)
            wall = (time.perf_counter() - started) / calls * 1000
            used = (_tree_cpu_seconds(pid) - cpu) / calls * 1000
            print(
                f"| {report.report_type:<23} | {used:>18.2f} | {wall:>12.2f} "
                f"| {len(response.content):>14,} |"
            )
    print(machine())


if __name__ == "__main__":
    main()
