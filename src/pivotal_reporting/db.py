"""Engine, sessions and the tenant-scoped transaction.

``Database.tenant_session`` (an ORM session) and ``Database.tenant_connection`` (a raw
psycopg connection, for ``COPY``) are the only ways request handlers and tasks read
business tables: both switch to the non-owner role ``pivotal_tenant`` (so row-level security
applies even when we connect as a superuser) and sets ``app.organization_id`` for the
transaction only, so nothing leaks through the pool to the next request.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from pivotal_reporting.config import Settings
from pivotal_reporting.embedded import start_embedded
from pivotal_reporting.rls import TENANT_ROLE

# One round trip: set_config('role', ..., true) is SET LOCAL ROLE.
_ENTER_TENANT = text(
    f"SELECT set_config('role', '{TENANT_ROLE}', true), "
    "set_config('app.organization_id', :org, true)"
)
_READ_ONLY = text("SET TRANSACTION READ ONLY")
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9A-F]+)?$")
_SET_MAINTENANCE = text("SELECT set_config('app.maintenance', 'on', true)")


def resolve_database_url(settings: Settings) -> str:
    """The libpq URL to use: the configured one, else the embedded server's."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir / "pg")


def with_database(libpq_url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(libpq_url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def sqlalchemy_url(libpq_url: str) -> str:
    """``postgresql://...`` → ``postgresql+psycopg://...`` (psycopg 3 driver)."""
    scheme, sep, rest = libpq_url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ValueError("database URL must start with postgresql://")
    return f"postgresql+psycopg://{rest}"


@dataclass
class Database:
    """The application's connection pool and its two kinds of transaction."""

    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 10) -> Database:
        engine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_recycle=1800,
        )
        return cls(
            url=url, engine=engine, sessions=async_sessionmaker(engine, expire_on_commit=False)
        )

    @asynccontextmanager
    async def tenant_session(
        self, organization_id: str, *, snapshot: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """One transaction scoped to ``organization_id``; commits on success.

        ``snapshot``: a read-only REPEATABLE READ transaction, so that all its statements
        see one state of the data (a summary's several queries must add up).
        """
        if not organization_id:
            raise ValueError("organization_id is required for a tenant session")
        async with self.sessions() as session, session.begin():
            if snapshot:
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                await session.execute(_READ_ONLY)
            await session.execute(_ENTER_TENANT, {"org": organization_id})
            yield session

    @asynccontextmanager
    async def tenant_connection(
        self, organization_id: str, snapshot_id: str | None = None
    ) -> AsyncIterator[psycopg.AsyncConnection[object]]:
        """A read-only REPEATABLE READ transaction scoped to ``organization_id``, on the raw
        psycopg connection (for ``COPY``); it ends (rolled back: it wrote nothing) on exit.

        With ``snapshot_id`` (from ``pg_export_snapshot()`` in another transaction) it sees
        exactly the same data as that transaction.
        """
        if not organization_id:
            raise ValueError("organization_id is required for a tenant connection")
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            async with conn.begin():
                if snapshot_id is not None:  # must be the transaction's first statement
                    if not _SNAPSHOT_ID.match(snapshot_id):
                        raise ValueError("invalid snapshot id")
                    await conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")
                await conn.execute(_ENTER_TENANT, {"org": organization_id})
                raw = await conn.get_raw_connection()
                driver: psycopg.AsyncConnection[object] = raw.driver_connection  # type: ignore[assignment]
                yield driver

    @asynccontextmanager
    async def system_session(self) -> AsyncIterator[AsyncSession]:
        """An owner transaction for cross-tenant maintenance (CLI, sweeper).

        Never used to answer a request: it bypasses row-level security.
        """
        async with self.sessions() as session, session.begin():
            await session.execute(_SET_MAINTENANCE)
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
