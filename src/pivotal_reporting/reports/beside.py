"""One query of a summary run beside the others, in a second transaction that sees the
very same snapshot.

A summary's queries run in one REPEATABLE READ snapshot (service.py), one after the
other on one connection. Where one of them takes as long as the rest together (ten
thousand customers' counts), ``fetch_beside`` runs it on a second connection that
imports the snapshot (``pg_export_snapshot``, ``SET TRANSACTION SNAPSHOT``), so the two
halves use the machine's two cores and the figures still add up exactly. The session
offers such a sibling only when ``service.py`` put an opener in its ``info`` (a snapshot
on the primary); without one, or when no sibling connection is free, the query runs in
the session itself when its rows are asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.reports.base import fetch_all

Rows = list[dict[str, Any]]
# session.info key: snapshot id -> an async context manager of a sibling session (or None).
SIBLING_KEY = "pivotal_snapshot_sibling"
SiblingOpener = Callable[[str], AbstractAsyncContextManager[AsyncSession | None]]


@asynccontextmanager
async def fetch_beside(
    session: AsyncSession, sql: str, params: Mapping[str, Any]
) -> AsyncIterator[Callable[[], Awaitable[Rows]]]:
    """``fetch_all(session, sql, params)`` started now, beside what the block runs on
    ``session``; the block awaits the rows by calling what it is given. Left early (an
    error), the query is cancelled and its transaction ended before the snapshot's."""
    opener: SiblingOpener | None = session.info.get(SIBLING_KEY)
    if opener is None:
        yield lambda: fetch_all(session, sql, params)
        return
    snapshot_id = (await session.execute(text("SELECT pg_export_snapshot()"))).scalar_one()

    async def run() -> Rows | None:
        async with opener(snapshot_id) as sibling:
            return None if sibling is None else await fetch_all(sibling, sql, params)

    # The snapshot stays importable while this session's transaction is open: the
    # task is awaited or cancelled below, before the session goes on to end it.
    task = asyncio.create_task(run())

    async def rows() -> Rows:
        found = await task
        return await fetch_all(session, sql, params) if found is None else found

    try:
        yield rows
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):  # the block's error wins
            await task
