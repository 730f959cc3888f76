"""Facts about a database that backups record and restores check (psycopg, sync)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

# Every ordinary table outside the system schemas, schema-qualified.
_TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_'
ORDER BY 1, 2
"""
# What makes a database not empty: any relation or routine outside the system schemas.
_USER_OBJECTS = """
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_')
"""


@dataclass(frozen=True)
class ServerFacts:
    database: str
    version: str
    version_num: int

    @property
    def major(self) -> int:
        return self.version_num // 10000


def server_facts(conn: psycopg.Connection[Any]) -> ServerFacts:
    row = conn.execute(
        "SELECT current_database(), current_setting('server_version'), "
        "current_setting('server_version_num')::int"
    ).fetchone()
    assert row is not None
    return ServerFacts(str(row[0]), str(row[1]), int(row[2]))


def table_names(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    return [(str(schema), str(table)) for schema, table in conn.execute(_TABLES).fetchall()]


def table_rows(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """``{"schema.table": rows}`` for every table (the owner sees every tenant's rows)."""
    conn.execute("SELECT set_config('app.maintenance', 'on', true)")
    counts: dict[str, int] = {}
    for schema, table in table_names(conn):
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        row = conn.execute(query).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def alembic_revision(conn: psycopg.Connection[Any]) -> str | None:
    exists = conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


def user_object_count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(_USER_OBJECTS).fetchone()
    return int(row[0]) if row else 0
