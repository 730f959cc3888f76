"""Exports stored as S3 objects, against a real S3-protocol server (moto's, over HTTP).

The API and a standalone worker process run with
``PIVOTAL_EXPORT_STORAGE_URL=s3://<bucket>/exports`` on a database of their own (their
queue must not be shared with the local-storage servers of the other tests). Every expected checksum is computed here from the bytes S3 returns.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from pivotal_reporting import schema
from pivotal_reporting.app import create_app
from pivotal_reporting.config import Settings
from pivotal_reporting.db import sqlalchemy_url, with_database
from pivotal_reporting.storage import organization_prefix as storage_prefix
from pivotal_reporting.storage_s3 import SHA256_METADATA, S3Location, S3Storage
from tests.conftest import TEST_JWT_SECRET, ServerThread
from tests.exports.conftest import create_job, csv_rows, download, wait_for_job
from tests.factories import Tenant, create_export_job, create_tenant
from tests.retention.retention_helpers import sweep
from tests.s3_server import S3Server

WORKER_CLI = str(Path(sys.executable).parent / "pivotal-reporting")
PART_BYTES = 5 * 1024 * 1024  # S3's smallest part: a few hundred thousand rows span parts
MANY_ROWS = 120_000  # about 11 MB of CSV: three parts


@dataclass
class S3Deployment:
    server: S3Server
    bucket: str
    settings: Settings
    database_url: str
    api: ServerThread  # redirect mode, with the worker
    stream_api: ServerThread  # stream mode, no worker
    storage: S3Storage

    def objects(self, prefix: str) -> dict[str, bytes]:
        client = self.server.client()
        listed = client.list_objects_v2(Bucket=self.bucket, Prefix=f"exports/{prefix}")
        return {
            item["Key"]: client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
            for item in listed.get("Contents", [])
        }

    def pending_uploads(self, prefix: str = "") -> list[str]:
        listed = self.server.client().list_multipart_uploads(
            Bucket=self.bucket, Prefix=f"exports/{prefix}"
        )
        return [upload["Key"] for upload in listed.get("Uploads", [])]


def _start_worker(url: str, bucket: str, data_dir: Path) -> subprocess.Popen[bytes]:
    """A standalone worker process: the queue app is one per process, so the in-process
    worker of the suite's other API server (another database) can't share this one."""
    env = os.environ | {  # the AWS_* variables of the s3_server fixture come along
        "PIVOTAL_DATABASE_URL": url,
        "PIVOTAL_DATA_DIR": str(data_dir),
        "PIVOTAL_EXPORT_STORAGE_URL": f"s3://{bucket}/exports",
        "PIVOTAL_EXPORT_UPLOAD_PART_BYTES": str(PART_BYTES),
        "PIVOTAL_LOG_LEVEL": "INFO",
    }
    log = open(data_dir / "worker.log", "ab")  # noqa: SIM115 - owned by the process
    return subprocess.Popen(
        [WORKER_CLI, "worker", "--name", "s3-tests", "--concurrency", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def s3(
    s3_server: S3Server, admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Deployment]:
    name = f"pivotal_s3_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    schema.upgrade(url)
    bucket = s3_server.new_bucket()
    data_dir = tmp_path_factory.mktemp("s3-data")
    settings = Settings(
        env="dev",
        database_url=url,
        data_dir=data_dir,
        jwt_secret=TEST_JWT_SECRET,
        rate_limit_per_minute=1_000_000,
        export_storage_url=f"s3://{bucket}/exports",
        export_download_mode="redirect",
        export_download_url_seconds=120,
        export_upload_part_bytes=PART_BYTES,
        worker_in_process=False,
    )
    stream_settings = settings.model_copy(update={"export_download_mode": "stream"})
    storage = S3Storage(S3Location(bucket, "exports/"), part_bytes=PART_BYTES)
    worker = _start_worker(url, bucket, data_dir)
    try:
        with (
            ServerThread(create_app(settings)) as api,
            ServerThread(create_app(stream_settings)) as stream_api,
        ):
            yield S3Deployment(s3_server, bucket, settings, url, api, stream_api, storage)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def s3_db(s3: S3Deployment) -> Iterator[Session]:
    engine = create_engine(sqlalchemy_url(s3.database_url), pool_size=2)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


@pytest.fixture
def s3_tenant(s3_db: Session, s3: S3Deployment) -> Tenant:
    return create_tenant(s3_db, s3.settings)


@pytest.fixture
def http(s3: S3Deployment) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=s3.api.base_url, timeout=60) as client:
        yield client


def bulk_payments(db: Session, organization_id: str, rows: int) -> None:
    """``rows`` completed payments of one new customer (ids unique to the organization)."""
    db.execute(text("SELECT set_config('app.maintenance', 'on', true)"))
    db.execute(
        text("INSERT INTO customers (id, organization_id, name) VALUES (:id, :org, 'Bulk')"),
        {"id": f"cus_bulk_{organization_id}", "org": organization_id},
    )
    db.execute(
        text(
            """
            INSERT INTO payments (id, organization_id, invoice_id, customer_id, amount, currency,
                                  method, status, paid_at, reference)
            SELECT 'pay_' || :org || '_' || g, :org, NULL, :customer, 1 + (g % 100000) / 100.0,
                   'USD', 'bank_transfer', 'completed',
                   timestamptz '2024-01-01' + g * interval '1 second', 'REF-' || g
            FROM generate_series(1, :rows) AS g
            """
        ),
        {"org": organization_id, "customer": f"cus_bulk_{organization_id}", "rows": rows},
    )
    db.commit()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _metadata_sha256(s3: S3Deployment, object_key: str) -> str:
    head = s3.server.client().head_object(Bucket=s3.bucket, Key=object_key)
    return str(head["Metadata"][SHA256_METADATA])


@pytest.mark.parametrize("rows", [3, MANY_ROWS], ids=["one-part", "multipart"])
def test_export_completes_as_an_object_carrying_its_checksum(
    s3: S3Deployment, s3_db: Session, s3_tenant: Tenant, http: httpx.Client, rows: int
) -> None:
    bulk_payments(s3_db, s3_tenant.org.id, rows)
    job_id = create_job(http, s3_tenant)
    job = wait_for_job(http, s3_tenant, job_id, timeout=120)["job"]
    assert job["status"] == "completed", job

    [(object_key, data)] = s3.objects(storage_prefix(s3_tenant.org.id)).items()
    assert object_key == f"exports/{storage_prefix(s3_tenant.org.id)}/{job_id}-1.csv"
    header, body = csv_rows(data)
    references = [row[header.index("reference")] for row in body]
    assert references == [f"REF-{g}" for g in range(1, rows + 1)]  # every row, in order
    assert _metadata_sha256(s3, object_key) == _sha256(data)
    assert job["checksumSha256"] == _sha256(data)
    assert job["fileSizeBytes"] == len(data)
    if rows == MANY_ROWS:
        assert len(data) > 2 * PART_BYTES  # it really went as a multipart upload
    assert s3.pending_uploads() == []


def test_download_by_redirect_to_a_presigned_url_is_audited(
    s3: S3Deployment, s3_db: Session, s3_tenant: Tenant, http: httpx.Client
) -> None:
    bulk_payments(s3_db, s3_tenant.org.id, 50)
    job_id = create_job(http, s3_tenant, file_name="Päyments Q1.csv")
    job = wait_for_job(http, s3_tenant, job_id)["job"]

    response = download(http, s3_tenant, job_id)
    assert response.status_code == 307, response.text
    assert response.headers["cache-control"] == "private, no-store"
    location = response.headers["location"]
    assert location.startswith(s3.server.endpoint)
    assert "X-Amz-Expires=120" in location

    fetched = httpx.get(location)  # no bearer token: the URL alone authorizes
    assert fetched.status_code == 200
    assert _sha256(fetched.content) == job["checksumSha256"]
    assert "filename*=UTF-8''P%C3%A4yments%20Q1.csv" in fetched.headers["content-disposition"]
    assert fetched.headers["content-type"].startswith("text/csv")

    events = s3_db.execute(
        text(
            "SELECT details FROM audit_logs WHERE organization_id = :org "
            "AND action = 'export_downloaded' AND resource_id = :job"
        ),
        {"org": s3_tenant.org.id, "job": job_id},
    ).scalars()
    [details] = list(events)
    assert details["delivery"] == "redirect"
    expires = datetime.fromisoformat(details["urlExpiresAt"])
    assert timedelta(seconds=100) < expires - datetime.now(UTC) <= timedelta(seconds=120)


def test_download_redirect_auth_matrix(
    s3: S3Deployment, s3_db: Session, s3_tenant: Tenant, http: httpx.Client
) -> None:
    other = create_tenant(s3_db, s3.settings)
    bulk_payments(s3_db, s3_tenant.org.id, 5)
    job_id = create_job(http, s3_tenant)
    wait_for_job(http, s3_tenant, job_id)
    path = f"/v1/reports/export/{job_id}/download"
    assert http.get(path).status_code == 401
    assert http.get(path, headers=s3_tenant.headers(s3_tenant.viewer)).status_code == 403
    assert http.get(path, headers=other.headers(other.exporter)).status_code == 404
    assert http.get(path, headers=s3_tenant.headers(s3_tenant.exporter)).status_code == 307


def test_download_streams_through_the_api_in_stream_mode(
    s3: S3Deployment, s3_db: Session, s3_tenant: Tenant, http: httpx.Client
) -> None:
    bulk_payments(s3_db, s3_tenant.org.id, MANY_ROWS // 4)
    job_id = create_job(http, s3_tenant)
    job = wait_for_job(http, s3_tenant, job_id, timeout=120)["job"]

    with httpx.Client(base_url=s3.stream_api.base_url, timeout=60) as streaming:
        response = download(streaming, s3_tenant, job_id)
    assert response.status_code == 200
    assert response.headers["x-checksum-sha256"] == job["checksumSha256"]
    assert _sha256(response.content) == job["checksumSha256"]
    assert int(response.headers["content-length"]) == len(response.content)


def test_a_failure_mid_upload_leaves_no_object_and_the_retried_job_completes(
    s3: S3Deployment, s3_db: Session, s3_tenant: Tenant, http: httpx.Client
) -> None:
    bulk_payments(s3_db, s3_tenant.org.id, MANY_ROWS)
    prefix = storage_prefix(s3_tenant.org.id)
    # Part 1 of the first attempt lands; S3 answers 500 to part 2 and to every retry of it.
    # (Job ids hold letters, digits, "_" and "-".)
    s3.server.faults.fail_upload_parts(
        rf"/{re.escape(prefix)}/job_[A-Za-z0-9_\-]+-1\.csv$", from_part=2
    )
    hits_before = s3.server.faults.hits
    try:
        job_id = create_job(http, s3_tenant)
        _wait_for_first_attempt_to_fail(http, s3_tenant, job_id)
    finally:
        s3.server.faults.clear()
    assert s3.server.faults.hits > hits_before
    # ... and left nothing behind: no object, no pending multipart upload.
    assert s3.objects(prefix) == {}
    assert s3.pending_uploads(prefix) == []

    job = wait_for_job(http, s3_tenant, job_id, timeout=120)["job"]  # the queue's retry
    assert job["status"] == "completed", job
    assert job["attempts"] == 2
    [(object_key, data)] = s3.objects(prefix).items()
    assert object_key.endswith(f"{job_id}-2.csv")
    assert len(csv_rows(data)[1]) == MANY_ROWS
    assert _metadata_sha256(s3, object_key) == _sha256(data) == job["checksumSha256"]
    assert s3.pending_uploads(prefix) == []


def _wait_for_first_attempt_to_fail(http: httpx.Client, tenant: Tenant, job_id: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = wait_for_job(http, tenant, job_id, statuses=("pending", "failed", "completed"))
        if job["job"]["status"] != "pending" or job["job"]["attempts"] >= 1:
            assert job["job"]["status"] == "pending", job  # released for a retry
            return
        time.sleep(0.05)
    pytest.fail(f"job {job_id}: the first attempt did not fail")


def test_cancelling_mid_upload_aborts_the_upload(s3: S3Deployment) -> None:
    upload = s3.storage.begin("org_cancel/job_c-1.csv")
    upload.write(b"x" * (PART_BYTES + 10))  # one part sent, 10 bytes held
    assert s3.pending_uploads("org_cancel/") == ["exports/org_cancel/job_c-1.csv"]
    s3.storage.abort(upload)
    assert s3.pending_uploads("org_cancel/") == []
    assert s3.objects("org_cancel/") == {}


def _put(s3: S3Deployment, key: str, data: bytes = b"a,b\n") -> None:
    s3.server.client().put_object(Bucket=s3.bucket, Key=f"exports/{key}", Body=data)


def test_retention_deletes_expired_objects_and_orphans_by_last_modified(
    s3: S3Deployment, s3_db: Session, s3_tenant: Tenant
) -> None:
    prefix = storage_prefix(s3_tenant.org.id)
    ended = datetime.now(UTC) - timedelta(days=40)
    expired = create_export_job(
        s3_db,
        org=s3_tenant.org,
        user=s3_tenant.exporter,
        status="completed",
        attempts=1,
        completed_at=ended,
        ended_at=ended,
        expires_at=ended + timedelta(days=30),
        checksum_sha256="0" * 64,
        file_size_bytes=4,
        storage_key=f"{prefix}/expired-1.csv",
    )
    kept = create_export_job(
        s3_db,
        org=s3_tenant.org,
        user=s3_tenant.exporter,
        status="completed",
        attempts=1,
        completed_at=datetime.now(UTC),
        ended_at=datetime.now(UTC),
        expires_at=datetime.now(UTC) + timedelta(days=30),
        checksum_sha256="0" * 64,
        file_size_bytes=4,
        storage_key=f"{prefix}/kept-1.csv",
    )
    for key in (f"{prefix}/expired-1.csv", f"{prefix}/kept-1.csv", f"{prefix}/orphan-1.csv"):
        _put(s3, key)
    stale = s3.storage.begin(f"{prefix}/stale-1.csv")
    stale.write(b"y" * PART_BYTES)  # an upload a dead worker left

    # Just written: the orphan is younger than the grace period (LastModified), so it stays.
    sweep(s3.database_url, s3.storage, organization_ids=[s3_tenant.org.id])
    assert set(s3.objects(prefix)) == {f"exports/{prefix}/{k}-1.csv" for k in ("kept", "orphan")}
    s3_db.expire_all()
    key = {"organization_id": expired.organization_id, "id": expired.id}
    assert s3_db.get(type(expired), key).status == "expired"  # type: ignore[union-attr]

    # Two days on, by the objects' LastModified the orphan is old and the upload stale.
    sweep(s3.database_url, s3.storage, now=datetime.now(UTC) + timedelta(days=2))
    assert set(s3.objects(prefix)) == {f"exports/{prefix}/kept-1.csv"}
    assert s3.pending_uploads(prefix) == []
    assert kept.storage_key is not None


def test_settings_refuse_a_malformed_storage_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PIVOTAL_EXPORT_STORAGE_URL"):
        Settings(data_dir=tmp_path, export_storage_url="s3:/bucket")
    with pytest.raises(ValueError, match="PIVOTAL_EXPORT_STORAGE_URL"):
        Settings(data_dir=tmp_path, export_storage_url="https://bucket/prefix")
    assert S3Location.parse("s3://bucket/a/b/").prefix == "a/b/"
    assert S3Location.parse("s3://bucket").prefix == ""
