"""Exact rounded statistics of a duration from a fine histogram, instead of a sort.

``percentile_cont`` sorts every value in the window, in one process (ordered-set
aggregates have no parallel form): at a million rows that sort alone breaks the
250 ms SLO. The reports instead group the window once by a **bin** of width ``w``
seconds (a hash aggregate: no sort, and a few thousand groups) keeping each bin's count, sum,
min and max, and derive the figures from those few thousand bins:

- count, sum, min, max and the distribution buckets are exact by construction (bucket
  bounds are multiples of ``w``);
- the median rounded to the published precision is exact too. ``w`` is half of the
  rounding unit (0.05 day when publishing tenths of a day, 0.05 h for tenths of an
  hour), so every rounding boundary ``(m + ½)·unit`` is a bin edge and all values of
  one bin round alike. ``percentile_cont(0.5)`` is the element of rank ``k`` (odd
  count) or the mean of ranks ``k`` and ``k + 1``. Both in one bin: their mean lies in
  that bin and rounds like it. In two bins: rank ``k`` is the largest value of its bin
  and rank ``k + 1`` the smallest of the next non-empty one, so the mean is computed
  from the bins' max and min exactly.

Durations are seconds as float8 (whole seconds are exact); published values are
``Decimal`` rounded half away from zero, like PostgreSQL's ``round(numeric, 1)``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from itertools import accumulate
from typing import Any

from pivotal_reporting.reports.sql import SECONDS_PER_DAY, SECONDS_PER_HOUR, Bucket

# Bin widths: half the unit published (tenths of a day / of an hour), in seconds.
DAY_TENTHS_BIN = SECONDS_PER_DAY // 20
HOUR_TENTHS_BIN = SECONDS_PER_HOUR // 20
_TENTH = Decimal("0.1")


@dataclass(frozen=True)
class Bin:
    """Values ``v`` with ``index * width <= v < (index + 1) * width`` seconds."""

    index: int
    count: int
    total: float  # sum of the values, seconds
    low: float  # smallest value, seconds
    high: float  # largest value, seconds

    # ``total`` as the exact decimal it is, made once per bin: a cached histogram's
    # bins are summed again at every request.
    exact_total: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "exact_total", Decimal(self.total))

    def merge(self, other: Bin) -> Bin:
        return Bin(
            self.index,
            self.count + other.count,
            self.total + other.total,
            min(self.low, other.low),
            max(self.high, other.high),
        )


@dataclass(frozen=True)
class Histogram:
    """The bins of one duration measure (seconds), in ascending order."""

    width: int
    bins: tuple[Bin, ...]

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], width: int) -> Histogram:
        """From rows with ``bin, n, total, low, high``; rows of one bin are merged (the
        query may split a bin by other keys) and ``bin`` NULL rows are ignored."""
        merged: dict[int, Bin] = {}
        for r in rows:
            if r["bin"] is None or not r["n"]:
                continue
            index = int(r["bin"])
            part = Bin(index, int(r["n"]), float(r["total"]), float(r["low"]), float(r["high"]))
            seen = merged.get(index)
            merged[index] = part if seen is None else seen.merge(part)
        return cls(width, tuple(merged[i] for i in sorted(merged)))

    def merged(self, other: Histogram) -> Histogram:
        """The values of both (of one width): bins of one index merged, ``self``'s first."""
        if not other.bins:
            return self
        bins = {b.index: b for b in self.bins}
        for b in other.bins:
            seen = bins.get(b.index)
            bins[b.index] = b if seen is None else seen.merge(b)
        return Histogram(self.width, tuple(bins[i] for i in sorted(bins)))

    @property
    def count(self) -> int:
        return sum(b.count for b in self.bins)

    def average(self, unit: int) -> Decimal | None:
        """Mean in ``unit`` seconds (86400: days), one decimal; ``None`` when empty."""
        count = self.count
        if not count:
            return None
        total = sum((b.exact_total for b in self.bins), Decimal(0))
        return _round(total / count / unit)

    def minimum(self, unit: int) -> Decimal | None:
        return _round(Decimal(self.bins[0].low) / unit) if self.bins else None

    def maximum(self, unit: int) -> Decimal | None:
        return _round(Decimal(self.bins[-1].high) / unit) if self.bins else None

    def median(self, unit: int) -> Decimal | None:
        """``round(percentile_cont(0.5) / unit, 1)``, exact (see the module docstring).

        ``unit / 20`` must be a multiple of the bin width: tenths of ``unit`` then
        round at bin edges.
        """
        count = self.count
        if not count:
            return None
        return self.median_of_ranks(median_ranks(count), unit)

    def median_of_ranks(self, ranks: tuple[int, int], unit: int) -> Decimal:
        """The rounded mean of the values of ``ranks`` (1-based, ascending) in ``unit``."""
        assert (unit // 20) % self.width == 0, "tenths of the unit must round at bin edges"
        lower, upper = self._bin_of_rank(ranks[0]), self._bin_of_rank(ranks[1])
        if lower.index == upper.index:
            return _round(Decimal(lower.index * self.width) / unit)
        middle = (Decimal(lower.high) + Decimal(upper.low)) / 2
        return _round(middle / unit)

    def rank_span(self, ranks: tuple[int, int]) -> tuple[int, int, int]:
        """The bins holding ``ranks``: first index, last index, and values below the first.

        With a coarse histogram this says which fine bins a median needs: those of bins
        ``first..last``, where rank ``r`` is rank ``r - below``.
        """
        first, last = self._bin_of_rank(ranks[0]), self._bin_of_rank(ranks[1])
        below = sum(b.count for b in self.bins if b.index < first.index)
        return first.index, last.index, below

    def bucket_counts(self, buckets: Sequence[Bucket], unit: int) -> list[int]:
        """Counts per bucket (bounds in ``unit`` seconds, multiples of the bin width)."""
        starts = [b.index for b in self.bins]
        cumulative = [0, *accumulate(b.count for b in self.bins)]

        def position(bound: Decimal | None, default: int) -> int:
            if bound is None:
                return default
            return bisect_left(starts, int(bound * unit) // self.width)

        return [
            cumulative[position(bucket.upper, len(starts))] - cumulative[position(bucket.lower, 0)]
            for bucket in buckets
        ]

    def _bin_of_rank(self, rank: int) -> Bin:
        seen = 0
        for b in self.bins:
            seen += b.count
            if seen >= rank:
                return b
        raise ValueError("rank beyond the histogram")


def median_ranks(count: int) -> tuple[int, int]:
    """The ranks ``percentile_cont(0.5)`` averages: ``k, k`` (odd count) or ``k, k + 1``."""
    return (count + 1) // 2, count // 2 + 1


def split_negative(rows: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
    """Bin rows without the durations below zero, and how many those are.

    A negative duration (e.g. approved before submitted, paid before the issue date
    began) is not clamped to zero: it is left out of the duration figures and counted,
    so a summary can show it (bins below zero hold exactly the negative values).
    """
    kept = [r for r in rows if r["bin"] is None or int(r["bin"]) >= 0]
    negative = sum(int(r["n"] or 0) for r in rows if r["bin"] is not None and int(r["bin"]) < 0)
    return kept, negative


def bin_sql(seconds: str, width: int) -> str:
    """The bin index of a seconds expression (NULL stays NULL)."""
    return f"floor(({seconds}) / {width})::int"


def histogram_columns(seconds: str) -> str:
    """The per-bin aggregates ``Histogram.from_rows`` reads (alias ``bin`` separately)."""
    return (
        f"count({seconds}) AS n, sum({seconds}) AS total, "
        f"min({seconds}) AS low, max({seconds}) AS high"
    )


def category_counts(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, int]:
    """Column totals over all bin rows (e.g. per-status counts kept as FILTER columns)."""
    return {column: sum(int(row[column] or 0) for row in rows) for column in columns}


def _round(value: Decimal) -> Decimal:
    return value.quantize(_TENTH, rounding=ROUND_HALF_UP)
