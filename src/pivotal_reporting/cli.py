"""``pivotal-reporting``: serve | worker | migrate | demo-data | token | cleanup | audit | db."""

from __future__ import annotations

import asyncio
import shlex
import signal
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
db_app = typer.Typer(help="The embedded PostgreSQL under PIVOTAL_DATA_DIR.", no_args_is_help=True)
app.add_typer(db_app, name="db")
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
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="API processes sharing the port (default: PIVOTAL_API_WORKERS, else 1).",
        ),
    ] = None,
) -> None:
    """Migrate, optionally load demo data, and serve the API (with an in-process worker).

    With ``--workers N`` (N > 1) N processes accept on the one port; exactly one of them
    runs the in-process export worker, and ``/metrics`` aggregates all of them.

    SIGTERM or SIGINT stops it cleanly (exit 0), and with it the embedded PostgreSQL
    unless another process still uses that.
    """
    from pivotal_reporting.app import create_app
    from pivotal_reporting.serving import (
        PortUnavailable,
        bind_listener,
        cleanup_workers,
        prepare_workers,
        run_until_stopped,
        run_workers,
        uvicorn_config,
    )

    settings = get_settings()
    processes = workers or settings.api_workers
    run_dir: Path | None = None
    try:  # first: a busy port fails before any database work or printed token
        listener = bind_listener(host, port)
        if settings.metrics_port is not None:
            metrics_listener = bind_listener(settings.metrics_addr, settings.metrics_port)
            metrics_listener.close()  # free again for prometheus_client, just below
    except PortUnavailable as exc:
        typer.echo(f"pivotal-reporting serve: {exc}", err=True)
        raise typer.Exit(1) from exc
    # Until uvicorn runs, SIGTERM interrupts like Ctrl-C, so the cleanup below still runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        url = _setup(settings)
        if processes > 1:  # before the metrics listener: it aggregates the processes' files
            run_dir = prepare_workers(url)
        if settings.metrics_port is not None:
            from pivotal_reporting.observability.exposition import start_metrics_server

            start_metrics_server(settings.metrics_port, addr=settings.metrics_addr)
        schema.upgrade(url)
        _announce(settings, url, host, port, demo=demo)
        if processes > 1:
            run_workers(settings, host=host, port=port, listener=listener, workers=processes)
        else:
            app = create_app(settings, database_url=url)
            run_until_stopped(uvicorn_config(app, settings, host=host, port=port), listener)
    finally:
        listener.close()
        if run_dir is not None:
            cleanup_workers(run_dir)
        if not settings.database_url:
            from pivotal_reporting.embedded import release_embedded

            release_embedded(settings.data_dir / "pg")


def _announce(settings: Settings, url: str, host: str, port: int, *, demo: bool) -> None:
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    if not demo:
        typer.echo(f"Pivotal Flow Reporting on {base}  (docs: {base}/docs)")
        return
    from pivotal_reporting.demo import DEMO_ORG_ID, DEMO_USER_ID, ensure_demo_data

    ensure_demo_data(url)
    token = _mint(settings, url, DEMO_USER_ID, timedelta(days=1))
    typer.echo(f"\nPivotal Flow Reporting on {base}  (docs: {base}/docs)")
    typer.echo(
        f"Demo organization {DEMO_ORG_ID}, user {DEMO_USER_ID}; bearer token (24 h):\n\n{token}\n"
    )
    header = shlex.quote(f"Authorization: Bearer {token}")
    typer.echo(f"Try:\n  curl -s -H {header} {base}/v1/me\n")
    typer.echo("Stop with Ctrl-C (or SIGTERM); the embedded PostgreSQL stops with it.\n")
    link = _signin_link(url, base, DEMO_USER_ID, timedelta(days=1), timedelta(hours=1))
    typer.echo(f"Open the dashboard, signed in as the demo admin (one-time link, 1 h):\n\n{link}\n")


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
        typer.Option(
            "--metrics-port",
            help="Serve this worker's Prometheus metrics on this port "
            "(default PIVOTAL_METRICS_PORT), bound to PIVOTAL_METRICS_ADDR (127.0.0.1).",
        ),
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
    from pivotal_reporting.worker import WorkerOptions, run_standalone

    settings = get_settings()
    url = _setup(settings)
    metrics_port = metrics_port or settings.metrics_port
    if metrics_port is not None:
        from pivotal_reporting.observability.exposition import start_metrics_server

        start_metrics_server(metrics_port, addr=settings.metrics_addr)
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
    try:
        return mint_token(
            settings, user_id=user_id, organization_id=organization_id, expires_in=expires_in
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


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


def _signin_link(
    url: str, base: str, user_id: str, session_lifetime: timedelta, link_lifetime: timedelta
) -> str:
    from pivotal_reporting.auth.sessions import issue_signin_link_blocking

    code = issue_signin_link_blocking(
        url, user_id, session_lifetime=session_lifetime, link_lifetime=link_lifetime
    )
    if code is None:
        typer.echo(f"no active user with id {user_id!r}", err=True)
        raise typer.Exit(1)
    return f"{base.rstrip('/')}/signin?code={code}"


@app.command("login-link")
def login_link(
    user: Annotated[str, typer.Option("--user", help="The user's id.")],
    base_url: Annotated[
        str, typer.Option("--base-url", help="Where the dashboard is served.")
    ] = "http://127.0.0.1:8000",
    session_hours: Annotated[
        float, typer.Option("--session-hours", help="How long the browser session lasts.", min=0.01)
    ] = 8.0,
    expires_in: Annotated[
        int, typer.Option("--expires-in", help="Seconds the link stays usable (once).", min=1)
    ] = 900,
) -> None:
    """Print a one-time sign-in link to the dashboard for an existing user."""
    url = _setup(get_settings())
    typer.echo(
        _signin_link(
            url, base_url, user, timedelta(hours=session_hours), timedelta(seconds=expires_in)
        )
    )


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


@db_app.command("stop")
def db_stop(
    force: Annotated[
        bool, typer.Option("--force", help="Stop it even while serve/worker processes use it.")
    ] = False,
) -> None:
    """Stop the embedded PostgreSQL (also one left running by a killed serve)."""
    from pivotal_reporting.embedded import EmbeddedInUse, stop_embedded

    settings = get_settings()
    pgdata = settings.data_dir / "pg"
    try:
        result = stop_embedded(pgdata, force=force)
    except EmbeddedInUse as exc:
        typer.echo(f"not stopped: {exc}", err=True)
        raise typer.Exit(1) from exc
    if result.postmaster_pid is None:
        typer.echo(f"no embedded PostgreSQL running under {pgdata}")
    else:
        typer.echo(f"embedded PostgreSQL under {pgdata} stopped (pid {result.postmaster_pid})")


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
