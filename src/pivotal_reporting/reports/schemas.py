"""Response pieces shared by the summaries: the envelope, distribution buckets, currency
totals, and the JSON rendering that keeps exact decimals as JSON numbers.

Money, days, hours and percentages are ``Decimal`` end to end (computed as NUMERIC in
SQL) and are written as JSON numbers with their scale: ``125000.00``, ``4.2``, ``40.0``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from json.encoder import encode_basestring_ascii
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field, WithJsonSchema
from starlette.responses import JSONResponse

from pivotal_reporting.reports.sql import Bucket
from pivotal_reporting.schema_base import CamelModel as CamelModel  # the report modules' import

Money = Annotated[
    Decimal,
    WithJsonSchema({"type": "number", "description": "Exact amount, two decimal places."}),
]
Days = Annotated[
    Decimal, WithJsonSchema({"type": "number", "description": "Days, one decimal place."})
]
Hours = Annotated[
    Decimal, WithJsonSchema({"type": "number", "description": "Hours (one or two decimals)."})
]
Percentage = Annotated[
    Decimal,
    WithJsonSchema({"type": "number", "description": "Percent, one decimal; a list adds to 100."}),
]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")]

_CENT = Decimal("0.01")


class DistributionBucket(CamelModel):
    """One range of a distribution; the counts of a distribution add up to its total."""

    range: str = Field(
        description='Label, e.g. "0-1 days"; amounts name their currency: "$1,001-$5,000" '
        '(USD) or "EUR 1,001-5,000" (any other, by ISO 4217 code).'
    )
    count: int
    percentage: Percentage


class CurrencyTotal(CamelModel):
    """Count and exact sum of the rows in one currency."""

    count: int
    amount: Money


FiltersT = TypeVar("FiltersT", bound=BaseModel)
SummaryT = TypeVar("SummaryT", bound=BaseModel)


class SummaryResponse(CamelModel, Generic[FiltersT, SummaryT]):
    """The envelope of every summary: what was asked, what was computed, and when."""

    report_type: str
    filters: FiltersT = Field(description="The filters as given (unset ones omitted).")
    summary: SummaryT
    generated_at: datetime = Field(description="UTC, ISO-8601.")
    data_as_of: datetime = Field(
        description="The instant the figures are exact as of (UTC, ISO-8601, microseconds): "
        "the snapshot holds every transaction committed on the primary up to it and none "
        "after. Read on a replica, the commit time of the last transaction it had replayed; "
        "on the primary, when the snapshot was taken. Ages and 'as of now' figures are "
        "still measured at generatedAt."
    )


def distribution(buckets: Sequence[Bucket], counts: Sequence[int]) -> list[DistributionBucket]:
    """Buckets with percentages of their total, one decimal, adding up to exactly 100.0.

    Largest-remainder rounding: each percentage is within 0.1 of the exact share. An
    empty distribution is all zeros.
    """
    total = sum(counts)
    tenths = [(count * 1000) // total if total else 0 for count in counts]
    if total:
        remainders = sorted(range(len(counts)), key=lambda i: (-((counts[i] * 1000) % total), i))
        for i in remainders[: 1000 - sum(tenths)]:
            tenths[i] += 1
    return [
        DistributionBucket(range=bucket.label, count=count, percentage=Decimal(share).scaleb(-1))
        for bucket, count, share in zip(buckets, counts, tenths, strict=True)
    ]


def bucket_values(row: Mapping[str, Any], buckets: Sequence[Bucket]) -> list[int]:
    """The ``bucket_<i>`` columns of a stats row, in bucket order."""
    return [int(row[f"bucket_{i}"]) for i in range(len(buckets))]


def currency_totals(rows: Sequence[Mapping[str, Any]]) -> dict[str, CurrencyTotal]:
    """``{"USD": {"count": n, "amount": x}}`` from group rows (key = currency, n, amount)."""
    return {
        str(row["key"]).strip(): CurrencyTotal(count=row["n"], amount=money(row["amount"]))
        for row in rows
    }


def money(value: Decimal | None) -> Decimal:
    """An exact amount with two decimals; ``None`` (an empty sum) is ``0.00``."""
    return (value or Decimal(0)).quantize(_CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class EncodedJSON:
    """JSON text already written by ``encode_json``, spliced in as it is (a cached
    summary's breakdown of ten thousand customers is written once, not per answer)."""

    text: str


def encode_json(value: Any) -> str:
    """JSON text in which ``Decimal`` is written as a number exactly as it is (``12.50``).

    ``json.dumps`` can only write a float for a number, which would lose the scale and
    invite rounding, so decimals are written here; a mapping or list holding only JSON's
    own scalars (a breakdown of ten thousand customer counts) goes to ``json.dumps`` whole,
    which writes it byte for byte as this writer would, in C.
    """
    if type(value) is EncodedJSON:
        return value.text
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("non-finite decimal in a report")
        return format(value, "f")
    if isinstance(value, Mapping):
        if _native(value.values()) and all(type(k) is str for k in value):
            return json.dumps(value, separators=(",", ":"))
        items = (f"{_key(k)}:{encode_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        if _native(value):
            return json.dumps(value, separators=(",", ":"))
        return "[" + ",".join(encode_json(v) for v in value) + "]"
    if isinstance(value, datetime):
        return json.dumps(value.isoformat().replace("+00:00", "Z"))
    if isinstance(value, date):
        return json.dumps(value.isoformat())
    return json.dumps(value)


# JSON's own scalars: json.dumps writes each exactly as encode_json does.
_NATIVE_TYPES = frozenset({str, int, float, bool, type(None)})


def _native(values: Iterable[Any]) -> bool:
    return all(type(v) in _NATIVE_TYPES for v in values)


def _key(key: Any) -> str:
    return encode_basestring_ascii(key) if type(key) is str else json.dumps(str(key))


class DecimalJSONResponse(JSONResponse):
    """``application/json`` rendered by ``encode_json`` (exact decimals as numbers)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode_json(content).encode("utf-8")
