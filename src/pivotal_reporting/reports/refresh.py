"""Keeping the monthly rollups fresh (rollups.py): on the queue every minute, after a
demo load, and from the CLI (``pivotal-reporting rollups refresh``).

A month that is not refreshed yet is read from the source rows, so these only decide
how fast summaries are, never what they say.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from pivotal_reporting.db import Database
from pivotal_reporting.reports.registry import ROLLUPS
from pivotal_reporting.reports.rollups import refresh_rollups


async def refresh_all(
    database: Database, organization_ids: Sequence[str] | None = None
) -> Mapping[str, int]:
    """Rebuild the stale months of every report (of ``organization_ids``, else of every
    organization with logged changes); months rebuilt per report type."""
    return await refresh_rollups(database, ROLLUPS, organization_ids)


def refresh_all_blocking(
    url: str, organization_ids: Sequence[str] | None = None
) -> Mapping[str, int]:
    """``refresh_all`` for synchronous callers (the demo loader, the CLI)."""

    async def run() -> Mapping[str, int]:
        database = Database.connect(url, pool_size=1)
        try:
            return await refresh_all(database, organization_ids)
        finally:
            await database.dispose()

    return asyncio.run(run())
