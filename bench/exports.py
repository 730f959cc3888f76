"""Export speed and memory beside the spec's tables; plus a concurrent-users load mode.

    python bench/exports.py                      # 1k, 10k, 100k, 1M rows; every format
    python bench/exports.py --rows 100000        # one size
    python bench/exports.py --rows 100000 --format csv --format xlsx   # some formats
    python bench/exports.py --load               # 10/25/50/100 users creating 50/100/200/400 jobs

Each size uses the database ``pivotal_bench_<rows>`` on the embedded PostgreSQL under
``.data/bench-pg`` (or ``--admin-url``), loaded once by the demo loader (one organization,
``rows`` time entries, quotes, invoices and payments; the same databases as
``bench/summaries.py``). The export is ``time_approvals`` without filters, i.e. exactly
``rows`` rows of 15 columns. The API (``pivotal-reporting serve``) and the worker
(``pivotal-reporting worker``) run as separate processes; the worker's RSS is sampled
with psutil every 5 ms. The reference is the same row query through ``psql \\copy`` (CSV
and JSON); every format is also compared with the CSV export of the same rows ("vs CSV").
Rate limits and the per-organization export cap are raised for the bench (they are
policy, not capacity). Timings never gate tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import psycopg

from bench_database import bench_admin_url, prepared_database
from pivotal_reporting.auth.tokens import mint_token
from pivotal_reporting.config import Settings
from pivotal_reporting.demo import DEMO_ORG_ID, DEMO_USER_ID
from pivotal_reporting.reports.base import ReportContext
from pivotal_reporting.reports.registry import get_report

REPO = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "pivotal-reporting")
SECRET = "bench-secret-" + "x" * 40
REPORT = "time_approvals"
# The spec's "Export Performance" table: (rows, format) -> (processing time, memory).
SPEC = {
    (1_000, "csv"): ("15 s", "50 MB"),
    (1_000, "json"): ("12 s", "45 MB"),
    (10_000, "csv"): ("95 s", "200 MB"),
    (10_000, "json"): ("85 s", "180 MB"),
    (100_000, "csv"): ("8.5 min", "1.2 GB"),
    (100_000, "json"): ("7.2 min", "1.0 GB"),
}
# The spec's "Concurrent Load Testing" table: users -> (jobs, success rate, average time).
PSQL_HEADER = "psql \\copy"
SPEC_LOAD = {
    10: (50, "100%", "2.1 min"),
    25: (100, "98%", "2.8 min"),
    50: (200, "95%", "3.5 min"),
    100: (400, "90%", "4.2 min"),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stack:
    """The API and worker processes of one bench run."""

    url: str
    base_url: str
    env: dict[str, str]
    api: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)


@contextmanager
def running_stack(url: str, *, workers: int, concurrency: int) -> Iterator[Stack]:
    data_dir = Path(tempfile.mkdtemp(prefix="pivotal-bench-exports-"))
    port = _free_port()
    env = os.environ | {
        "PIVOTAL_DATABASE_URL": url,
        "PIVOTAL_DATA_DIR": str(data_dir),
        "PIVOTAL_JWT_SECRET": SECRET,
        "PIVOTAL_WORKER_IN_PROCESS": "false",
        "PIVOTAL_API_WORKERS": os.environ.get("BENCH_API_WORKERS", "1"),
        "PIVOTAL_RATE_LIMIT_PER_MINUTE": "1000000",
        "PIVOTAL_MAX_RUNNING_EXPORTS_PER_ORG": "100000",
        "PIVOTAL_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    }
    log = open(os.environ["BENCH_LOG"], "ab") if os.environ.get("BENCH_LOG") else subprocess.DEVNULL  # noqa: SIM115
    quiet = {"stdout": log, "stderr": log}
    api = subprocess.Popen([CLI, "serve", "--port", str(port)], env=env, **quiet)  # type: ignore[call-overload]
    stack = Stack(url, f"http://127.0.0.1:{port}", env, api)
    try:
        for i in range(workers):
            args = [CLI, "worker", "--name", f"bench-{i}", "--concurrency", str(concurrency)]
            stack.workers.append(subprocess.Popen(args, env=env, **quiet))  # type: ignore[call-overload]
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{stack.base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("API did not start")
            time.sleep(0.1)
        time.sleep(1.0)  # the workers register and listen
        yield stack
    finally:
        for process in [*stack.workers, api]:
            process.terminate()
        for process in [*stack.workers, api]:
            process.wait(timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)


class RssSampler:
    """Peak resident set size of one process, sampled every 5 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> RssSampler:
        self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def token_for(url: str, user_id: str) -> str:
    settings = Settings(database_url=url, jwt_secret=SECRET)
    return mint_token(
        settings, user_id=user_id, organization_id=DEMO_ORG_ID, expires_in=timedelta(hours=2)
    )


def time_export(
    client: httpx.Client, headers: dict[str, str], fmt: str, filters: dict[str, str]
) -> tuple[float, dict]:
    """Seconds from POST to ``completed`` (polling every 50 ms), and the job."""
    body = {"reportType": REPORT, "format": fmt, "filters": filters}
    started = time.perf_counter()
    response = client.post("/v1/reports/export", json=body, headers=headers)
    response.raise_for_status()
    job_id = response.json()["jobId"]
    while True:
        job = client.get(f"/v1/reports/export/{job_id}", headers=headers).json()["job"]
        if job["status"] in ("completed", "failed", "cancelled"):
            return time.perf_counter() - started, job
        time.sleep(0.05)  # faster polling would steal the CPU it measures


def psql_reference(url: str, fmt: str, out: Path) -> float:
    """The report's row query through ``psql \\copy`` (as the owner), in seconds."""
    report = get_report(REPORT)
    ctx = ReportContext(DEMO_ORG_ID, DEMO_USER_ID, "UTC", "USD", datetime.now(UTC))
    query = report.export_query(ctx, report.filters_model())
    with psycopg.connect(url) as conn:
        inlined = psycopg.ClientCursor(conn).mogrify(query.sql, query.params).replace("\n", " ")
    if fmt == "json":
        inlined = f"SELECT row_to_json(r) FROM ({inlined}) AS r"
        options = "FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'"
    else:
        options = "FORMAT csv, HEADER true"
    command = f"\\copy ({inlined}) TO '{out}' WITH ({options})"
    started = time.perf_counter()
    subprocess.run(["psql", url, "-X", "-q", "-c", command], check=True)
    return time.perf_counter() - started


def run_table(args: argparse.Namespace) -> None:
    admin = bench_admin_url(args.admin_url)
    results = []
    for rows in args.rows:
        url = prepared_database(admin, rows)
        with (
            running_stack(url, workers=1, concurrency=1) as stack,
            httpx.Client(base_url=stack.base_url, timeout=600) as client,
        ):
            headers = {"Authorization": f"Bearer {token_for(url, DEMO_USER_ID)}"}
            time_export(client, headers, "csv", {})  # warm-up: caches, pools
            idle_rss = psutil.Process(stack.workers[0].pid).memory_info().rss
            for fmt in args.formats:
                with RssSampler(stack.workers[0].pid) as rss:
                    seconds, job = time_export(client, headers, fmt, {})
                if job["status"] != "completed" or job["totalRows"] != rows:
                    raise RuntimeError(f"unexpected export result: {job}")
                reference = float("nan")
                if fmt in ("csv", "json"):
                    with tempfile.TemporaryDirectory() as tmp:
                        reference = psql_reference(url, fmt, Path(tmp) / f"ref.{fmt}")
                results.append(
                    (rows, fmt, seconds, rss.peak, idle_rss, reference, job["fileSizeBytes"])
                )
    print_table(results)


def print_table(results: list[tuple[int, str, float, int, int, float, int]]) -> None:
    print(f"\nExports ({REPORT}, 15 columns), POST -> completed, worker as its own process")
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    head = f"| {'rows':>9} | fmt     | {'POST->done':>10} | {'rows/s':>9} | {'vs CSV':>6} | {'file':>8} | {'worker peak RSS':>15} | {PSQL_HEADER:>10} | {'vs psql':>7} | {'spec time':>9} | {'spec mem':>8} |"
    print(head)
    print("|" + "|".join("-" * (len(part)) for part in head.split("|")[1:-1]) + "|")
    csv_seconds = {rows: seconds for rows, fmt, seconds, *_ in results if fmt == "csv"}
    for rows, fmt, seconds, peak, idle, reference, size in results:
        spec_time, spec_mem = SPEC.get((rows, fmt), ("-", "-"))
        rss = f"{peak / 2**20:.0f} MB (+{(peak - idle) / 2**20:.0f})"
        vs_csv = f"{seconds / csv_seconds[rows]:>5.2f}x" if rows in csv_seconds else "     -"
        psql = "-" if reference != reference else f"{reference:.2f} s"  # NaN: no reference
        vs_psql = "-" if reference != reference else f"{reference / seconds:.2f}x"
        print(
            f"| {rows:>9,} | {fmt:<7} | {seconds:>8.2f} s | {rows / seconds:>9,.0f} | {vs_csv:>6} | {size / 2**20:>5.1f} MB | {rss:>15} "
            f"| {psql:>10} | {vs_psql:>7} | {spec_time:>9} | {spec_mem:>8} |"
        )


def load_users(url: str, count: int) -> list[str]:
    """``count`` users of the demo organization holding the demo admin's roles."""
    ids = [f"usr_bench_{i:03d}" for i in range(count)]
    with psycopg.connect(url) as conn:
        conn.execute("SELECT set_config('app.maintenance', 'on', true)")
        for user_id in ids:
            conn.execute(
                "INSERT INTO users (id, organization_id, email, display_name, status) "
                "VALUES (%s, %s, %s, %s, 'active') ON CONFLICT DO NOTHING",
                (user_id, DEMO_ORG_ID, f"{user_id}@bench.test", user_id),
            )
            conn.execute(
                "INSERT INTO user_roles (organization_id, user_id, role_id) "
                "SELECT organization_id, %s, role_id FROM user_roles WHERE user_id = %s ON CONFLICT DO NOTHING",
                (user_id, DEMO_USER_ID),
            )
    return ids


async def one_user(
    http: httpx.AsyncClient, token: str, jobs: int, filters: dict[str, str]
) -> list[float | None]:
    """Create ``jobs`` exports one after another; completion seconds, ``None`` for a failure."""
    headers = {"Authorization": f"Bearer {token}"}
    results: list[float | None] = []
    for i in range(jobs):
        started = time.perf_counter()
        body = {"reportType": REPORT, "format": ("csv", "json")[i % 2], "filters": filters}
        try:
            response = await http.post("/v1/reports/export", json=body, headers=headers)
        except httpx.TransportError as exc:  # a failure, never retried (no duplicates)
            FAILURES.append(f"create: {type(exc).__name__} {exc}")
            results.append(None)
            continue
        if response.status_code != 202:
            FAILURES.append(f"create: HTTP {response.status_code} {response.text[:200]}")
            results.append(None)
            continue
        job_id = response.json()["jobId"]
        while True:
            await asyncio.sleep(0.25)
            try:
                polled = await http.get(f"/v1/reports/export/{job_id}", headers=headers)
            except httpx.TransportError:
                # The server closed an idle keep-alive connection as the poll was sent
                # on it (uvicorn's 5 s keep-alive, a slow client loop): poll again.
                continue
            job = polled.json()["job"]
            if job["status"] in ("completed", "failed", "cancelled"):
                break
        if job["status"] != "completed":
            FAILURES.append(f"job {job_id}: {job['status']} {job.get('error')}")
        results.append(time.perf_counter() - started if job["status"] == "completed" else None)
    return results


# Why each failed job failed (printed under the load table).
FAILURES: list[str] = []


async def load_level(
    base_url: str, tokens: list[str], total_jobs: int, filters: dict[str, str]
) -> tuple[list[float | None], float]:
    per_user = [
        total_jobs // len(tokens) + (1 if i < total_jobs % len(tokens) else 0)
        for i in range(len(tokens))
    ]
    limits = httpx.Limits(max_connections=len(tokens) + 10)
    async with httpx.AsyncClient(base_url=base_url, timeout=300, limits=limits) as http:
        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(one_user(http, t, n, filters) for t, n in zip(tokens, per_user, strict=True))
        )
        return [r for user in outcomes for r in user], time.perf_counter() - started


def run_load(args: argparse.Namespace) -> None:
    url = prepared_database(bench_admin_url(args.admin_url), args.load_rows)
    users = load_users(url, max(SPEC_LOAD))
    tokens = [token_for(url, user) for user in users]
    filters = {
        "fromDate": "2026-01-01T00:00:00Z",
        "toDate": "2026-02-01T00:00:00Z",
    }  # one month of entries
    rows_per_job = None
    lines = []
    with running_stack(url, workers=args.workers, concurrency=args.concurrency) as stack:
        with httpx.Client(base_url=stack.base_url, timeout=600) as client:
            _, job = time_export(client, {"Authorization": f"Bearer {tokens[0]}"}, "csv", filters)
            rows_per_job = job["totalRows"]
        levels = {u: SPEC_LOAD[u] for u in (args.levels or SPEC_LOAD)}
        for users_count, (jobs, spec_rate, spec_time) in levels.items():
            outcomes, wall = asyncio.run(
                load_level(stack.base_url, tokens[:users_count], jobs, filters)
            )
            done = [t for t in outcomes if t is not None]
            rate = 100 * len(done) / len(outcomes)
            p95 = statistics.quantiles(done, n=20)[18] if len(done) > 1 else float("nan")
            lines.append(
                f"| {users_count:>5} | {jobs:>4} | {rate:>6.1f}% | {statistics.mean(done):>7.2f} s | {p95:>7.2f} s "
                f"| {wall:>7.1f} s | {spec_rate:>4} | {spec_time:>7} |"
            )
    print(
        f"\nLoad: {args.workers} worker processes x concurrency {args.concurrency}; each job {REPORT} "
        f"one month = {rows_per_job:,} rows, CSV/JSON alternating; each user runs its jobs one after another"
    )
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs; data: {args.load_rows:,} rows per table"
    )
    print(
        "| users | jobs | success | avg done | p95 done |    wall | spec success | spec avg |".replace(
            "spec success", "spec"
        ).replace("spec avg", "spec avg")
    )
    print("|-------|------|---------|----------|----------|---------|------|---------|")
    for line in lines:
        print(line)
    for failure in FAILURES:
        print(f"failed: {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, action="append", help="rows per export (repeatable)")
    parser.add_argument(
        "--load", action="store_true", help="run the concurrent-users load mode instead"
    )
    parser.add_argument(
        "--load-rows", type=int, default=10_000, help="demo scale for the load mode"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes in load mode")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="jobs per worker process in load mode"
    )
    parser.add_argument(
        "--admin-url", help="a PostgreSQL 15+ admin URL instead of the embedded server"
    )
    parser.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=("csv", "json", "xlsx", "pdf", "parquet"),
        help="formats to time (repeatable; default all five)",
    )
    parser.add_argument(
        "--level",
        dest="levels",
        type=int,
        action="append",
        choices=sorted(SPEC_LOAD),
        help="load mode: only these user counts (repeatable; default: all four)",
    )
    parser.add_argument(
        "--vs-copy",
        action="store_true",
        help="time each report's export against a raw ordered COPY of its base table",
    )
    parser.add_argument(
        "--report",
        dest="reports",
        action="append",
        choices=sorted(BASE_TABLES),
        help="reports for --vs-copy (repeatable; default: time_approvals, payments_received)",
    )
    args = parser.parse_args()
    args.rows = args.rows or [1_000, 10_000, 100_000, 1_000_000]
    args.formats = args.formats or ["csv", "json", "xlsx", "pdf", "parquet"]
    if args.vs_copy:
        args.reports = args.reports or sorted(BASE_TABLES, reverse=True)
        run_vs_copy(args)
    elif args.load:
        run_load(args)
    else:
        run_table(args)


# --- Distance to the physical limit (issue 14): --vs-copy ------------------------------
#
# The reference is the cheapest way PostgreSQL can write the same rows to a file: a raw
# ``COPY`` of the report's base table, in the export's order, through ``psql \copy`` as
# the owner (no joins, no formatting, no guard, no row-level security), measured in the
# same run right after each export.

# report -> (base table, the export's order, the timestamp the window filters on)
BASE_TABLES = {
    "time_approvals": ("time_entries", "work_date, id"),
    "payments_received": ("payments", "paid_at, id"),
}
# Targets of issue 14: POST -> completed within this multiple of the raw COPY.
COPY_TARGETS = {"csv": 1.5, "json": 2.0}


def raw_copy_reference(url: str, report_type: str, out: Path) -> float:
    """Seconds for ``\\copy`` of the base table's organization rows, ordered, as CSV."""
    table, order = BASE_TABLES[report_type]
    query = f"SELECT * FROM {table} WHERE organization_id = '{DEMO_ORG_ID}' ORDER BY {order}"
    command = f"\\copy ({query}) TO '{out}' WITH (FORMAT csv, HEADER true)"
    started = time.perf_counter()
    subprocess.run(["psql", url, "-X", "-q", "-c", command], check=True)
    return time.perf_counter() - started


def time_report_export(
    client: httpx.Client, headers: dict[str, str], report_type: str, fmt: str
) -> tuple[float, dict]:
    body = {"reportType": report_type, "format": fmt, "filters": {}}
    started = time.perf_counter()
    response = client.post("/v1/reports/export", json=body, headers=headers)
    response.raise_for_status()
    job_id = response.json()["jobId"]
    while True:
        job = client.get(f"/v1/reports/export/{job_id}", headers=headers).json()["job"]
        if job["status"] in ("completed", "failed", "cancelled"):
            return time.perf_counter() - started, job
        time.sleep(0.05)


def run_vs_copy(args: argparse.Namespace) -> None:
    admin = bench_admin_url(args.admin_url)
    lines = []
    for rows in args.rows:
        url = prepared_database(admin, rows)
        with (
            running_stack(url, workers=1, concurrency=1) as stack,
            httpx.Client(base_url=stack.base_url, timeout=600) as client,
        ):
            headers = {"Authorization": f"Bearer {token_for(url, DEMO_USER_ID)}"}
            time_report_export(client, headers, "time_approvals", "csv")  # warm-up
            worker = stack.workers[0].pid
            idle = psutil.Process(worker).memory_info().rss
            for report_type in args.reports:
                for fmt in ("csv", "json"):
                    with RssSampler(worker) as rss:
                        seconds, job = time_report_export(client, headers, report_type, fmt)
                    if job["status"] != "completed":
                        raise RuntimeError(f"unexpected export result: {job}")
                    with tempfile.TemporaryDirectory() as tmp:
                        raw = raw_copy_reference(url, report_type, Path(tmp) / "raw.csv")
                    ratio = seconds / raw
                    target = COPY_TARGETS[fmt]
                    verdict = "met" if ratio <= target else "not met"
                    if job["totalRows"] <= 100_000:
                        verdict += ", " + ("met" if seconds <= 0.5 else "not met") + " (0.5 s)"
                    lines.append(
                        f"| {report_type:<17} | {rows:>9,} | {job['totalRows']:>9,} | {fmt:<4} "
                        f"| {seconds:>7.2f} s | {raw:>7.2f} s | {ratio:>5.2f}x | <= {target}x "
                        f"| {rss.peak / 2**20:>4.0f} MB (+{(rss.peak - idle) / 2**20:.0f}) "
                        f"| {verdict:<21} |"
                    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print("\nExports, POST -> completed, against a raw ordered COPY of the base table (same run)")
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs; load average at the end {load}")
    print(
        "| report            | rows/table | file rows | fmt  | POST->done | raw COPY  | ratio "
        "| target  | worker peak RSS | verdict               |"
    )
    print(
        "|-------------------|-----------:|----------:|------|-----------:|----------:|------:"
        "|---------|-----------------|-----------------------|"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
