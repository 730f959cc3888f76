"""What a rollup is: a report's facets, each with its SQL and the columns it stores.

``report_rollups`` (migration 0007) has generic columns shared by every facet: ``key1``
to ``key3`` (text), ``day1``, ``day2`` (dates), ``flag`` (boolean), ``bin`` (integer),
``n`` (bigint), ``total``, ``low``, ``high`` (double) and ``amount``, ``amount2``
(numeric). A facet's SQL selects columns under **domain names** (``status``,
``due_date``, ``balance``), and its ``stored`` mapping says, in one reviewed place,
which generic column holds each: the build side (``build.py``) writes them there and
the request side (``request.py``) reads them back under their domain names, so no
report SQL ever names ``key1``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pivotal_reporting.reports.sql import local_day_start

# The generic columns of report_rollups a facet may fill (besides its identifying ones).
STORAGE_COLUMNS = frozenset(
    {"key1", "key2", "key3", "day1", "day2", "flag", "bin", "n"}
    | {"total", "low", "high", "amount", "amount2"}
)
# Stands in for the ranges relation when a facet's SQL is digested (Rollup.definition).
_RANGES_MARK = "{ranges}"
_EARLIEST_INSTANT = datetime(1, 1, 2, tzinfo=UTC)
_LATEST_INSTANT = datetime(9999, 12, 30, tzinfo=UTC)


def range_rows(ranges: str, source: str, join_on: str) -> str:
    """``FROM <ranges> AS r JOIN <source> ON <join_on>``: a facet's rows, one per range
    of the window column that holds them (``join_on`` compares it to ``r.lo``/``r.hi``)."""
    return f"FROM {ranges} AS r\nJOIN {source} ON {join_on}"


# The length of a period of each grain, as SQL.
GRAIN_STEPS = {
    "quarter": "interval '3 months'",
    "month": "interval '1 month'",
    "day": "interval '1 day'",
}


@dataclass(frozen=True)
class Facet:
    """One grouped partial aggregate of a report: its SQL and where it is stored.

    ``select(ranges)`` gives the SQL: it selects ``r.period`` and then exactly the
    domain names of ``stored``, grouped by period and its keys, from the rows in
    ``ranges``, a relation ``r(period, month, lo, hi)`` of half-open ranges of the
    window column (``period`` the rollup period being built, and ``month`` its local
    month, or both NULL when answering a request). ``stored`` maps each domain name to
    its ``report_rollups`` column.
    """

    name: str
    select: Callable[[str], str]
    stored: Mapping[str, str]
    # Also rolled up per day? Only where a day's groups are far fewer than its rows
    # (not for one group per customer or per fine bin); else a day is read raw.
    daily: bool = False
    # Also rolled up per local calendar quarter? Where a quarter's groups are far fewer
    # than its three months' (one group per customer: 10,000, not 30,000); a window
    # then reads its whole quarters, and months only outside them.
    quarterly: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.stored.values()) - STORAGE_COLUMNS
        if unknown or len(set(self.stored.values())) != len(self.stored):
            raise ValueError(f"facet {self.name}: bad storage columns {dict(self.stored)}")
        if self.daily and self.quarterly:
            raise ValueError(f"facet {self.name}: daily or quarterly, not both")

    @property
    def names(self) -> tuple[str, ...]:
        """The facet's columns under their domain names."""
        return tuple(self.stored)


def customers_facet(
    rows: Callable[[str], str],
    customer_id: str,
    *,
    facet: str = "customers",
    keys: Mapping[str, str] | None = None,
) -> Facet:
    """Rows counted per customer name: ``customer`` and ``n``; with ``keys`` (domain
    name → SQL, at most two, e.g. status and currency), also those, for the breakdown
    of a filtered summary. The first key is stored in ``key2``, which the lookup index
    positions on (migration 0014): a filter on it reads only its own groups, so a
    filter given alone should be a facet's first key. Quarters and months: a day has
    about one row per customer."""
    keys = dict(keys or {})
    stored = {"customer": "key1", **dict(zip(keys, ("key2", "key3"), strict=False)), "n": "n"}
    extra = "".join(f", {expression} AS {name}" for name, expression in keys.items())
    group = "".join(f", {i}" for i in range(3, 3 + len(keys)))

    def select(ranges: str) -> str:
        return f"""
    SELECT r.period, c.name AS customer{extra}, count(*) AS n
    {rows(ranges)}
    JOIN customers c ON c.organization_id = %(org)s AND c.id = {customer_id}
    GROUP BY r.period, c.name{group}"""

    return Facet(facet, select, stored, quarterly=True)


@dataclass(frozen=True)
class Rollup:
    """The rollup of one report: the kind of its window column and its facets."""

    report_type: str
    instant: bool  # True: a timestamptz window column; False: a calendar date
    facets: tuple[Facet, ...]
    source: str  # the table read, e.g. "quotes"
    source_day: str  # the UTC date a source row counts for (as its trigger logs it)
    _by_name: dict[str, Facet] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.facets})

    @property
    def quarterly(self) -> bool:
        """Has it a facet rolled up per quarter (else no quarter is built)?"""
        return any(f.quarterly for f in self.facets)

    def facet(self, name: str) -> Facet:
        return self._by_name[name]

    def lock_key(self, organization_id: str) -> str:
        """The advisory lock (``hashtextextended``) serializing this report's refreshes."""
        return f"rollup:{organization_id}:{self.report_type}"

    @property
    def definition(self) -> str:
        """A digest of the facets and the period bounds: a period built by other facet
        SQL, other storage, or over other instants, is never fresh."""
        text = repr(
            [
                (f.name, tuple(f.stored.items()), f.select(_RANGES_MARK), f.daily, f.quarterly)
                for f in self.facets
            ]
            + [self.period_range("p", "interval '1 day'")]  # how a period's rows are found
        )
        return hashlib.sha256(f"{self.report_type}:{text}".encode()).hexdigest()[:16]

    @property
    def bound_type(self) -> str:
        """The SQL type of the window column's bounds."""
        return "timestamptz" if self.instant else "date"

    def period_range(self, period: str, step: str) -> str:
        """``lo, hi`` of a local period: its midnights (instants) or its first days."""
        if self.instant:  # the instants the local days begin (sql.local_day_start)
            return f"{local_day_start(period)}, {local_day_start(f'({period}) + {step}')}"
        return f"({period}), (({period}) + {step})::date"

    @property
    def earliest(self) -> datetime | date:
        return _EARLIEST_INSTANT if self.instant else date(1, 1, 2)

    @property
    def latest(self) -> datetime | date:
        return _LATEST_INSTANT if self.instant else date(9999, 12, 1)
