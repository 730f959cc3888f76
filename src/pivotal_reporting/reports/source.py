"""The rows a report reads, how its filters narrow them, and its export's row query.

Every report reads one table of one organization (``Source``), narrowed by a window
(``Window``: ``[fromDate, toDate)`` on an instant or a calendar-date column) and by
equality filters; ``Report.conditions`` (base.py) turns a filters object into
``Conditions`` with these, once for every report. The builders here only ever
interpolate constants of the report modules; filter values travel as bound parameters
(``%(name)s``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from pivotal_reporting.reports.sql import Conditions, first_date_from


class Windowed(Protocol):
    """Filters with a window (``base.ReportFilters``)."""

    @property
    def from_date(self) -> datetime | None: ...
    @property
    def to_date(self) -> datetime | None: ...


Bound = datetime | date | None


@dataclass(frozen=True)
class Window:
    """The column ``[fromDate, toDate)`` applies to.

    An instant column (timestamptz) compares with the instants as given (parameters
    ``from_date``, ``to_date``). A calendar-date column (``calendar=True``) holds a date
    when its local day begins inside the window (``sql.first_date_from``; parameters
    ``from_day``, ``to_day``, in the organization's time zone). Both parameters are
    always bound (``None`` when open), so SQL may test them.
    """

    column: str
    calendar: bool = False

    @property
    def names(self) -> tuple[str, str]:
        return ("from_day", "to_day") if self.calendar else ("from_date", "to_date")

    def bounds(self, filters: Windowed, timezone: str) -> tuple[Bound, Bound]:
        """The window's ends as bound: instants, or the first local dates from them."""
        return self._bound(filters.from_date, timezone), self._bound(filters.to_date, timezone)

    def _bound(self, instant: datetime | None, timezone: str) -> Bound:
        if self.calendar and instant is not None:
            return first_date_from(instant, timezone)
        return instant

    def narrow(self, where: Conditions, filters: Windowed, timezone: str) -> None:
        """Add the window's conditions (and always both parameters) to ``where``."""
        low_name, high_name = self.names
        low, high = self.bounds(filters, timezone)
        where.params.update({low_name: low, high_name: high})
        if low is not None:
            where.add(f"{self.column} >= %({low_name})s")
        if high is not None:
            where.add(f"{self.column} < %({high_name})s")


@dataclass(frozen=True)
class Source:
    """One organization's rows of a table, as a report reads them.

    ``table`` with its ``alias`` (e.g. ``quotes``, ``q``); ``only`` is what every row
    must meet besides its organization (e.g. ``q.decided_at IS NOT NULL``).
    """

    table: str
    alias: str
    only: str = ""

    def rows(self, where: Conditions, *, joins: str = "") -> str:
        """``FROM <table> <joins> WHERE <organization> <only> <conditions>``."""
        a = self.alias
        only = f" AND {self.only}" if self.only else ""
        return (
            f"FROM {self.table} {a} {joins}".rstrip()
            + f"\nWHERE {a}.organization_id = %(org)s{only}{where.sql}"
        )

    def count_sql(self, where: Conditions) -> str:
        """``count(*)`` of the rows (no joins, no order): an export's ``count_sql``."""
        return f"SELECT count(*) {self.rows(where)}"


@dataclass(frozen=True)
class NameLookup:
    """A name column that follows its id column in the file, read from a small table.

    The full row query joins it (``JOIN <table> <alias> ON ... id = <key>``; ``LEFT JOIN``
    when ``optional``, the id may be NULL). CSV and JSON exports instead read the
    organization's ``table`` once into a map (id -> cell bytes) and write the name beside
    the id as each row streams (``exports/name_lookups.py``): no join, and the name's
    formula guard runs once per name, not once per row.
    """

    key: str  # the id column, e.g. "user_id"
    name: str  # the name column right after it, e.g. "user_name"
    table: str  # e.g. "users"
    alias: str  # e.g. "u"
    column: str  # e.g. "display_name"
    optional: bool = False

    def join_sql(self, source: Source, key_expression: str) -> str:
        join = "LEFT JOIN" if self.optional else "JOIN"
        a = self.alias
        return (
            f"\n{join} {self.table} {a} ON {a}.organization_id = {source.alias}.organization_id"
            f" AND {a}.id = {key_expression}"
        )


@dataclass(frozen=True)
class ExportRows:
    """An export's row query: its columns (name, SQL expression), in order, over the
    report's ``Source``.

    ``closed_text`` names the text columns that cannot hold user text (CHECK-constrained
    vocabularies, server-formatted instants): the CSV formula guard skips them, and JSON
    writes them without escaping (they hold no ``"``, a backslash or control character).
    ``with_`` is a ``WITH`` list placed before the select; ``joins`` and ``lookups`` join
    the names (each on a NOT NULL foreign key, or a LEFT JOIN, so every row is kept
    once: the count reads the source alone); ``order_by`` makes the file's order total.
    ``lookups`` are the name columns that CSV and JSON fill from per-export maps instead
    (``NameLookup``); ``lean_select_sql`` is the row query without them.
    """

    columns: Sequence[tuple[str, str]]
    joins: str
    order_by: str
    closed_text: frozenset[str] = frozenset()
    with_: str = ""
    lookups: Sequence[NameLookup] = ()

    def __post_init__(self) -> None:
        order = self.names
        for lookup in self.lookups:
            at = order.index(lookup.key)
            expected = (lookup.name, f"{lookup.alias}.{lookup.column}")
            if tuple(self.columns[at + 1]) != expected:
                raise ValueError(f"{lookup.name} must follow {lookup.key} as {expected[1]}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def select_sql(self, source: Source, where: Conditions) -> str:
        """``[WITH ...] SELECT <columns> FROM ... WHERE ... ORDER BY ...``."""
        return self._select(source, where, self.columns, self.joins + self._name_joins(source))

    def lean_select_sql(self, source: Source, where: Conditions) -> str:
        """``select_sql`` without the ``lookups``' name columns and their joins (the same
        rows in the same order)."""
        looked_up = {lookup.name for lookup in self.lookups}
        columns = [(name, expression) for name, expression in self.columns if name not in looked_up]
        return self._select(source, where, columns, self.joins)

    def _name_joins(self, source: Source) -> str:
        expressions = dict(self.columns)
        return "".join(lookup.join_sql(source, expressions[lookup.key]) for lookup in self.lookups)

    def _select(
        self, source: Source, where: Conditions, columns: Sequence[tuple[str, str]], joins: str
    ) -> str:
        selected = ",\n       ".join(f"{expression} AS {name}" for name, expression in columns)
        with_ = f"WITH {self.with_}\n" if self.with_ else ""
        return (
            f"{with_}SELECT {selected}\n{source.rows(where, joins=joins)}\nORDER BY {self.order_by}"
        )
