"""The request side of the rollups: which periods of a window are fresh (``plan``), and
a facet's groups over the window (``facet_rows``), from those periods and the rows.

Exactness is the contract, so a period is only read from the rollup when it is
**fresh**: built in the organization's current time zone, by the current facet SQL
(``Rollup.definition``), under its current names (renames bump a version), and with no
change logged (``rollup_changes``, written by statement triggers on the source tables)
within a day of it. Everything else in the window (the edges, stale or unbuilt periods)
is read from the source rows by the very same facet SQL, so all parts add up alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from psycopg import sql
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.reports.base import ReportContext, fetch_all
from pivotal_reporting.reports.rollups.facets import GRAIN_STEPS, Facet, Rollup

# Raw ranges a request may read per facet (the window's two edges and two runs of
# stale periods); more, and the plan reads more raw rather than more ranges.
RAW_SLOTS = 4
# The organization's names version (bumped by renames; 0 before any).
NAMES_VERSION = (
    "coalesce((SELECT version FROM rollup_name_versions WHERE organization_id = %(org)s), 0)"
)
# The length of a period of the row's grain (SQL, for rows of rollup_periods).
PERIOD_STEP = (
    "CASE rp.grain "
    + " ".join(f"WHEN '{grain}' THEN {step}" for grain, step in GRAIN_STEPS.items())
    + " END"
)


def _request_range(rollup: Rollup, slot: str) -> str:
    """One raw range of a request as scalar parameters (``<slot>_lo``, ``<slot>_hi``).

    Scalars, not an array: the planner then estimates the range's rows from the values
    themselves (an array join would be guessed at a third of the table).
    """
    bound = rollup.bound_type
    return (
        f"(SELECT NULL::date AS period, NULL::date AS month, "
        f"%({slot}_lo)s::{bound} AS lo, %({slot}_hi)s::{bound} AS hi)"
    )


def _stored_groups(rollup: Rollup, f: Facet, grain: str, only: str, periods: str = "") -> str:
    """The facet's groups of the plan's fresh periods of ``grain`` (the parameter
    ``periods``, by default ``rollup_<grain>s``), under domain names."""
    columns = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(sql.Identifier(column), sql.Identifier(name))
        for name, column in f.stored.items()
    )
    stored = sql.SQL(
        "SELECT * FROM (SELECT {columns} FROM report_rollups "
        "WHERE organization_id = %(org)s AND report_type = {report} "
        "AND facet = {facet} AND grain = {grain} "
        "AND period = ANY({periods}::date[])) AS {alias} WHERE true {only}"
    ).format(
        columns=columns,
        report=sql.Literal(rollup.report_type),
        facet=sql.Literal(f.name),
        grain=sql.Literal(grain),
        periods=sql.Placeholder(periods or f"rollup_{grain}s"),
        alias=sql.Identifier(f"{grain}_{f.name}"),
        only=sql.SQL(only),
    )
    return stored.as_string(None)


def facet_rows(rollup: Rollup, facet: str, where: str = "") -> str:
    """A facet's groups over the window: fresh months, fresh days, then raw ranges.

    Selects the facet's columns under their domain names, only the groups meeting
    ``where`` (a condition on those names) if given; params come from
    ``RollupPlan.params``. The raw part is fenced (``OFFSET 0``): pushed into the row
    scan, ``where`` would hide the window's ranges from the planner's estimates.
    """
    f = rollup.facet(facet)
    columns = ", ".join(f.names)
    only = f"AND {where}" if where else ""
    if f.quarterly:  # fresh quarters, the fresh months outside them, the rest raw
        parts = [
            _stored_groups(rollup, f, "quarter", only),
            _stored_groups(rollup, f, "month", only, "rollup_quarter_months"),
        ]
        slot = "qgap"
    else:  # fresh months, fresh days if kept daily, the rest raw
        parts = [_stored_groups(rollup, f, "month", only)]
        if f.daily:
            parts.append(_stored_groups(rollup, f, "day", only))
        slot = "raw" if f.daily else "gap"
    parts += [
        f"SELECT {columns} FROM ({f.select(_request_range(rollup, f'{slot}{k}'))} "  # noqa: S608 -- a facet's reviewed SQL
        f"OFFSET 0) AS raw_{f.name}_{k} WHERE true {only}"
        for k in range(RAW_SLOTS)
    ]
    return "\n    " + "\n    UNION ALL\n    ".join(parts)


def filters_match(*names: str, **fixed: str) -> str:
    """A condition on a facet's domain-named columns: each named filter parameter, when
    given (not NULL), equals the column of the same name, or the SQL ``fixed`` gives
    for it (e.g. ``status="'paid'"`` for a facet of paid invoices only)."""
    columns = {**{name: name for name in names}, **fixed}
    return " AND ".join(
        f"(%({name})s::text IS NULL OR {column} = %({name})s)" for name, column in columns.items()
    )


def customer_counts_sql(rollup: Rollup, facet: str = "customers") -> str:
    """Counts per customer name as one JSON object ``counts`` (names in order), from a
    ``customers_facet``: only its groups whose keys equal the filters given of the same
    names (``filters_match``). One value, not ten thousand rows to convert one by one."""
    keys = [name for name in rollup.facet(facet).names if name not in ("customer", "n")]
    rows = facet_rows(rollup, facet, filters_match(*keys) if keys else "")
    return f"""
SELECT coalesce(json_object_agg(customer, n ORDER BY customer), '{{}}') AS counts
FROM (SELECT customer, sum(n)::bigint AS n FROM ({rows}) AS c GROUP BY customer) AS g
"""  # noqa: S608 -- a facet's reviewed SQL


_FRESH_SQL = """
SELECT f.grain, f.period, f.lo, f.hi, f.refreshed_at
FROM (SELECT rp.grain, rp.period, {period_range}, rp.refreshed_at
      FROM rollup_periods rp
      WHERE rp.organization_id = %(org)s AND rp.report_type = %(report)s
        AND rp.timezone = %(tz)s AND rp.definition = %(definition)s
        AND rp.names_version = {names_version}
        -- a cheap bound first: a day start costs a few time-zone conversions
        AND rp.period BETWEEN %(low_day)s::date - 3 AND %(high_day)s::date + 2
        AND NOT EXISTS (
            SELECT 1 FROM rollup_changes c
            WHERE c.organization_id = rp.organization_id
              AND c.report_type = rp.report_type
              AND c.day BETWEEN rp.period - 1 AND (rp.period + {step})::date)
     ) AS f(grain, period, lo, hi, refreshed_at)
WHERE f.lo {low_op} %(low)s::{bound} AND f.hi {high_op} %(high)s::{bound}
ORDER BY f.lo
"""


def _fresh_sql(rollup: Rollup, *, open_low: bool, open_high: bool) -> str:
    """The fresh periods (grain, period, lo, hi) lying inside ``[low, high)``; an open
    end stands in for -infinity / infinity: no period may reach it, so that the raw
    range beyond the last period always exists (and is made infinite)."""
    return (
        sql.SQL(_FRESH_SQL)
        .format(
            period_range=sql.SQL(rollup.period_range("rp.period", PERIOD_STEP)),
            names_version=sql.SQL(NAMES_VERSION),
            step=sql.SQL(PERIOD_STEP),
            low_op=sql.SQL(">" if open_low else ">="),
            high_op=sql.SQL("<" if open_high else "<="),
            bound=sql.SQL(rollup.bound_type),
        )
        .as_string(None)
    )


async def plan(
    session: AsyncSession,
    rollup: Rollup,
    ctx: ReportContext,
    lower: datetime | date | None,
    upper: datetime | date | None,
) -> RollupPlan:
    """Split ``[lower, upper)`` into fresh months, fresh days and raw ranges."""
    low: Any = lower if lower is not None else rollup.earliest
    high: Any = upper if upper is not None else rollup.latest
    fresh = await fetch_all(
        session,
        _fresh_sql(rollup, open_low=lower is None, open_high=upper is None),
        {
            "org": ctx.organization_id,
            "report": rollup.report_type,
            "tz": ctx.timezone,
            "definition": rollup.definition,
            "low": low,
            "high": high,
            # UTC dates of the ends: a local date is within a day of its UTC date.
            "low_day": _utc_date(low),
            "high_day": _utc_date(high),
        },
    )
    fresh_months = [p for p in fresh if p["grain"] == "month"]
    months, gaps = _cover([(low, high)], fresh_months)
    if len(gaps) > RAW_SLOTS:  # stale months scattered all over: read it all raw
        months, gaps = [], [(low, high)]
    days, raw = _cover(gaps, [p for p in fresh if p["grain"] == "day"])
    if len(raw) > RAW_SLOTS:
        days, raw = [], gaps
    whole = [p for p in fresh if p["grain"] == "quarter" and _as_built(p, fresh_months)]
    quarters, rest = _cover([(low, high)], whole)
    quarter_months, quarter_gaps = _cover(rest, fresh_months)
    if len(quarter_gaps) > RAW_SLOTS:  # as the months alone would read it
        quarters, quarter_months, quarter_gaps = [], months, gaps
    return RollupPlan(
        months,
        days,
        raw,
        gaps,
        unbounded=(rollup.earliest, rollup.latest),
        quarters=quarters,
        quarter_months=quarter_months,
        quarter_gaps=quarter_gaps,
    )


def _as_built(quarter: Mapping[str, Any], months: Sequence[Mapping[str, Any]]) -> bool:
    """Are the quarter's three months fresh too, and none rebuilt after it? A refresh
    rebuilds a quarter with its months; a month rebuilt alone (by a process of an
    earlier version, which knows no quarters, consuming the change log) means the
    quarter missed a change."""
    start: date = quarter["period"]
    wanted = {date(start.year, start.month + k, 1) for k in range(3)}
    built = {m["period"]: m["refreshed_at"] for m in months if m["period"] in wanted}
    return len(built) == 3 and all(at <= quarter["refreshed_at"] for at in built.values())


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
    (facets not kept daily). Facets kept quarterly read ``quarters``, the
    ``quarter_months`` outside them, and raw the ``quarter_gaps`` left by both. At most
    ``RAW_SLOTS`` ranges each."""

    months: list[date]
    days: list[date]
    raw: list[tuple[Any, Any]]
    gaps: list[tuple[Any, Any]]
    unbounded: tuple[Any, Any]  # the stand-ins of an open window's ends
    quarters: list[date] = field(default_factory=list)
    quarter_months: list[date] = field(default_factory=list)
    quarter_gaps: list[tuple[Any, Any]] = field(default_factory=list)

    def _bound(self, value: Any) -> Any:
        """A range end as bound: an open window's ends become PostgreSQL's infinities."""
        if value == self.unbounded[0]:
            return "-infinity"
        if value == self.unbounded[1]:
            return "infinity"
        return value

    @property
    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "rollup_months": self.months,
            "rollup_days": self.days,
            "rollup_quarters": self.quarters,
            "rollup_quarter_months": self.quarter_months,
        }
        slots = (("raw", self.raw), ("gap", self.gaps), ("qgap", self.quarter_gaps))
        for slot, ranges in slots:
            for k in range(RAW_SLOTS):
                lo, hi = ranges[k] if k < len(ranges) else (None, None)  # unused: empty
                params[f"{slot}{k}_lo"] = "infinity" if lo is None else self._bound(lo)
                params[f"{slot}{k}_hi"] = "infinity" if hi is None else self._bound(hi)
        return params
