"""Dashboard page load: time from navigation to the report's figures shown, in Chromium.

    python bench/dashboard.py                     # 1,000,000 rows per table
    python bench/dashboard.py --rows 100000 --runs 5

Uses the same databases as ``bench/summaries.py`` (``pivotal_bench_<rows>`` on the
embedded PostgreSQL under ``.data/bench-pg``, or ``--admin-url``; loaded once by the demo
loader, one organization). The API runs in-process; Debian's Chromium (Playwright) signs
in with a one-time link, then opens each report page with the last twelve months of the
demo data (the comparison with the previous twelve months on, as a user sees it).
Measured in the browser: ``performance.mark("figures-shown")`` (set by the page when its
cards and charts are in the DOM) relative to the navigation's start — HTML, scripts,
``/v1/me``, both summaries and rendering. The first load of each page warms up and is
not counted. Also prints the shipped JS+CSS size, gzipped.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
from datetime import timedelta

from playwright.sync_api import sync_playwright

from bench_database import REPO, bench_admin_url, prepared_database
from pivotal_reporting.auth.sessions import issue_signin_link_blocking
from pivotal_reporting.config import Settings
from pivotal_reporting.demo import DEMO_USER_ID
from pivotal_reporting.reports import registry
from summaries import api_server

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The demo data's last twelve months (bench/summaries.py's "UTC year"), as a custom window.
WINDOW = "?preset=custom&from=2025-11-01&to=2026-10-31"
STATIC = REPO / "src" / "pivotal_reporting" / "web" / "static"


def bundle_size() -> tuple[int, int]:
    files = sorted(p for p in STATIC.rglob("*") if p.suffix in {".js", ".css"})
    raw = b"".join(p.read_bytes() for p in files)
    return len(raw), sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="Counted loads per page.")
    parser.add_argument("--admin-url", default=None)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    raw, gzipped = bundle_size()
    print(f"shipped JS+CSS: {raw:,} bytes, {gzipped:,} bytes gzipped (per file, -9)")
    url = prepared_database(bench_admin_url(args.admin_url), args.rows, args.seed)
    settings = Settings(
        env="dev",
        database_url=url,
        data_dir=REPO / ".data" / "bench-data",
        jwt_secret="bench-secret-" + "x" * 40,
        rate_limit_per_minute=1_000_000,
        worker_in_process=False,
    )
    print(f"{args.rows:,} rows per table; ms from navigation to figures shown")
    print("| report | p50 | max | runs |\n|---|---|---|---|")
    code = issue_signin_link_blocking(url, DEMO_USER_ID, session_lifetime=timedelta(hours=1))
    with api_server(settings) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{base_url}/signin?code={code}")
        page.wait_for_selector("#topbar:not([hidden])")
        for report in registry.all_reports():
            samples = []
            for run in range(args.runs + 1):
                page.goto(f"{base_url}/reports/{report.path}{WINDOW}")
                page.wait_for_selector(".results[aria-busy='false'] .cards", timeout=120_000)
                shown = page.evaluate("performance.getEntriesByName('figures-shown')[0].startTime")
                if run:  # the first load warms caches
                    samples.append(float(shown))
            print(
                f"| {report.report_type} | {statistics.median(samples):.0f} | "
                f"{max(samples):.0f} | {len(samples)} |",
                flush=True,
            )
        browser.close()


if __name__ == "__main__":
    main()
