"""The build side of the rollups: rebuild the stale periods of an organization.

A period is stale when a change was logged within a day of it (``rollup_changes``), or
when it was built in another time zone, by other facet SQL (``Rollup.definition``) or
under other names. ``refresh`` rebuilds those and consumes the log; a change costs
speed until then, never a wrong figure (the request side reads such periods raw).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from pivotal_reporting.db import Database
from pivotal_reporting.reports.rollups.facets import GRAIN_STEPS, Facet, Rollup
from pivotal_reporting.reports.rollups.request import NAMES_VERSION

GRAINS = ("quarter", "month", "day")

_STALE_SQL = """
WITH log AS (
    SELECT id, day FROM rollup_changes
    WHERE organization_id = %(org)s AND report_type = %(report)s
), near AS (
    SELECT day + shift AS day FROM log, (VALUES (-1), (0), (1)) AS s(shift)
    -- periods past the calendar Python knows are never built (read raw)
    WHERE day + shift BETWEEN '0001-01-01' AND '9999-11-30'
), moved AS (
    SELECT grain, period FROM rollup_periods
    WHERE organization_id = %(org)s AND report_type = %(report)s
      AND (timezone <> %(tz)s OR definition <> %(definition)s
           OR names_version <> %(names_version)s)
)
SELECT (SELECT coalesce(array_agg(id), '{}') FROM log) AS ids,
       -- a quarter with a stale day or month in it, or built otherwise itself
       (SELECT coalesce(array_agg(DISTINCT q ORDER BY q), '{}') FROM (
            SELECT date_trunc('quarter', day)::date FROM near
            UNION SELECT date_trunc('quarter', period)::date FROM moved) AS x(q))
           AS quarters,
       (SELECT coalesce(array_agg(DISTINCT m ORDER BY m), '{}') FROM (
            SELECT date_trunc('month', day)::date FROM near
            UNION SELECT period FROM moved WHERE grain = 'month') AS x(m))
           AS months,
       (SELECT coalesce(array_agg(DISTINCT d ORDER BY d), '{}') FROM (
            SELECT day FROM near
            UNION SELECT period FROM moved WHERE grain = 'day') AS x(d))
           AS days
"""

_MARK_BUILT_SQL = """
INSERT INTO rollup_periods
    (organization_id, report_type, grain, period, timezone, definition, names_version)
SELECT %(org)s, %(report)s, %(grain)s, p, %(tz)s, %(definition)s, %(names_version)s
FROM unnest(%(periods)s::date[]) AS p
ON CONFLICT (organization_id, report_type, grain, period)
DO UPDATE SET timezone = excluded.timezone, definition = excluded.definition,
              names_version = excluded.names_version, refreshed_at = now()
"""


def build_ranges(rollup: Rollup, grain: str) -> str:
    """The ranges relation of the ``%(periods)s`` being built: one per period."""
    step = GRAIN_STEPS[grain]
    # A quarter has no one local month: NULL, as when answering a request.
    month = "NULL::date" if grain == "quarter" else "date_trunc('month', p)::date"
    return (
        f"(SELECT * FROM (SELECT p, {month}, "  # noqa: S608 -- reviewed: constants only, values are bound
        f"{rollup.period_range('p', step)} FROM unnest(%(periods)s::date[]) AS p) "
        "AS periods(period, month, lo, hi))"
    )


def insert_facet_sql(rollup: Rollup, f: Facet, grain: str) -> str:
    """Store a facet's groups of the periods being built: each domain-named column of
    its SQL into its ``report_rollups`` column (``Facet.stored``)."""
    return (
        sql.SQL(
            "INSERT INTO report_rollups "
            "(organization_id, report_type, facet, grain, period, {stored}) "
            "SELECT %(org)s, %(report)s, {facet}, %(grain)s, period, {names} "
            "FROM ({select}) AS built"
        )
        .format(
            stored=sql.SQL(", ").join(map(sql.Identifier, f.stored.values())),
            facet=sql.Literal(f.name),
            names=sql.SQL(", ").join(map(sql.Identifier, f.stored)),
            select=sql.SQL(f.select(build_ranges(rollup, grain))),
        )
        .as_string(None)
    )


async def refresh(rollup: Rollup, connection: AsyncConnection, organization_id: str) -> int:
    """Rebuild this organization's stale periods of ``rollup``; the number rebuilt.

    Runs in its own REPEATABLE READ transaction on ``connection`` (so the log rows it
    consumes are exactly those its rebuild has seen), serialized per organization and
    report by a session advisory lock taken before the snapshot.
    """
    lock = {"key": rollup.lock_key(organization_id)}
    await connection.execute(text("SELECT pg_advisory_lock(hashtextextended(:key, 0))"), lock)
    await connection.commit()
    try:
        return await _rebuild(rollup, connection, organization_id)
    finally:
        await connection.rollback()
        await connection.execute(text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"), lock)
        await connection.commit()


async def _rebuild(rollup: Rollup, connection: AsyncConnection, organization_id: str) -> int:
    await connection.execution_options(isolation_level="REPEATABLE READ")
    run = connection.exec_driver_sql
    params: dict[str, Any] = {
        "org": organization_id,
        "report": rollup.report_type,
        "definition": rollup.definition,
    }
    await run("SELECT set_config('app.maintenance', 'on', true)")
    tz_row = (await run("SELECT timezone FROM organizations WHERE id = %(org)s", params)).first()
    if tz_row is None:  # the organization is gone: so is its log
        await run(
            "DELETE FROM rollup_changes WHERE organization_id = %(org)s "
            "AND report_type = %(report)s",
            params,
        )
        await connection.commit()
        return 0
    params["tz"] = tz_row[0]
    params["names_version"] = (await run(f"SELECT {NAMES_VERSION}", params)).scalar_one()
    stale = (await run(_STALE_SQL, params)).mappings().one()
    ids, months, days = list(stale["ids"]), list(stale["months"]), list(stale["days"])
    quarters = list(stale["quarters"]) if rollup.quarterly else []
    if not months and not days and not quarters:
        await connection.commit()
        return 0
    params.update(ids=ids, quarter=quarters, month=months, day=days)
    for grain in GRAINS:
        await _rebuild_grain(rollup, run, grain, params)
    await run("DELETE FROM rollup_changes WHERE id = ANY(%(ids)s::bigint[])", params)
    await connection.commit()
    return len(quarters) + len(months) + len(days)


async def _rebuild_grain(rollup: Rollup, run: Any, grain: str, params: dict[str, Any]) -> None:
    """Replace the groups of the ``params[grain]`` periods and mark them built."""
    grain_params = {**params, "grain": grain, "periods": params[grain]}
    if not grain_params["periods"]:
        return
    await run(
        "DELETE FROM report_rollups WHERE organization_id = %(org)s "
        "AND report_type = %(report)s AND grain = %(grain)s "
        "AND period = ANY(%(periods)s::date[])",
        grain_params,
    )
    for f in rollup.facets:
        if (grain == "day" and not f.daily) or (grain == "quarter" and not f.quarterly):
            continue
        await run(insert_facet_sql(rollup, f, grain), grain_params)
    await run(_MARK_BUILT_SQL, grain_params)


_CHANGED_ORGANIZATIONS_SQL = """
SELECT DISTINCT organization_id FROM rollup_changes
UNION SELECT DISTINCT rp.organization_id FROM rollup_periods rp
JOIN organizations o ON o.id = rp.organization_id
LEFT JOIN unnest(%(reports)s::text[], %(definitions)s::text[])
    AS d(report_type, definition) ON d.report_type = rp.report_type
LEFT JOIN rollup_name_versions v ON v.organization_id = rp.organization_id
WHERE o.timezone <> rp.timezone OR d.definition IS DISTINCT FROM rp.definition
   OR rp.names_version <> coalesce(v.version, 0)
"""


async def refresh_rollups(
    database: Database,
    rollups: Sequence[Rollup],
    organization_ids: Sequence[str] | None = None,
) -> Mapping[str, int]:
    """Refresh every given rollup for the organizations (default: those with changes).

    Returns periods (quarters, months and days) rebuilt per report type.
    """
    rebuilt: dict[str, int] = {}
    async with database.engine.connect() as connection:
        if organization_ids is None:
            await connection.exec_driver_sql("SELECT set_config('app.maintenance', 'on', true)")
            result = await connection.exec_driver_sql(
                _CHANGED_ORGANIZATIONS_SQL,
                {
                    "reports": [r.report_type for r in rollups],
                    "definitions": [r.definition for r in rollups],
                },
            )
            organization_ids = [row[0] for row in result.all()]
            await connection.commit()
        for rollup in rollups:
            for organization_id in organization_ids:
                periods = await refresh(rollup, connection, organization_id)
                rebuilt[rollup.report_type] = rebuilt.get(rollup.report_type, 0) + periods
    if any(rebuilt.values()):
        # Requests read months by index-only scans: mark the new pages all-visible.
        async with database.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("VACUUM report_rollups")
    return rebuilt
