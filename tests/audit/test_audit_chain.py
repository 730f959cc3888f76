"""The audit chain: concurrent appends keep one chain; verify finds the first edited row."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pivotal_reporting.audit.chain import GENESIS_HASH
from pivotal_reporting.audit.service import record_event
from pivotal_reporting.audit.verify import ChainReport, verify_chain
from pivotal_reporting.db import Database
from tests.factories import create_organization


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database.connect(database_url, pool_size=10)
    yield database
    asyncio.run(database.dispose())


async def _append(database: Database, org_id: str, n: int, writer: int) -> None:
    for i in range(n):
        async with database.tenant_session(org_id) as session:
            await record_event(
                session,
                organization_id=org_id,
                user_id=None,
                action="report_generated",
                resource="reports",
                resource_id=f"writer-{writer}",
                details={"i": i, "note": "héllo", "amount": "12.50"},
            )


def _verify(database: Database, org_id: str) -> ChainReport:
    async def run() -> ChainReport:
        async with database.tenant_session(org_id) as session:
            return await verify_chain(session, org_id, batch=7)

    return asyncio.run(run())


def _fill(database: Database, org_id: str, writers: int = 8, each: int = 10) -> None:
    async def run() -> None:
        await asyncio.gather(*(_append(database, org_id, each, w) for w in range(writers)))

    asyncio.run(run())


def test_concurrent_appends_form_one_unbroken_chain(
    db: Session, database: Database, owner_engine: Engine
) -> None:
    org = create_organization(db)
    _fill(database, org.id)
    with owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT seq, payload, prev_hash, hash FROM audit_logs WHERE organization_id = :o ORDER BY seq"
            ),
            {"o": org.id},
        ).all()
    # Independent recomputation: sha256 over the stored payload, linked by prev_hash.
    assert [r.seq for r in rows] == list(range(1, 81))
    previous = GENESIS_HASH
    for row in rows:
        assert row.prev_hash == previous
        assert hashlib.sha256(row.payload.encode()).hexdigest() == row.hash
        assert json.loads(row.payload)["prev_hash"] == previous
        previous = row.hash
    report = _verify(database, org.id)
    assert report.ok
    assert report.rows_checked == 80


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (
            "UPDATE audit_logs SET details = '{\"i\": 999}' WHERE organization_id = :o AND seq = 5",
            "details",
        ),
        (
            "UPDATE audit_logs SET action = 'nothing' WHERE organization_id = :o AND seq = 5",
            "action",
        ),
        (
            "UPDATE audit_logs SET payload = replace(payload, 'writer', 'WRITER') WHERE organization_id = :o AND seq = 5",
            "hash does not match",
        ),
        ("DELETE FROM audit_logs WHERE organization_id = :o AND seq = 5", "sequence gap"),
    ],
    ids=["details", "action", "payload", "deleted-row"],
)
def test_verify_reports_the_first_tampered_row(
    db: Session, database: Database, owner_engine: Engine, tamper: str, reason: str
) -> None:
    org = create_organization(db)
    _fill(database, org.id, writers=2, each=5)
    with owner_engine.begin() as conn:
        conn.execute(text(tamper), {"o": org.id})
    report = _verify(database, org.id)
    assert report.first_break is not None
    assert report.first_break.seq == 5
    assert reason in report.first_break.reason
    assert report.rows_checked == 4


def test_verify_detects_truncated_tail(
    db: Session, database: Database, owner_engine: Engine
) -> None:
    org = create_organization(db)
    _fill(database, org.id, writers=1, each=6)
    with owner_engine.begin() as conn:
        conn.execute(
            text("DELETE FROM audit_logs WHERE organization_id = :o AND seq = 6"), {"o": org.id}
        )
    report = _verify(database, org.id)
    assert report.first_break is not None
    assert "chain head" in report.first_break.reason


def test_audit_verify_cli_exit_codes(
    db: Session, database: Database, owner_engine: Engine, database_url: str
) -> None:
    org = create_organization(db)
    _fill(database, org.id, writers=1, each=3)
    env = os.environ | {"PIVOTAL_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "pivotal_reporting", "audit", "verify", "--org", org.id]
    ok = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert f"{org.id}: OK (3 rows)" in ok.stdout
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_logs SET resource_id = 'x' WHERE organization_id = :o AND seq = 2"),
            {"o": org.id},
        )
    broken = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1
    assert "BROKEN at seq 2" in broken.stdout
