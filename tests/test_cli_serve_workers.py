"""`serve --workers 2`: two API processes on one port, one export worker, one /metrics.

Each process writes its samples to its own prometheus_client file in the run
directory ``serve`` creates (under ``$TMPDIR``, here the test's own directory), so the
file of each process shows that it answered requests, and ``/metrics`` (from either
process) must report their sum.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.server import free_port
from tests.test_cli_serve import fresh_database  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow

TOKEN = "scrape-token-for-the-workers-test"
REQUESTS = "pivotal_http_requests_total"


def _ready_requests(files: list[Path]) -> float:
    """``/health/ready`` requests counted in these metrics files."""
    total = 0.0
    for metric in MultiProcessCollector.merge([str(f) for f in files]):  # type: ignore[no-untyped-call]
        for sample in metric.samples:
            if sample.name == REQUESTS and sample.labels.get("route") == "/health/ready":
                total += sample.value
    return total


def _scraped_ready_requests(port: int) -> float:
    response = httpx.get(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200, response.text
    total = 0.0
    for line in response.text.splitlines():
        if line.startswith(REQUESTS + "{") and 'route="/health/ready"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_two_processes_answer_and_metrics_add_up(tmp_path: Path, fresh_database: str) -> None:  # noqa: F811
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIVOTAL_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env |= {
        "PIVOTAL_DATABASE_URL": fresh_database,
        "PIVOTAL_DATA_DIR": str(tmp_path / "data"),
        "PIVOTAL_METRICS_TOKEN": TOKEN,
        "TMPDIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "pivotal_reporting", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        (metrics_dir,) = tmp_path.glob("pivotal-serve-*/metrics")

        # Concurrent requests on fresh connections until both processes have answered.
        def ready(_: int) -> int:
            return httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=30).status_code

        per_process: dict[str, float] = {}
        with ThreadPoolExecutor(max_workers=16) as pool:
            for _ in range(20):
                assert set(pool.map(ready, range(32))) == {200}
                per_process = {
                    f.name: _ready_requests([f]) for f in metrics_dir.glob("counter_*.db")
                }
                if len([n for n in per_process.values() if n > 0]) >= 2:
                    break
        assert len([n for n in per_process.values() if n > 0]) == 2, per_process

        # A request can be counted just after its client gave up or got its answer (a
        # start-up probe that timed out, say): wait until the files stop changing.
        files = list(metrics_dir.glob("counter_*.db"))
        files_total = _ready_requests(files)
        for _ in range(20):
            time.sleep(0.5)
            files_total, previous = _ready_requests(files), files_total
            if files_total == previous:
                break

        # /metrics aggregates every process: the sum of the files, whoever answers.
        for _ in range(4):
            scraped = _scraped_ready_requests(port)
            # The scrape itself is not a /health/ready request, so nothing moves.
            assert scraped == _ready_requests(files) == files_total
        assert files_total == sum(_ready_requests([f]) for f in files)

        # Exactly one of them runs the in-process export worker.
        with psycopg.connect(fresh_database) as conn:
            deadline = time.monotonic() + 60
            while True:
                row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
                assert row is not None
                if row[0] >= 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert row[0] == 1
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()
    assert not list(tmp_path.glob("pivotal-serve-*")), "the run directory is removed"
