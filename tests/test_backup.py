"""``backup`` and ``restore`` round trips through the real CLI, pg_dump and pg_restore.

A source database gets demo data (with its rollups), audit chains written by the
application's own chain writer and export jobs; it is backed up to a directory and to
S3, restored into new empty databases, and every table is compared by row count and by
an md5 of all its rows computed in SQL, every sequence by its value.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from pivotal_reporting import schema
from pivotal_reporting.audit.service import record_event
from pivotal_reporting.db import Database, sqlalchemy_url, with_database
from pivotal_reporting.demo import load_demo_data
from pivotal_reporting.models import Organization, User
from tests.factories import create_export_job
from tests.s3_server import S3Server

CLI = str(Path(sys.executable).parent / "pivotal-reporting")
EVENTS_PER_ORG = 7

_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1, 2
"""


def _new_database(admin_url: str, label: str) -> str:
    name = f"pivotal_{label}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(admin_url, name)


def _drop(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[-1].split("?")[0]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


async def _audit_events(url: str, organization_ids: list[str]) -> None:
    database = Database.connect(url, pool_size=1)
    try:
        for org in organization_ids:
            for n in range(EVENTS_PER_ORG):
                async with database.tenant_session(org) as session:
                    await record_event(
                        session,
                        organization_id=org,
                        user_id=None,
                        action="backup_test_event",
                        resource="tests",
                        resource_id=f"r{n}",
                        details={"n": n, "amount": "12.30"},
                    )
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def source_url(admin_url: str) -> Iterator[str]:
    url = _new_database(admin_url, "backup_src")
    schema.upgrade(url)
    load_demo_data(url, orgs=2, scale=150, seed=11)
    engine = create_engine(sqlalchemy_url(url))
    with Session(engine, expire_on_commit=False) as db:
        orgs = list(db.query(Organization).order_by(Organization.id))
        for org in orgs:
            user = db.query(User).filter(User.organization_id == org.id).first()
            assert user is not None
            for status in ("completed", "failed", "pending"):
                create_export_job(db, org=org, user=user, status=status)
    engine.dispose()
    asyncio.run(_audit_events(url, [org.id for org in orgs]))
    yield url
    _drop(admin_url, url)


@pytest.fixture
def empty_url(admin_url: str) -> Iterator[str]:
    url = _new_database(admin_url, "restore")
    yield url
    _drop(admin_url, url)


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PIVOTAL_DATABASE_URL": url, "PIVOTAL_LOG_LEVEL": "WARNING"}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def fingerprint(url: str) -> dict[str, tuple[int, str | None]]:
    """Every table's (rows, md5 of its rows in a fixed order); every sequence's value."""
    result: dict[str, tuple[int, str | None]] = {}
    with psycopg.connect(url) as conn:
        conn.execute("SELECT set_config('app.maintenance', 'on', true)")
        for schema_name, table in conn.execute(_TABLES).fetchall():
            query = sql.SQL(
                "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {}.{} AS t"
            ).format(sql.Identifier(schema_name), sql.Identifier(table))
            row = conn.execute(query).fetchone()
            assert row is not None
            result[f"table {table}"] = (int(row[0]), row[1])
        for name, value in conn.execute(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
        ).fetchall():
            result[f"sequence {name}"] = (int(value or 0), None)
    return result


def _assert_meaningful(tables: dict[str, tuple[int, str | None]]) -> None:
    """The comparison covers what matters: jobs, audit chains, rollups, business rows."""
    assert tables["table export_jobs"][0] == 6
    assert tables["table audit_logs"][0] >= 2 * EVENTS_PER_ORG
    assert tables["table audit_chain_heads"][0] == 2
    rollups = [name for name in tables if "rollup" in name and tables[name][0] > 0]
    assert rollups, sorted(tables)
    assert tables["table payments"][0] > 0


def test_backup_to_a_directory_restores_every_table_exactly(
    source_url: str, empty_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "backup"
    done = _cli(source_url, "backup", "--to", str(target))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in target.iterdir()) == ["database.dump", "manifest.json"]
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["alembicRevision"] == schema.head_revision()
    assert manifest["files"]["database.dump"]["bytes"] == (target / "database.dump").stat().st_size
    before = fingerprint(source_url)
    _assert_meaningful(before)
    assert manifest["tableRows"]["public.audit_logs"] == before["table audit_logs"][0]

    restored = _cli(empty_url, "restore", "--from", str(target))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert restored.stdout.count(f"OK ({EVENTS_PER_ORG} rows)") == 2  # audit verify ran
    assert "BROKEN" not in restored.stdout
    assert fingerprint(empty_url) == before


def test_restore_refuses_a_database_that_is_not_empty(
    source_url: str, empty_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "backup"
    assert _cli(source_url, "backup", "--to", str(target)).returncode == 0
    before = fingerprint(source_url)
    refused = _cli(source_url, "restore", "--from", str(target))
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr
    assert fingerprint(source_url) == before
    again = _cli(source_url, "backup", "--to", str(target))  # never overwrites a backup
    assert again.returncode == 1
    assert "not empty" in again.stderr


def test_restore_refuses_a_dump_that_does_not_match_its_manifest(
    source_url: str, empty_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "backup"
    assert _cli(source_url, "backup", "--to", str(target)).returncode == 0
    dump = target / "database.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    refused = _cli(empty_url, "restore", "--from", str(target))
    assert refused.returncode == 1
    assert "does not match its manifest" in refused.stderr
    assert fingerprint(empty_url) == {}  # nothing was restored

    shutil.rmtree(target)
    target.mkdir()
    (target / "database.dump").write_bytes(b"no manifest")
    unfinished = _cli(empty_url, "restore", "--from", str(target))
    assert unfinished.returncode == 1
    assert "manifest.json is missing" in unfinished.stderr


def test_backup_to_s3_round_trips(source_url: str, empty_url: str, s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    location = f"s3://{bucket}/nightly/2026-11-29"
    done = _cli(source_url, "backup", "--to", location)
    assert done.returncode == 0, done.stderr
    client = s3_server.client()
    keys = sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["nightly/2026-11-29/database.dump", "nightly/2026-11-29/manifest.json"]

    restored = _cli(empty_url, "restore", "--from", location)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert fingerprint(empty_url) == fingerprint(source_url)


def test_a_failed_pg_dump_leaves_nothing_behind(
    source_url: str, admin_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(admin_url) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()
    assert row is not None
    tools = tmp_path / "bin"
    tools.mkdir()
    fake = tools / "pg_dump"  # the server's version, but it dies half-way through
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) {row[0]}.0"; exit 0; fi\n'
        "printf 'PGDMP half a dump'\n"
        "echo 'pg_dump: error: connection lost' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    target = tmp_path / "backup"
    done = subprocess.run(
        [CLI, "backup", "--to", str(target)],
        env=os.environ | {"PIVOTAL_DATABASE_URL": source_url, "PIVOTAL_PG_BIN_DIR": str(tools)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "pg_dump failed" in done.stderr
    assert "connection lost" in done.stderr
    assert list(target.iterdir()) == []  # neither the half dump nor a manifest
    assert _cli(source_url, "backup", "--to", str(target)).returncode == 0  # reusable
    assert sorted(p.name for p in target.iterdir()) == ["database.dump", "manifest.json"]
