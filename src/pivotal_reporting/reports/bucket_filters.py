"""Drill-down into one bar of a distribution: a filter that selects exactly its rows.

Each summary with a distribution (``cycleTimeDistribution``, ``settlementTimeDistribution``,
``approvalTimeDistribution``, ``amountDistribution``) has an optional filter naming one
of its buckets by a **bucket key**: the numbers of the bucket's label without units or
currency (``"0-1"``, ``"31+"``, ``"1001-5000"``, ``"50001+"``). The condition it adds is
built from the very bucket bounds and the very SQL expression the summary counts with, so
the rows it selects are those the bucket counts, by construction:

- durations (histogram.py): the bin index ``floor(seconds / width)`` of the report's own
  seconds expression, compared with the bins the bucket spans (its bounds are multiples
  of the bin width, as ``Histogram.bucket_counts`` requires). A report that leaves
  negative durations out of its distribution (``split_negative``) starts its first
  bucket at bin 0; one that does not leaves it open, like the summary.
- amounts: the same ``width_bucket(amount, ARRAY[upper bounds])`` the summary groups by.

Bounds travel as bound parameters; the SQL only ever holds the report's constants.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from pivotal_reporting.reports.histogram import bin_sql
from pivotal_reporting.reports.sql import Bucket, Conditions

_NOT_KEY = re.compile(r"[^0-9+\-]")


def bucket_key(bucket: Bucket) -> str:
    """The label's numbers: ``"0-7 days"`` → ``"0-7"``, ``"$1,001-$5,000"`` → ``"1001-5000"``,
    ``"EUR 50,001+"`` → ``"50001+"`` (the dashboard derives it from the label the same way)."""
    return _NOT_KEY.sub("", bucket.label)


def bucket_keys(buckets: Sequence[Bucket]) -> tuple[str, ...]:
    keys = tuple(bucket_key(b) for b in buckets)
    assert len(set(keys)) == len(keys), "bucket keys must be distinct"
    return keys


@dataclass(frozen=True)
class BucketKey:
    """Metadata for ``Annotated[str, BucketKey(BUCKETS, meaning)]``: one of
    ``bucket_keys(BUCKETS)`` (else a 422 naming the accepted ones), documented as an
    enum; ``meaning`` completes the description (which rows the bucket selects)."""

    buckets: tuple[Bucket, ...]
    meaning: str

    @property
    def keys(self) -> tuple[str, ...]:
        return bucket_keys(self.buckets)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._known, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "enum": list(self.keys),
            "description": f"Only the rows of one distribution bucket: {self.meaning}",
        }

    def _known(self, value: str) -> str:
        if value not in self.keys:
            raise ValueError(f"must be one of {', '.join(self.keys)}")
        return value


def add_duration_bucket(
    where: Conditions,
    key: str | None,
    *,
    name: str,
    seconds: str,
    width: int,
    buckets: Sequence[Bucket],
    unit: int,
    negatives_excluded: bool,
) -> None:
    """Add ``lo <= floor(seconds / width) < hi`` for bucket ``key`` (nothing when ``None``).

    ``seconds`` is the summary's own duration expression (NULL rows never match);
    ``unit`` the bucket bounds' unit in seconds (86400: days).
    """
    if key is None:
        return
    bucket = buckets[bucket_keys(buckets).index(key)]
    index = bin_sql(seconds, width)
    if bucket.lower is not None or negatives_excluded:
        lower = 0 if bucket.lower is None else _bin_of(bucket.lower, unit, width)
        where.add(f"{index} >= %({name}_lo)s", **{f"{name}_lo": lower})
    if bucket.upper is not None:
        where.add(f"{index} < %({name}_hi)s", **{f"{name}_hi": _bin_of(bucket.upper, unit, width)})


def amount_bucket_sql(amount: str, buckets: Sequence[Bucket]) -> str:
    """``width_bucket`` of ``amount`` on the buckets' upper bounds: bucket ``i`` is ``i``."""
    bounds = ", ".join(str(b.upper) for b in buckets[:-1])
    return f"width_bucket({amount}, ARRAY[{bounds}]::numeric[])"


def add_amount_bucket(
    where: Conditions, key: str | None, *, name: str, amount: str, buckets: Sequence[Bucket]
) -> None:
    """Add ``amount_bucket_sql(amount) = i`` for bucket ``key`` (nothing when ``None``)."""
    if key is None:
        return
    where.add(
        f"{amount_bucket_sql(amount, buckets)} = %({name})s",
        **{name: bucket_keys(buckets).index(key)},
    )


def _bin_of(bound: Any, unit: int, width: int) -> int:
    seconds = int(bound * unit)
    assert seconds % width == 0, "bucket bounds must be bin edges"
    return seconds // width
