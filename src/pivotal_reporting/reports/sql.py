"""SQL fragments shared by the report modules: filter conditions, distribution buckets,
calendar windows and the export cell guards.

Every fragment uses psycopg placeholders (``%(name)s``) and only ever interpolates
constants from the report modules; user input always travels as a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
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


def money_buckets(*ranges: tuple[int, int], currency: str = "USD") -> tuple[Bucket, ...]:
    """Buckets on whole currency units (``floor(amount)``) + an open-ended last, labelled
    in ``currency``: ``"$0-$1,000"`` in US dollars (the published labels), otherwise
    the ISO 4217 code before the range, ``"EUR 0-1,000"``, ``"EUR 50,001+"``."""

    def label(low: int, high: int | None) -> str:
        if currency == "USD":
            return f"${low:,}-${high:,}" if high is not None else f"${low:,}+"
        return f"{currency} {low:,}-{high:,}" if high is not None else f"{currency} {low:,}+"

    buckets = [
        Bucket(label(low, high), Decimal(low) if i else None, Decimal(high + 1))
        for i, (low, high) in enumerate(ranges)
    ]
    last = ranges[-1][1] + 1
    return (*buckets, Bucket(label(last, None), Decimal(last), None))


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


# Local days (DESIGN, "Round 2"): a local date's day begins at the FIRST instant whose
# local date is that date (or later: a date the calendar skipped begins where the next
# one does). On a day with two midnights that is the earlier one; on a day with none,
# the first instant after the gap. ``d::timestamp AT TIME ZONE tz`` alone picks the
# later of two midnights, so the helpers below start from it and step back when an
# earlier instant of the same date exists. Which date holds an instant is always
# ``(t AT TIME ZONE tz)::date`` (``local_month``). The summaries (rows and rollups) and
# the exports use these helpers and nothing else for local days and months; tests
# compare them to zoneinfo in every zone whose midnight has moved
# (tests/reports/test_local_days.py).


def local_day_start(date_expression: str, timezone: str = "%(tz)s") -> str:
    """SQL: the instant (timestamptz) a calendar date's local day begins.

    ``timezone`` is a SQL expression (default: the ``tz`` parameter, an IANA name).
    PostgreSQL reads ``d 00:00`` as the later instant when it happens twice, and with
    the offset before the change when it never happens (which is the first instant
    after the gap). The other candidate is ``d 00:00`` at the offset in force a day
    earlier: when it is earlier and its local date is ``d`` (or later), the day began
    then.
    """
    return f"""(SELECT CASE WHEN ld_k.early < ld_k.late
                  AND (ld_k.early AT TIME ZONE {timezone})::date >= ld_k.day
             THEN ld_k.early ELSE ld_k.late END
 FROM (SELECT ld_j.day, ld_j.late,
              (ld_j.day::timestamp - ((ld_j.late - interval '24 hours') AT TIME ZONE {timezone}
                                      - (ld_j.late - interval '24 hours') AT TIME ZONE 'UTC'))
                  AT TIME ZONE 'UTC' AS early
       FROM (SELECT ld_d.day, ld_d.day::timestamp AT TIME ZONE {timezone} AS late
             FROM (SELECT ({date_expression})::date AS day) AS ld_d) AS ld_j) AS ld_k)"""  # noqa: S608 -- reviewed: constants only, values are bound


def local_midnight_epoch(date_expression: str) -> str:
    """Seconds since the epoch of the instant a calendar date's local day begins.

    Expects the ``tz`` parameter (an IANA name). See ``local_day_start``.
    """
    return f"date_part('epoch', {local_day_start(date_expression)})"


def local_month(instant_expression: str) -> str:
    """SQL: ``YYYY-MM`` of the local date of a timestamptz (the ``tz`` parameter)."""
    return f"to_char({instant_expression} AT TIME ZONE %(tz)s, 'YYYY-MM')"


def day_start(day: date, timezone: str) -> datetime:
    """The instant (UTC) ``day``'s local day begins: ``local_day_start`` in Python.

    ``fold=0`` is the earlier of two midnights, and in a gap the offset before it (the
    first instant after the gap); ``fold=1`` the later, and in a gap the offset after
    it (an instant before the gap, on the previous date). The earliest candidate whose
    local date is ``day`` or later is the day's start.
    """
    zone = ZoneInfo(timezone)
    candidates = []
    for fold in (0, 1):
        instant = datetime.combine(day, time(), tzinfo=zone).replace(fold=fold).astimezone(UTC)
        if instant.astimezone(zone).date() >= day:
            candidates.append(instant)
    return min(candidates)


def first_date_from(instant: datetime, timezone: str) -> date:
    """The first calendar date whose local day begins at or after ``instant``.

    A calendar date ``d`` is inside ``[fromDate, toDate)`` when its day start
    (``day_start``) is, so ``first_date_from(fromDate) <= d < first_date_from(toDate)``.
    """
    local = instant.astimezone(ZoneInfo(timezone))
    # Start a little before: a date the calendar skipped begins with the next one, and a
    # clock set back over midnight can show the previous date after a day has begun.
    day = max(local.date(), date.min + timedelta(days=2)) - timedelta(days=2)
    try:
        while day < date.max and day_start(day, timezone) < instant:
            day += timedelta(days=1)
    except OverflowError:  # at the ends of the calendar, where no clock ever moved
        return local.date() + timedelta(days=0 if local.time() == time(0) else 1)
    return day


def local_date(instant: datetime, timezone: str) -> date:
    """The calendar date of ``instant`` in ``timezone``."""
    return instant.astimezone(ZoneInfo(timezone)).date()
