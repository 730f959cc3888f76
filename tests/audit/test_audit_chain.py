"""The audit chain: concurrent appends keep one chain; verify finds the first edited row."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from psycopg import DataError
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pivotal_reporting.audit.chain import GENESIS_HASH, AuditEntry, payload_around_head
from pivotal_reporting.audit.service import append_event, record_event
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


HOSTILE_DETAILS = [
    {"i": 1, "note": "héllo ✓ 日本", "amount": "12.50"},
    {"quote": 'it\'s "quoted" \\ back\\slash', "dollar": "$$ $1 %s %(x)s {org}"},
    {"control": "tab\tnew\nline\u0001", "nested": {"b": [1, 2.5, None, True], "a": {}}},
    {},
]


async def _append_one_message(database: Database, org_id: str, n: int, writer: int) -> None:
    for i in range(n):
        await append_event(
            database,
            organization_id=org_id,
            user_id=None,
            action="report_generated",
            resource="reports",
            resource_id=None if i % 3 == 0 else f"one-message-{writer}",
            details=HOSTILE_DETAILS[i % len(HOSTILE_DETAILS)] | {"writer": writer},
        )


def test_payload_pieces_around_the_head_make_the_canonical_payload() -> None:
    for i, details in enumerate(HOSTILE_DETAILS):
        entry = AuditEntry(
            organization_id="org-ü",
            seq=1000 + i,
            user_id=None if i % 2 else f"user-{i}",
            action="report_generated",
            resource="reports",
            resource_id=None if i == 2 else "quote_cycle_time",
            details=details,
            created_at=datetime(2026, 11, 29, 20, 1, 11, i * 7, tzinfo=UTC),
            prev_hash=hashlib.sha256(str(i).encode()).hexdigest(),
        )
        before, middle, after = payload_around_head(
            organization_id=entry.organization_id,
            user_id=entry.user_id,
            action=entry.action,
            resource=entry.resource,
            resource_id=entry.resource_id,
            details=entry.details,
            created_at=entry.created_at,
        )
        assembled = before + entry.prev_hash + middle + str(entry.seq) + after
        assert assembled == entry.canonical_payload()
        assert json.loads(assembled)["details"] == details


def test_one_message_appends_interleave_with_transactional_ones_in_one_chain(
    db: Session, database: Database, owner_engine: Engine
) -> None:
    org = create_organization(db)

    async def run() -> None:
        # The organization's very first event comes through append_event (no head yet).
        await _append_one_message(database, org.id, 1, writer=99)
        await asyncio.gather(
            *(_append_one_message(database, org.id, 8, w) for w in range(6)),
            *(_append(database, org.id, 8, w) for w in range(2)),
        )
        with pytest.raises(DataError):  # jsonb refuses NUL: nothing of this one holds
            await append_event(
                database,
                organization_id=org.id,
                user_id=None,
                action="report_generated",
                resource="reports",
                details={"nul": "\x00"},
            )
        await _append_one_message(database, org.id, 1, writer=100)

    asyncio.run(run())
    with owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT seq, payload, prev_hash, hash, details, resource_id "
                "FROM audit_logs WHERE organization_id = :o ORDER BY seq"
            ),
            {"o": org.id},
        ).all()
        head = conn.execute(
            text("SELECT seq, last_hash FROM audit_chain_heads WHERE organization_id = :o"),
            {"o": org.id},
        ).one()
    assert [r.seq for r in rows] == list(range(1, 1 + 1 + 6 * 8 + 2 * 8 + 1))
    previous = GENESIS_HASH
    for row in rows:
        payload = json.loads(row.payload)
        assert row.prev_hash == previous == payload["prev_hash"]
        assert payload["seq"] == row.seq
        assert payload["details"] == row.details
        assert payload["resource_id"] == row.resource_id
        assert hashlib.sha256(row.payload.encode()).hexdigest() == row.hash
        previous = row.hash
    assert (head.seq, head.last_hash) == (rows[-1].seq, rows[-1].hash)
    assert json.loads(rows[0].payload)["details"]["writer"] == 99
    assert json.loads(rows[-1].payload)["details"]["writer"] == 100
    report = _verify(database, org.id)
    assert report.ok
    assert report.rows_checked == len(rows)


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
