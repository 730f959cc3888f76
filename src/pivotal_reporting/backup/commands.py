"""The ``backup`` and ``restore`` commands (registered on the CLI in ``cli.py``)."""

from __future__ import annotations

from typing import Annotated

import typer

from pivotal_reporting.config import get_settings
from pivotal_reporting.db import resolve_database_url
from pivotal_reporting.observability.logs import configure_logging


def _database_url() -> str:
    settings = get_settings()
    configure_logging(settings.log_level)
    return resolve_database_url(settings)


def backup(
    to: Annotated[
        str, typer.Option("--to", help="A new (or empty) directory, or s3://bucket/prefix.")
    ],
) -> None:
    """Dump the database (pg_dump, one consistent snapshot) with a manifest of checksums."""
    from pivotal_reporting.backup.service import BackupError, take_backup
    from pivotal_reporting.backup.stores import BackupStoreError

    url = _database_url()
    try:
        manifest = take_backup(url, to, pg_bin_dir=get_settings().pg_bin_dir)
    except (BackupError, BackupStoreError, RuntimeError) as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    dump = next(iter(manifest.files.values()))
    typer.echo(
        f"backup of {manifest.database} (PostgreSQL {manifest.server_version}, migration "
        f"{manifest.alembic_revision}) written to {to}: {sum(manifest.table_rows.values())} rows "
        f"in {len(manifest.table_rows)} tables, dump {dump.bytes} bytes, sha256 {dump.sha256}"
    )


def restore(
    from_: Annotated[str, typer.Option("--from", help="A backup directory or s3://bucket/prefix.")],
) -> None:
    """Restore a backup into the configured, EMPTY database; check row counts and audit chains."""
    from pivotal_reporting.backup.service import BackupError, restore_backup
    from pivotal_reporting.backup.stores import BackupStoreError

    url = _database_url()
    try:
        report = restore_backup(url, from_, pg_bin_dir=get_settings().pg_bin_dir)
    except (BackupError, BackupStoreError, RuntimeError) as exc:
        typer.echo(f"restore refused or failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"restored {sum(report.table_rows.values())} rows in {len(report.table_rows)} tables "
        f"(migration {report.manifest.alembic_revision}, backup of "
        f"{report.manifest.created_at.isoformat()})"
    )
    for table, (expected, found) in report.row_mismatches.items():
        typer.echo(f"row count differs: {table}: backup {expected}, restored {found}", err=True)
    typer.echo("audit verify:")
    for line in report.audit_lines:
        typer.echo(f"  {line}")
    if not report.ok:
        raise typer.Exit(1)
