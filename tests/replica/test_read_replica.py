"""Summaries and export COPY read a real streaming replica, exactly as of ``dataAsOf``.

WAL replay is paused (``pg_wal_replay_pause()``) to hold the replica at a known instant:
a payment committed on the primary meanwhile is not in its figures, and ``dataAsOf`` is
the last replayed commit time; after resuming, it is. A lagging or stopped replica is
passed over for the primary, or refused with 503, by ``PIVOTAL_READ_FALLBACK``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from pivotal_reporting.app import create_app
from pivotal_reporting.config import Settings
from pivotal_reporting.db import Database, read_snapshot_of, sqlalchemy_url
from pivotal_reporting.exports.writers import count_rows, export_snapshot
from pivotal_reporting.replica import ReplicaPolicy
from pivotal_reporting.reports.base import ExportQuery, fetch_one
from tests.exports.conftest import create_job, csv_rows, download, wait_for_job
from tests.factories import Tenant, create_customer, create_payment, create_tenant
from tests.replica.conftest import ReplicatedCluster
from tests.server import QUIET_ROLLUP_CRON, TEST_JWT_SECRET, ServerThread, free_port

pytestmark = pytest.mark.slow

PATH = "/v1/reports/summary/payments-received"
WINDOW = {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2025-01-01T00:00:00Z"}
AMOUNTS = [Decimal("120.50"), Decimal("980.00"), Decimal("4500.25"), Decimal("13.07")]
LATE_AMOUNT = Decimal("777.77")
WORKER_CLI = str(Path(sys.executable).parent / "pivotal-reporting")


@pytest.fixture(scope="module")
def owner(cluster: ReplicatedCluster) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(cluster.primary_url))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def base_settings(cluster: ReplicatedCluster, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        env="dev",
        database_url=cluster.primary_url,
        read_database_url=cluster.replica_url,
        read_max_lag_seconds=300,
        read_fallback="primary",
        data_dir=tmp_path_factory.mktemp("replica-data"),
        jwt_secret=TEST_JWT_SECRET,
        worker_in_process=False,
        rollup_cron=QUIET_ROLLUP_CRON,
        rate_limit_per_minute=1_000_000,
    )


@pytest.fixture
def tenant(owner: Engine, base_settings: Settings, cluster: ReplicatedCluster) -> Tenant:
    """An organization with ``AMOUNTS`` paid in 2024, replayed on the replica."""
    with Session(owner, expire_on_commit=False) as db:
        tenant = create_tenant(db, base_settings)
        customer = create_customer(db, org=tenant.org)
        for amount in AMOUNTS:
            create_payment(db, org=tenant.org, customer=customer, amount=amount)
        other = create_tenant(db, base_settings)  # never in our figures
        create_payment(db, org=other.org, amount=Decimal("99999.99"))
    cluster.wait_replayed()
    return tenant


@contextmanager
def api(settings: Settings, **overrides: Any) -> Iterator[httpx.Client]:
    custom = settings.model_copy(update=overrides)
    with (
        ServerThread(create_app(custom)) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as client,
    ):
        yield client


def summary(client: httpx.Client, tenant: Tenant) -> httpx.Response:
    return client.get(PATH, params=WINDOW, headers=tenant.headers(tenant.viewer))


def figures(body: dict[str, Any]) -> tuple[int, Decimal]:
    return body["summary"]["totalPayments"], Decimal(str(body["summary"]["totalAmount"]))


def reads(server: str) -> float:
    return REGISTRY.get_sample_value("pivotal_read_snapshots_total", {"server": server}) or 0.0


def commit_late_payment(owner: Engine, tenant: Tenant) -> datetime:
    """Insert one more payment on the primary; return an instant before its commit."""
    with Session(owner, expire_on_commit=False) as db:
        before_commit: datetime = db.execute(text("SELECT clock_timestamp()")).scalar_one()
        create_payment(db, org=tenant.org, amount=LATE_AMOUNT)
    return before_commit


def as_of(body: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(body["dataAsOf"])


@contextmanager
def replay_paused(cluster: ReplicatedCluster) -> Iterator[datetime]:
    """Hold the replica still; yield the commit time of the last transaction it replayed."""
    cluster.wait_replayed()
    cluster.pause_replay()
    try:
        replayed_at = cluster.on_replica("SELECT pg_last_xact_replay_timestamp()")
        assert isinstance(replayed_at, datetime)
        yield replayed_at
    finally:
        cluster.resume_replay()
        cluster.wait_replayed()


def test_snapshot_reads_run_on_the_standby_within_the_tenant_scope(
    cluster: ReplicatedCluster, tenant: Tenant
) -> None:
    async def probe() -> None:
        policy = ReplicaPolicy(cluster.replica_url, max_lag_seconds=300, fallback="unavailable")
        database = Database.connect(cluster.primary_url, pool_size=2, replica=policy)
        sql = (
            "SELECT pg_is_in_recovery() AS standby, current_user AS role, "
            "pg_last_xact_replay_timestamp() AS replayed_at, "
            "(SELECT count(*) FROM payments) AS visible"
        )
        try:
            async with database.tenant_session(
                tenant.org.id, snapshot=True, replica=True
            ) as session:
                on_replica = await fetch_one(session, sql, {})
                read = read_snapshot_of(session)
            async with database.tenant_session(tenant.org.id, snapshot=True) as session:
                on_primary = await fetch_one(session, sql, {})
            # COPY's connection and the row count beside it share a snapshot on the replica.
            query = ExportQuery(sql="SELECT id FROM payments", columns=("id",))
            async with database.tenant_connection(tenant.org.id, replica=True) as conn:
                exported = await export_snapshot(conn)
                async with database.tenant_connection(
                    tenant.org.id, exported.snapshot_id, replica=exported.read.on_replica
                ) as second:
                    standby = await (await second.execute("SELECT pg_is_in_recovery()")).fetchone()
                    counted = await count_rows(second, query)
                async with database.tenant_session(
                    tenant.org.id,
                    snapshot=True,
                    snapshot_id=exported.snapshot_id,
                    replica=exported.read.on_replica,
                ) as session:  # e.g. an export's figures sheet, in the rows' snapshot
                    imported = await fetch_one(session, sql, {})
        finally:
            await database.dispose()
        assert on_replica is not None
        assert on_primary is not None
        assert on_replica["standby"] is True
        assert on_primary["standby"] is False
        assert on_replica["role"] == "pivotal_tenant"  # row-level security applies there too
        assert on_replica["visible"] == len(AMOUNTS)  # the other organization's row is hidden
        assert read.in_recovery
        assert read.on_replica
        assert read.data_as_of == on_replica["replayed_at"]  # nothing replayed meanwhile
        assert exported.read.in_recovery
        assert standby == (True,)
        assert counted == len(AMOUNTS)
        assert imported is not None
        assert imported["standby"] is True
        assert imported["role"] == "pivotal_tenant"
        assert imported["visible"] == len(AMOUNTS)

    asyncio.run(probe())


def test_summary_is_exact_as_of_the_replayed_instant_and_moves_on_after_resume(
    cluster: ReplicatedCluster, tenant: Tenant, owner: Engine, base_settings: Settings
) -> None:
    with api(base_settings) as client:
        with replay_paused(cluster) as replayed_at:
            before_commit = commit_late_payment(owner, tenant)
            cluster.wait_received()  # the replica has the payment's WAL, not yet applied
            replica_reads = reads("replica")
            response = summary(client, tenant)
            assert response.status_code == 200, response.text
            body = response.json()
            assert figures(body) == (len(AMOUNTS), sum(AMOUNTS))
            assert as_of(body) == replayed_at
            assert as_of(body) < before_commit
            assert reads("replica") == replica_reads + 1
        response = summary(client, tenant)
        assert response.status_code == 200, response.text
        body = response.json()
        assert figures(body) == (len(AMOUNTS) + 1, sum(AMOUNTS) + LATE_AMOUNT)
        assert as_of(body) > before_commit


def test_export_copies_from_the_replica_as_of_its_replayed_instant(
    cluster: ReplicatedCluster, tenant: Tenant, owner: Engine, base_settings: Settings
) -> None:
    with api(base_settings) as client, replay_paused(cluster) as replayed_at:
        commit_late_payment(owner, tenant)
        cluster.wait_received()
        job_id = create_job(client, tenant, fmt="csv")
        worker = start_worker(base_settings)
        try:
            job = wait_for_job(client, tenant, job_id, timeout=90)["job"]
        finally:
            stop(worker)
        assert job["status"] == "completed", job
        assert datetime.fromisoformat(job["dataAsOf"]) == replayed_at
        assert job["totalRows"] == len(AMOUNTS)
        header, rows = csv_rows(download(client, tenant, job_id).content)
        amounts = sorted(Decimal(row[header.index("amount")]) for row in rows)
        assert amounts == sorted(AMOUNTS)  # the late payment is not in the file


def test_a_lagging_replica_is_passed_over_for_the_primary_or_refused(
    cluster: ReplicatedCluster, tenant: Tenant, owner: Engine, base_settings: Settings
) -> None:
    with (
        api(base_settings, read_max_lag_seconds=1, read_fallback="primary") as fallback,
        api(base_settings, read_max_lag_seconds=1, read_fallback="unavailable") as strict,
        replay_paused(cluster) as replayed_at,
    ):
        before_commit = commit_late_payment(owner, tenant)
        cluster.wait_received()
        while (datetime.now(UTC) - replayed_at).total_seconds() < 1.5:
            time.sleep(0.1)
        primary_reads = reads("primary")
        response = summary(fallback, tenant)
        assert response.status_code == 200, response.text
        body = response.json()
        assert figures(body) == (len(AMOUNTS) + 1, sum(AMOUNTS) + LATE_AMOUNT)
        assert as_of(body) > before_commit  # the primary's snapshot, taken after the commit
        assert reads("primary") == primary_reads + 1

        refused = summary(strict, tenant)
        assert refused.status_code == 503
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) > 0
        assert "replica" in refused.json()["detail"]


def test_an_export_passes_a_lagging_replica_over_for_the_primary_as_one_snapshot(
    cluster: ReplicatedCluster, tenant: Tenant, owner: Engine, base_settings: Settings
) -> None:
    """The COPY falls back to the primary, and its row count follows it there."""
    settings = base_settings.model_copy(update={"read_max_lag_seconds": 1.0})
    with api(settings) as client, replay_paused(cluster) as replayed_at:
        before_commit = commit_late_payment(owner, tenant)
        cluster.wait_received()
        while (datetime.now(UTC) - replayed_at).total_seconds() < 1.5:
            time.sleep(0.1)
        job_id = create_job(client, tenant, fmt="csv")
        worker = start_worker(settings)
        try:
            job = wait_for_job(client, tenant, job_id, timeout=90)["job"]
        finally:
            stop(worker)
        assert job["status"] == "completed", job
        assert datetime.fromisoformat(job["dataAsOf"]) > before_commit
        assert job["totalRows"] == len(AMOUNTS) + 1
        header, rows = csv_rows(download(client, tenant, job_id).content)
        amounts = sorted(Decimal(row[header.index("amount")]) for row in rows)
        assert amounts == sorted([*AMOUNTS, LATE_AMOUNT])


def test_a_stopped_replica_is_passed_over_for_the_primary_or_refused(
    cluster: ReplicatedCluster, tenant: Tenant, base_settings: Settings
) -> None:
    with (
        api(base_settings, read_fallback="primary") as fallback,
        api(base_settings, read_fallback="unavailable") as strict,
    ):
        cluster.stop_replica()
        try:
            response = summary(fallback, tenant)
            assert response.status_code == 200, response.text
            assert figures(response.json()) == (len(AMOUNTS), sum(AMOUNTS))
            refused = summary(strict, tenant)
            assert refused.status_code == 503
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert "retry-after" in refused.headers
        finally:
            cluster.start_replica()
        cluster.wait_replayed()
        replica_reads = reads("replica")
        response = summary(strict, tenant)  # back: the replica answers again
        assert response.status_code == 200, response.text
        assert reads("replica") == replica_reads + 1


def test_a_strict_export_waits_for_a_stopped_replica_and_then_reads_it(
    cluster: ReplicatedCluster, tenant: Tenant, base_settings: Settings
) -> None:
    """PIVOTAL_READ_FALLBACK=unavailable: the job is retried, never read on the primary."""
    settings = base_settings.model_copy(update={"read_fallback": "unavailable"})
    metrics_port = free_port()
    with api(settings) as client:
        cluster.stop_replica()
        worker = start_worker(settings, metrics_port=metrics_port)
        try:
            try:
                job_id = create_job(client, tenant, fmt="csv")
                deadline = time.monotonic() + 60
                while True:  # the first attempt met the stopped replica and handed it back
                    job = wait_for_job(client, tenant, job_id, statuses=("pending",))["job"]
                    if job["attempts"] >= 1:
                        break
                    assert time.monotonic() < deadline, job
                    time.sleep(0.2)
                assert job["dataAsOf"] is None
            finally:
                cluster.start_replica()
            cluster.wait_replayed()
            job = wait_for_job(client, tenant, job_id, timeout=90)["job"]
            exposed = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        finally:
            stop(worker)
    assert job["status"] == "completed", job
    assert job["attempts"] >= 2
    assert job["totalRows"] == len(AMOUNTS)
    assert sample(exposed, 'pivotal_read_replica_unusable_total{reason="unreachable"}') >= 1
    assert sample(exposed, 'pivotal_read_snapshots_total{server="replica"}') >= 1
    assert sample(exposed, 'pivotal_read_snapshots_total{server="primary"}') == 0


def sample(exposition: str, series: str) -> float:
    """The value of one series in a Prometheus text exposition (0 if absent)."""
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def start_worker(settings: Settings, *, metrics_port: int | None = None) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "PIVOTAL_DATABASE_URL": str(settings.database_url),
        "PIVOTAL_READ_DATABASE_URL": str(settings.read_database_url),
        "PIVOTAL_READ_MAX_LAG_SECONDS": str(settings.read_max_lag_seconds),
        "PIVOTAL_READ_FALLBACK": settings.read_fallback,
        "PIVOTAL_DATA_DIR": str(settings.data_dir),
        "PIVOTAL_JWT_SECRET": TEST_JWT_SECRET,
        "PIVOTAL_ROLLUP_CRON": QUIET_ROLLUP_CRON,
    }
    log = open(settings.data_dir / "worker.log", "ab")  # noqa: SIM115 - owned by the process
    args = [WORKER_CLI, "worker", "--name", "replica-test", "--concurrency", "1"]
    if metrics_port is not None:
        args += ["--metrics-port", str(metrics_port)]
    return subprocess.Popen(
        args,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
