"""Many processes, proven: 2 API processes and 3 workers on one PostgreSQL, Redis and S3.

Real processes (``pivotal-reporting serve`` with no in-process worker, ``pivotal-reporting
worker``), sharing a database of their own on the test server, Redis for the rate limits
and the suite's S3-protocol server for the export files. 100 users of 4 organizations
request 400 exports at once, alternating between the two API processes and honouring
``Retry-After`` when their organization's cap of running exports answers 429. Mid-run one
worker is SIGKILLed; the stalled-job sweeper of the others re-queues its jobs.

At the end, checked independently of the code under test:

* every request made exactly one export job, completed once (one queue job that
  succeeded once, one ``export_job_created`` and one ``export_job_completed`` audit event),
  with the rows the factory inserted in the window;
* every S3 object's SHA-256, computed here from its bytes, equals the job's checksum and
  the object's metadata; no multipart upload is left;
* one user's budget of requests is shared by both API processes (Redis);
* ``pivotal-reporting audit verify`` exits 0.

A table of the run is printed (jobs, success, wall time, p95 POST to completed, 429s).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
import secrets
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from pivotal_reporting import schema
from pivotal_reporting.auth.principal import EXPORT_REPORTS, VIEW_REPORTS
from pivotal_reporting.auth.tokens import mint_token
from pivotal_reporting.config import Settings
from pivotal_reporting.db import sqlalchemy_url, with_database
from pivotal_reporting.models import Organization as OrganizationRow
from tests.factories import (
    User,
    create_customer,
    create_organization,
    create_payment,
    create_user,
)
from tests.processes import CLI, ManagedProcess, ProcessGroup
from tests.s3_server import S3Server
from tests.server import (
    METRICS_HEADERS,
    QUIET_ROLLUP_CRON,
    TEST_JWT_SECRET,
    TEST_METRICS_TOKEN,
)

pytestmark = pytest.mark.slow

ORGS = 4
USERS = 100
EXPORTS_PER_USER = 4
# Below the 25 users of an organization asking at once: some of them are refused with 429.
MAX_RUNNING_PER_ORG = 20
# The main run needs far fewer requests per user; the shared-budget phase exhausts it.
RATE_LIMIT_PER_MINUTE = 120
WORKER_CONCURRENCY = 3
HEARTBEAT_SECONDS = 1.0
STALLED_AFTER_SECONDS = 5.0
POLL_SECONDS = 5.0
RUN_TIMEOUT_SECONDS = 420.0
KILL_AFTER_COMPLETED = 100  # SIGKILL the doomed worker once this many exports are done
REDIS_URL = "redis://127.0.0.1:6379/0"
S3_PREFIX = "exports"
WINDOW_START = datetime(2024, 3, 5, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(days=1)


# ---------------------------------------------------------------------------- the world


@dataclass
class Organization:
    id: str
    users: list[User]
    payment_ids: set[str]  # completed payments in the window: what every export must hold


def _seed(db: Session) -> list[Organization]:
    """4 organizations, 25 exporters each, a few dozen payments in and around the window."""
    orgs = []
    for index in range(ORGS):
        org = create_organization(db)
        customer = create_customer(db, org=org)
        wanted: set[str] = set()
        for n in range(24 + 6 * index):  # 24, 30, 36, 42 rows
            paid_at = WINDOW_START + timedelta(minutes=7 + 31 * n)
            amount = Decimal(f"{100 + n}.{n % 100:02d}")
            wanted.add(
                create_payment(db, org=org, customer=customer, paid_at=paid_at, amount=amount).id
            )
        # Outside the window (both edges: toDate is exclusive), or not completed.
        for paid_at, status in (
            (WINDOW_START - timedelta(seconds=1), "completed"),
            (WINDOW_END, "completed"),
            (WINDOW_START + timedelta(hours=3), "pending"),
            (WINDOW_START + timedelta(hours=4), "refunded"),
        ):
            create_payment(db, org=org, customer=customer, paid_at=paid_at, status=status)
        users = [
            create_user(db, org=org, permissions=(VIEW_REPORTS, EXPORT_REPORTS))
            for _ in range(USERS // ORGS)
        ]
        orgs.append(Organization(org.id, users, wanted))
    return orgs


@dataclass
class Deployment:
    url: str
    bucket: str
    key_prefix: str
    env: dict[str, str]
    log_dir: Path
    orgs: list[Organization]
    s3: S3Server


@pytest.fixture(scope="module")
def deployment(
    admin_url: str, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """A database of its own on the test server (the suite's API server runs an in-process
    worker on the session database, which must not take these jobs), a new bucket, a
    rate-limit namespace of its own in Redis."""
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379 (.ci/run starts one)")
    name = f"pivotal_many_{secrets.token_hex(4)}"
    # moto's server logs each of the thousands of S3 requests; a failure report needs none.
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    key_prefix = f"pivotal-many-{secrets.token_hex(6)}"
    try:
        schema.upgrade(url)
        engine = create_engine(sqlalchemy_url(url))
        with Session(engine, expire_on_commit=False) as db:
            orgs = _seed(db)
        engine.dispose()
        bucket = s3_server.new_bucket()
        data_dir = tmp_path_factory.mktemp("many-data")
        env = {
            "PIVOTAL_ENV": "dev",
            "PIVOTAL_DATABASE_URL": url,
            "PIVOTAL_DATA_DIR": str(data_dir),
            "PIVOTAL_JWT_SECRET": TEST_JWT_SECRET,
            "PIVOTAL_METRICS_TOKEN": TEST_METRICS_TOKEN,
            "PIVOTAL_ROLLUP_CRON": QUIET_ROLLUP_CRON,
            "PIVOTAL_WORKER_IN_PROCESS": "false",
            "PIVOTAL_RATE_LIMIT_STORAGE_URL": REDIS_URL,
            "PIVOTAL_RATE_LIMIT_KEY_PREFIX": key_prefix,
            "PIVOTAL_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE),
            "PIVOTAL_MAX_RUNNING_EXPORTS_PER_ORG": str(MAX_RUNNING_PER_ORG),
            "PIVOTAL_EXPORT_STORAGE_URL": f"s3://{bucket}/{S3_PREFIX}",
            "PIVOTAL_LOG_LEVEL": "INFO",
            # 2 APIs x (5 + 5 overflow) + 3 workers: well inside PostgreSQL's default of 100
            # connections, with the rest of the suite's.
            "PIVOTAL_DB_POOL_SIZE": "5",
        }  # the AWS_* variables of the s3_server fixture come from os.environ
        yield Deployment(
            url, bucket, key_prefix, env, tmp_path_factory.mktemp("many-logs"), orgs, s3_server
        )
    finally:
        werkzeug.setLevel(level)
        store = redis.Redis.from_url(REDIS_URL)
        for key in store.scan_iter(match=f"{key_prefix}*"):
            store.delete(key)
        store.close()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _token(user: User) -> str:
    settings = Settings(env="dev", jwt_secret=TEST_JWT_SECRET)
    return mint_token(
        settings,
        user_id=user.id,
        organization_id=user.organization_id,
        expires_in=timedelta(hours=1),
    )


def _sql(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Rows of ``query`` as the owner, past row-level security (maintenance mode)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('app.maintenance', 'on', false)")
        return conn.execute(query, params).fetchall()


# ---------------------------------------------------------------------------- the users


@dataclass
class Request:
    """One export a user asked for: the Idempotency-Key names it across retries."""

    user: User
    key: str
    fmt: str
    job_id: str | None = None
    posted_at: float | None = None  # wall clock of the POST that was accepted
    capacity_429s: int = 0
    rate_limited_429s: int = 0


@dataclass
class Traffic:
    clients: list[httpx.Client]
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    turn: int = 0
    errors: list[str] = field(default_factory=list)
    polls_rate_limited: int = 0

    def client(self) -> httpx.Client:
        """Round-robin over the API processes, request by request."""
        with self.lock:
            self.turn += 1
            return self.clients[self.turn % len(self.clients)]


def _retry_after(response: httpx.Response) -> float:
    return float(response.headers["Retry-After"])


def _post_export(traffic: Traffic, request: Request, token: str) -> None:
    body = {
        "reportType": "payments_received",
        "format": request.fmt,
        "filters": {"fromDate": WINDOW_START.isoformat(), "toDate": WINDOW_END.isoformat()},
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": request.key}
    while not traffic.stop.is_set():
        sent = time.time()
        response = traffic.client().post("/v1/reports/export", json=body, headers=headers)
        if response.status_code in (200, 202):  # 200: a replay of this Idempotency-Key
            request.job_id = response.json()["jobId"]
            request.posted_at = request.posted_at if response.status_code == 200 else sent
            return
        if response.status_code != 429:
            raise AssertionError(f"POST answered {response.status_code}: {response.text}")
        assert response.headers["content-type"] == "application/problem+json"
        if "queued or running" in response.json()["detail"]:
            request.capacity_429s += 1
        else:
            request.rate_limited_429s += 1
        traffic.stop.wait(_retry_after(response))


def _wait_for_own_jobs(traffic: Traffic, requests: list[Request], token: str) -> None:
    wanted = {r.job_id for r in requests}
    headers = {"Authorization": f"Bearer {token}"}
    while not traffic.stop.is_set():
        traffic.stop.wait(POLL_SECONDS)
        response = traffic.client().get("/v1/reports/export", params={"limit": 20}, headers=headers)
        if response.status_code == 429:
            with traffic.lock:
                traffic.polls_rate_limited += 1
            traffic.stop.wait(_retry_after(response))
            continue
        assert response.status_code == 200, response.text
        status = {job["id"]: job["status"] for job in response.json()["data"]}
        assert set(status) == wanted, "a user sees exactly their own jobs"
        if any(s in ("failed", "cancelled", "expired") for s in status.values()):
            raise AssertionError(f"a job ended badly: {response.json()['data']}")
        if all(s == "completed" for s in status.values()):
            return


def _user_session(traffic: Traffic, user: User, requests: list[Request]) -> None:
    """What one user does: ask for 4 exports one after the other, then wait for them."""
    try:
        token = _token(user)
        for request in requests:
            _post_export(traffic, request, token)
        _wait_for_own_jobs(traffic, requests, token)
    except Exception as exc:
        with traffic.lock:
            traffic.errors.append(f"{user.id}: {exc!r}")
        traffic.stop.set()  # one failure ends the run: no waiting out the timeout
        raise


# ---------------------------------------------------------------------------- the run


@dataclass
class Kill:
    worker_id: int
    at: float
    queue_jobs: list[int]  # the queue jobs it was running: the sweeper re-queues these


def _register_doomed_worker(group: ProcessGroup, url: str) -> tuple[ManagedProcess, int]:
    """Start the worker to be killed alone, so that its queue worker id is known."""
    doomed = group.start_worker(
        "worker-doomed",
        concurrency=WORKER_CONCURRENCY,
        heartbeat=HEARTBEAT_SECONDS,
        stalled_after=STALLED_AFTER_SECONDS,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = _sql(url, "SELECT id FROM procrastinate_workers")
        if rows:
            assert len(rows) == 1, rows
            return doomed, rows[0][0]
        assert doomed.alive(), doomed.tail()
        time.sleep(0.2)
    raise AssertionError(f"the worker never registered:\n{doomed.tail()}")


def _running_exports(url: str, worker_id: int) -> list[int]:
    rows = _sql(
        url,
        "SELECT id FROM procrastinate_jobs WHERE worker_id = %s AND status = 'doing' "
        "AND task_name = 'exports.run_export' ORDER BY id",
        (worker_id,),
    )
    return [row[0] for row in rows]


def _kill_mid_run(doomed: ManagedProcess, worker_id: int, url: str, stop: threading.Event) -> Kill:
    """SIGKILL ``doomed`` once enough exports are done and it is running some itself.

    It is frozen (SIGSTOP) first, so that the queue jobs it holds can be read without a
    race: a frozen process finishes nothing. Holding none, it is thawed and watched again.
    """
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline and not stop.is_set():
        (completed,) = _sql(url, "SELECT count(*) FROM export_jobs WHERE status = 'completed'")[0]
        if completed == USERS * EXPORTS_PER_USER:
            raise AssertionError("every export finished before the worker could be killed")
        if completed >= KILL_AFTER_COMPLETED and _running_exports(url, worker_id):
            doomed.freeze()
            time.sleep(0.3)  # a commit already on its way to the server lands first
            held = _running_exports(url, worker_id)
            if held:
                doomed.kill()
                return Kill(worker_id, time.time(), held)
            doomed.thaw()
        time.sleep(0.1)
    raise AssertionError("never found the doomed worker running an export")


def _requests(orgs: list[Organization]) -> dict[str, list[Request]]:
    plan: dict[str, list[Request]] = {}
    for org in orgs:
        for user in org.users:
            plan[user.id] = [
                Request(user, f"many-{user.id}-{n}", ("csv", "json")[n % 2])
                for n in range(EXPORTS_PER_USER)
            ]
    return plan


# ---------------------------------------------------------------------------- the checks


def _check_jobs_once(url: str, requests: list[Request], kill: Kill) -> dict[str, Any]:
    """One export row, one queue job, one run that completed, per request."""
    by_id = {r.job_id: r for r in requests}
    assert len(by_id) == len(requests) == USERS * EXPORTS_PER_USER
    rows = _sql(
        url,
        "SELECT id, organization_id, user_id, idempotency_key, status, attempts, total_rows, "
        "processed_rows, storage_key, checksum_sha256, file_size_bytes, queue_job_id, "
        "completed_at FROM export_jobs",
    )
    assert len(rows) == len(requests), "no export row beyond the requests"
    jobs = {row[0]: row for row in rows}
    assert set(jobs) == set(by_id)
    for job_id, row in jobs.items():
        request = by_id[job_id]
        assert (row[2], row[3]) == (request.user.id, request.key)
        assert row[4] == "completed", row
        assert row[5] >= 1, "attempts recorded"
    queue = _sql(
        url,
        "SELECT j.id, j.args->>'job_id', j.status::text, j.attempts, "
        "count(*) FILTER (WHERE e.type = 'started'), "
        "count(*) FILTER (WHERE e.type = 'succeeded'), "
        "count(*) FILTER (WHERE e.type = 'deferred_for_retry') "
        "FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id "
        "WHERE j.task_name = 'exports.run_export' GROUP BY j.id",
    )
    assert len(queue) == len(requests), "exactly one queue job per export"
    assert {row[1] for row in queue} == set(jobs)
    for queue_id, job_id, status, _, _, succeeded, _ in queue:
        assert jobs[job_id][11] == queue_id
        assert (status, succeeded) == ("succeeded", 1)
    requeued = {row[0]: row for row in queue if row[0] in kill.queue_jobs}
    assert kill.queue_jobs, "the killed worker held queue jobs"
    assert set(requeued) == set(kill.queue_jobs)
    for _, job_id, _, attempts, started, _, retried in requeued.values():
        # Started by the killed worker, re-queued by the sweeper, started again elsewhere.
        assert attempts >= 1, job_id
        assert started >= 2, job_id
        assert retried >= 1, job_id
    others_retried = [row for row in queue if row[0] not in kill.queue_jobs and row[6] > 0]
    audit = Counter(
        (row[0], row[1])
        for row in _sql(
            url,
            "SELECT resource_id, action FROM audit_logs WHERE resource = 'export_jobs' "
            "AND action IN ('export_job_created', 'export_job_completed')",
        )
    )
    for job_id in jobs:
        assert audit[(job_id, "export_job_created")] == 1
        assert audit[(job_id, "export_job_completed")] == 1
    return {"jobs": jobs, "requeued": requeued, "others_retried": others_retried}


def _payment_ids(fmt: str, content: bytes) -> set[str]:
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(content.decode("utf-8"), newline=""))
        ids = [row["payment_id"] for row in reader]
    else:
        ids = [row["payment_id"] for row in json.loads(content)]
    assert len(ids) == len(set(ids)), "no row twice"
    return set(ids)


def _check_objects(
    deployment: Deployment, jobs: dict[str, tuple[Any, ...]], requests: list[Request], kill: Kill
) -> int:
    """Every job's object is there with the right bytes; returns the killed attempts'
    objects (written in full, but their job row never named them)."""
    client = deployment.s3.client()
    keys = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=deployment.bucket, Prefix=f"{S3_PREFIX}/"):
        keys += [item["Key"] for item in page.get("Contents", [])]
    wanted = {org.id: org.payment_ids for org in deployment.orgs}
    fmt_of = {r.job_id: r.fmt for r in requests}
    named = {f"{S3_PREFIX}/{row[8]}": job_id for job_id, row in jobs.items()}
    assert set(named) <= set(keys), "every completed job's object exists"
    for key, job_id in named.items():
        row = jobs[job_id]
        obj = client.get_object(Bucket=deployment.bucket, Key=key)
        content = obj["Body"].read()
        digest = hashlib.sha256(content).hexdigest()
        assert digest == row[9] == obj["Metadata"]["sha256"], key
        assert len(content) == row[10]
        ids = _payment_ids(fmt_of[job_id], content)
        assert ids == wanted[row[1]], f"{key}: the rows in the window, each once"
        assert row[6] == row[7] == len(ids)
    stray = sorted(set(keys) - set(named))
    killed_jobs = {job_id for job_id, row in jobs.items() if row[11] in kill.queue_jobs}
    for key in stray:  # only a killed attempt may have left a complete, unnamed object
        match = re.fullmatch(rf"{S3_PREFIX}/[^/]+/(.+)-(\d+)\.\w+", key)
        assert match, f"unexpected object {key}"
        assert match.group(1) in killed_jobs, f"unexpected object {key}"
        assert int(match.group(2)) < jobs[match.group(1)][5]
    uploads = client.list_multipart_uploads(Bucket=deployment.bucket)
    assert uploads.get("Uploads", []) == [], "no multipart upload left"
    return len(stray)


def _check_shared_budget(deployment: Deployment, apis: list[ManagedProcess]) -> int:
    """One user alternating between the two processes gets one budget, not one each."""
    org = deployment.orgs[0]
    user = _create_viewer(deployment.url, org.id)
    headers = {"Authorization": f"Bearer {_token(user)}"}
    remaining = []
    for n in range(RATE_LIMIT_PER_MINUTE):
        response = httpx.get(f"{apis[n % 2].base_url}/v1/me", headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        state = re.fullmatch(r'"per-user";r=(\d+);t=\d+', response.headers["RateLimit"])
        assert state, response.headers["RateLimit"]
        remaining.append(int(state.group(1)))
    # Each answer counts the other process's requests too: one countdown, to zero.
    assert remaining == list(range(RATE_LIMIT_PER_MINUTE - 1, -1, -1))
    refused = 0
    for api in apis:  # either process alone would still have half its budget
        response = httpx.get(f"{api.base_url}/v1/me", headers=headers, timeout=30)
        assert response.status_code == 429, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        refused += 1
    store = redis.Redis.from_url(REDIS_URL)
    try:
        assert any(user.id in key.decode() for key in store.scan_iter(f"{deployment.key_prefix}*"))
    finally:
        store.close()
    return refused


def _create_viewer(url: str, organization_id: str) -> User:
    engine = create_engine(sqlalchemy_url(url))
    try:
        with Session(engine, expire_on_commit=False) as db:
            org = db.get(OrganizationRow, organization_id)
            assert org is not None
            return create_user(db, org=org, permissions=(VIEW_REPORTS,))
    finally:
        engine.dispose()


def _export_posts_by_status(api: ManagedProcess) -> Counter[str]:
    """``POST /v1/reports/export`` answers of one API process, by status, from its metrics."""
    exposed = httpx.get(f"{api.base_url}/metrics", headers=METRICS_HEADERS, timeout=30)
    assert exposed.status_code == 200, exposed.text
    statuses: Counter[str] = Counter()
    for family in text_string_to_metric_families(exposed.text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "pivotal_http_requests_total"
                and labels.get("method") == "POST"
                and labels.get("route") == "/v1/reports/export"
            ):
                statuses[labels["status"]] += int(sample.value)
    return statuses


def _audit_verify(deployment: Deployment) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "audit", "verify"],
        env=os.environ | deployment.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def _table(rows: list[tuple[str, str]]) -> str:
    lines = ["| measure | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the test


def test_two_apis_three_workers_one_killed_every_export_once(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _requests(deployment.orgs)
    requests = [r for user_requests in plan.values() for r in user_requests]
    with ProcessGroup(deployment.log_dir, deployment.env) as group:
        doomed, doomed_id = _register_doomed_worker(group, deployment.url)
        apis = [group.start_api(f"api-{n}") for n in (1, 2)]
        survivors = [
            group.start_worker(
                f"worker-{n}",
                concurrency=WORKER_CONCURRENCY,
                heartbeat=HEARTBEAT_SECONDS,
                stalled_after=STALLED_AFTER_SECONDS,
            )
            for n in (2, 3)
        ]
        for api in apis:
            api.wait_ready()
        for worker in survivors:
            worker.wait_for_log("export worker worker-")
        # Idle connections are dropped before uvicorn's 5 s keep-alive ends: reusing one
        # the server is closing at that instant is a reset, not a finding.
        limits = httpx.Limits(
            max_connections=USERS, max_keepalive_connections=USERS, keepalive_expiry=2.0
        )
        clients = [httpx.Client(base_url=a.base_url, timeout=60, limits=limits) for a in apis]
        traffic = Traffic(clients)
        started = time.time()
        try:
            with ThreadPoolExecutor(max_workers=USERS, thread_name_prefix="user") as pool:
                sessions = [
                    pool.submit(_user_session, traffic, user_requests[0].user, user_requests)
                    for user_requests in plan.values()
                ]
                try:
                    kill = _kill_mid_run(doomed, doomed_id, deployment.url, traffic.stop)
                finally:
                    deadline = started + RUN_TIMEOUT_SECONDS
                    for session in sessions:
                        try:
                            session.result(timeout=max(deadline - time.time(), 1))
                        except Exception:
                            traffic.stop.set()
                            raise
            wall = time.time() - started
        finally:
            traffic.stop.set()
            for client in clients:
                client.close()
        assert traffic.errors == []
        assert all(p.alive() for p in [*apis, *survivors]), group.tails()
        checked = _check_jobs_once(deployment.url, requests, kill)
        stray = _check_objects(deployment, checked["jobs"], requests, kill)
        posts = [_export_posts_by_status(api) for api in apis]
        shared_429s = _check_shared_budget(deployment, apis)
        verified = _audit_verify(deployment)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        for org in deployment.orgs:
            assert re.search(rf"^{org.id}: OK \(\d+ rows\)$", verified.stdout, re.M)
        swept = [
            line
            for worker in survivors
            for line in worker.log_path.read_text().splitlines()
            if "its worker is gone; re-queueing" in line
        ]
        assert len(swept) >= len(kill.queue_jobs)

    # No process outlived the group (nor the one killed).
    for process in [doomed, *apis, *survivors]:
        assert not psutil.pid_exists(process.pid) or (
            psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE
        ), f"{process.name} (pid {process.pid}) still running"

    jobs = checked["jobs"]
    latencies = [
        jobs[r.job_id][12].timestamp() - r.posted_at for r in requests if r.posted_at is not None
    ]
    completed = sum(1 for row in jobs.values() if row[4] == "completed")
    recovered = max(jobs[row[1]][12].timestamp() for row in checked["requeued"].values()) - kill.at
    capacity = sum(r.capacity_429s for r in requests)
    rate_limited = sum(r.rate_limited_429s for r in requests)
    # Both processes took part, and their own counts add up to what the users saw.
    assert all(p["202"] > 0 for p in posts), posts
    assert sum(p["202"] for p in posts) == len(jobs)
    assert sum(p["429"] for p in posts) == capacity + rate_limited
    table = _table(
        [
            ("API processes / workers", f"2 / 3 (concurrency {WORKER_CONCURRENCY} each)"),
            ("users / organizations", f"{USERS} / {ORGS}"),
            (
                "exports accepted (202) by api-1 / api-2",
                " / ".join(str(p["202"]) for p in posts),
            ),
            ("export jobs", str(len(jobs))),
            ("completed (success %)", f"{completed} ({100 * completed / len(jobs):.1f} %)"),
            ("wall time, first POST to last completed seen", f"{wall:.1f} s"),
            ("throughput", f"{len(jobs) / wall:.1f} exports/s"),
            ("POST to completed, p50", f"{_percentile(latencies, 0.5):.1f} s"),
            ("POST to completed, p95", f"{_percentile(latencies, 0.95):.1f} s"),
            ("POST to completed, max", f"{max(latencies):.1f} s"),
            ("429 (organization's running cap) retried after Retry-After", str(capacity)),
            (
                "429 (rate limit) during the run: POST / polls",
                f"{rate_limited} / {traffic.polls_rate_limited}",
            ),
            (
                "worker SIGKILLed at",
                f"{kill.at - started:.1f} s, after {KILL_AFTER_COMPLETED}+ done",
            ),
            ("killed worker: queue jobs re-queued by the sweeper", str(len(kill.queue_jobs))),
            ("killed worker's jobs all completed, after the kill", f"{recovered:.1f} s"),
            ("other queue jobs retried", str(len(checked["others_retried"]))),
            ("complete objects of killed attempts (unnamed)", str(stray)),
            (
                "shared budget: 429 from each process after",
                f"{RATE_LIMIT_PER_MINUTE} requests over both ({shared_429s} refused)",
            ),
            ("audit verify", "OK (exit 0)"),
        ]
    )
    with capsys.disabled():
        print(f"\n\nMany processes, one run:\n\n{table}\n")
