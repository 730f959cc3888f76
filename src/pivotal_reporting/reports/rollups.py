"""Rollups: whole months and days of a window read pre-grouped, the rest from the rows.

A report's summary groups its window's rows into a few **facets** (histogram bins,
counts per project, ...), then adds the groups up. Those partial aggregates can be
computed once per local calendar **month** and per local **day** and stored
(``report_rollups``, migration 0007): a one-year window then reads twelve months of
groups (and the days of a partial month) plus the rows of its partial edge days,
instead of half a million rows.

Exactness is the contract, so a period is only read from the rollup when it is
**fresh**: built in the organization's current time zone, by the current facet SQL
(``Rollup.definition``), under its current names (renames bump a version), and with no
change logged
(``rollup_changes``, written by statement triggers on the source tables) within a day
of it. Everything else in the window (the edges, stale or unbuilt periods) is read from
the source rows by the very same facet SQL, so all parts add up alike. A change costs
speed until the next refresh, never a wrong figure: the month it falls in and the
three days around it are read from finer periods or the rows. ``refresh`` (the
periodic task, the CLI and the demo loader) rebuilds stale periods and consumes the log.

Each facet's SQL reads its rows through ``{ranges}``: a relation
``r(period, month, lo, hi)`` of half-open ranges of the window column, with ``period``
the rollup period being built (and ``month`` its local month) or both NULL when
answering a request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pivotal_reporting.db import Database
from pivotal_reporting.reports.base import ReportContext, fetch_all
from pivotal_reporting.reports.sql import local_day_start

GRAINS = ("month", "day")
# Raw ranges a request may read per facet (the window's two edges and two runs of
# stale periods); more, and the plan reads more raw rather than more ranges.
RAW_SLOTS = 4
# The organization's names version (bumped by renames; 0 before any).
_NAMES_VERSION = (
    "coalesce((SELECT version FROM rollup_name_versions WHERE organization_id = %(org)s), 0)"
)
# The length of a period of the row's grain (SQL, for rows of rollup_periods).
_STEP = "CASE rp.grain WHEN 'month' THEN interval '1 month' ELSE interval '1 day' END"
_EARLIEST_INSTANT = datetime(1, 1, 2, tzinfo=UTC)
_LATEST_INSTANT = datetime(9999, 12, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Facet:
    """One grouped partial aggregate of a report: its SQL and the rollup columns it fills.

    ``sql`` selects ``r.period`` and then exactly ``columns`` (names of
    ``report_rollups`` columns), grouped by period and its keys, from rows in ``{ranges}``.
    """

    name: str
    columns: tuple[str, ...]
    sql: str
    # Also rolled up per day? Only where a day's groups are far fewer than its rows
    # (not for one group per customer or per fine bin); else a day is read raw.
    daily: bool = False


def count_by_customer_name(
    range_rows: str,
    customer_id: str,
    *,
    facet: str = "customers",
    keys: tuple[str, str] | None = None,
) -> Facet:
    """A customers facet: ``key1`` customer name, ``n`` rows; with ``keys``, also
    ``key2`` and ``key3`` (e.g. status and currency) for filtered breakdowns. Month grain
    only: a day has about one row per customer."""
    if keys is None:
        return Facet(
            facet,
            ("key1", "n"),
            f"""
    SELECT r.period, c.name AS key1, count(*) AS n
    {range_rows}
    JOIN customers c ON c.organization_id = %(org)s AND c.id = {customer_id}
    GROUP BY r.period, c.name""",
        )
    return Facet(
        facet,
        ("key1", "key2", "key3", "n"),
        f"""
    SELECT r.period, c.name AS key1, {keys[0]} AS key2, {keys[1]} AS key3, count(*) AS n
    {range_rows}
    JOIN customers c ON c.organization_id = %(org)s AND c.id = {customer_id}
    GROUP BY r.period, c.name, 3, 4""",
    )


@dataclass(frozen=True)
class Rollup:
    """The rollup of one report: the kind of its window column and its facets."""

    report_type: str
    instant: bool  # True: a timestamptz window column; False: a calendar date
    facets: tuple[Facet, ...]
    source: str  # the table read, e.g. "quotes"
    source_day: str  # the UTC date a source row counts for (as its trigger logs it)

    def facet(self, name: str) -> Facet:
        return next(f for f in self.facets if f.name == name)

    def lock_key(self, organization_id: str) -> str:
        """The advisory lock (``hashtextextended``) serializing this report's refreshes."""
        return f"rollup:{organization_id}:{self.report_type}"

    @property
    def definition(self) -> str:
        """A digest of the facets and the period bounds: a period built by other facet
        SQL, or over other instants, is never fresh."""
        text = repr(
            [(f.name, f.columns, f.sql, f.daily) for f in self.facets]
            + [self._period_range("p", "interval '1 day'")]  # how a period's rows are found
        )
        return hashlib.sha256(f"{self.report_type}:{text}".encode()).hexdigest()[:16]

    @property
    def _bound_type(self) -> str:
        return "timestamptz" if self.instant else "date"

    def _period_range(self, period: str, step: str) -> str:
        """``lo, hi`` of a local period: its midnights (instants) or its first days."""
        if self.instant:  # the instants the local days begin (sql.local_day_start)
            return f"{local_day_start(period)}, {local_day_start(f'({period}) + {step}')}"
        return f"({period}), (({period}) + {step})::date"

    def _request_range(self, slot: str) -> str:
        """One raw range of a request as scalar parameters (``<slot>_lo``, ``<slot>_hi``).

        Scalars, not an array: the planner then estimates the range's rows from the
        values themselves (an array join would be guessed at a third of the table).
        """
        return (
            f"(SELECT NULL::date AS period, NULL::date AS month, "
            f"%({slot}_lo)s::{self._bound_type} AS lo, %({slot}_hi)s::{self._bound_type} AS hi)"
        )

    def rows(self, facet: str, where: str = "") -> str:
        """A facet's groups over the window: fresh months, fresh days, then raw ranges.

        Selects the facet's ``columns``, only the groups meeting ``where`` (a condition
        on those columns) if given; params come from ``RollupPlan.params``. The raw part
        is fenced (``OFFSET 0``): pushed into the row scan, ``where`` would hide the
        window's ranges from the planner's estimates.
        """
        f = self.facet(facet)
        columns = ", ".join(f.columns)
        only = f"AND {where}" if where else ""
        stored = (
            f"SELECT {columns} FROM report_rollups "
            f"WHERE organization_id = %(org)s AND report_type = '{self.report_type}' "
            f"AND facet = '{f.name}' AND grain = '{{grain}}' "
            f"AND period = ANY(%(rollup_{{grain}}s)s::date[]) {only}"
        )
        days = f"{stored.format(grain='day')}\n    UNION ALL" if f.daily else ""
        # A facet kept daily reads fresh days from the rollup and the rest raw; any
        # other reads everything outside the fresh months raw.
        slot = "raw" if f.daily else "gap"
        raw = "\n    UNION ALL\n".join(
            f"SELECT {columns} FROM ({f.sql.format(ranges=self._request_range(f'{slot}{k}'))} "
            f"OFFSET 0) AS raw_{f.name}_{k} WHERE true {only}"
            for k in range(RAW_SLOTS)
        )
        return f"""
    {stored.format(grain="month")}
    UNION ALL
    {days}
    {raw}"""

    async def plan(
        self,
        session: AsyncSession,
        ctx: ReportContext,
        lower: datetime | date | None,
        upper: datetime | date | None,
    ) -> RollupPlan:
        """Split ``[lower, upper)`` into fresh months, fresh days and raw ranges."""
        low: Any = lower if lower is not None else self._earliest
        high: Any = upper if upper is not None else self._latest
        # An open end stands in for -infinity / infinity: no period may reach it, so that
        # the raw range beyond the last period always exists (and is made infinite).
        low_op = ">=" if lower is not None else ">"
        high_op = "<=" if upper is not None else "<"
        fresh = await fetch_all(
            session,
            f"""
            SELECT f.grain, f.period, f.lo, f.hi
            FROM (SELECT rp.grain, rp.period, {self._period_range("rp.period", _STEP)}
                  FROM rollup_periods rp
                  WHERE rp.organization_id = %(org)s AND rp.report_type = %(report)s
                    AND rp.timezone = %(tz)s AND rp.definition = %(definition)s
                    AND rp.names_version = {_NAMES_VERSION}
                    -- a cheap bound first: a day start costs a few time-zone conversions
                    AND rp.period BETWEEN %(low_day)s::date - 3 AND %(high_day)s::date + 2
                    AND NOT EXISTS (
                        SELECT 1 FROM rollup_changes c
                        WHERE c.organization_id = rp.organization_id
                          AND c.report_type = rp.report_type
                          AND c.day BETWEEN rp.period - 1 AND (rp.period + {_STEP})::date)
                 ) AS f(grain, period, lo, hi)
            WHERE f.lo {low_op} %(low)s::{self._bound_type}
              AND f.hi {high_op} %(high)s::{self._bound_type}
            ORDER BY f.lo
            """,
            {
                "org": ctx.organization_id,
                "report": self.report_type,
                "tz": ctx.timezone,
                "definition": self.definition,
                "low": low,
                "high": high,
                # UTC dates of the ends: a local date is within a day of its UTC date.
                "low_day": _utc_date(low),
                "high_day": _utc_date(high),
            },
        )
        months, gaps = _cover([(low, high)], [p for p in fresh if p["grain"] == "month"])
        if len(gaps) > RAW_SLOTS:  # stale months scattered all over: read it all raw
            months, gaps = [], [(low, high)]
        days, raw = _cover(gaps, [p for p in fresh if p["grain"] == "day"])
        if len(raw) > RAW_SLOTS:
            days, raw = [], gaps
        return RollupPlan(months, days, raw, gaps, unbounded=(self._earliest, self._latest))

    @property
    def _earliest(self) -> datetime | date:
        return _EARLIEST_INSTANT if self.instant else date(1, 1, 2)

    @property
    def _latest(self) -> datetime | date:
        return _LATEST_INSTANT if self.instant else date(9999, 12, 1)

    async def refresh(self, connection: AsyncConnection, organization_id: str) -> int:
        """Rebuild this organization's stale periods; the number rebuilt.

        Runs in its own REPEATABLE READ transaction on ``connection`` (so the log rows
        it consumes are exactly those its rebuild has seen), serialized per organization
        and report by a session advisory lock taken before the snapshot.
        """
        lock = {"key": self.lock_key(organization_id)}
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
        params: dict[str, Any] = {
            "org": organization_id,
            "report": self.report_type,
            "definition": self.definition,
        }
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
        params["names_version"] = (await run(f"SELECT {_NAMES_VERSION}", params)).scalar_one()
        stale = (
            (
                await run(
                    """
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
                       (SELECT coalesce(array_agg(DISTINCT m ORDER BY m), '{}') FROM (
                            SELECT date_trunc('month', day)::date FROM near
                            UNION SELECT period FROM moved WHERE grain = 'month') AS x(m))
                           AS months,
                       (SELECT coalesce(array_agg(DISTINCT d ORDER BY d), '{}') FROM (
                            SELECT day FROM near
                            UNION SELECT period FROM moved WHERE grain = 'day') AS x(d))
                           AS days
                """,
                    params,
                )
            )
            .mappings()
            .one()
        )
        ids, months, days = list(stale["ids"]), list(stale["months"]), list(stale["days"])
        if not months and not days:
            await connection.commit()
            return 0
        params.update(ids=ids, month=months, day=days)
        for grain in GRAINS:
            await self._rebuild_grain(run, grain, params)
        await run("DELETE FROM rollup_changes WHERE id = ANY(%(ids)s::bigint[])", params)
        await connection.commit()
        return len(months) + len(days)

    async def _rebuild_grain(self, run: Any, grain: str, params: dict[str, Any]) -> None:
        """Replace the groups of the ``params[grain]`` periods and mark them built."""
        grain_params = {**params, "grain": grain, "periods": params[grain]}
        await run(
            "DELETE FROM report_rollups WHERE organization_id = %(org)s "
            "AND report_type = %(report)s AND grain = %(grain)s "
            "AND period = ANY(%(periods)s::date[])",
            grain_params,
        )
        step = f"interval '1 {grain}'"
        ranges = (
            f"(SELECT * FROM (SELECT p, date_trunc('month', p)::date, "
            f"{self._period_range('p', step)} FROM unnest(%(periods)s::date[]) AS p) "
            "AS periods(period, month, lo, hi))"
        )
        for f in self.facets:
            if grain == "day" and not f.daily:
                continue
            columns = ", ".join(f.columns)
            await run(
                f"INSERT INTO report_rollups "
                f"(organization_id, report_type, facet, grain, period, {columns}) "
                f"SELECT %(org)s, %(report)s, '{f.name}', %(grain)s, period, {columns} "
                f"FROM ({f.sql.format(ranges=ranges)}) AS built",
                grain_params,
            )
        await run(
            """
            INSERT INTO rollup_periods
                (organization_id, report_type, grain, period, timezone, definition, names_version)
            SELECT %(org)s, %(report)s, %(grain)s, p, %(tz)s, %(definition)s, %(names_version)s
            FROM unnest(%(periods)s::date[]) AS p
            ON CONFLICT (organization_id, report_type, grain, period)
            DO UPDATE SET timezone = excluded.timezone, definition = excluded.definition,
                          names_version = excluded.names_version, refreshed_at = now()
            """,
            grain_params,
        )


def _utc_date(value: datetime | date) -> date:
    return value.astimezone(UTC).date() if isinstance(value, datetime) else value


def _cover(
    ranges: Sequence[tuple[Any, Any]], periods: Sequence[Mapping[str, Any]]
) -> tuple[list[date], list[tuple[Any, Any]]]:
    """The ``periods`` (ordered, each ``period, lo, hi``) lying wholly inside ``ranges``,
    and what of the ranges they leave uncovered."""
    used: list[date] = []
    rest: list[tuple[Any, Any]] = []
    for lo, hi in ranges:
        cursor = lo
        for p in periods:
            if p["lo"] >= cursor and p["hi"] <= hi:
                if cursor < p["lo"]:
                    rest.append((cursor, p["lo"]))
                used.append(p["period"])
                cursor = p["hi"]
        if cursor < hi:
            rest.append((cursor, hi))
    return used, rest


@dataclass(frozen=True)
class RollupPlan:
    """What a request reads from the rollup (``months``, ``days``) and raw: ``raw``, the
    ranges left by both (facets kept daily), and ``gaps``, those left by the months
    (facets not kept daily). At most ``RAW_SLOTS`` ranges each."""

    months: list[date]
    days: list[date]
    raw: list[tuple[Any, Any]]
    gaps: list[tuple[Any, Any]]
    unbounded: tuple[Any, Any]  # the stand-ins of an open window's ends

    def _bound(self, value: Any) -> Any:
        """A range end as bound: an open window's ends become PostgreSQL's infinities."""
        if value == self.unbounded[0]:
            return "-infinity"
        if value == self.unbounded[1]:
            return "infinity"
        return value

    @property
    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"rollup_months": self.months, "rollup_days": self.days}
        for slot, ranges in (("raw", self.raw), ("gap", self.gaps)):
            for k in range(RAW_SLOTS):
                lo, hi = ranges[k] if k < len(ranges) else (None, None)  # unused: empty
                params[f"{slot}{k}_lo"] = "infinity" if lo is None else self._bound(lo)
                params[f"{slot}{k}_hi"] = "infinity" if hi is None else self._bound(hi)
        return params


async def refresh_rollups(
    database: Database,
    rollups: Sequence[Rollup],
    organization_ids: Sequence[str] | None = None,
) -> Mapping[str, int]:
    """Refresh every given rollup for the organizations (default: those with changes).

    Returns periods (months and days) rebuilt per report type.
    """
    rebuilt: dict[str, int] = {}
    async with database.engine.connect() as connection:
        if organization_ids is None:
            await connection.exec_driver_sql("SELECT set_config('app.maintenance', 'on', true)")
            result = await connection.exec_driver_sql(
                "SELECT DISTINCT organization_id FROM rollup_changes "
                "UNION SELECT DISTINCT rp.organization_id FROM rollup_periods rp "
                "JOIN organizations o ON o.id = rp.organization_id "
                "LEFT JOIN unnest(%(reports)s::text[], %(definitions)s::text[]) "
                "AS d(report_type, definition) ON d.report_type = rp.report_type "
                "LEFT JOIN rollup_name_versions v ON v.organization_id = rp.organization_id "
                "WHERE o.timezone <> rp.timezone OR d.definition IS DISTINCT FROM rp.definition "
                "OR rp.names_version <> coalesce(v.version, 0)",
                {
                    "reports": [r.report_type for r in rollups],
                    "definitions": [r.definition for r in rollups],
                },
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
            await autocommit.exec_driver_sql("VACUUM report_rollups")
    return rebuilt
