"""Pure pieces of the reports package: buckets, percentages, calendar windows, JSON."""

from __future__ import annotations

import json
import random
import statistics
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest

from pivotal_reporting.reports import invoice_settlement_time, payments_received, quote_cycle_time
from pivotal_reporting.reports.histogram import DAY_TENTHS_BIN, HOUR_TENTHS_BIN, Histogram
from pivotal_reporting.reports.schemas import distribution, encode_json
from pivotal_reporting.reports.sql import SECONDS_PER_DAY, SECONDS_PER_HOUR, first_date_from


def test_bucket_labels_are_the_specs_plus_an_open_end() -> None:
    assert [b.label for b in quote_cycle_time.BUCKETS] == [
        "0-1 days",
        "2-3 days",
        "4-7 days",
        "8-14 days",
        "15-30 days",
        "31+ days",
    ]
    assert [b.label for b in invoice_settlement_time.BUCKETS][-2:] == ["61-90 days", "91+ days"]
    assert [b.label for b in payments_received.BUCKETS] == [
        "$0-$1,000",
        "$1,001-$5,000",
        "$5,001-$10,000",
        "$10,001-$25,000",
        "$25,001-$50,000",
        "$50,001+",
    ]


@pytest.mark.parametrize(
    "counts",
    [
        [1, 1, 1],
        [1, 1, 1, 1, 1, 1],
        [2, 1, 0, 0, 0, 3],
        [1, 0, 0, 0, 0, 0],
        [7, 13, 29, 1, 0, 50],
        [0, 0, 0, 0, 0, 0],
    ],
)
def test_percentages_add_up_and_stay_within_a_tenth(counts: list[int]) -> None:
    buckets = quote_cycle_time.BUCKETS[: len(counts)]
    result = distribution(buckets, counts)
    shares = [b.percentage for b in result]
    total = sum(counts)
    assert all(share.as_tuple().exponent == -1 for share in shares)
    if total:
        assert sum(shares) == Decimal(100)
        for share, count in zip(shares, counts, strict=True):
            assert abs(share - Decimal(count * 100) / total) < Decimal("0.1")
    else:
        assert set(shares) == {Decimal("0.0")}


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        (datetime(2024, 3, 1, tzinfo=UTC), "UTC", date(2024, 3, 1)),
        (datetime(2024, 3, 1, 0, 0, 1, tzinfo=UTC), "UTC", date(2024, 3, 2)),
        (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), "UTC", date(2025, 1, 1)),
        (datetime(2024, 3, 1, 5, tzinfo=UTC), "America/New_York", date(2024, 3, 1)),
        (datetime(2024, 3, 1, tzinfo=UTC), "America/New_York", date(2024, 3, 1)),  # 29 Feb 19:00
        (datetime(2024, 3, 1, tzinfo=UTC), "Europe/Berlin", date(2024, 3, 2)),  # 1 Mar 01:00
    ],
)
def test_calendar_window_bounds(instant: datetime, zone: str, expected: date) -> None:
    assert first_date_from(instant, zone) == expected


def test_decimals_are_json_numbers_with_their_scale() -> None:
    text = encode_json({"a": Decimal("125000.00"), "b": [Decimal("4.2"), None, True], "c": 'x"y'})
    assert text == '{"a":125000.00,"b":[4.2,null,true],"c":"x\\"y"}'
    assert json.loads(text, parse_float=Decimal)["a"] == Decimal("125000.00")
    with pytest.raises(ValueError, match="non-finite"):
        encode_json(Decimal("NaN"))


def _bins(values: list[int], width: int) -> list[dict[str, object]]:
    """What the SQL histogram returns for ``values`` (seconds)."""
    grouped: dict[int, list[int]] = {}
    for value in values:
        grouped.setdefault(value // width, []).append(value)
    return [
        {
            "bin": i,
            "n": len(vs),
            "total": float(sum(vs)),
            "low": float(min(vs)),
            "high": float(max(vs)),
        }
        for i, vs in grouped.items()
    ]


@pytest.mark.parametrize("seed", range(40))
def test_histogram_median_equals_rounded_percentile_cont(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.choice([1, 2, 3, 4, 10, 101, 1000])
    # Values crowd the rounding edges (multiples of 4320 s = 0.05 day) and repeat.
    values = [
        rng.choice(
            [rng.randrange(0, 40 * 86400), 4320 * rng.randrange(0, 800) + rng.choice([-1, 0, 1])]
        )
        for _ in range(size)
    ]
    values = [max(v, 0) for v in values]
    for unit, width in (
        (SECONDS_PER_DAY, DAY_TENTHS_BIN),
        (SECONDS_PER_HOUR, HOUR_TENTHS_BIN),
        (SECONDS_PER_DAY, HOUR_TENTHS_BIN),
    ):
        histogram = Histogram.from_rows(_bins(values, width), width)
        exact = [Decimal(v) / unit for v in values]
        expected_median = Decimal(statistics.median(exact)).quantize(Decimal("0.1"), ROUND_HALF_UP)
        assert histogram.median(unit) == expected_median
        assert histogram.average(unit) == (sum(exact) / len(exact)).quantize(
            Decimal("0.1"), ROUND_HALF_UP
        )
        assert histogram.minimum(unit) == min(exact).quantize(Decimal("0.1"), ROUND_HALF_UP)
        assert histogram.maximum(unit) == max(exact).quantize(Decimal("0.1"), ROUND_HALF_UP)
    days = Histogram.from_rows(_bins(values, DAY_TENTHS_BIN), DAY_TENTHS_BIN)
    counts = days.bucket_counts(quote_cycle_time.BUCKETS, SECONDS_PER_DAY)
    uppers = [2, 4, 8, 15, 31]
    assert counts == [
        sum(
            1
            for v in values
            if (0 if i == 0 else uppers[i - 1]) <= v // 86400 < (uppers[i] if i < 5 else 10**9)
        )
        for i in range(6)
    ]
