"""``pivotal-reporting``: serve | worker | migrate | demo-data | token | cleanup | audit."""

from __future__ import annotations

import asyncio
import shlex
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from pivotal_reporting import schema
from pivotal_reporting.backup import commands as backup_commands
from pivotal_reporting.config import Settings, get_settings
from pivotal_reporting.db import Database, resolve_database_url
from pivotal_reporting.observability.logs import configure_logging

app = typer.Typer(
    help="Pivotal Flow Reporting: compliance summaries and governed exports.", no_args_is_help=True
)
audit_app = typer.Typer(help="Audit log tools.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
rollups_app = typer.Typer(help="Report rollup tools.", no_args_is_help=True)
app.add_typer(rollups_app, name="rollups")
app.command("backup")(backup_commands.backup)
app.command("restore")(backup_commands.restore)


def _setup(settings: Settings) -> str:
    configure_logging(settings.log_level)  # one JSON object per line
    return resolve_database_url(settings)


@app.command()
def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Fail if models and migrations differ.")
    ] = False,
) -> None:
    """Apply Alembic migrations up to head (or, with --check, fail on drift)."""
    url = _setup(get_settings())
    schema.upgrade(url)
    if check:
        drift = schema.pending_drift(url)
        if drift:
            typer.echo(
                f"schema drift: {len(drift)} difference(s) between models and migrations", err=True
            )
            for item in drift:
                typer.echo(f"  {item}", err=True)
            raise typer.Exit(1)
    typer.echo(f"database at migration head {schema.head_revision()}")


@app.command()
def serve(
    demo: Annotated[bool, typer.Option("--demo", help="Load demo data first (once).")] = False,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Migrate, optionally load demo data, and serve the API (with an in-process worker)."""
    import uvicorn

    from pivotal_reporting.app import create_app

    settings = get_settings()
    url = _setup(settings)
    schema.upgrade(url)
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    if demo:
        from pivotal_reporting.demo import DEMO_ORG_ID, DEMO_USER_ID, ensure_demo_data

        ensure_demo_data(url)
        token = _mint(settings, url, DEMO_USER_ID, timedelta(days=1))
        typer.echo(f"\nPivotal Flow Reporting on {base}  (docs: {base}/docs)")
        typer.echo(
            f"Demo organization {DEMO_ORG_ID}, user {DEMO_USER_ID}; bearer token (24 h):\n\n{token}\n"
        )
        header = shlex.quote(f"Authorization: Bearer {token}")
        typer.echo(f"Try:\n  curl -s -H {header} {base}/v1/me\n")
    else:
        typer.echo(f"Pivotal Flow Reporting on {base}  (docs: {base}/docs)")
    # log_config=None: keep our JSON logging; the middleware writes the access lines.
    uvicorn.run(
        create_app(settings, database_url=url),
        host=host,
        port=port,
        log_level="info",
        log_config=None,
    )


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", help="Export jobs run at once.", min=1, max=64),
    ] = None,
    name: Annotated[
        str, typer.Option(help="Worker name in logs and the queue's worker table.")
    ] = "exports",
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", help="Serve this worker's Prometheus metrics on this port."),
    ] = None,
    heartbeat: Annotated[float, typer.Option(help="Seconds between heartbeats.", min=0.1)] = 10.0,
    stalled_after: Annotated[
        float,
        typer.Option(
            help="Seconds without heartbeat after which a worker's jobs are re-queued.", min=1
        ),
    ] = 30.0,
) -> None:
    """Run a standalone export worker (any number, on any machine sharing the database)."""
    from pivotal_reporting.exports.worker import WorkerOptions, run_standalone

    settings = get_settings()
    url = _setup(settings)
    if metrics_port is not None:
        from pivotal_reporting.observability.exposition import start_metrics_server

        start_metrics_server(metrics_port)
    options = WorkerOptions(
        concurrency=concurrency or settings.worker_concurrency,
        name=name,
        heartbeat_seconds=heartbeat,
        stalled_after_seconds=stalled_after,
    )
    typer.echo(f"export worker {name}: concurrency {options.concurrency}")
    asyncio.run(run_standalone(url, settings, options))


def _mint(settings: Settings, url: str, user_id: str, expires_in: timedelta) -> str:
    from sqlalchemy import text

    from pivotal_reporting.auth.tokens import mint_token

    async def lookup() -> str | None:
        database = Database.connect(url, pool_size=1)
        try:
            async with database.system_session() as session:
                org: str | None = (
                    await session.execute(
                        text("SELECT organization_id FROM users WHERE id = :id"), {"id": user_id}
                    )
                ).scalar()
                return org
        finally:
            await database.dispose()

    organization_id = asyncio.run(lookup())
    if organization_id is None:
        typer.echo(f"no user with id {user_id!r}", err=True)
        raise typer.Exit(1)
    return mint_token(
        settings, user_id=user_id, organization_id=organization_id, expires_in=expires_in
    )


@app.command()
def token(
    user: Annotated[str, typer.Option("--user", help="The user's id.")],
    expires_in: Annotated[
        int, typer.Option("--expires-in", help="Lifetime in seconds.", min=1)
    ] = 3600,
) -> None:
    """Mint a bearer token for an existing user."""
    settings = get_settings()
    url = _setup(settings)
    typer.echo(_mint(settings, url, user, timedelta(seconds=expires_in)))


@app.command("demo-data")
def demo_data(
    orgs: Annotated[int, typer.Option(help="Number of organizations.", min=1, max=50)] = 3,
    scale: Annotated[
        int, typer.Option(help="Rows per business table in the first organization.", min=10)
    ] = 5000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same data.")] = 42,
) -> None:
    """Load deterministic, realistic demo data (replaces earlier demo data)."""
    import time

    from pivotal_reporting.demo import load_demo_data

    url = _setup(get_settings())
    schema.upgrade(url)
    started = time.perf_counter()
    summary = load_demo_data(url, orgs=orgs, scale=scale, seed=seed)
    typer.echo(f"{summary}\nloaded in {time.perf_counter() - started:.1f} s")


@app.command()
def cleanup(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would be removed.")
    ] = False,
) -> None:
    """Apply retention once (for cron): expire export files, delete old jobs and orphans."""
    from pivotal_reporting.retention.service import describe, run_cleanup

    settings = get_settings()
    url = _setup(settings)
    report = asyncio.run(run_cleanup(url, settings, dry_run=dry_run))
    for line in describe(report):
        typer.echo(line)


@rollups_app.command("refresh")
def rollups_refresh(
    org: Annotated[
        list[str] | None, typer.Option("--org", help="Only these organizations (repeatable).")
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild", help="Drop and rebuild everything (after writes with triggers off)."
        ),
    ] = False,
) -> None:
    """Rebuild the report rollups' stale periods now (the worker does it every minute)."""
    from pivotal_reporting.reports.refresh import refresh_all_blocking

    if rebuild and not org:
        raise typer.BadParameter("--rebuild needs --org", param_hint="--org")
    url = _setup(get_settings())
    for report_type, periods in refresh_all_blocking(url, org or None, rebuild=rebuild).items():
        typer.echo(f"{report_type}: {periods} periods rebuilt")


@audit_app.command("verify")
def audit_verify(
    org: Annotated[
        str | None, typer.Option("--org", help="One organization (default: all).")
    ] = None,
) -> None:
    """Recompute each organization's hash chain; report the first broken row."""
    from sqlalchemy import text

    from pivotal_reporting.audit.verify import verify_chain

    url = _setup(get_settings())

    async def run() -> bool:
        database = Database.connect(url, pool_size=1)
        try:
            async with database.system_session() as session:
                if org:
                    orgs = [org]
                else:
                    orgs = list(
                        (
                            await session.execute(text("SELECT id FROM organizations ORDER BY id"))
                        ).scalars()
                    )
                all_ok = True
                for organization_id in orgs:
                    report = await verify_chain(session, organization_id)
                    if report.first_break is None:
                        typer.echo(f"{organization_id}: OK ({report.rows_checked} rows)")
                    else:
                        brk = report.first_break
                        all_ok = False
                        typer.echo(
                            f"{organization_id}: BROKEN at seq {brk.seq} (audit_logs.id {brk.audit_log_id}): "
                            f"{brk.reason}; {report.rows_checked} rows verified before it"
                        )
                return all_ok
        finally:
            await database.dispose()

    if not asyncio.run(run()):
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    org: Annotated[str, typer.Option("--org", help="The organization's id.")],
    from_: Annotated[
        str | None, typer.Option("--from", help="Start (inclusive), ISO-8601 with offset.")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="End (exclusive), ISO-8601 with offset.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Write the organization's events as JSON lines with their chain hashes (seq order)."""
    from pivotal_reporting.audit.export import export_to_path, parse_aware
    from pivotal_reporting.audit.repository import AuditFilters

    try:
        filters = AuditFilters(from_at=parse_aware(from_, "--from"), to_at=parse_aware(to, "--to"))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    url = _setup(get_settings())
    count = asyncio.run(export_to_path(url, org, filters, output))
    typer.echo(f"{org}: {count} audit events exported", err=True)
