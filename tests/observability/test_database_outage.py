"""Riding out a database outage: 503 + Retry-After, one log line, the same client recovers.

The test starts its own embedded PostgreSQL (its own data dir), stops it under a running
API and starts it again.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from pivotal_reporting import schema
from pivotal_reporting.app import create_app
from pivotal_reporting.config import Settings
from pivotal_reporting.db import sqlalchemy_url
from pivotal_reporting.embedded import start_embedded, stop_embedded
from tests.factories import Tenant, create_customer, create_payment, create_tenant
from tests.server import TEST_JWT_SECRET, ServerThread

pytestmark = pytest.mark.slow

SUMMARY = "/v1/reports/summary/payments-received"
WINDOW = {"fromDate": "2000-01-01T00:00:00Z", "toDate": "2100-01-01T00:00:00Z"}


@dataclass
class Outage:
    pgdata: Path
    client: httpx.Client
    tenant: Tenant

    def stop_database(self) -> None:
        assert stop_embedded(self.pgdata, force=True).postmaster_pid is not None

    def start_database(self) -> None:
        start_embedded(self.pgdata)

    def summary(self) -> httpx.Response:
        return self.client.get(
            SUMMARY, params=WINDOW, headers=self.tenant.headers(self.tenant.viewer)
        )


@pytest.fixture
def outage() -> Iterator[Outage]:
    # Outside pytest's basetemp: as root the server runs as another user (see test_cli_stop).
    root = Path(tempfile.mkdtemp(prefix="pivotal-outage-"))
    root.chmod(0o755)
    pgdata = root / "pg"
    try:
        url = start_embedded(pgdata)
        schema.upgrade(url)
        settings = Settings(
            env="dev",
            database_url=url,
            data_dir=root,
            jwt_secret=TEST_JWT_SECRET,
            worker_in_process=False,
            rate_limit_per_minute=1_000_000,
        )
        engine = create_engine(sqlalchemy_url(url))
        with Session(engine, expire_on_commit=False) as db:
            tenant = create_tenant(db, settings)
            customer = create_customer(db, org=tenant.org)
            for _ in range(2):
                create_payment(db, org=tenant.org, customer=customer)
        engine.dispose()
        with (
            ServerThread(create_app(settings)) as server,
            httpx.Client(base_url=server.base_url, timeout=60) as client,
        ):
            yield Outage(pgdata=pgdata, client=client, tenant=tenant)
    finally:
        stop_embedded(pgdata, force=True)
        shutil.rmtree(root, ignore_errors=True)


def test_summary_answers_503_while_the_database_is_down_then_recovers(
    outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    before = outage.summary()
    assert before.status_code == 200, before.text
    assert before.json()["summary"]["totalPayments"] == 2

    outage.stop_database()
    caplog.clear()
    caplog.set_level(logging.INFO)
    for _ in range(2):
        down = outage.summary()
        assert down.status_code == 503, down.text
        assert down.headers["content-type"] == "application/problem+json"
        assert int(down.headers["retry-after"]) > 0
        assert down.json()["type"].endswith("/service_unavailable")
        assert down.headers.get("connection", "").lower() != "close"
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    # One line per failed request, no traceback, nothing from uvicorn.
    assert [r.getMessage().split(":")[0] for r in errors] == [
        f"database unavailable on GET {SUMMARY}"
    ] * 2, [r.getMessage() for r in errors]
    assert all(r.exc_info is None and r.exc_text is None for r in errors)

    outage.start_database()
    after = outage.summary()  # the same client, its connection kept open
    assert after.status_code == 200, after.text
    assert after.json()["summary"]["totalPayments"] == 2
