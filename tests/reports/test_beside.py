"""fetch_beside: one query of a summary on a second connection, in the same snapshot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pivotal_reporting.db import SIBLING_POOL_SIZE, Database
from pivotal_reporting.reports import service
from pivotal_reporting.reports.base import fetch_all
from pivotal_reporting.reports.beside import SIBLING_KEY, fetch_beside
from tests.factories import create_organization, create_quote

# What a query sees, and which server process and tenant ran it.
SEEN = (
    "SELECT count(*) AS quotes, pg_backend_pid() AS pid, "
    "current_setting('app.organization_id') AS org, current_user AS role FROM quotes"
)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database.connect(database_url, pool_size=2)
    yield database
    asyncio.run(database.dispose())


def test_a_query_beside_runs_elsewhere_in_the_very_snapshot_or_in_the_session_itself(
    db: Session, database: Database
) -> None:
    """Beside: another server process, the tenant scope, and the snapshot of the session
    (a quote committed after it is taken is seen by neither). With every sibling
    connection taken, the query runs in the session itself, and sees the same."""
    org, other = create_organization(db), create_organization(db)
    for _ in range(3):
        create_quote(db, org=org)
    create_quote(db, org=other)

    async def run() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]:
        async with database.tenant_session(org.id, snapshot=True) as session:
            session.info[SIBLING_KEY] = partial(service._sibling, database, org.id)
            mine = (await fetch_all(session, SEEN, {}))[0]
            await asyncio.to_thread(create_quote, db, org=org)  # committed after the snapshot
            async with fetch_beside(session, SEEN, {}) as beside:
                theirs = (await beside())[0]
            assert database.siblings is not None
            async with AsyncExitStack() as taken:  # every sibling connection in use
                for _ in range(SIBLING_POOL_SIZE):
                    await taken.enter_async_context(database.siblings.connect())
                async with fetch_beside(session, SEEN, {}) as beside:
                    fallback = (await beside())[0]
        async with database.tenant_session(org.id) as session:
            now = (await fetch_all(session, SEEN, {}))[0]["quotes"]
        return mine, theirs, fallback, now

    mine, theirs, fallback, now = asyncio.run(run())
    assert mine["quotes"] == theirs["quotes"] == fallback["quotes"] == 3
    assert now == 4
    assert theirs["pid"] != mine["pid"]
    assert fallback["pid"] == mine["pid"]
    assert theirs["org"] == mine["org"] == org.id
    assert theirs["role"] == mine["role"] == "pivotal_tenant"


def test_leaving_the_block_early_ends_the_query_beside_and_keeps_its_connection(
    db: Session, database: Database
) -> None:
    """An error in the block cancels a long query beside it; its connection comes back
    to the sibling pool, ready for the next summary."""
    org = create_organization(db)
    create_quote(db, org=org)

    async def run() -> int:
        async with database.tenant_session(org.id, snapshot=True) as session:
            session.info[SIBLING_KEY] = partial(service._sibling, database, org.id)
            with pytest.raises(ZeroDivisionError):
                await _fail_beside(session, "SELECT pg_sleep(30) AS slept")
            async with fetch_beside(session, SEEN, {}) as beside:
                return int((await beside())[0]["quotes"])

    started = time.monotonic()
    assert asyncio.run(run()) == 1
    assert time.monotonic() - started < 10  # not the 30 s of the sleep
    assert database.siblings is not None
    assert database.siblings.pool.checkedout() == 0  # type: ignore[attr-defined]


async def _fail_beside(session: AsyncSession, sql: str) -> None:
    async with fetch_beside(session, sql, {}):
        await asyncio.sleep(0.2)  # the query has begun beside
        _ = 1 / 0


def test_a_sibling_that_cannot_enter_the_snapshot_is_none_and_its_connection_returned(
    db: Session, database: Database
) -> None:
    """A snapshot that no longer exists (its transaction ended) cannot be imported: no
    sibling, so the caller runs its query itself; nothing is left checked out."""
    org = create_organization(db)

    async def run() -> AsyncSession | None:
        async with database.tenant_session(org.id, snapshot=True) as session:
            gone = (await fetch_all(session, "SELECT pg_export_snapshot() AS id", {}))[0]["id"]
        async with database.snapshot_sibling(org.id, gone) as sibling:
            return sibling

    assert asyncio.run(run()) is None
    assert database.siblings is not None
    assert database.siblings.pool.checkedout() == 0  # type: ignore[attr-defined]
