"""Taking a backup (pg_dump in one exported snapshot) and restoring one (pg_restore, checks).

``take_backup``: a REPEATABLE READ transaction exports its snapshot, reads the Alembic
revision and every table's row count in it, and keeps it open while ``pg_dump
--snapshot`` dumps exactly that state (custom format, streamed to the store). The
manifest is written last.

``restore_backup``: refuses anything but an empty database and a dump whose size and
SHA-256 match its manifest; creates the tenant role; runs ``pg_restore`` in one
transaction (all or nothing); then compares every table's row count with the manifest
and verifies every organization's audit chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg

from pivotal_reporting.backup import catalog
from pivotal_reporting.backup.manifest import DUMP_NAME, MANIFEST_NAME, FileEntry, Manifest
from pivotal_reporting.backup.postgres_tools import connection_args, matching_tool
from pivotal_reporting.backup.stores import BackupStore, open_store
from pivotal_reporting.rls import create_tenant_role

HASH_CHUNK_BYTES = 1024 * 1024


class BackupError(RuntimeError):
    """A backup or restore that must not go on; the message says why."""


@dataclass
class RestoreReport:
    manifest: Manifest
    table_rows: dict[str, int]
    row_mismatches: dict[str, tuple[int, int]] = field(default_factory=dict)
    audit_lines: list[str] = field(default_factory=list)
    audit_ok: bool = True

    @property
    def ok(self) -> bool:
        return not self.row_mismatches and self.audit_ok


def take_backup(url: str, location: str, *, pg_bin_dir: Path | None = None) -> Manifest:
    """Dump the database at ``url`` to ``location`` (a directory or ``s3://bucket/prefix``)."""
    store = open_store(location)
    store.ensure_new()
    with psycopg.connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert snapshot is not None
        facts = catalog.server_facts(conn)
        revision = catalog.alembic_revision(conn)
        rows = catalog.table_rows(conn)
        tool = matching_tool("pg_dump", facts.major, pg_bin_dir)
        try:
            written = _run_pg_dump(tool.path, url, str(snapshot[0]), store)
        except BaseException:
            store.discard(DUMP_NAME)  # no half dump left to mistake for a backup
            raise
    manifest = Manifest(
        created_at=datetime.now(UTC),
        database=facts.database,
        server_version=facts.version,
        server_version_num=facts.version_num,
        alembic_revision=revision,
        pg_dump_version=tool.version,
        files={DUMP_NAME: written},
        table_rows=rows,
    )
    store.write_text(MANIFEST_NAME, manifest.to_json())
    return manifest


def _run_pg_dump(pg_dump: Path, url: str, snapshot: str, store: BackupStore) -> FileEntry:
    dump_url, env = connection_args(url)
    args = [
        str(pg_dump),
        "--format=custom",
        f"--snapshot={snapshot}",
        "--enable-row-security",  # with app.maintenance=on: every tenant's rows
        "--no-password",
        f"--dbname={dump_url}",
    ]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, env=env)
        try:
            stdout: IO[bytes] = process.stdout  # type: ignore[assignment]
            written = store.write_stream(DUMP_NAME, stdout)
        except BaseException:
            process.kill()
            process.wait()
            raise
        if process.wait() != 0:
            raise BackupError(f"pg_dump failed: {_tail(errors)}")
    return FileEntry(bytes=written.bytes, sha256=written.sha256)


def restore_backup(url: str, location: str, *, pg_bin_dir: Path | None = None) -> RestoreReport:
    """Restore the backup at ``location`` into the EMPTY database at ``url``, then check it."""
    store = open_store(location)
    try:
        manifest = Manifest.from_json(store.read_text(MANIFEST_NAME))
    except ValueError as exc:
        raise BackupError(f"{store.describe()}: invalid manifest: {exc}") from exc
    _check_revision(manifest.alembic_revision)
    with psycopg.connect(url, autocommit=True) as conn:
        facts = catalog.server_facts(conn)
        objects = catalog.user_object_count(conn)
        if objects:
            raise BackupError(
                f"database {facts.database} is not empty ({objects} tables, sequences, "
                "functions...): restore only into a new, empty database"
            )
        conn.execute(create_tenant_role())  # a role is per server: pg_dump leaves it out
    tool = matching_tool("pg_restore", max(facts.major, manifest.server_version_num // 10000))
    with store.local_copy(DUMP_NAME) as dump:
        _check_file(dump, manifest.files[DUMP_NAME])
        _run_pg_restore(tool.path, url, dump)
    with psycopg.connect(url) as conn:
        restored = catalog.table_rows(conn)
    report = RestoreReport(manifest, restored)
    for table in sorted(set(manifest.table_rows) | set(restored)):
        expected, found = manifest.table_rows.get(table, -1), restored.get(table, -1)
        if expected != found:
            report.row_mismatches[table] = (expected, found)
    report.audit_ok, report.audit_lines = asyncio.run(verify_audit_chains(url))
    return report


def _check_revision(revision: str | None) -> None:
    from alembic.util import CommandError

    from pivotal_reporting import schema

    if revision is None:
        raise BackupError("the backup has no Alembic revision: not a pivotal-reporting database")
    try:
        known = schema.script_revision(revision)
    except CommandError:
        known = False
    if not known:
        raise BackupError(
            f"the backup is at migration {revision}, unknown to this version: "
            "restore it with the release that wrote it"
        )


def _check_file(path: Path, entry: FileEntry) -> None:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    if (size, digest.hexdigest()) != (entry.bytes, entry.sha256):
        raise BackupError(
            f"{path.name} does not match its manifest (size {size} vs {entry.bytes}, "
            f"sha256 {digest.hexdigest()} vs {entry.sha256}): refusing to restore"
        )


def _run_pg_restore(pg_restore: Path, url: str, dump: Path) -> None:
    restore_url, env = connection_args(url)
    args = [
        str(pg_restore),
        "--exit-on-error",
        "--single-transaction",  # all or nothing
        "--no-owner",  # objects belong to the restoring role, the app's owner
        "--enable-row-security",
        "--no-password",
        f"--dbname={restore_url}",
        str(dump),
    ]
    done = subprocess.run(args, capture_output=True, env=env, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.decode(errors='replace')[-2000:]}")


async def verify_audit_chains(url: str) -> tuple[bool, list[str]]:
    """``audit verify`` over every organization: (all intact, one line per organization)."""
    from sqlalchemy import text

    from pivotal_reporting.audit.verify import verify_chain
    from pivotal_reporting.db import Database

    database = Database.connect(url, pool_size=1)
    lines: list[str] = []
    ok = True
    try:
        async with database.system_session() as session:
            orgs = (
                await session.execute(text("SELECT id FROM organizations ORDER BY id"))
            ).scalars()
            for organization_id in list(orgs):
                report = await verify_chain(session, organization_id)
                if report.first_break is None:
                    lines.append(f"{organization_id}: OK ({report.rows_checked} rows)")
                else:
                    ok = False
                    brk = report.first_break
                    lines.append(f"{organization_id}: BROKEN at seq {brk.seq}: {brk.reason}")
    finally:
        await database.dispose()
    return ok, lines


def _tail(errors: Any) -> str:
    errors.seek(0)
    return str(errors.read().decode(errors="replace")[-2000:])
