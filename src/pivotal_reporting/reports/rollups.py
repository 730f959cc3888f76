"""Monthly rollups: whole months of a window read pre-grouped, the rest from the rows.

A report's summary groups its window's rows into a few **facets** (histogram bins,
counts per project, ...), then adds the groups up. Those partial aggregates can be
computed once per local calendar month and stored (``report_rollups``, migration 0007):
a one-year window then reads twelve months of groups plus the rows of its partial
edge days, instead of half a million rows.

Exactness is the contract, so a month is only read from the rollup when it is
**fresh**: built in the organization's current time zone and with no change logged
(``rollup_changes``, written by statement triggers on the source tables) within a day
of it. Everything else in the window (the edges, stale or unbuilt months) is read from
the source rows by the very same facet SQL, so both halves add up alike. A stale month
costs speed, never a wrong figure; ``refresh`` (the periodic task, the CLI and the demo
loader) rebuilds stale months and consumes the log.

Each facet's SQL reads its rows through ``{ranges}``: a relation ``r(month, lo, hi)``
of half-open ranges of the window column, with ``month`` the rollup month being built
or NULL when answering a request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pivotal_reporting.db import Database
from pivotal_reporting.reports.base import fetch_all

_EARLIEST_INSTANT = datetime(1, 1, 2, tzinfo=UTC)
_LATEST_INSTANT = datetime(9999, 12, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Facet:
    """One grouped partial aggregate of a report: its SQL and the rollup columns it fills.

    ``sql`` selects ``month`` and then exactly ``columns`` (names of ``report_rollups``
    columns), grouped by month and its keys, from rows in ``{ranges}``.
    """

    name: str
    columns: tuple[str, ...]
    sql: str


@dataclass(frozen=True)
class Rollup:
    """The rollup of one report: the kind of its window column and its facets."""

    report_type: str
    instant: bool  # True: a timestamptz window column; False: a calendar date
    facets: tuple[Facet, ...]

    def facet(self, name: str) -> Facet:
        return next(f for f in self.facets if f.name == name)

    @property
    def _bound_type(self) -> str:
        return "timestamptz" if self.instant else "date"

    def _month_range(self, month: str) -> str:
        """``lo, hi`` of a local month: its midnights (instants) or its first days."""
        if self.instant:
            return (
                f"({month})::timestamp AT TIME ZONE %(tz)s, "
                f"(({month}) + interval '1 month')::timestamp AT TIME ZONE %(tz)s"
            )
        return f"({month}), (({month}) + interval '1 month')::date"

    def _request_ranges(self) -> str:
        return (
            f"(SELECT NULL::date AS month, lo, hi FROM unnest(%(raw_lo)s::{self._bound_type}[], "
            f"%(raw_hi)s::{self._bound_type}[]) AS u(lo, hi))"
        )

    def rows(self, facet: str, where: str = "") -> str:
        """A facet's groups over the window: fresh rollup months, then the raw ranges.

        Selects the facet's ``columns``, only the groups meeting ``where`` (a condition
        on those columns) if given; params come from ``RollupPlan.params``.
        """
        f = self.facet(facet)
        columns = ", ".join(f.columns)
        only = f"AND {where}" if where else ""
        return f"""
    SELECT {columns} FROM report_rollups
    WHERE organization_id = %(org)s AND report_type = '{self.report_type}'
      AND facet = '{f.name}' AND month = ANY(%(rollup_months)s::date[]) {only}
    UNION ALL
    SELECT {columns} FROM ({f.sql.format(ranges=self._request_ranges())}) AS raw_{f.name}
    WHERE true {only}"""

    async def plan(
        self,
        session: AsyncSession,
        *,
        organization_id: str,
        timezone: str,
        lower: datetime | date | None,
        upper: datetime | date | None,
    ) -> RollupPlan:
        """Split ``[lower, upper)`` into fresh rollup months and raw ranges."""
        low: Any = lower if lower is not None else self._earliest
        high: Any = upper if upper is not None else self._latest
        months = await fetch_all(
            session,
            f"""
            SELECT m.month, m.lo, m.hi
            FROM (SELECT rm.month, {self._month_range("rm.month")}
                  FROM rollup_months rm
                  WHERE rm.organization_id = %(org)s AND rm.report_type = %(report)s
                    AND rm.timezone = %(tz)s
                    AND NOT EXISTS (
                        SELECT 1 FROM rollup_changes c
                        WHERE c.organization_id = rm.organization_id
                          AND c.report_type = rm.report_type
                          AND c.day BETWEEN rm.month - 1
                                        AND (rm.month + interval '1 month')::date)
                 ) AS m(month, lo, hi)
            WHERE m.lo >= %(low)s::{self._bound_type} AND m.hi <= %(high)s::{self._bound_type}
            ORDER BY m.month
            """,
            {
                "org": organization_id,
                "report": self.report_type,
                "tz": timezone,
                "low": low,
                "high": high,
            },
        )
        raw_lo: list[Any] = []
        raw_hi: list[Any] = []
        cursor = low
        for m in months:
            if cursor < m["lo"]:
                raw_lo.append(cursor)
                raw_hi.append(m["lo"])
            cursor = m["hi"]
        if cursor < high:
            raw_lo.append(cursor)
            raw_hi.append(high)
        return RollupPlan([m["month"] for m in months], raw_lo, raw_hi)

    @property
    def _earliest(self) -> datetime | date:
        return _EARLIEST_INSTANT if self.instant else date(1, 1, 2)

    @property
    def _latest(self) -> datetime | date:
        return _LATEST_INSTANT if self.instant else date(9999, 12, 1)

    async def refresh(self, connection: AsyncConnection, organization_id: str) -> int:
        """Rebuild this organization's stale months; the number of months rebuilt.

        Runs in its own REPEATABLE READ transaction on ``connection`` (so the log rows
        it consumes are exactly those its rebuild has seen), serialized per organization
        and report by a session advisory lock taken before the snapshot.
        """
        lock = {"key": f"rollup:{organization_id}:{self.report_type}"}
        await connection.execute(text("SELECT pg_advisory_lock(hashtextextended(:key, 0))"), lock)
        await connection.commit()
        try:
            return await self._rebuild(connection, organization_id)
        finally:
            await connection.rollback()
            await connection.execute(
                text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"), lock
            )
            await connection.commit()

    async def _rebuild(self, connection: AsyncConnection, organization_id: str) -> int:
        await connection.execution_options(isolation_level="REPEATABLE READ")
        run = connection.exec_driver_sql
        params: dict[str, Any] = {"org": organization_id, "report": self.report_type}
        await run("SELECT set_config('app.maintenance', 'on', true)")
        tz_row = (
            await run("SELECT timezone FROM organizations WHERE id = %(org)s", params)
        ).first()
        if tz_row is None:  # the organization is gone: so is its log
            await run(
                "DELETE FROM rollup_changes WHERE organization_id = %(org)s "
                "AND report_type = %(report)s",
                params,
            )
            await connection.commit()
            return 0
        params["tz"] = tz_row[0]
        stale = (
            (
                await run(
                    """
                WITH log AS (
                    SELECT id, day FROM rollup_changes
                    WHERE organization_id = %(org)s AND report_type = %(report)s
                )
                SELECT (SELECT coalesce(array_agg(id), '{}') FROM log) AS ids,
                       (SELECT coalesce(array_agg(DISTINCT m ORDER BY m), '{}') FROM (
                            SELECT date_trunc('month', day + shift)::date AS m
                            FROM log, (VALUES (-1), (0), (1)) AS s(shift)
                            UNION
                            SELECT month FROM rollup_months
                            WHERE organization_id = %(org)s AND report_type = %(report)s
                              AND timezone <> %(tz)s) AS months) AS months
                """,
                    params,
                )
            )
            .mappings()
            .one()
        )
        ids, months = list(stale["ids"]), list(stale["months"])
        if not months:
            await connection.commit()
            return 0
        params.update(months=months, ids=ids)
        await run(
            "DELETE FROM report_rollups WHERE organization_id = %(org)s "
            "AND report_type = %(report)s AND month = ANY(%(months)s::date[])",
            params,
        )
        ranges = (
            f"(SELECT * FROM (SELECT m, {self._month_range('m')} "
            "FROM unnest(%(months)s::date[]) AS m) AS months(month, lo, hi))"
        )
        for f in self.facets:
            columns = ", ".join(f.columns)
            await run(
                f"INSERT INTO report_rollups "
                f"(organization_id, report_type, facet, month, {columns}) "
                f"SELECT %(org)s, %(report)s, '{f.name}', month, {columns} "
                f"FROM ({f.sql.format(ranges=ranges)}) AS built",
                params,
            )
        await run(
            """
            INSERT INTO rollup_months (organization_id, report_type, month, timezone)
            SELECT %(org)s, %(report)s, m, %(tz)s FROM unnest(%(months)s::date[]) AS m
            ON CONFLICT (organization_id, report_type, month)
            DO UPDATE SET timezone = excluded.timezone, refreshed_at = now()
            """,
            params,
        )
        await run("DELETE FROM rollup_changes WHERE id = ANY(%(ids)s::bigint[])", params)
        await connection.commit()
        return len(months)


@dataclass(frozen=True)
class RollupPlan:
    """Which months a request reads from the rollup, and the ranges it reads raw."""

    months: list[date]
    raw_lo: list[Any]
    raw_hi: list[Any]

    @property
    def params(self) -> dict[str, Any]:
        return {"rollup_months": self.months, "raw_lo": self.raw_lo, "raw_hi": self.raw_hi}


async def refresh_rollups(
    database: Database,
    rollups: Sequence[Rollup],
    organization_ids: Sequence[str] | None = None,
) -> Mapping[str, int]:
    """Refresh every given rollup for the organizations (default: those with changes).

    Returns months rebuilt per report type.
    """
    rebuilt: dict[str, int] = {}
    async with database.engine.connect() as connection:
        if organization_ids is None:
            await connection.exec_driver_sql("SELECT set_config('app.maintenance', 'on', true)")
            result = await connection.exec_driver_sql(
                "SELECT DISTINCT organization_id FROM rollup_changes "
                "UNION SELECT DISTINCT organization_id FROM rollup_months rm "
                "JOIN organizations o ON o.id = rm.organization_id AND o.timezone <> rm.timezone"
            )
            organization_ids = [row[0] for row in result.all()]
            await connection.commit()
        for rollup in rollups:
            for organization_id in organization_ids:
                months = await rollup.refresh(connection, organization_id)
                rebuilt[rollup.report_type] = rebuilt.get(rollup.report_type, 0) + months
    if any(rebuilt.values()):
        # Requests read months by index-only scans: mark the new pages all-visible.
        async with database.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("VACUUM (ANALYZE) report_rollups")
    return rebuilt
