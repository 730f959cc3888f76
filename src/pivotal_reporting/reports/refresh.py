"""Keeping every report's rollups fresh (the catalog, ``registry.ROLLUPS``): on the queue
every minute (``tasks.py``), after a demo load, and from the CLI (``pivotal-reporting
rollups refresh``). It lives beside the registry, not in ``rollups/``: the rollups
package knows how to build one rollup, the registry knows which rollups there are.

A month that is not refreshed yet is read from the source rows, so these only decide
how fast summaries are, never what they say.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from sqlalchemy import text

from pivotal_reporting.db import Database
from pivotal_reporting.reports.registry import ROLLUPS
from pivotal_reporting.reports.rollups.build import refresh_rollups


async def refresh_all(
    database: Database, organization_ids: Sequence[str] | None = None
) -> Mapping[str, int]:
    """Rebuild the stale months of every report (of ``organization_ids``, else of every
    organization with logged changes); months rebuilt per report type."""
    return await refresh_rollups(database, ROLLUPS, organization_ids)


async def rebuild_all(database: Database, organization_ids: Sequence[str]) -> Mapping[str, int]:
    """Drop the organizations' rollups and build them again from every source row.

    For writes the triggers did not see: a bulk load with ``session_replication_role =
    replica`` (the demo loader's), or a restore.
    """
    async with database.system_session() as session:
        orgs = {"orgs": list(organization_ids)}
        # Wait for (and then keep out) refreshes of these organizations: one that read
        # the rows before a trigger-less load must not commit its periods after this.
        for rollup in ROLLUPS:
            for organization_id in organization_ids:
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                    {"key": rollup.lock_key(organization_id)},
                )
        for table in ("report_rollups", "rollup_periods", "rollup_changes"):
            await session.execute(
                text(f"DELETE FROM {table} WHERE organization_id = ANY(:orgs)"),  # noqa: S608 -- reviewed: constants only, values are bound
                orgs,
            )
        for rollup in ROLLUPS:
            await session.execute(
                text(
                    "INSERT INTO rollup_changes (organization_id, report_type, day) "  # noqa: S608 -- reviewed: constants only, values are bound
                    f"SELECT DISTINCT organization_id, :report, {rollup.source_day} "
                    f"FROM {rollup.source} WHERE organization_id = ANY(:orgs) "
                    f"AND {rollup.source_day} IS NOT NULL"
                ),
                {**orgs, "report": rollup.report_type},
            )
    return await refresh_all(database, organization_ids)


def refresh_all_blocking(
    url: str, organization_ids: Sequence[str] | None = None, *, rebuild: bool = False
) -> Mapping[str, int]:
    """``refresh_all`` (or, with ``rebuild``, ``rebuild_all``) for synchronous callers."""

    async def run() -> Mapping[str, int]:
        database = Database.connect(url, pool_size=1)
        try:
            if rebuild:
                if organization_ids is None:
                    raise ValueError("a rebuild names its organizations")
                return await rebuild_all(database, organization_ids)
            return await refresh_all(database, organization_ids)
        finally:
            await database.dispose()

    return asyncio.run(run())
