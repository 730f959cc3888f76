"""SQL fragments shared by the report modules: filter conditions, distribution buckets,
calendar windows and the export cell guards.

Every fragment uses psycopg placeholders (``%(name)s``) and only ever interpolates
constants from the report modules; user input always travels as a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

SECONDS_PER_DAY = 86400
SECONDS_PER_HOUR = 3600

# A cell a spreadsheet would run as a formula: one that starts with tab, CR or LF, or whose
# first character after leading white space is = + - @ or full-width U+FF1D U+FF0B U+FF0D U+FF20 (which
# spreadsheets fold to ASCII). A PostgreSQL regular expression (ARE): a constant, never input.
_FORMULA_PATTERN = r"^([\t\r\n]|[[:space:]\u3000]*[-=+@\uff1d\uff0b\uff0d\uff20])"


@dataclass
class Conditions:
    """``AND``-ed SQL conditions with their bound parameters, built from filters."""

    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, clause: str, **params: Any) -> None:
        self.clauses.append(clause)
        self.params.update(params)

    def when(self, value: Any, clause: str, name: str) -> None:
        """Add ``clause`` binding ``value`` as ``name`` unless ``value`` is ``None``."""
        if value is not None:
            self.add(clause, **{name: value})

    @property
    def sql(self) -> str:
        return "".join(f" AND {clause}" for clause in self.clauses)


@dataclass(frozen=True)
class Bucket:
    """One distribution range: ``lower <= value < upper`` (``None`` is open-ended)."""

    label: str
    lower: Decimal | None
    upper: Decimal | None


def day_buckets(*ranges: tuple[int, int]) -> tuple[Bucket, ...]:
    """Buckets on whole days (a value's bucket is ``floor(days)``) + an open-ended last.

    ``day_buckets((0, 1), (2, 3))`` → ``"0-1 days"`` (< 2), ``"2-3 days"``, ``"4+ days"``.
    """
    buckets = [
        Bucket(f"{low}-{high} days", Decimal(low) if i else None, Decimal(high + 1))
        for i, (low, high) in enumerate(ranges)
    ]
    last = ranges[-1][1] + 1
    return (*buckets, Bucket(f"{last}+ days", Decimal(last), None))


def money_buckets(*ranges: tuple[int, int]) -> tuple[Bucket, ...]:
    """Buckets on whole currency units (``floor(amount)``) + an open-ended last."""
    buckets = [
        Bucket(f"${low:,}-${high:,}", Decimal(low) if i else None, Decimal(high + 1))
        for i, (low, high) in enumerate(ranges)
    ]
    last = ranges[-1][1] + 1
    return (*buckets, Bucket(f"${last:,}+", Decimal(last), None))


def bucket_counts(
    expression: str, buckets: tuple[Bucket, ...], *, unit: int = 1, only: str | None = None
) -> str:
    """``count(*) FILTER (...) AS bucket_<i>`` per bucket, bounds scaled by ``unit``.

    Comparing ``expression`` (e.g. seconds) to ``bound * unit`` keeps the boundaries
    exact: 172800 seconds is in ``"2-3 days"``, 172799 in ``"0-1 days"``. ``only`` is an
    extra condition every counted row must meet (e.g. one currency).
    """
    columns = []
    for i, bucket in enumerate(buckets):
        tests = [only] if only else []
        if bucket.lower is not None:
            tests.append(f"{expression} >= {bucket.lower * unit}")
        if bucket.upper is not None:
            tests.append(f"{expression} < {bucket.upper * unit}")
        columns.append(f"count(*) FILTER (WHERE {' AND '.join(tests)}) AS bucket_{i}")
    return ",\n       ".join(columns)


def rounded(expression: str, *, divisor: int = 1, places: int = 1) -> str:
    """``expression / divisor`` as an exact NUMERIC rounded half away from zero."""
    return f"round(({expression})::numeric / {divisor}, {places})"


def rounded_seconds(seconds: str, *, unit: int, places: int) -> str:
    """``seconds / unit`` rounded half away from zero to ``places`` decimals, exactly,
    by integer arithmetic instead of a per-row ``numeric`` division.

    ``seconds`` (a double, e.g. ``date_part('epoch', interval)``) is taken to whole
    microseconds (timestamps hold nothing finer); ``microseconds * 10^places`` is divided
    by ``unit`` in microseconds as a ``bigint`` with the half added away from zero, and
    one multiplication by ``10^-places`` gives the NUMERIC its scale: the same text as
    ``round(seconds::numeric / unit, places)``, e.g. ``1.50``.
    """
    micros = f"round(({seconds}) * 1000000)::bigint"
    scale = 10**places
    divisor = unit * 1_000_000
    half = divisor // 2
    step = f"0.{'0' * (places - 1)}1" if places else "1"
    return (
        f"(CASE WHEN {micros} >= 0 THEN ({micros} * {scale} + {half}) / {divisor} "
        f"ELSE -(({half} - {micros} * {scale}) / {divisor}) END) * {step}"
    )


def formula_safe(expression: str) -> str:
    """A text expression neutralised against spreadsheet formula injection (CSV only).

    A cell that starts with tab, CR or LF, or whose first character after leading white
    space is ``=``, ``+``, ``-``, ``@`` or its full-width form (U+FF1D, U+FF0B, U+FF0D, U+FF20) gets a leading single
    quote; every other value (and NULL) is unchanged. The CSV writer applies it to the
    text columns that can hold user text; JSON (and any typed format) carries the values
    as stored.
    """
    # A first character from A to ~ (letters and [\]^_`{|}~) starts neither a formula nor
    # white space: one ascii() decides most cells; the regular expression runs for the rest.
    return (
        f"CASE WHEN ascii({expression}) BETWEEN 65 AND 126 THEN ({expression}) "
        f"WHEN ({expression}) ~ '{_FORMULA_PATTERN}' "
        f"THEN '''' || ({expression}) ELSE ({expression}) END"
    )


def csv_boolean(expression: str) -> str:
    """A boolean as ``true``/``false`` (COPY's CSV writes ``t``/``f``); NULL stays NULL."""
    return f"CASE WHEN ({expression}) THEN 'true' WHEN NOT ({expression}) THEN 'false' END"


def iso_utc(expression: str) -> str:
    """A timestamptz as ISO-8601 text in UTC with milliseconds, e.g. ``2024-01-15T10:30:00.000Z``."""
    return f"""to_char({expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


def local_midnight_epoch(date_expression: str) -> str:
    """Seconds since the epoch of a calendar date's midnight in the org's time zone.

    Expects the ``tz`` parameter (an IANA name).
    """
    return f"date_part('epoch', ({date_expression})::timestamp AT TIME ZONE %(tz)s)"


def first_date_from(instant: datetime, timezone: str) -> date:
    """The first calendar date (in ``timezone``) whose midnight is at or after ``instant``.

    A calendar date ``d`` is inside ``[fromDate, toDate)`` when its local midnight is, so
    ``first_date_from(fromDate) <= d < first_date_from(toDate)``.
    """
    local = instant.astimezone(ZoneInfo(timezone))
    if local.time() == time(0):
        return local.date()
    return local.date() + timedelta(days=1)


def local_date(instant: datetime, timezone: str) -> date:
    """The calendar date of ``instant`` in ``timezone``."""
    return instant.astimezone(ZoneInfo(timezone)).date()
