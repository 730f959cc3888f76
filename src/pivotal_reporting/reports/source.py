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
class ExportRows:
    """An export's row query: its columns (name, SQL expression), in order, over the
    report's ``Source``.

    ``closed_text`` names the text columns that cannot hold user text (CHECK-constrained
    vocabularies, server-formatted instants): the CSV formula guard skips them.
    ``with_`` is a ``WITH`` list placed before the select; ``joins`` join the names
    (each on a NOT NULL foreign key, or a LEFT JOIN, so every row is kept once: the
    count reads the source alone); ``order_by`` makes the file's order total.
    """

    columns: Sequence[tuple[str, str]]
    joins: str
    order_by: str
    closed_text: frozenset[str] = frozenset()
    with_: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def select_sql(self, source: Source, where: Conditions) -> str:
        """``[WITH ...] SELECT <columns> FROM ... WHERE ... ORDER BY ...``."""
        columns = ",\n       ".join(f"{expression} AS {name}" for name, expression in self.columns)
        with_ = f"WITH {self.with_}\n" if self.with_ else ""
        return (
            f"{with_}SELECT {columns}\n"
            f"{source.rows(where, joins=self.joins)}\nORDER BY {self.order_by}"
        )
